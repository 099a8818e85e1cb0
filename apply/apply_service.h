/*
 * apply_service.h — the apply service: change logs in, owner-approved,
 * idempotent writes to the platforms out.
 *
 * Ingest: each change log is read from its durable cursor (records at or
 * before it are skipped: deduplication by position).  Every record is
 * mapped (rules_map / rules_map_next), its entity found through the
 * crosswalk (apply_identity.h), resolved against the golden record, and the
 * golden record, crosswalk rows, conflict-log entries, dead letters, outbox
 * rows (one per rules_target_set, with a deterministic Idempotency-Key)
 * and the cursor are written in ONE state-store transaction per batch of
 * records.  A kill -9 at any instant keeps the whole batch or none of it;
 * the re-read batch produces the same rows under the same keys.
 *
 * Deliver: apply_deliver.h sends the outbox.  `steward dlq retry` puts a
 * letter back into the outbox, where the running service picks it up.
 *
 * Observability: Prometheus metrics (docs/metrics.md) and GET /status
 * (docs/apply.md) on --metrics-listen.  Owner: apply service.
 */
#ifndef STEWARD_APPLY_APPLY_SERVICE_H
#define STEWARD_APPLY_APPLY_SERVICE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "apply_status.h"

typedef struct apply_service_config {
	const char *const *log_dirs;    /* borrowed */
	size_t nlogs;
	const char *rules_path;
	const char *targets_path;
	const char *state_path;
	const char *metrics_listen;     /* NULL: no HTTP endpoint */
	const char *ui_token;           /* operations page retry token; NULL: read-only */
	const char *replay_from;        /* hex position (steward log dump's pos_hex) or NULL */
	bool once;                      /* stop when caught up and the outbox is empty */
	bool no_deliver;                /* ingest only (tests) */
	int reference_timeout_s;        /* default 300 */
	unsigned concurrency;           /* caps each target's concurrency; 0 = as configured */
	size_t batch;                   /* records per state-store transaction (default 500) */
	int poll_ms;                    /* idle wait (default 100) */
	volatile sig_atomic_t *stop;    /* set by a signal handler; may be NULL */
} apply_service_config_t;

typedef struct apply_service apply_service_t;

/*
 * Load rules and targets, open the state store and the logs.  On APPLY_OK
 * *out is the caller's (apply_service_close).  APPLY_PERMANENT: a
 * configuration error (message in err); APPLY_RETRIABLE: I/O.
 */
apply_status_t apply_service_open(const apply_service_config_t *cfg, apply_service_t **out,
				  char *err, size_t errlen);
void apply_service_close(apply_service_t *s);  /* accepts NULL */

/*
 * Ingest at most cfg->batch records in one transaction.  *records = records
 * read (0 when every log is caught up).  CLOG corruption is APPLY_PERMANENT.
 */
apply_status_t apply_service_ingest(apply_service_t *s, size_t *records, char *err,
				    size_t errlen);

/* Run until stopped (or caught up with --once).  Returns an exit code. */
int apply_service_run(const apply_service_config_t *cfg);

#endif
