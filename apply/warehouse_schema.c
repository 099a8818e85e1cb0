/*
 * warehouse_schema.c — warehouse tables, schema evolution and the state
 * table; see warehouse_schema.h.
 */
#include "warehouse_schema.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "warehouse_types.h"
#include "xalloc.h"

struct wh_schema {
	char *schema;        /* raw name */
	char *qschema;       /* quoted, set by bootstrap */
	unsigned modes;
	bool scd2;
	wh_table_t **tables;
	size_t ntables;
	wh_table_t *last;    /* most recent lookup (fast path) */
	wh_schema_sql_hook_t before_sql;  /* may be NULL */
	void *before_sql_arg;
};

void
wh_schema_set_sql_hook(wh_schema_t *s, wh_schema_sql_hook_t fn, void *arg)
{
	s->before_sql = fn;
	s->before_sql_arg = arg;
}

/* Every statement of a batch in progress goes through here first. */
static wh_status_t
before_sql(wh_schema_t *s, PGconn *conn, char *err, size_t errlen)
{
	return s->before_sql ? s->before_sql(s->before_sql_arg, conn, err, errlen) : WH_OK;
}

wh_schema_t *
wh_schema_create(const wh_schema_options_t *opts)
{
	wh_schema_t *s = xcalloc(1, sizeof(*s));
	s->schema = xstrdup(opts->schema);
	s->modes = opts->modes;
	s->scd2 = opts->scd2;
	return s;
}

/*
 * The column mapping of the last change of a table whose names and types
 * are pointer-stable (wh_change_t.stable_names): a change with the same
 * pointers, unchanged flags and image sizes maps the same way, so the
 * per-value name and type comparisons are skipped.  Column indexes stay
 * valid as columns are only ever appended, but any added column voids the
 * layout (a value that had none may have one now); a widened type arrives
 * as a different type string, so it misses.
 */
typedef struct wh_layout {
	size_t nafter, nbefore, cap;
	const char **name, **type;   /* after values, then before values */
	unsigned char *unchanged;
	size_t *mirror, *history;    /* the mappings, same order */
	bool has_mirror;             /* the mirror map was on */
	size_t ncols, nhcols;        /* the table's columns then: a value unknown then
					(an unchanged one) may have a column now */
} wh_layout_t;

static void
layout_free(wh_layout_t *l)
{
	if (!l)
		return;
	free(l->name);
	free(l->type);
	free(l->unchanged);
	free(l->mirror);
	free(l->history);
	free(l);
}

static bool
layout_match(const wh_layout_t *l, const wh_table_t *t, const wh_change_t *c)
{
	if (!l || l->nafter != c->nafter || l->nbefore != c->nbefore ||
	    l->has_mirror != t->has_mirror || l->ncols != t->ncols || l->nhcols != t->nhcols)
		return false;
	for (size_t i = 0; i < c->nafter; i++)
		if (l->name[i] != c->after[i].name || l->type[i] != c->after[i].type ||
		    l->unchanged[i] != c->after[i].unchanged)
			return false;
	for (size_t i = 0, k = c->nafter; i < c->nbefore; i++, k++)
		if (l->name[k] != c->before[i].name || l->type[k] != c->before[i].type ||
		    l->unchanged[k] != c->before[i].unchanged)
			return false;
	return true;
}

static void
layout_store(wh_table_t *t, const wh_change_t *c, const wh_colmap_t *mm, const wh_colmap_t *hm)
{
	size_t n = c->nafter + c->nbefore;
	wh_layout_t *l = t->layout;
	if (!l)
		l = t->layout = xcalloc(1, sizeof(*l));
	if (n > l->cap) {
		l->cap = n;
		l->name = xrealloc(l->name, n * sizeof(*l->name));
		l->type = xrealloc(l->type, n * sizeof(*l->type));
		l->unchanged = xrealloc(l->unchanged, n);
		l->mirror = xrealloc(l->mirror, n * sizeof(*l->mirror));
		l->history = xrealloc(l->history, n * sizeof(*l->history));
	}
	l->nafter = c->nafter;
	l->nbefore = c->nbefore;
	l->has_mirror = t->has_mirror;
	l->ncols = t->ncols;
	l->nhcols = t->nhcols;
	for (size_t i = 0; i < n; i++) {
		bool a = i < c->nafter;
		const wh_value_t *v = a ? &c->after[i] : &c->before[i - c->nafter];
		size_t j = a ? i : i - c->nafter;
		l->name[i] = v->name;
		l->type[i] = v->type;
		l->unchanged[i] = v->unchanged;
		l->mirror[i] = a ? mm->after[j] : mm->before[j];
		l->history[i] = a ? hm->after[j] : hm->before[j];
	}
}

static void
layout_apply(const wh_layout_t *l, wh_colmap_t *mm, wh_colmap_t *hm)
{
	memcpy(mm->after, l->mirror, l->nafter * sizeof(*l->mirror));
	memcpy(mm->before, l->mirror + l->nafter, l->nbefore * sizeof(*l->mirror));
	memcpy(hm->after, l->history, l->nafter * sizeof(*l->history));
	memcpy(hm->before, l->history + l->nafter, l->nbefore * sizeof(*l->history));
}

static void
table_free(wh_table_t *t)
{
	if (!t)
		return;
	layout_free(t->layout);
	for (size_t i = 0; i < t->ncols; i++) {
		free(t->cols[i].name);
		free(t->cols[i].ident);
		free(t->cols[i].type);
		free(t->cols[i].seen_type);
	}
	free(t->cols);
	free(t->key);
	free(t->hint);
	for (size_t i = 0; i < t->nhcols; i++) {
		free(t->hcols[i].name);
		free(t->hcols[i].ident);
		free(t->hcols[i].type);
		free(t->hcols[i].seen_type);
	}
	free(t->hcols);
	free(t->hhint);
	free(t->hkey);
	free(t->base);
	free(t->mirror_qname);
	free(t->history_qname);
	free(t);
}

void
wh_schema_invalidate(wh_schema_t *s)
{
	for (size_t i = 0; i < s->ntables; i++)
		table_free(s->tables[i]);
	free(s->tables);
	s->tables = NULL;
	s->ntables = 0;
	s->last = NULL;
}

void
wh_schema_free(wh_schema_t *s)
{
	if (!s)
		return;
	wh_schema_invalidate(s);
	free(s->schema);
	free(s->qschema);
	free(s);
}

const char *
wh_schema_qname(const wh_schema_t *s)
{
	return s->qschema;
}

char *
wh_ident(PGconn *conn, const char *name)
{
	char *q = PQescapeIdentifier(conn, name, strlen(name));
	if (!q)
		return NULL;
	char *r = xstrdup(q);
	PQfreemem(q);
	return r;
}

static void
trim_newline(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

wh_status_t
wh_pg_error(PGconn *conn, const PGresult *res, const char *what, char *err, size_t errlen)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	wh_status_t st = WH_FATAL;
	if (PQstatus(conn) != CONNECTION_OK || !state)
		st = WH_RETRY;
	else if (strncmp(state, "08", 2) == 0 || strncmp(state, "40", 2) == 0 ||
		 strncmp(state, "53", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
		 strcmp(state, "55P03") == 0)
		st = WH_RETRY;
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
									     : PQerrorMessage(conn));
	trim_newline(msg);
	snprintf(err, errlen, "%s: %s (%s)", what, *msg ? msg : "unknown error",
		 st == WH_RETRY ? "retriable" : "not retriable");
	return st;
}

wh_status_t
wh_exec(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);
	wh_status_t st = WH_OK;
	ExecStatusType es = PQresultStatus(res);
	if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK)
		st = wh_pg_error(conn, res, what, err, errlen);
	PQclear(res);
	return st;
}

wh_status_t
wh_schema_bootstrap(PGconn *conn, wh_schema_t *s, char *err, size_t errlen)
{
	wh_status_t st = WH_OK;
	PGresult *res = NULL;
	buf_t sql = BUF_INIT;
	char *lockname = xasprintf("steward apply %s", s->schema);

	free(s->qschema);
	s->qschema = wh_ident(conn, s->schema);
	if (!s->qschema) {
		snprintf(err, errlen, "invalid warehouse schema name \"%s\" (not retriable)", s->schema);
		st = WH_FATAL;
		goto out;
	}
	const char *params[1] = {lockname};
	res = PQexecParams(conn, "SELECT pg_try_advisory_lock(hashtext($1))", 1, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		st = wh_pg_error(conn, res, "could not take the warehouse apply lock", err, errlen);
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		snprintf(err, errlen,
			 "another steward apply is writing to warehouse schema \"%s\" (retriable)",
			 s->schema);
		st = WH_RETRY;
		goto out;
	}
	buf_printf(&sql,
		   "CREATE SCHEMA IF NOT EXISTS %s;"
		   "CREATE TABLE IF NOT EXISTS %s.%s ("
		   " source text PRIMARY KEY,"
		   " position bytea NOT NULL,"
		   " position_text text,"
		   " log_dir text,"
		   " changes bigint NOT NULL DEFAULT 0,"
		   " applied_at timestamptz NOT NULL DEFAULT now())",
		   s->qschema, s->qschema, WH_STATE_TABLE);
	st = wh_exec(conn, sql.data, "could not create the warehouse state table", err, errlen);
out:
	PQclear(res);
	buf_free(&sql);
	free(lockname);
	return st;
}

wh_status_t
wh_state_load(PGconn *conn, wh_schema_t *s, const char *source, position_t *pos,
	      bool *found, char *err, size_t errlen)
{
	*found = false;
	pos->len = 0;
	wh_status_t st = before_sql(s, conn, err, errlen);
	if (st != WH_OK)
		return st;
	char *sql = xasprintf("SELECT position FROM %s.%s WHERE source = $1", s->qschema,
			      WH_STATE_TABLE);
	const char *params[1] = {source};
	/* Binary result: the position's raw bytes. */
	PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 1);
	*found = false;
	pos->len = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		st = wh_pg_error(conn, res, "could not read the applied position", err, errlen);
		goto out;
	}
	if (PQntuples(res) == 1) {
		if (!position_set(pos, (const uint8_t *) PQgetvalue(res, 0, 0),
				  (size_t) PQgetlength(res, 0, 0))) {
			snprintf(err, errlen, "stored position of source \"%s\" is too long (not retriable)",
				 source);
			st = WH_FATAL;
			goto out;
		}
		*found = true;
	}
out:
	PQclear(res);
	free(sql);
	return st;
}

/* ---- table cache ---- */

static wh_table_t *
find_table(wh_schema_t *s, const char *base)
{
	if (s->last && strcmp(s->last->base, base) == 0)
		return s->last;
	for (size_t i = 0; i < s->ntables; i++)
		if (strcmp(s->tables[i]->base, base) == 0)
			return s->last = s->tables[i];
	return NULL;
}

static size_t
colset_add(wh_column_t **cols, size_t *ncols, PGconn *conn, const char *name, const char *type)
{
	*cols = xrealloc(*cols, (*ncols + 1) * sizeof(**cols));
	wh_column_t *c = &(*cols)[*ncols];
	c->name = xstrdup(name);
	c->ident = wh_ident(conn, name);
	if (!c->ident)
		c->ident = xstrdup("\"?\"");  /* unreachable for valid UTF-8; DDL would fail */
	c->type = xstrdup(type);
	c->seen_type = xstrdup(type);
	return (*ncols)++;
}

static size_t
add_column(wh_table_t *t, PGconn *conn, const char *name, const char *type)
{
	return colset_add(&t->cols, &t->ncols, conn, name, type);
}

/* Read a table's columns and key from the catalog into a new cache entry. */
static wh_status_t
load_table(PGconn *conn, wh_schema_t *s, const char *base, wh_table_t **out, char *err,
	   size_t errlen)
{
	wh_status_t st = WH_OK;
	PGresult *res = NULL;
	char hist[WH_NAME_MAX + 1];
	wh_table_t *t = xcalloc(1, sizeof(*t));
	t->base = xstrdup(base);
	wh_name_fit(base, "__history", hist);
	char *qm = wh_ident(conn, base), *qh = wh_ident(conn, hist);
	if (!qm || !qh) {
		snprintf(err, errlen, "invalid warehouse table name \"%s\" (not retriable)", base);
		st = WH_FATAL;
		free(qm);
		free(qh);
		goto out;
	}
	t->mirror_qname = xasprintf("%s.%s", s->qschema, qm);
	t->history_qname = xasprintf("%s.%s", s->qschema, qh);
	free(qm);
	free(qh);

	const char *params[2] = {s->schema, base};
	res = PQexecParams(conn,
			   "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
			   "       coalesce(a.attnum = ANY(i.indkey), false)"
			   "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
			   "  JOIN pg_attribute a ON a.attrelid = c.oid"
			   "  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary"
			   " WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0"
			   "   AND NOT a.attisdropped ORDER BY a.attnum",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		st = wh_pg_error(conn, res, "could not read warehouse table columns", err, errlen);
		goto out;
	}
	t->has_mirror = PQntuples(res) > 0;
	for (int r = 0; r < PQntuples(res); r++) {
		const char *name = PQgetvalue(res, r, 0);
		if (strncmp(name, "_steward_", 9) == 0)
			continue;
		size_t i = add_column(t, conn, name, PQgetvalue(res, r, 1));
		if (strcmp(PQgetvalue(res, r, 2), "t") == 0) {
			t->key = xrealloc(t->key, (t->nkey + 1) * sizeof(*t->key));
			t->key[t->nkey++] = i;
		}
	}
	PQclear(res);
	params[1] = hist;
	res = PQexecParams(conn,
			   "SELECT a.attname, format_type(a.atttypid, a.atttypmod)"
			   "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
			   "  JOIN pg_attribute a ON a.attrelid = c.oid"
			   " WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0"
			   "   AND NOT a.attisdropped ORDER BY a.attnum",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		st = wh_pg_error(conn, res, "could not read history table columns", err, errlen);
		goto out;
	}
	t->has_history = PQntuples(res) > 0;
	/* A history table of the pre-typed shape (op, key, before, after …)
	 * has no _steward_op: it is refused, never written in a mix. */
	t->history_old = t->has_history;
	for (int r = 0; r < PQntuples(res); r++) {
		const char *name = PQgetvalue(res, r, 0);
		if (strcmp(name, "_steward_op") == 0)
			t->history_old = false;
		if (strcmp(name, "_steward_position_text") == 0)
			t->history_ptext = true;
		if (strncmp(name, "_steward_", 9) == 0)
			continue;
		colset_add(&t->hcols, &t->nhcols, conn, name, PQgetvalue(res, r, 1));
	}
out:
	PQclear(res);
	if (st != WH_OK) {
		table_free(t);
		return st;
	}
	s->tables = xrealloc(s->tables, (s->ntables + 1) * sizeof(*s->tables));
	t->id = (unsigned) s->ntables;
	s->tables[s->ntables++] = t;
	s->last = t;
	*out = t;
	return WH_OK;
}

wh_status_t
wh_schema_lookup(PGconn *conn, wh_schema_t *s, const char *base, wh_table_t **out,
		 char *err, size_t errlen)
{
	*out = find_table(s, base);
	if (*out)
		return WH_OK;
	wh_status_t st = before_sql(s, conn, err, errlen);
	if (st != WH_OK)
		return st;
	st = load_table(conn, s, base, out, err, errlen);
	if (st == WH_OK && !(*out)->has_mirror && !(*out)->has_history)
		*out = NULL;
	return st;
}

static const wh_value_t *
find_value(const wh_change_t *c, const char *name)
{
	for (size_t i = 0; i < c->nafter; i++)
		if (strcmp(c->after[i].name, name) == 0)
			return &c->after[i];
	for (size_t i = 0; i < c->nbefore; i++)
		if (strcmp(c->before[i].name, name) == 0)
			return &c->before[i];
	return NULL;
}

static wh_status_t
create_mirror(PGconn *conn, wh_table_t *t, const wh_change_t *c, char *err, size_t errlen)
{
	buf_t sql = BUF_INIT;
	wh_status_t st = WH_OK;
	/* Columns: the key first, then every other column of the images. */
	for (size_t k = 0; k < c->nkey; k++) {
		const wh_value_t *v = find_value(c, c->key[k]);
		add_column(t, conn, c->key[k], v && v->type ? v->type : "text");
		t->key = xrealloc(t->key, (t->nkey + 1) * sizeof(*t->key));
		t->key[t->nkey++] = t->ncols - 1;
	}
	const wh_value_t *img = c->nafter ? c->after : c->before;
	size_t nimg = c->nafter ? c->nafter : c->nbefore;
	for (size_t i = 0; i < nimg; i++) {
		bool known = false;
		for (size_t j = 0; j < t->ncols && !known; j++)
			known = strcmp(t->cols[j].name, img[i].name) == 0;
		if (!known)
			add_column(t, conn, img[i].name, img[i].type ? img[i].type : "text");
	}
	buf_printf(&sql, "CREATE TABLE IF NOT EXISTS %s (", t->mirror_qname);
	for (size_t j = 0; j < t->ncols; j++)
		buf_printf(&sql, "%s %s, ", t->cols[j].ident, t->cols[j].type);
	buf_append_str(&sql, "_steward_deleted boolean NOT NULL DEFAULT false,"
			     " _steward_deleted_at timestamptz,"
			     " _steward_position text,"
			     " _steward_commit_ts timestamptz,"
			     " PRIMARY KEY (");
	for (size_t k = 0; k < t->nkey; k++)
		buf_printf(&sql, "%s%s", k ? ", " : "", t->cols[t->key[k]].ident);
	buf_append_str(&sql, "))");
	st = wh_exec(conn, sql.data, "could not create mirror table", err, errlen);
	if (st == WH_OK) {
		t->has_mirror = true;
		log_info("warehouse", "created mirror table %s", t->mirror_qname);
	}
	buf_free(&sql);
	return st;
}

wh_status_t
wh_schema_history_check(const wh_schema_t *s, const wh_table_t *t, char *err, size_t errlen)
{
	if (!(s->modes & WH_MODE_HISTORY) || !t->history_old)
		return WH_OK;
	snprintf(err, errlen,
		 "history table %s has the shape of an earlier steward version (op, key, before,"
		 " after columns) and cannot take typed history rows; rename it (ALTER TABLE %s"
		 " RENAME TO …) or drop it, then run apply again — see \"History tables of earlier"
		 " versions\" in docs/warehouse.md (not retriable)",
		 t->history_qname, t->history_qname);
	return WH_SCHEMA;
}

/*
 * The history table: _steward_ metadata columns, then the source's columns
 * typed as in the mirror.  The correlation id (source:position text, the
 * readable form of the position) is sent by apply: a STORED generated
 * column makes the server evaluate it and form every tuple twice, and a
 * separate position text column is one more value per row to parse and
 * store; together they cost the server about a tenth of its time per row
 * (docs/warehouse.md).  _steward_before is json, not jsonb: json is only
 * validated on input, jsonb parsed and rebuilt (docs/benchmarks.md).
 */
static wh_status_t
ensure_history(PGconn *conn, wh_schema_t *s, wh_table_t *t, const wh_change_t *c, char *err,
	       size_t errlen)
{
	buf_t sql = BUF_INIT;
	wh_status_t st = WH_OK;
	if (!t->has_history) {
		for (size_t k = 0; k < c->nkey; k++) {
			const wh_value_t *v = find_value(c, c->key[k]);
			colset_add(&t->hcols, &t->nhcols, conn, c->key[k],
				   v && v->type ? v->type : "text");
		}
		const wh_value_t *img = c->nafter ? c->after : c->before;
		size_t nimg = c->nafter ? c->nafter : c->nbefore;
		for (size_t i = 0; i < nimg; i++) {
			bool known = img[i].unchanged;
			for (size_t j = 0; j < t->nhcols && !known; j++)
				known = strcmp(t->hcols[j].name, img[i].name) == 0;
			if (!known)
				colset_add(&t->hcols, &t->nhcols, conn, img[i].name,
					   img[i].type ? img[i].type : "text");
		}
		buf_printf(&sql,
			   "CREATE TABLE IF NOT EXISTS %s ("
			   " _steward_op text NOT NULL,"
			   " _steward_source text NOT NULL,"
			   " _steward_position bytea NOT NULL,"
			   " _steward_commit_ts timestamptz,"
			   " _steward_txid text,"
			   " _steward_correlation_id text NOT NULL,"
			   " _steward_before json,"
			   " _steward_unchanged text[]",
			   t->history_qname);
		for (size_t j = 0; j < t->nhcols; j++)
			buf_printf(&sql, ", %s %s", t->hcols[j].ident, t->hcols[j].type);
		buf_append_str(&sql, ")");
		if ((st = wh_exec(conn, sql.data, "could not create history table", err, errlen)))
			goto out;
		t->has_history = true;
		log_info("warehouse", "created history table %s", t->history_qname);
	}
	if (s->scd2) {
		buf_reset(&sql);
		buf_printf(&sql,
			   "ALTER TABLE %s ADD COLUMN IF NOT EXISTS _steward_valid_from timestamptz,"
			   " ADD COLUMN IF NOT EXISTS _steward_valid_to timestamptz",
			   t->history_qname);
		bool keyed = c->nkey > 0;
		for (size_t k = 0; k < c->nkey && keyed; k++) {
			keyed = false;
			for (size_t j = 0; j < t->nhcols && !keyed; j++)
				keyed = strcmp(t->hcols[j].name, c->key[k]) == 0;
		}
		if (keyed) {
			/* Closing versions looks up the open rows of the batch's keys. */
			char idx[WH_NAME_MAX + 1];
			wh_name_fit(t->base, "__history_open", idx);
			char *qidx = wh_ident(conn, idx);
			buf_printf(&sql, "; CREATE INDEX IF NOT EXISTS %s ON %s (",
				   qidx ? qidx : "\"?\"", t->history_qname);
			free(qidx);
			for (size_t k = 0; k < c->nkey; k++) {
				char *id = wh_ident(conn, c->key[k]);
				buf_printf(&sql, "%s%s", k ? ", " : "", id ? id : "\"?\"");
				free(id);
			}
			buf_append_str(&sql, ") WHERE _steward_valid_to IS NULL");
		}
		if ((st = wh_exec(conn, sql.data, "could not prepare history table", err, errlen)))
			goto out;
	}
	t->history_ready = true;
	log_debug("warehouse", "history table %s ready", t->history_qname);
out:
	buf_free(&sql);
	return st;
}

/* One table's data columns, as resolve_value sees them. */
typedef struct colset {
	wh_schema_t *schema;
	unsigned *shape;          /* bumped when a column is added or widened */
	const char *qname;
	wh_column_t **cols;
	size_t *ncols;
	size_t **hint;
	size_t *nhint;
} colset_t;

/* Find (or add) the column for value v and check its type. */
static wh_status_t
resolve_value(PGconn *conn, colset_t cs, const wh_value_t *v, size_t i, size_t *idx,
	      char *err, size_t errlen)
{
	wh_status_t st = WH_OK;
	buf_t sql = BUF_INIT;
	size_t j = SIZE_MAX;
	wh_column_t *cols = *cs.cols;
	size_t ncols = *cs.ncols;
	if (i < *cs.nhint && (*cs.hint)[i] < ncols && strcmp(cols[(*cs.hint)[i]].name, v->name) == 0)
		j = (*cs.hint)[i];
	for (size_t k = 0; j == SIZE_MAX && k < ncols; k++)
		if (strcmp(cols[k].name, v->name) == 0)
			j = k;
	const char *type = v->type ? v->type : "text";
	if (v->unchanged)
		goto out;  /* no value, so nothing to add or check */
	if (j == SIZE_MAX) {
		if ((st = before_sql(cs.schema, conn, err, errlen)) != WH_OK)
			goto out;
		j = colset_add(cs.cols, cs.ncols, conn, v->name, type);
		wh_column_t *col = &(*cs.cols)[j];
		buf_printf(&sql, "ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", cs.qname,
			   col->ident, type);
		st = wh_exec(conn, sql.data, "could not add column", err, errlen);
		if (st == WH_OK)
			log_info("warehouse", "added column %s %s to %s", col->ident, type, cs.qname);
		(*cs.shape)++;
		goto out;
	}
	wh_column_t *col = &cols[j];
	if (strcmp(col->seen_type, type) == 0)
		goto out;
	if (wh_type_accepts(col->type, type)) {
		free(col->seen_type);
		col->seen_type = xstrdup(type);
		goto out;
	}
	if (wh_type_accepts(type, col->type)) {
		if ((st = before_sql(cs.schema, conn, err, errlen)) != WH_OK)
			goto out;
		buf_printf(&sql, "ALTER TABLE %s ALTER COLUMN %s TYPE %s USING %s::%s",
			   cs.qname, col->ident, type, col->ident, type);
		st = wh_exec(conn, sql.data, "could not widen column", err, errlen);
		(*cs.shape)++;
		if (st == WH_OK) {
			log_info("warehouse", "widened column %s of %s from %s to %s", col->ident,
				 cs.qname, col->type, type);
			free(col->type);
			free(col->seen_type);
			col->type = xstrdup(type);
			col->seen_type = xstrdup(type);
		}
		goto out;
	}
	snprintf(err, errlen,
		 "incompatible type change in warehouse table %s column %s: the source now sends"
		 " %s but the column is %s; alter or drop the column"
		 " (ALTER TABLE %s ALTER COLUMN %s TYPE …) and run apply again (not retriable)",
		 cs.qname, col->ident, type, col->type, cs.qname, col->ident);
	st = WH_SCHEMA;
out:
	*idx = j;
	if (i >= *cs.nhint) {
		*cs.hint = xrealloc(*cs.hint, (i + 1) * sizeof(**cs.hint));
		for (size_t k = *cs.nhint; k <= i; k++)
			(*cs.hint)[k] = SIZE_MAX;
		*cs.nhint = i + 1;
	}
	(*cs.hint)[i] = j;
	buf_free(&sql);
	return st;
}

/* Map (and evolve) both images of c onto one table's columns. */
static wh_status_t
resolve_images(PGconn *conn, colset_t cs, bool on, const wh_change_t *c, wh_colmap_t *map,
	       char *err, size_t errlen)
{
	wh_status_t st = WH_OK;
	for (size_t i = 0; i < c->nafter; i++) {
		map->after[i] = SIZE_MAX;
		if (on && (st = resolve_value(conn, cs, &c->after[i], i, &map->after[i], err,
					      errlen)) != WH_OK)
			return st;
	}
	for (size_t i = 0; i < c->nbefore; i++) {
		map->before[i] = SIZE_MAX;
		if (on && (st = resolve_value(conn, cs, &c->before[i], i, &map->before[i], err,
					      errlen)) != WH_OK)
			return st;
	}
	return WH_OK;
}

wh_status_t
wh_schema_prepare(PGconn *conn, wh_schema_t *s, const wh_change_t *c, wh_table_t **out,
		  wh_colmap_t *mirror_map, wh_colmap_t *history_map, char *err, size_t errlen)
{
	wh_status_t st = WH_OK;
	wh_table_t *t = find_table(s, c->target);
	if (!t && ((st = before_sql(s, conn, err, errlen)) != WH_OK ||
		   (st = load_table(conn, s, c->target, &t, err, errlen)) != WH_OK))
		return st;
	*out = t;
	if ((st = wh_schema_history_check(s, t, err, errlen)) != WH_OK)
		return st;
	if ((s->modes & WH_MODE_HISTORY) && !t->history_ready &&
	    ((st = before_sql(s, conn, err, errlen)) != WH_OK ||
	     (st = ensure_history(conn, s, t, c, err, errlen)) != WH_OK))
		return st;
	if ((s->modes & WH_MODE_MIRROR) && !t->has_mirror) {
		if (c->nkey == 0) {
			if (!t->warned_no_key)
				log_warn("warehouse", "table %s has no key columns: no mirror table"
					 " (history only)", t->base);
			t->warned_no_key = true;
		} else if ((st = before_sql(s, conn, err, errlen)) != WH_OK ||
			   (st = create_mirror(conn, t, c, err, errlen)) != WH_OK) {
			return st;
		}
	}
	colset_t mcs = {s, &t->mirror_shape, t->mirror_qname, &t->cols, &t->ncols, &t->hint, &t->nhint};
	colset_t hcs = {s, &t->history_shape, t->history_qname, &t->hcols, &t->nhcols, &t->hhint, &t->nhhint};
	if (c->stable_names && layout_match(t->layout, t, c)) {
		layout_apply(t->layout, mirror_map, history_map);
	} else {
		if ((st = resolve_images(conn, mcs, (s->modes & WH_MODE_MIRROR) && t->has_mirror, c,
					 mirror_map, err, errlen)) != WH_OK ||
		    (st = resolve_images(conn, hcs, (s->modes & WH_MODE_HISTORY) != 0, c,
					 history_map, err, errlen)) != WH_OK)
			return st;
		if (c->stable_names)
			layout_store(t, c, mirror_map, history_map);
	}
	if ((s->modes & WH_MODE_HISTORY) && c->nkey > 0 && t->nhkey != c->nkey) {
		/* The key's history columns, for closing SCD2 versions. */
		size_t *hk = xcalloc(c->nkey, sizeof(*hk));
		size_t n = 0;
		for (size_t k = 0; k < c->nkey; k++)
			for (size_t j = 0; j < t->nhcols; j++)
				if (strcmp(t->hcols[j].name, c->key[k]) == 0) {
					hk[n++] = j;
					break;
				}
		free(t->hkey);
		t->hkey = hk;
		t->nhkey = n == c->nkey ? n : 0;
	}
	return WH_OK;
}
