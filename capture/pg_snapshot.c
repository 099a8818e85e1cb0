/*
 * pg_snapshot.c — initial snapshot by COPY in the slot's exported
 * snapshot; see pg_snapshot.h.
 */
#include "pg_snapshot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "xalloc.h"

#define PROGRESS_INTERVAL_MS 5000

/* The published tables, each with its columns (in COPY order) and key flags. */
typedef struct snap_table {
	pgcap_relation_t rel;
	char relkind;
	char *rowfilter;  /* NULL = none */
} snap_table_t;

typedef struct snap_state {
	snap_table_t *tables;
	size_t ntables;
} snap_state_t;

static void
snap_state_free(snap_state_t *s)
{
	for (size_t i = 0; i < s->ntables; i++) {
		pgcap_relation_t *r = &s->tables[i].rel;
		for (size_t k = 0; k < r->ncols; k++)
			free(r->cols[k].name);
		free(r->cols);
		free(r->schema);
		free(r->table);
		free(s->tables[i].rowfilter);
	}
	free(s->tables);
}

static pgcap_status_t
exec_ok(pgcap_agent_t *ag, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(ag->query, sql);
	pgcap_status_t st = PGCAP_OK;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgcap_error(ag->dsn, what, PQerrorMessage(ag->query), err, errlen);
		st = PQstatus(ag->query) == CONNECTION_OK ? PGCAP_FAILURE : PGCAP_RETRY;
	}
	PQclear(res);
	return st;
}

/* Columns of one table: COPY order, type names, replica identity flags. */
static pgcap_status_t
load_columns(pgcap_agent_t *ag, snap_table_t *t, const char *oid, const char *attnames,
	     char *err, size_t errlen)
{
	const char *params[2] = {oid, attnames};
	pgcap_status_t st = PGCAP_OK;
	PGresult *res = PQexecParams(
		ag->query,
		"SELECT a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod), "
		"  c.relreplident = 'f' OR EXISTS (SELECT 1 FROM pg_index i "
		"    WHERE i.indrelid = c.oid AND a.attnum = ANY(i.indkey) AND "
		"    ((c.relreplident = 'd' AND i.indisprimary) OR "
		"     (c.relreplident = 'i' AND i.indisreplident))) "
		"FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
		"WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped "
		"  AND a.attgenerated = '' AND ($2::name[] IS NULL OR a.attname = ANY($2::name[])) "
		"ORDER BY a.attnum",
		2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char what[300];
		snprintf(what, sizeof(what), "could not read the columns of table \"%s.%s\"",
			 t->rel.schema, t->rel.table);
		pgcap_error(ag->dsn, what, PQerrorMessage(ag->query), err, errlen);
		st = PQstatus(ag->query) == CONNECTION_OK ? PGCAP_FAILURE : PGCAP_RETRY;
		goto out;
	}
	t->rel.ncols = (size_t) PQntuples(res);
	t->rel.cols = xcalloc(t->rel.ncols + 1, sizeof(pgcap_column_t));
	for (size_t i = 0; i < t->rel.ncols; i++) {
		pgcap_column_t *c = &t->rel.cols[i];
		c->name = xstrdup(PQgetvalue(res, (int) i, 0));
		c->type_oid = (uint32_t) strtoul(PQgetvalue(res, (int) i, 1), NULL, 10);
		c->typmod = atoi(PQgetvalue(res, (int) i, 2));
		c->type_name = pgcap_schema_type_remember(ag->schema, c->type_oid, c->typmod,
							  PQgetvalue(res, (int) i, 3));
		c->key = PQgetvalue(res, (int) i, 4)[0] == 't';
	}
out:
	PQclear(res);
	return st;
}

static pgcap_status_t
load_tables(pgcap_agent_t *ag, snap_state_t *s, char *err, size_t errlen)
{
	const char *params[1] = {ag->publication};
	pgcap_status_t st = PGCAP_OK;
	/* Column lists and row filters exist from PostgreSQL 15 on. */
	const char *sql =
		ag->server_version >= 150000
			? "SELECT c.oid, pt.schemaname, pt.tablename, c.relreplident, c.relkind, "
			  "pt.attnames, pt.rowfilter FROM pg_publication_tables pt "
			  "JOIN pg_namespace n ON n.nspname = pt.schemaname "
			  "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
			  "WHERE pt.pubname = $1 ORDER BY 2, 3"
			: "SELECT c.oid, pt.schemaname, pt.tablename, c.relreplident, c.relkind, "
			  "NULL, NULL FROM pg_publication_tables pt "
			  "JOIN pg_namespace n ON n.nspname = pt.schemaname "
			  "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
			  "WHERE pt.pubname = $1 ORDER BY 2, 3";
	PGresult *res = PQexecParams(ag->query, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char what[200];
		snprintf(what, sizeof(what), "could not list the tables of publication \"%s\"",
			 ag->publication);
		pgcap_error(ag->dsn, what, PQerrorMessage(ag->query), err, errlen);
		st = PQstatus(ag->query) == CONNECTION_OK ? PGCAP_FAILURE : PGCAP_RETRY;
		goto out;
	}
	s->ntables = (size_t) PQntuples(res);
	s->tables = xcalloc(s->ntables + 1, sizeof(*s->tables));
	for (size_t i = 0; i < s->ntables && st == PGCAP_OK; i++) {
		snap_table_t *t = &s->tables[i];
		int row = (int) i;
		t->rel.relid = (uint32_t) strtoul(PQgetvalue(res, row, 0), NULL, 10);
		t->rel.schema = xstrdup(PQgetvalue(res, row, 1));
		t->rel.table = xstrdup(PQgetvalue(res, row, 2));
		t->rel.replident = PQgetvalue(res, row, 3)[0];
		t->relkind = PQgetvalue(res, row, 4)[0];
		if (!PQgetisnull(res, row, 6))
			t->rowfilter = xstrdup(PQgetvalue(res, row, 6));
		st = load_columns(ag, t, PQgetvalue(res, row, 0),
				  PQgetisnull(res, row, 5) ? NULL : PQgetvalue(res, row, 5), err,
				  errlen);
	}
out:
	PQclear(res);
	return st;
}

/* COPY statement for one table, identifiers quoted by libpq. */
static char *
copy_sql(pgcap_agent_t *ag, const snap_table_t *t)
{
	buf_t b = BUF_INIT;
	char *nsp = PQescapeIdentifier(ag->query, t->rel.schema, strlen(t->rel.schema));
	char *rel = PQescapeIdentifier(ag->query, t->rel.table, strlen(t->rel.table));
	bool plain = t->rowfilter == NULL && t->relkind == 'r';
	buf_append_str(&b, plain ? "COPY " : "COPY (SELECT ");
	if (plain)
		buf_printf(&b, "%s.%s (", nsp, rel);
	for (size_t i = 0; i < t->rel.ncols; i++) {
		char *col = PQescapeIdentifier(ag->query, t->rel.cols[i].name,
					       strlen(t->rel.cols[i].name));
		buf_printf(&b, "%s%s", i ? ", " : "", col);
		PQfreemem(col);
	}
	if (plain)
		buf_append_str(&b, ") TO STDOUT");
	else if (t->rowfilter)
		buf_printf(&b, " FROM ONLY %s.%s WHERE %s) TO STDOUT", nsp, rel, t->rowfilter);
	else
		buf_printf(&b, " FROM ONLY %s.%s) TO STDOUT", nsp, rel);
	PQfreemem(nsp);
	PQfreemem(rel);
	return buf_steal(&b);
}

typedef struct progress {
	size_t tables_done, tables_total;
	uint64_t rows;
	int64_t started_ms, last_log_ms;
	uint64_t last_rows;
} progress_t;

static void
progress_log(progress_t *p, bool final)
{
	int64_t now = pgcap_monotonic_ms();
	if (!final && now - p->last_log_ms < PROGRESS_INTERVAL_MS)
		return;
	double secs = (double) (now - p->started_ms) / 1000.0;
	double rate = secs > 0 ? (double) p->rows / secs : 0;
	log_info("capture", "snapshot %s: tables %zu/%zu, rows %" PRIu64 ", %.0f rows/s",
		 final ? "complete" : "progress", p->tables_done, p->tables_total, p->rows, rate);
	p->last_log_ms = now;
	p->last_rows = p->rows;
}

static pgcap_status_t
copy_table(pgcap_agent_t *ag, const snap_table_t *t, uint64_t consistent_lsn, int64_t ts_us,
	   uint64_t *row, progress_t *prog, char *err, size_t errlen)
{
	pgcap_status_t st = PGCAP_OK;
	char *sql = copy_sql(ag, t);
	char *line = NULL;
	pgcopy_field_t *fields = xcalloc(t->rel.ncols + 1, sizeof(*fields));
	PGresult *res = PQexec(ag->query, sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		char what[300];
		snprintf(what, sizeof(what), "could not copy table \"%s.%s\"", t->rel.schema,
			 t->rel.table);
		pgcap_error(ag->dsn, what, PQerrorMessage(ag->query), err, errlen);
		st = PQstatus(ag->query) == CONNECTION_OK ? PGCAP_FAILURE : PGCAP_RETRY;
		goto out;
	}
	PQclear(res);
	res = NULL;
	for (;;) {
		int n = PQgetCopyData(ag->query, &line, 0);
		if (n == -1)
			break;
		if (n < 0) {
			char what[300];
			snprintf(what, sizeof(what), "could not copy table \"%s.%s\"", t->rel.schema,
				 t->rel.table);
			pgcap_error(ag->dsn, what, PQerrorMessage(ag->query), err, errlen);
			st = PGCAP_RETRY;
			goto out;
		}
		if (!pgcopy_parse_row(line, (size_t) n, ag->arena, fields, t->rel.ncols, err, errlen)) {
			st = PGCAP_DATAERR;
			goto out;
		}
		Steward__Change c;
		(*row)++;
		pgcap_record_snapshot(&c, ag->arena, &ag->source, &t->rel, fields, consistent_lsn,
				      *row, ts_us);
		st = pgcap_append(ag, &c, err, errlen);
		if (st != PGCAP_OK)
			goto out;
		PQfreemem(line);
		line = NULL;
		prog->rows++;
		if ((prog->rows & 1023) == 0) {
			progress_log(prog, false);
			if (pgcap_stop_requested()) {
				st = PGCAP_STOPPED;
				goto out;
			}
		}
	}
	res = PQgetResult(ag->query);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		char what[300];
		snprintf(what, sizeof(what), "could not copy table \"%s.%s\"", t->rel.schema,
			 t->rel.table);
		pgcap_error(ag->dsn, what, PQerrorMessage(ag->query), err, errlen);
		st = PQstatus(ag->query) == CONNECTION_OK ? PGCAP_FAILURE : PGCAP_RETRY;
	}
out:
	if (line)
		PQfreemem(line);
	PQclear(res);
	/* Drain anything left of an aborted COPY so the connection is reusable. */
	if (st != PGCAP_OK)
		while ((res = PQgetResult(ag->query)) != NULL)
			PQclear(res);
	free(fields);
	free(sql);
	return st;
}

pgcap_status_t
pgcap_snapshot_run(pgcap_agent_t *ag, const char *snapshot_name, uint64_t consistent_lsn,
		   bool reset_first, char *err, size_t errlen)
{
	snap_state_t s = {NULL, 0};
	char *set_sql = NULL;
	bool in_txn = false;
	uint64_t row = 0;
	int64_t ts_us = pgcap_now_us();
	progress_t prog = {0};
	pgcap_status_t st;

	st = exec_ok(ag, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
		     "could not start the snapshot transaction", err, errlen);
	if (st != PGCAP_OK)
		goto out;
	in_txn = true;
	char *lit = PQescapeLiteral(ag->query, snapshot_name, strlen(snapshot_name));
	set_sql = xasprintf("SET TRANSACTION SNAPSHOT %s", lit ? lit : "''");
	if (lit)
		PQfreemem(lit);
	st = exec_ok(ag, set_sql, "could not import the slot's snapshot", err, errlen);
	if (st != PGCAP_OK)
		goto out;
	st = load_tables(ag, &s, err, errlen);
	if (st != PGCAP_OK)
		goto out;
	log_info("capture", "snapshot of %zu tables of publication \"%s\" at %X/%X", s.ntables,
		 ag->publication, PGCAP_LSN_ARGS(consistent_lsn));
	if (reset_first && s.ntables) {
		/* The earlier, interrupted snapshot is superseded: say so in the log. */
		const pgcap_relation_t **rels = xcalloc(s.ntables, sizeof(*rels));
		for (size_t i = 0; i < s.ntables; i++)
			rels[i] = &s.tables[i].rel;
		Steward__Change c;
		pgcap_record_snapshot_reset(&c, ag->arena, &ag->source, rels, s.ntables,
					    consistent_lsn, ts_us);
		st = pgcap_append(ag, &c, err, errlen);
		free(rels);
		if (st != PGCAP_OK)
			goto out;
	}
	prog.tables_total = s.ntables;
	prog.started_ms = prog.last_log_ms = pgcap_monotonic_ms();
	for (size_t i = 0; i < s.ntables; i++) {
		st = copy_table(ag, &s.tables[i], consistent_lsn, ts_us, &row, &prog, err, errlen);
		if (st != PGCAP_OK)
			goto out;
		prog.tables_done++;
	}
	st = exec_ok(ag, "COMMIT", "could not end the snapshot transaction", err, errlen);
	in_txn = false;
	if (st != PGCAP_OK)
		goto out;
	if (clog_writer_flush(ag->log, err, errlen) != CLOG_OK) {
		st = PGCAP_IOERR;
		goto out;
	}
	progress_log(&prog, true);
out:
	if (in_txn && PQstatus(ag->query) == CONNECTION_OK) {
		PGresult *res = PQexec(ag->query, "ROLLBACK");
		PQclear(res);
	}
	free(set_sql);
	snap_state_free(&s);
	return st;
}
