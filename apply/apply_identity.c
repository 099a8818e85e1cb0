/*
 * apply_identity.c — canonical ids through the crosswalk: key, links, match
 * keys; ambiguity detection.
 */
#include "apply_identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"

/* Canonical id for (system, key); APPLY_NOT_FOUND when unknown. */
static apply_status_t
lookup(apply_state_t *s, const char *entity, const char *system, const char *key, char **out,
       char *err, size_t errlen)
{
	*out = NULL;
	return apply_state_xwalk_canonical(s, entity, system, key, out, err, errlen);
}

/* Merge a candidate into *found; APPLY_CONFLICT if it disagrees. */
static apply_status_t
merge(char **found, char **cand, const char **found_why, const char *why, char *why_buf,
      size_t why_len, char *err, size_t errlen)
{
	if (!*cand)
		return APPLY_OK;
	if (!*found) {
		*found = *cand;
		*cand = NULL;
		snprintf(why_buf, why_len, "%s", why);
		*found_why = why_buf;
		return APPLY_OK;
	}
	if (strcmp(*found, *cand) == 0) {
		free(*cand);
		*cand = NULL;
		return APPLY_OK;
	}
	snprintf(err, errlen, "ambiguous identity: %s is \"%s\" but %s is \"%s\"", *found_why,
		 *found, why, *cand);
	free(*cand);
	*cand = NULL;
	return APPLY_CONFLICT;
}

apply_status_t
apply_identity_resolve(apply_state_t *s, const rules_t *r, const rules_mapped_t *m,
		       char **canonical_out, bool *is_new, char *err, size_t errlen)
{
	const char *entity = rules_entity_name(r, m->entity);
	char *found = NULL, *cand = NULL;
	const char *found_why = NULL;
	char why_buf[256], why[256];
	apply_status_t st;
	buf_t keys = BUF_INIT;
	*canonical_out = NULL;
	*is_new = false;

	st = lookup(s, entity, rules_system_name(r, m->system), m->key, &cand, err, errlen);
	if (st != APPLY_OK && st != APPLY_NOT_FOUND)
		goto out;
	snprintf(why, sizeof why, "%s key \"%s\"", rules_system_name(r, m->system), m->key);
	if ((st = merge(&found, &cand, &found_why, why, why_buf, sizeof why_buf, err, errlen)))
		goto out;
	for (size_t i = 0; i < m->nlinks; i++) {
		if (!m->links[i].key || !*m->links[i].key)
			continue;
		const char *sys = rules_system_name(r, m->links[i].system);
		st = lookup(s, entity, sys, m->links[i].key, &cand, err, errlen);
		if (st != APPLY_OK && st != APPLY_NOT_FOUND)
			goto out;
		snprintf(why, sizeof why, "link to %s key \"%s\"", sys, m->links[i].key);
		if ((st = merge(&found, &cand, &found_why, why, why_buf, sizeof why_buf, err, errlen)))
			goto out;
	}
	if (found) {
		/* A linked system must not already hold another key for this entity. */
		for (size_t i = 0; i < m->nlinks; i++) {
			if (!m->links[i].key || !*m->links[i].key)
				continue;
			const char *sys = rules_system_name(r, m->links[i].system);
			char *have = NULL;
			st = apply_state_xwalk_key(s, entity, found, sys, &have, err, errlen);
			if (st == APPLY_NOT_FOUND)
				continue;
			if (st != APPLY_OK)
				goto out;
			if (strcmp(have, m->links[i].key) != 0) {
				snprintf(err, errlen, "ambiguous identity: %s \"%s\" already has %s key "
					 "\"%s\" but the change links %s key \"%s\"", entity, found,
					 sys, have, sys, m->links[i].key);
				free(have);
				st = APPLY_CONFLICT;
				goto out;
			}
			free(have);
		}
		/* Nor the change's own system (a second record for the same entity). */
		char *have = NULL;
		st = apply_state_xwalk_key(s, entity, found, rules_system_name(r, m->system), &have,
					   err, errlen);
		if (st == APPLY_OK && strcmp(have, m->key) != 0) {
			snprintf(err, errlen, "ambiguous identity: %s \"%s\" already has %s key \"%s\" "
				 "but the change is %s key \"%s\"", entity, found,
				 rules_system_name(r, m->system), have, rules_system_name(r, m->system),
				 m->key);
			free(have);
			st = APPLY_CONFLICT;
			goto out;
		}
		free(have);
		if (st != APPLY_OK && st != APPLY_NOT_FOUND)
			goto out;
		st = APPLY_OK;
		goto done;
	}
	/* Neither key nor links: deterministic match keys. */
	size_t nk = rules_match_keys(r, m, &keys);
	const char *k = keys.data;
	for (size_t i = 0; i < nk; i++, k += strlen(k) + 1) {
		char sys[512];
		snprintf(sys, sizeof sys, "~%s", k);
		st = lookup(s, entity, sys, "1", &cand, err, errlen);
		if (st != APPLY_OK && st != APPLY_NOT_FOUND)
			goto out;
		snprintf(why, sizeof why, "match key \"%s\"", k);
		if ((st = merge(&found, &cand, &found_why, why, why_buf, sizeof why_buf, err, errlen)))
			goto out;
	}
	if (found) {
		char *have = NULL;
		st = apply_state_xwalk_key(s, entity, found, rules_system_name(r, m->system), &have,
					   err, errlen);
		if (st == APPLY_OK) {
			/* The matched entity already has a record in this system: a
			 * second record with the same match key is not the same
			 * entity by evidence we trust; it is ambiguous. */
			snprintf(err, errlen, "ambiguous identity: %s matches %s \"%s\", which already "
				 "has %s key \"%s\"", why_buf, entity, found,
				 rules_system_name(r, m->system), have);
			free(have);
			st = APPLY_CONFLICT;
			goto out;
		}
		if (st != APPLY_NOT_FOUND)
			goto out;
		st = APPLY_OK;
		goto done;
	}
	found = xasprintf("%s:%s", rules_system_name(r, m->system), m->key);
	*is_new = true;
	st = APPLY_OK;
done:
	*canonical_out = found;
	found = NULL;
out:
	free(found);
	free(cand);
	buf_free(&keys);
	return st;
}

apply_status_t
apply_identity_record(apply_state_t *s, const rules_t *r, const rules_mapped_t *m,
		      const rules_golden_t *golden, const char *canonical_id, char *err,
		      size_t errlen)
{
	const char *entity = rules_entity_name(r, m->entity);
	apply_status_t st = APPLY_OK;
	buf_t keys = BUF_INIT;
	for (size_t i = 0; i < golden->nsystems; i++) {
		if (!golden->keys[i])
			continue;
		st = apply_state_xwalk_put(s, entity, canonical_id, rules_system_name(r, (int) i),
					   golden->keys[i], err, errlen);
		if (st != APPLY_OK)
			goto out;
	}
	size_t nk = rules_match_keys(r, m, &keys);
	const char *k = keys.data;
	for (size_t i = 0; i < nk; i++, k += strlen(k) + 1) {
		char sys[512], *owner = NULL;
		snprintf(sys, sizeof sys, "~%s", k);
		st = apply_state_xwalk_canonical(s, entity, sys, "1", &owner, err, errlen);
		free(owner);
		if (st == APPLY_OK)
			continue;  /* claimed already (by this entity or the first claimant) */
		if (st != APPLY_NOT_FOUND)
			goto out;
		st = apply_state_xwalk_put(s, entity, canonical_id, sys, "1", err, errlen);
		if (st == APPLY_CONFLICT)
			st = APPLY_OK;  /* this entity already claimed another value of that key */
		if (st != APPLY_OK)
			goto out;
	}
out:
	buf_free(&keys);
	return st;
}

apply_status_t
apply_identity_translate_refs(apply_state_t *s, const rules_t *r, rules_mapped_t *m,
			      char *err, size_t errlen)
{
	for (size_t i = 0; i < m->nrefs; i++) {
		const rules_ref_t *ref = &m->refs[i];
		if (!ref->key)
			continue;
		char *canon = NULL;
		apply_status_t st = apply_state_xwalk_canonical(s, rules_entity_name(r, ref->entity),
								rules_system_name(r, ref->system),
								ref->key, &canon, err, errlen);
		if (st == APPLY_NOT_FOUND)
			continue;
		if (st != APPLY_OK)
			return st;
		rules_mapped_set(m, ref->field, canon);
		free(canon);
	}
	return APPLY_OK;
}

apply_status_t
apply_identity_ref_key(apply_state_t *s, const char *entity, const char *value, const char *system,
		       char **key_out, char *err, size_t errlen)
{
	*key_out = NULL;
	apply_status_t st = apply_state_xwalk_key(s, entity, value, system, key_out, err, errlen);
	if (st != APPLY_NOT_FOUND)
		return st;
	/* Not a canonical id (yet): "<system>:<key>" as the source wrote it. */
	const char *colon = strchr(value, ':');
	if (!colon)
		return APPLY_NOT_FOUND;
	char *sys = xstrndup(value, (size_t) (colon - value));
	char *canon = NULL;
	if (strcmp(sys, system) == 0) {
		*key_out = xstrdup(colon + 1);
		free(sys);
		return APPLY_OK;
	}
	st = apply_state_xwalk_canonical(s, entity, sys, colon + 1, &canon, err, errlen);
	free(sys);
	if (st != APPLY_OK)
		return st;
	st = apply_state_xwalk_key(s, entity, canon, system, key_out, err, errlen);
	free(canon);
	return st;
}
