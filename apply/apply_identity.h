/*
 * apply_identity.h — which canonical entity a mapped change is about, through
 * the identity crosswalk in the state store.
 *
 * Order of evidence: the system's own key, then the links found in the row
 * (this entity's key in other systems), then the entity's deterministic match
 * keys (rules identity.match, e.g. a normalised e-mail).  Key and links must
 * agree; match keys are consulted only when neither knows the entity.  Two
 * different canonical ids claimed, or a canonical id that already has another
 * key in a linked system, is an ambiguous identity: APPLY_CONFLICT with the
 * evidence in err, and the caller dead-letters the change — never guesses.
 *
 * A new entity's canonical id is deterministic: "<system>:<key>" of the first
 * system that reported it, so replaying a change after a crash gives the same
 * id.  Match keys live in the crosswalk under the pseudo-system "~<matchkey>"
 * with key "1", first claimant wins.  Owner: apply service.
 */
#ifndef STEWARD_APPLY_APPLY_IDENTITY_H
#define STEWARD_APPLY_APPLY_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include "apply_status.h"
#include "rules.h"
#include "state.h"

/*
 * Resolve m's canonical id.  APPLY_OK: *canonical_out (caller frees) and
 * *is_new (no evidence found: a new id was made).  APPLY_CONFLICT: ambiguous
 * identity (err says why).  Other statuses: state-store errors.
 */
apply_status_t apply_identity_resolve(apply_state_t *s, const rules_t *r,
				      const rules_mapped_t *m, char **canonical_out,
				      bool *is_new, char *err, size_t errlen);

/*
 * Store the crosswalk rows of golden (every system key it holds) and m's
 * unclaimed match keys for canonical_id.  APPLY_CONFLICT if a key already
 * belongs to another canonical id (nothing is guessed; the caller's
 * transaction should not be committed with a half-written identity — call
 * this only after apply_identity_resolve succeeded in the same transaction).
 */
apply_status_t apply_identity_record(apply_state_t *s, const rules_t *r,
				     const rules_mapped_t *m, const rules_golden_t *golden,
				     const char *canonical_id, char *err, size_t errlen);

/*
 * Replace each reference value in m ("<system>:<key>") with the referenced
 * entity's canonical id when the crosswalk knows it; unknown references stay
 * as they are.
 */
apply_status_t apply_identity_translate_refs(apply_state_t *s, const rules_t *r,
					     rules_mapped_t *m, char *err, size_t errlen);

/*
 * Resolve a reference value (a canonical id, or "<system>:<key>" not yet
 * known) of entity to its key in system.  APPLY_NOT_FOUND when the target
 * system has no record of it yet.  *key_out is the caller's.
 */
apply_status_t apply_identity_ref_key(apply_state_t *s, const char *entity, const char *value,
				      const char *system, char **key_out, char *err,
				      size_t errlen);

#endif
