/*
 * capture_metrics.h — what a capture agent tells its operators: the
 * Prometheus metrics of docs/metrics.md ("Capture") and GET /status, served
 * on --metrics-listen by common/httpd.
 *
 * One instance per process: cli/cmd_capture.c creates it (capture_metrics_start)
 * and installs it for the run; the agents report through the capture_metrics_on_*
 * hooks below, which take no handle and do nothing when no instance is
 * installed (--metrics-listen not given, unit tests).  The hooks are cheap
 * (a mutex and a few adds) and thread-safe.
 *
 * Source-side gauges (a PostgreSQL slot's retained WAL, safe_wal_size and
 * wal_status; a MySQL source's binlog distance) are polled every 15 s by the
 * module's own thread on its own, non-replication connection, so the agent's
 * connections are never shared between threads.
 */
#ifndef STEWARD_CAPTURE_CAPTURE_METRICS_H
#define STEWARD_CAPTURE_CAPTURE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "capture.h"
#include "steward.pb-c.h"

typedef enum capture_state {
	CAPTURE_STATE_STARTING = 0,
	CAPTURE_STATE_SNAPSHOTTING,
	CAPTURE_STATE_STREAMING,
	CAPTURE_STATE_RECONNECTING,
	CAPTURE_STATE_STOPPED,
} capture_state_t;

typedef struct capture_metrics capture_metrics_t;

/*
 * Start serving cfg->metrics_listen (must be non-NULL) and install the
 * instance for the hooks.  cfg is borrowed for the instance's life.  NULL
 * with a message in err if the address cannot be bound.
 */
capture_metrics_t *capture_metrics_start(const capture_config_t *cfg, char *err, size_t errlen);

/* Uninstall, stop serving and free.  Accepts NULL. */
void capture_metrics_stop(capture_metrics_t *m);

/* ---- hooks for the agents (no-ops when nothing is installed) ---- */

/* A change was appended to the change log (not a dropped duplicate). */
void capture_metrics_on_append(const Steward__Change *c);

/*
 * n changes of one table and op, all from one source transaction committed
 * at commit_ts_us (0 if none), were appended: the per-batch form of
 * capture_metrics_on_append for agents that do not build Steward__Change
 * records.  Strings are borrowed for the call.
 */
void capture_metrics_on_append_rows(const char *source, const char *schema, const char *table,
				    Steward__Op op, int64_t commit_ts_us, uint64_t n);

/* A source transaction was completely appended. */
void capture_metrics_on_commit(void);

/*
 * A flush made everything appended durable in `seconds`; the changes
 * appended since the previous flush form the batch.  position_text (may be
 * NULL) is the last durable source position, shown by /status.
 */
void capture_metrics_on_flush(double seconds, const char *position_text);

/*
 * The agent's state changed.  error (may be NULL, copied) is the reason
 * for RECONNECTING/STOPPED, shown as last_error by /status.
 */
void capture_metrics_set_state(capture_state_t state, const char *error);

/* The monotonic clock in seconds, for timing flushes. */
double capture_metrics_now(void);

#endif
