/*
 * apply_replay.h — the golden records a --replay-from range is resolved
 * against.
 *
 * A replay must queue the writes the first pass queued, under the same
 * Idempotency-Keys, so each change of the range is resolved against the
 * golden record as it was just before that change — not the stored one,
 * which already reflects the whole range (everything would be an echo).
 * The first time the range touches an entity, its record is rebuilt from
 * the stored one: empty when this change created the entity (an insert
 * from the system the canonical id is named after), otherwise with the
 * fields this change's source set at or after its position taken back
 * and that source marked as not seen.  Later changes of the range are
 * applied to that copy in memory, in order, as the first pass did.
 * Nothing here writes to the state store.  Owner: apply service.
 */
#ifndef STEWARD_APPLY_APPLY_REPLAY_H
#define STEWARD_APPLY_APPLY_REPLAY_H

#include "rules.h"

typedef struct apply_replay apply_replay_t;

apply_replay_t *apply_replay_new(void);
void apply_replay_free(apply_replay_t *rp);  /* accepts NULL */

/*
 * The record to resolve change m against, for (entity name, canonical id).
 * stored is the state store's record (taken: freed or kept); it is only
 * used the first time the entity is seen.  The result is borrowed, valid
 * until apply_replay_free; the caller applies its decision to it
 * (rules_golden_apply) so the next change of the entity sees it.
 */
rules_golden_t *apply_replay_golden(apply_replay_t *rp, const rules_t *r,
				    const char *entity, const char *canonical,
				    const rules_mapped_t *m, rules_golden_t *stored);

#endif
