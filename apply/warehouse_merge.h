/*
 * warehouse_merge.h — writing a batch's collapsed mirror rows into a
 * mirror table, and the COPY plumbing the batch module shares.
 *
 * wh_batch (warehouse_batch.h) collapses the changes of a batch to one
 * wh_mrow_t per key; wh_mirror_flush writes them inside the caller's open
 * transaction.  Two ways, same result:
 *
 *   direct  — when every row of the batch is new in this batch (its first
 *             change was an insert or snapshot read) the rows are COPYed
 *             straight into the mirror table inside a SAVEPOINT (COPY
 *             BINARY when every column has an encoder, warehouse_types.h;
 *             text again when a value has no binary form).  New keys
 *             cannot conflict unless the warehouse already holds them (a
 *             re-inserted, soft-deleted key); then the COPY fails on the
 *             primary key, the savepoint is rolled back and the batch
 *             takes the merge path.  A table whose direct COPY failed skips
 *             the direct path for a growing number of batches.
 *   merge   — COPY into the table's staging table, then INSERT … ON
 *             CONFLICT (DELETE … USING first for hard deletes).  The
 *             staging table is a temporary table (ON COMMIT DELETE ROWS)
 *             created once per session and table and again only when the
 *             mirror's columns change, not once per batch.
 *
 * Rows with unchanged (TOAST) columns are upserted one by one with only
 * the columns they carry.
 */
#ifndef STEWARD_APPLY_WAREHOUSE_MERGE_H
#define STEWARD_APPLY_WAREHOUSE_MERGE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "warehouse_rows.h"
#include "warehouse_schema.h"

/* Per-column state of a collapsed mirror row. */
enum { WH_CELL_ABSENT = 0, WH_CELL_VALUE = 1, WH_CELL_UNCHANGED = 2, WH_CELL_NULL = 3 };

/* The last state of one key in a batch.  Memory belongs to the batch's arena. */
typedef struct wh_mrow {
	const char *key;          /* JSON array of the key values */
	size_t keylen;
	uint32_t hash;
	bool deleted;
	bool partial;             /* some column is WH_CELL_UNCHANGED */
	bool fresh;               /* the key's first change in this batch created it */
	size_t ncols;
	const char **val;
	size_t *len;
	unsigned char *state;
	const char *position_text;
	int64_t commit_ts_us;
} wh_mrow_t;

/* Scratch space reused across flushes (owned by the caller). */
typedef struct wh_merge_scratch {
	buf_t copy, sql;
	unsigned stage_seq;       /* names temp tables within a transaction; reset at commit */
	unsigned txn;             /* counts batch transactions: bumped at each commit or abort */
} wh_merge_scratch_t;

/*
 * Write rows[0..nrows) (borrowed) into t's mirror table inside the open
 * transaction.  t's direct-path counters are updated.  On failure the
 * transaction is failed (the caller rolls back).
 */
wh_status_t wh_mirror_flush(PGconn *conn, wh_table_t *t, wh_mrow_t *const *rows, size_t nrows,
			    bool hard_delete, wh_merge_scratch_t *scratch, char *err,
			    size_t errlen);

/*
 * COPY data (COPY text format) with the statement sql (… FROM STDIN).
 * what prefixes the message on failure; sqlstate (may be NULL) receives
 * the server's SQLSTATE of a failed COPY, or "".
 */
wh_status_t wh_copy_in(PGconn *conn, const char *sql, const buf_t *data, const char *what,
		       char sqlstate[6], char *err, size_t errlen);

#endif
