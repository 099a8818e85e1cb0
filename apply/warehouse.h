/*
 * warehouse.h — the PostgreSQL warehouse target of `steward apply`:
 * change logs in, mirror and history tables out, exactly once.
 *
 * warehouse_run reads every change log from the position stored for its
 * source in the warehouse's state table, turns each record into a generic
 * wh_change_t (warehouse_rows.h), and applies them in batches
 * (warehouse_batch.h).  With once it drains what the logs hold and
 * returns; otherwise it tails them until *stop becomes non-zero.
 * Retriable failures (warehouse unreachable, connection lost) reconnect
 * with backoff and resume from the stored positions.
 */
#ifndef STEWARD_APPLY_WAREHOUSE_H
#define STEWARD_APPLY_WAREHOUSE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct warehouse_config {
	const char *const *log_dirs;  /* change log directories (borrowed) */
	size_t nlogs;
	const char *dsn;              /* libpq conninfo or URI; never logged unredacted */
	const char *schema;           /* warehouse schema, created if missing */
	unsigned modes;               /* WH_MODE_MIRROR | WH_MODE_HISTORY */
	bool hard_delete;             /* mirror: delete rows instead of flagging them */
	bool scd2;                    /* history: valid_from / valid_to */
	bool once;                    /* drain and return */
	size_t batch_size;            /* changes per warehouse transaction */
	int poll_ms;                  /* tail: wait between polls of idle logs */
	int retries;                  /* consecutive retriable failures before giving up
					 (0 = forever) */
	volatile sig_atomic_t *stop;  /* set by a signal handler; may be NULL */
} warehouse_config_t;

/*
 * Run until done (once), stopped, or a failure that retrying cannot fix.
 * Returns an exit code: STEWARD_EXIT_OK; STEWARD_EXIT_DATAERR for an
 * incompatible schema change (the change waits in the log) or a corrupt
 * log; STEWARD_EXIT_UNAVAILABLE when the warehouse stays unreachable;
 * STEWARD_EXIT_IOERR when a log cannot be read; STEWARD_EXIT_FAILURE for
 * other errors (permissions, rejected data).
 */
int warehouse_run(const warehouse_config_t *cfg);

#endif
