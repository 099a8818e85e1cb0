/*
 * warehouse_merge.c — collapsed mirror rows into a mirror table (direct
 * COPY or staging + INSERT … ON CONFLICT) and COPY plumbing; see
 * warehouse_merge.h.
 */
#include "warehouse_merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "warehouse_types.h"
#include "xalloc.h"

/* Direct-path backoff after a conflict: skip 1, 2, 4 … 64 batches. */
#define DIRECT_BACKOFF_MAX 64

/* Start sql (a COPY … FROM STDIN); sqlstate (may be NULL) is cleared. */
static wh_status_t
copy_begin(PGconn *conn, const char *sql, const char *what, char sqlstate[6], char *err,
	   size_t errlen)
{
	wh_status_t st = WH_OK;
	if (sqlstate)
		sqlstate[0] = '\0';
	PGresult *res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_IN)
		st = wh_pg_error(conn, res, what, err, errlen);
	PQclear(res);
	return st;
}

/*
 * End a COPY begun by copy_begin: abort it if st is an error already, else
 * finish it and collect its result.  Returns st or the COPY's own error,
 * with its SQLSTATE in sqlstate (may be NULL).
 */
static wh_status_t
copy_end(PGconn *conn, wh_status_t st, const char *what, char sqlstate[6], char *err,
	 size_t errlen)
{
	PGresult *res;
	if (PQputCopyEnd(conn, st == WH_OK ? NULL : "aborted") != 1 && st == WH_OK)
		st = wh_pg_error(conn, NULL, what, err, errlen);
	while ((res = PQgetResult(conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && st == WH_OK) {
			st = wh_pg_error(conn, res, what, err, errlen);
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			if (sqlstate && state)
				snprintf(sqlstate, 6, "%s", state);
		}
		PQclear(res);
	}
	return st;
}

wh_status_t
wh_copy_in(PGconn *conn, const char *sql, const buf_t *data, const char *what,
	   char sqlstate[6], char *err, size_t errlen)
{
	wh_status_t st = copy_begin(conn, sql, what, sqlstate, err, errlen);
	if (st != WH_OK)
		return st;
	const size_t chunk = 1 << 20;
	for (size_t off = 0; off < data->len && st == WH_OK; off += chunk) {
		size_t n = data->len - off < chunk ? data->len - off : chunk;
		if (PQputCopyData(conn, data->data + off, (int) n) != 1)
			st = wh_pg_error(conn, NULL, what, err, errlen);
	}
	return copy_end(conn, st, what, sqlstate, err, errlen);
}

/* Column list of the mirror's data columns, then the _steward_ ones. */
static void
mirror_columns(buf_t *sql, const wh_table_t *t)
{
	for (size_t j = 0; j < t->ncols; j++)
		buf_printf(sql, "%s, ", t->cols[j].ident);
	buf_append_str(sql, "_steward_deleted, _steward_deleted_at, _steward_position,"
			    " _steward_commit_ts");
}

static bool
is_key(const wh_table_t *t, size_t j)
{
	for (size_t k = 0; k < t->nkey; k++)
		if (t->key[k] == j)
			return true;
	return false;
}

static void
append_copy_text(buf_t *out, const char *s)
{
	if (!s)
		wh_put(out, "\\N", 2);
	else
		wh_copy_escape(out, s, strlen(s));
}

/* A row with unchanged (TOAST) columns: upsert only the columns it has. */
static wh_status_t
upsert_partial(PGconn *conn, const wh_table_t *t, const wh_mrow_t *r, buf_t *sql, char *err,
	       size_t errlen)
{
	buf_reset(sql);
	const char **params = xcalloc(t->ncols + 2, sizeof(*params));
	int *lens = xcalloc(t->ncols + 2, sizeof(*lens));
	int np = 0;
	buf_printf(sql, "INSERT INTO %s AS t (", t->mirror_qname);
	for (size_t j = 0; j < t->ncols; j++)
		if (j < r->ncols && r->state[j] != WH_CELL_UNCHANGED)
			buf_printf(sql, "%s, ", t->cols[j].ident);
	buf_append_str(sql, "_steward_deleted, _steward_deleted_at, _steward_position,"
			    " _steward_commit_ts) VALUES (");
	for (size_t j = 0; j < t->ncols; j++) {
		if (j < r->ncols && r->state[j] == WH_CELL_UNCHANGED)
			continue;
		params[np] = j < r->ncols && r->state[j] == WH_CELL_VALUE ? r->val[j] : NULL;
		lens[np] = (int) (j < r->ncols ? r->len[j] : 0);
		buf_printf(sql, "$%d, ", ++np);
	}
	params[np] = r->position_text;
	buf_printf(sql, "false, NULL, $%d, ", ++np);
	buf_t ts = BUF_INIT;
	if (r->commit_ts_us)
		wh_append_ts(&ts, r->commit_ts_us);
	params[np] = r->commit_ts_us ? ts.data : NULL;
	buf_printf(sql, "$%d::timestamptz) ON CONFLICT (", ++np);
	for (size_t k = 0; k < t->nkey; k++)
		buf_printf(sql, "%s%s", k ? ", " : "", t->cols[t->key[k]].ident);
	buf_append_str(sql, ") DO UPDATE SET ");
	for (size_t j = 0; j < t->ncols; j++)
		if (!is_key(t, j) && j < r->ncols && r->state[j] != WH_CELL_UNCHANGED)
			buf_printf(sql, "%s = EXCLUDED.%s, ", t->cols[j].ident, t->cols[j].ident);
	buf_append_str(sql, "_steward_deleted = false, _steward_deleted_at = NULL,"
			    " _steward_position = EXCLUDED._steward_position,"
			    " _steward_commit_ts = EXCLUDED._steward_commit_ts");
	PGresult *res = PQexecParams(conn, sql->data, np, NULL, params, lens, NULL, 0);
	wh_status_t st = WH_OK;
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		st = wh_pg_error(conn, res, "could not apply a row with unchanged columns", err,
				 errlen);
	PQclear(res);
	buf_free(&ts);
	free(params);
	free(lens);
	return st;
}

/* COPY text of one whole (not partial) mirror row. */
static void
encode_row(buf_t *cp, const wh_table_t *t, const wh_mrow_t *row)
{
	for (size_t j = 0; j < t->ncols; j++) {
		if (j < row->ncols && row->state[j] == WH_CELL_VALUE)
			wh_copy_escape(cp, row->val[j], row->len[j]);
		else
			wh_put(cp, "\\N", 2);
		wh_put_char(cp, '\t');
	}
	if (row->deleted) {
		wh_put(cp, "t\t", 2);
		if (row->commit_ts_us)
			wh_append_ts(cp, row->commit_ts_us);
		else
			wh_put(cp, "\\N", 2);
	} else {
		wh_put(cp, "f\t\\N", 4);
	}
	wh_put_char(cp, '\t');
	append_copy_text(cp, row->position_text);
	wh_put_char(cp, '\t');
	if (row->commit_ts_us)
		wh_append_ts(cp, row->commit_ts_us);
	else
		wh_put(cp, "\\N", 2);
	wh_put_char(cp, '\n');
}

/*
 * COPY BINARY of the same row (enc: the encoder of each data column).
 * False, with nothing written, when a value is not in a form its encoder
 * takes (wh_bin_field).
 */
static bool
encode_row_bin(buf_t *cp, const wh_table_t *t, const wh_bin_t *enc, const wh_mrow_t *row)
{
	size_t mark = cp->len;
	wh_bin_i16(cp, (int) (t->ncols + 4));
	for (size_t j = 0; j < t->ncols; j++) {
		if (j < row->ncols && row->state[j] == WH_CELL_VALUE) {
			if (!wh_bin_field(enc[j], row->val[j], row->len[j], cp)) {
				cp->len = mark;
				return false;
			}
		} else {
			wh_bin_i32(cp, -1);
		}
	}
	wh_bin_i32(cp, 1);
	wh_put_char(cp, row->deleted ? 1 : 0);
	if (row->deleted && row->commit_ts_us)
		wh_bin_ts(cp, row->commit_ts_us);
	else
		wh_bin_i32(cp, -1);
	wh_bin_bytes(cp, row->position_text,
		     row->position_text ? strlen(row->position_text) : 0);
	if (row->commit_ts_us)
		wh_bin_ts(cp, row->commit_ts_us);
	else
		wh_bin_i32(cp, -1);
	return true;
}

/* Bytes of encoded rows sent per PQputCopyData: the server parses one
 * piece while the next is encoded. */
#define COPY_PIECE (256 * 1024)

/*
 * COPY the whole rows of rows[0..nrows) with sql (… FROM STDIN), encoding
 * them piece by piece into sc->copy as they are sent.  what prefixes the
 * message on failure; sqlstate (may be NULL) receives the SQLSTATE of a
 * failed COPY, or "".
 */
static wh_status_t
copy_rows(PGconn *conn, const char *sql, const wh_table_t *t, wh_mrow_t *const *rows,
	  size_t nrows, const wh_bin_t *enc, bool *unencodable, wh_merge_scratch_t *sc,
	  const char *what, char sqlstate[6], char *err, size_t errlen)
{
	wh_status_t st = copy_begin(conn, sql, what, sqlstate, err, errlen);
	if (st != WH_OK)
		return st;
	buf_reset(&sc->copy);
	if (enc)
		wh_bin_header(&sc->copy);
	for (size_t r = 0; r < nrows && st == WH_OK; r++) {
		if (rows[r]->partial)
			continue;
		if (!enc) {
			encode_row(&sc->copy, t, rows[r]);
		} else if (!encode_row_bin(&sc->copy, t, enc, rows[r])) {
			*unencodable = true;
			st = WH_RETRY;
			snprintf(err, errlen, "%s: a value without a binary form", what);
			break;
		}
		if (sc->copy.len >= COPY_PIECE || r + 1 == nrows) {
			if (PQputCopyData(conn, sc->copy.data, (int) sc->copy.len) != 1)
				st = wh_pg_error(conn, NULL, what, err, errlen);
			buf_reset(&sc->copy);
		}
	}
	if (st == WH_OK && enc)
		wh_bin_i16(&sc->copy, -1);  /* the binary trailer */
	if (st == WH_OK && sc->copy.len > 0 &&
	    PQputCopyData(conn, sc->copy.data, (int) sc->copy.len) != 1)
		st = wh_pg_error(conn, NULL, what, err, errlen);
	buf_reset(&sc->copy);
	return copy_end(conn, st, what, sqlstate, err, errlen);
}

/*
 * The direct path: COPY straight into the mirror inside a savepoint.
 * *done false (and WH_OK) when the COPY hit an existing key and was
 * rolled back: the caller merges instead.
 */
static wh_status_t
copy_direct(PGconn *conn, wh_table_t *t, wh_mrow_t *const *rows, size_t nrows,
	    wh_merge_scratch_t *sc, bool *done, char *err, size_t errlen)
{
	wh_status_t st;
	*done = false;
	/* COPY BINARY when every column has an encoder (warehouse_types.h): the
	 * server parses no text.  A value the encoders do not take rolls the
	 * savepoint back and sends the rows as text, for the server to judge. */
	wh_bin_t *enc = xcalloc(t->ncols ? t->ncols : 1, sizeof(*enc));
	bool bin = true, unencodable = false;
	for (size_t j = 0; j < t->ncols; j++)
		bin = (enc[j] = wh_bin_for_type(t->cols[j].type)) != WH_BIN_NONE && bin;
	const char *tc = getenv("STEWARD_WAREHOUSE_TEXT_COPY");
	if (tc && *tc && strcmp(tc, "0") != 0)
		bin = false;
	char msg[1024], state[6];
	PGresult *res = NULL;
	if ((st = wh_exec(conn, "SAVEPOINT steward_direct", "could not set a savepoint", err,
			  errlen)))
		goto out;
again:  /* the savepoint stays after ROLLBACK TO */
	buf_reset(&sc->sql);
	buf_printf(&sc->sql, "COPY %s (", t->mirror_qname);
	mirror_columns(&sc->sql, t);
	buf_append_str(&sc->sql, bin ? ") FROM STDIN (FORMAT binary)" : ") FROM STDIN");
	log_debug("warehouse", "direct copy into %s: COPY %s", t->mirror_qname,
		  bin ? "binary" : "text");
	st = copy_rows(conn, sc->sql.data, t, rows, nrows, bin ? enc : NULL, &unencodable, sc,
		       "could not copy into mirror table", state, msg, sizeof(msg));
	if (st == WH_OK) {
		*done = true;
		t->direct_backoff = 0;
		st = wh_exec(conn, "RELEASE SAVEPOINT steward_direct",
			     "could not release a savepoint", err, errlen);
		goto out;
	}
	if (bin && unencodable && PQstatus(conn) == CONNECTION_OK) {
		res = PQexec(conn, "ROLLBACK TO SAVEPOINT steward_direct");
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			st = wh_pg_error(conn, res, "could not roll back to a savepoint", err, errlen);
			goto out;
		}
		PQclear(res);
		res = NULL;
		bin = false;
		goto again;
	}
	if (PQstatus(conn) != CONNECTION_OK || strcmp(state, "23505") != 0) {
		snprintf(err, errlen, "%s", msg);
		goto out;
	}
	/* A key the warehouse already holds: merge this table from now on,
	 * trying the direct path again after a growing number of batches. */
	t->direct_backoff = t->direct_backoff ? t->direct_backoff * 2 : 1;
	if (t->direct_backoff > DIRECT_BACKOFF_MAX)
		t->direct_backoff = DIRECT_BACKOFF_MAX;
	t->direct_skip = t->direct_backoff;
	log_debug("warehouse", "direct copy into %s met an existing key: merging", t->mirror_qname);
	res = PQexec(conn, "ROLLBACK TO SAVEPOINT steward_direct");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		st = wh_pg_error(conn, res, "could not roll back to a savepoint", err, errlen);
	else
		st = WH_OK;
out:
	PQclear(res);
	free(enc);
	return st;
}

static wh_status_t
merge_staged(PGconn *conn, wh_table_t *t, wh_mrow_t *const *rows, size_t nrows,
	     size_t nbulk, size_t ndel, bool hard_delete, wh_merge_scratch_t *sc, char *err,
	     size_t errlen)
{
	wh_status_t st;
	buf_t *sql = &sc->sql;
	char stage[32];
	snprintf(stage, sizeof(stage), "_steward_stage_%u", t->id);
	/* One staging table per mirror for the session: creating one per
	 * batch wrote and vacuumed catalog rows at every commit.  Commits
	 * empty it; a rollback may drop it, and then the schema cache (and
	 * stage_ready) is invalidated too. */
	bool fresh = false;
	if (!t->stage_ready || t->stage_shape != t->mirror_shape) {
		buf_reset(sql);
		buf_printf(sql, "DROP TABLE IF EXISTS pg_temp.%s; CREATE TEMP TABLE %s (LIKE %s"
				" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
			   stage, stage, t->mirror_qname);
		if ((st = wh_exec(conn, sql->data, "could not create staging table", err, errlen)))
			return st;
		t->stage_ready = true;
		t->stage_shape = t->mirror_shape;
		fresh = true;
	}
	if (!fresh && t->stage_txn == sc->txn) {
		/* Already merged once in this transaction (a truncate came between). */
		buf_reset(sql);
		buf_printf(sql, "TRUNCATE %s", stage);
		if ((st = wh_exec(conn, sql->data, "could not empty staging table", err, errlen)))
			return st;
	}
	t->stage_txn = sc->txn;
	buf_reset(sql);
	buf_printf(sql, "COPY %s (", stage);
	mirror_columns(sql, t);
	buf_append_str(sql, ") FROM STDIN");
	bool unused = false;
	if ((st = copy_rows(conn, sql->data, t, rows, nrows, NULL, &unused, sc,
			    "could not copy into staging table", NULL, err, errlen)))
		return st;
	if (hard_delete && ndel > 0) {
		buf_reset(sql);
		buf_printf(sql, "DELETE FROM %s t USING %s s WHERE s._steward_deleted",
			   t->mirror_qname, stage);
		for (size_t k = 0; k < t->nkey; k++)
			buf_printf(sql, " AND t.%s = s.%s", t->cols[t->key[k]].ident,
				   t->cols[t->key[k]].ident);
		if ((st = wh_exec(conn, sql->data, "could not delete rows", err, errlen)))
			return st;
	}
	if (hard_delete && nbulk == ndel)
		return WH_OK;
	buf_reset(sql);
	buf_printf(sql, "INSERT INTO %s AS t (", t->mirror_qname);
	mirror_columns(sql, t);
	buf_append_str(sql, ") SELECT ");
	mirror_columns(sql, t);
	buf_printf(sql, " FROM %s%s ON CONFLICT (", stage,
		   hard_delete ? " WHERE NOT _steward_deleted" : "");
	for (size_t k = 0; k < t->nkey; k++)
		buf_printf(sql, "%s%s", k ? ", " : "", t->cols[t->key[k]].ident);
	buf_append_str(sql, ") DO UPDATE SET ");
	for (size_t j = 0; j < t->ncols; j++) {
		const char *id = t->cols[j].ident;
		if (is_key(t, j))
			continue;
		/* A soft delete keeps the row's last values. */
		if (ndel > 0 && !hard_delete)
			buf_printf(sql, "%s = CASE WHEN EXCLUDED._steward_deleted THEN t.%s"
					" ELSE EXCLUDED.%s END, ", id, id, id);
		else
			buf_printf(sql, "%s = EXCLUDED.%s, ", id, id);
	}
	buf_append_str(sql, "_steward_deleted = EXCLUDED._steward_deleted,"
			    " _steward_deleted_at = EXCLUDED._steward_deleted_at,"
			    " _steward_position = EXCLUDED._steward_position,"
			    " _steward_commit_ts = EXCLUDED._steward_commit_ts");
	return wh_exec(conn, sql->data, "could not merge into mirror table", err, errlen);
}

wh_status_t
wh_mirror_flush(PGconn *conn, wh_table_t *t, wh_mrow_t *const *rows, size_t nrows,
		bool hard_delete, wh_merge_scratch_t *sc, char *err, size_t errlen)
{
	wh_status_t st = WH_OK;
	size_t ndel = 0, nbulk = 0;
	for (size_t r = 0; r < nrows; r++) {
		if (!rows[r]->partial) {
			nbulk++;
			ndel += rows[r]->deleted;
		}
	}
	if (nbulk > 0) {
		/* Direct only when no row can meet a stored key by design: every
		 * key is new in this batch (a hard delete must reach the table). */
		bool direct = !(hard_delete && ndel > 0);
		for (size_t r = 0; r < nrows && direct; r++)
			direct = rows[r]->partial || rows[r]->fresh;
		if (direct && t->direct_skip > 0) {
			t->direct_skip--;
			direct = false;
		}
		bool done = false;
		if (direct && (st = copy_direct(conn, t, rows, nrows, sc, &done, err, errlen)) != WH_OK)
			return st;
		if (!done && (st = merge_staged(conn, t, rows, nrows, nbulk, ndel, hard_delete, sc,
						err, errlen)) != WH_OK)
			return st;
	}
	for (size_t r = 0; r < nrows && st == WH_OK; r++)
		if (rows[r]->partial)
			st = upsert_partial(conn, t, rows[r], &sc->sql, err, errlen);
	return st;
}
