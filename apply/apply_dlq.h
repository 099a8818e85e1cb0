/*
 * apply_dlq.h — putting a dead letter back into processing.
 *
 * Shared by `steward dlq retry` and the operations page's Retry button so
 * both do exactly the same thing.
 */
#ifndef STEWARD_APPLY_APPLY_DLQ_H
#define STEWARD_APPLY_APPLY_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include "apply_status.h"
#include "idem.h"
#include "state.h"

/*
 * In one state-store transaction: queue dead letter id's request again as a
 * new outbox row and mark the letter "retried".  The new row's
 * Idempotency-Key is derived from the letter's original key and its id, so
 * a retry is a new attempt for the target, and retrying twice is refused.
 * On APPLY_OK *outbox_id (may be NULL) is the new row and key (may be NULL,
 * IDEM_KEY_LEN + 1 bytes) its key.  APPLY_NOT_FOUND: no such letter;
 * APPLY_CONFLICT: the letter is not open or has no request (err says
 * which); APPLY_RETRIABLE: the store is busy.  Nothing changes on failure.
 */
apply_status_t apply_dlq_retry(apply_state_t *s, int64_t id, int64_t now_ms,
			       int64_t *outbox_id, char *key, char *err, size_t errlen);

#endif
