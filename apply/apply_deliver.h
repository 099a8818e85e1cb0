/*
 * apply_deliver.h — the outbox worker: turns queued writes into HTTP
 * requests to the targets and records what became of them.
 *
 * A queued write (outbox row) holds an intent, not a rendered request:
 *   {"v":1,"op":"create|update|delete","system":"crm","entity":"customer",
 *    "id":"<canonical id>","fields":{"<field>":"<canonical text>"|null,…},
 *    "corr":"<source>@<position>","rule":"target.crm.customer"}
 * It is rendered when sent, with the crosswalk as it is then, so a write
 * queued before its entity's create finished (or before a referenced
 * entity existed in the target) gets the ids it needs.  A create whose id
 * became known meanwhile is sent as an update: no duplicate creates.
 *
 * Order: committed outbox rows are read (by id, only the new ones) into an
 * in-memory FIFO per (target, entity, id) (apply_queue.h); only a FIFO's
 * head is sent, and a row stays in the outbox and at the head until its
 * delivery or dead letter is committed, so one entity's writes reach a
 * target in source order while different entities proceed in parallel
 * (bounded per target).
 *
 * Failures (apply/retry.h): backoff with jitter for 5xx/timeouts/network
 * errors, Retry-After for 429, quota and auth pauses, a token bucket and a
 * circuit breaker per target; 4xx business errors, unknown ids and
 * references missing past the reference timeout go to the dead-letter queue
 * with request and response.  Answers are recorded in one state-store
 * transaction for up to 64 of them (lazy commit: see apply_state_begin_lazy).  Single-threaded; owner: apply service.
 */
#ifndef STEWARD_APPLY_APPLY_DELIVER_H
#define STEWARD_APPLY_APPLY_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "apply_status.h"
#include "apply_targets.h"
#include "metrics.h"
#include "rules.h"
#include "state.h"

typedef struct apply_deliver apply_deliver_t;

typedef struct apply_deliver_opts {
	int64_t reference_timeout_ms;  /* a missing reference waits this long (default 300000) */
	unsigned concurrency;          /* caps every target's concurrency when > 0 */
	uint64_t seed;                 /* backoff jitter seed (0: from the clock) */
} apply_deliver_opts_t;

/*
 * rules, targets, state and metrics (may be NULL) are borrowed and must
 * outlive the worker.  Reads tokens now: APPLY_PERMANENT when one is
 * missing.  On APPLY_OK *out is the caller's (apply_deliver_destroy).
 */
apply_status_t apply_deliver_create(const rules_t *rules, const apply_targets_t *targets,
				    apply_state_t *state, metrics_t *metrics,
				    const apply_deliver_opts_t *opts, apply_deliver_t **out,
				    char *err, size_t errlen);
/* Aborts requests in flight (their rows stay queued).  Accepts NULL. */
void apply_deliver_destroy(apply_deliver_t *d);

/*
 * Submit what is due, wait up to timeout_ms for answers, record them.
 * *finished (may be NULL) = rows delivered or dead-lettered.  State-store
 * errors are returned (APPLY_RETRIABLE when busy).
 */
apply_status_t apply_deliver_step(apply_deliver_t *d, int timeout_ms, size_t *finished,
				  char *err, size_t errlen);
unsigned apply_deliver_in_flight(const apply_deliver_t *d);
/* Outbox rows pending as of the last step (read into its queue), or -1
 * when the queue is full and the state store holds more. */
int64_t apply_deliver_pending(const apply_deliver_t *d);

/* Per target: {"name","state","in_flight","last_error","dead_letters",
 * "delivered","retries"}; appended to the array targets. */
void apply_deliver_status(const apply_deliver_t *d, json_t *targets);

#endif
