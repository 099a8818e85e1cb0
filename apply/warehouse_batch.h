/*
 * warehouse_batch.h — many changes, one warehouse transaction.
 *
 * wh_batch_add collects changes per table: for mirror tables the changes
 * are collapsed in memory to the last state per key; history rows are
 * encoded as COPY text at once and streamed into an open COPY of the
 * history table while the batch is built.  wh_batch_commit then, per table, writes
 * the collapsed rows (warehouse_merge.h: a direct COPY when every key is
 * new, else a temporary staging table merged with INSERT … ON CONFLICT,
 * DELETE … USING for hard deletes), COPYs history
 * rows straight into the history table, closes SCD2 versions, writes each
 * source's applied position into the state table and COMMITs.
 *
 * Exactly once: the rows and the positions that produced them commit in
 * the same transaction, so after a crash the warehouse holds exactly the
 * changes up to the stored positions, and apply resumes after them.
 */
#ifndef STEWARD_APPLY_WAREHOUSE_BATCH_H
#define STEWARD_APPLY_WAREHOUSE_BATCH_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "warehouse_rows.h"
#include "warehouse_schema.h"

typedef struct wh_batch wh_batch_t;

typedef struct wh_batch_options {
	unsigned modes;     /* WH_MODE_* */
	bool hard_delete;   /* mirror deletes remove the row (default: soft delete) */
	bool scd2;          /* history rows get valid_from/valid_to */
} wh_batch_options_t;

/* Applied position of one source, written at commit. Borrowed for the call. */
typedef struct wh_progress {
	const char *source;
	const uint8_t *position;
	size_t position_len;
	const char *position_text;
	const char *log_dir;       /* informational */
	uint64_t changes;          /* changes in this batch (added to a counter) */
} wh_progress_t;

/* schema is borrowed for the life of the batch. */
wh_batch_t *wh_batch_create(const wh_batch_options_t *opts, wh_schema_t *schema);
void wh_batch_free(wh_batch_t *b);  /* accepts NULL; does not roll back */

/*
 * Add one change (copied; c is borrowed for the call), opening the
 * transaction on the first.  Schema changes run now, in the transaction.
 * WH_SCHEMA leaves the batch intact and committable without c; WH_RETRY
 * and WH_FATAL leave the transaction failed: call wh_batch_abort.
 */
wh_status_t wh_batch_add(wh_batch_t *b, PGconn *conn, const wh_change_t *c, char *err,
			 size_t errlen);

/*
 * The batch keeps a COPY of history rows open on conn between
 * wh_batch_add calls (rows reach the server while the batch is built).
 * Call this before running a statement of your own on conn in an open
 * batch; the batch and the schema (its hook) do so themselves.
 */
wh_status_t wh_batch_pause(wh_batch_t *b, PGconn *conn, char *err, size_t errlen);

/* Changes added since the last commit or abort. */
size_t wh_batch_count(const wh_batch_t *b);

/*
 * Write everything added and the given positions, and COMMIT.  On any
 * failure the transaction is rolled back (call wh_batch_abort to reset).
 */
wh_status_t wh_batch_commit(wh_batch_t *b, PGconn *conn, const wh_progress_t *progress,
			    size_t nprogress, char *err, size_t errlen);

/* Roll back (if the connection still works), drop what was added and
 * forget cached table definitions. */
void wh_batch_abort(wh_batch_t *b, PGconn *conn);

#endif
