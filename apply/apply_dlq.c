/*
 * apply_dlq.c — retrying a dead letter; see apply_dlq.h.
 */
#include "apply_dlq.h"

#include <stdio.h>
#include <string.h>

apply_status_t
apply_dlq_retry(apply_state_t *s, int64_t id, int64_t now_ms, int64_t *outbox_id,
		char *key_out, char *err, size_t errlen)
{
	apply_dlq_entry_t e;
	bool have_entry = false;
	apply_status_t st = apply_state_begin(s, err, errlen);
	if (st != APPLY_OK)
		return st;
	if ((st = apply_state_dlq_get(s, id, &e, err, errlen)) != APPLY_OK) {
		if (st == APPLY_NOT_FOUND)
			snprintf(err, errlen, "no dead letter with id %lld", (long long) id);
		goto out;
	}
	have_entry = true;
	if (strcmp(e.state, "open") != 0 || !e.target || !e.request) {
		snprintf(err, errlen, "dead letter %lld is %s%s; only open letters with a request "
			 "can be retried", (long long) id, e.state,
			 e.request ? "" : " and has no request");
		st = APPLY_CONFLICT;
		goto out;
	}
	char id_text[32], key[IDEM_KEY_LEN + 1];
	snprintf(id_text, sizeof id_text, "%lld", (long long) id);
	idem_field_t salt[] = {{"dlq_retry_of", id_text}, {"original_key", e.idem_key}};
	idem_key(e.entity, e.entity_id, e.target, &e.pos, salt, 2, key);
	apply_outbox_row_t row = {0};
	row.entity = e.entity ? e.entity : "";
	row.entity_id = e.entity_id ? e.entity_id : "";
	row.target = e.target;
	row.idem_key = key;
	row.request = e.request;
	row.source = e.source;
	row.pos = e.pos;
	row.created_ms = now_ms;
	row.next_attempt_ms = 0;
	int64_t new_id = 0;
	if ((st = apply_state_outbox_add(s, &row, &new_id, NULL, err, errlen)) != APPLY_OK ||
	    (st = apply_state_dlq_set_state(s, id, "retried", err, errlen)) != APPLY_OK ||
	    (st = apply_state_commit(s, err, errlen)) != APPLY_OK)
		goto out;
	if (outbox_id)
		*outbox_id = new_id;
	if (key_out)
		memcpy(key_out, key, IDEM_KEY_LEN + 1);
out:
	if (st != APPLY_OK)
		apply_state_rollback(s);
	if (have_entry)
		apply_state_dlq_clear(&e);
	return st;
}
