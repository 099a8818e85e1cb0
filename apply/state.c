/*
 * state.c — the apply state store on SQLite: schema, migrations, cached
 * prepared statements, and every read and write the apply service makes.
 *
 * Every value reaches SQL through sqlite3_bind_*; the SQL text below is
 * constant.
 */
#include "state.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "xalloc.h"

/*
 * Migrations: entry i brings user_version from i to i + 1.  Never edit an
 * applied entry; append a new one and bump APPLY_STATE_SCHEMA_VERSION.
 */
static const char *const migrations[APPLY_STATE_SCHEMA_VERSION] = {
	/* 0 -> 1 */
	"CREATE TABLE cursor ("
	"  source TEXT PRIMARY KEY,"
	"  position BLOB NOT NULL,"
	"  updated_ms INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE golden ("
	"  entity TEXT NOT NULL,"
	"  entity_id TEXT NOT NULL,"
	"  record TEXT NOT NULL,"          /* JSON with per-field provenance */
	"  updated_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (entity, entity_id));"
	"CREATE TABLE crosswalk ("
	"  entity TEXT NOT NULL,"
	"  canonical_id TEXT NOT NULL,"
	"  system TEXT NOT NULL,"
	"  system_key TEXT NOT NULL,"
	"  UNIQUE (entity, canonical_id, system),"
	"  UNIQUE (entity, system, system_key));"
	"CREATE TABLE checkpoint ("
	"  target TEXT PRIMARY KEY,"
	"  position BLOB NOT NULL);"
	"CREATE TABLE outbox ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  entity TEXT NOT NULL,"
	"  entity_id TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  idem_key TEXT NOT NULL UNIQUE,"
	"  request TEXT NOT NULL,"
	"  source TEXT,"
	"  position BLOB,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt_ms INTEGER NOT NULL DEFAULT 0,"
	"  created_ms INTEGER NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'pending',"
	"  last_error TEXT);"
	"CREATE INDEX outbox_by_entity ON outbox (target, entity, entity_id, id);"
	"CREATE TABLE dlq ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time_ms INTEGER NOT NULL,"
	"  entity TEXT,"
	"  entity_id TEXT,"
	"  target TEXT,"
	"  reason TEXT NOT NULL,"
	"  request TEXT,"
	"  response TEXT,"
	"  idem_key TEXT,"
	"  source TEXT,"
	"  position BLOB,"
	"  state TEXT NOT NULL DEFAULT 'open');"
	"CREATE INDEX dlq_by_state ON dlq (state, id);"
	"CREATE TABLE conflict ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time_ms INTEGER NOT NULL,"
	"  entity TEXT NOT NULL,"
	"  entity_id TEXT,"
	"  field TEXT,"
	"  system TEXT NOT NULL,"
	"  rule TEXT NOT NULL,"
	"  value TEXT);",
};

typedef enum stmt_id {
	ST_CURSOR_GET, ST_CURSOR_SET,
	ST_GOLDEN_GET, ST_GOLDEN_PUT, ST_GOLDEN_DEL,
	ST_XW_BY_CANON, ST_XW_BY_KEY, ST_XW_INS,
	ST_CP_GET, ST_CP_SET,
	ST_OB_FIND, ST_OB_INS, ST_OB_DUE, ST_OB_AFTER, ST_OB_DEL, ST_OB_RESCHED, ST_OB_COUNT, ST_OB_COUNT_T,
	ST_DLQ_INS, ST_DLQ_LIST, ST_DLQ_LIST_ALL, ST_DLQ_GET, ST_DLQ_STATE,
	ST_CF_INS, ST_CF_COUNT,
	ST_COUNT
} stmt_id_t;

#define OB_COLS "id, entity, entity_id, target, idem_key, request, source, position," \
		" attempts, next_attempt_ms, created_ms, last_error"
#define DLQ_COLS "id, time_ms, entity, entity_id, target, reason, request, response," \
		 " idem_key, source, position, state"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_CURSOR_GET] = "SELECT position FROM cursor WHERE source = ?1",
	[ST_CURSOR_SET] = "INSERT INTO cursor (source, position, updated_ms) VALUES (?1, ?2, ?3)"
			  " ON CONFLICT (source) DO UPDATE SET position = excluded.position,"
			  " updated_ms = excluded.updated_ms",
	[ST_GOLDEN_GET] = "SELECT record FROM golden WHERE entity = ?1 AND entity_id = ?2",
	[ST_GOLDEN_PUT] = "INSERT INTO golden (entity, entity_id, record, updated_ms)"
			  " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (entity, entity_id) DO UPDATE"
			  " SET record = excluded.record, updated_ms = excluded.updated_ms",
	[ST_GOLDEN_DEL] = "DELETE FROM golden WHERE entity = ?1 AND entity_id = ?2",
	[ST_XW_BY_CANON] = "SELECT system_key FROM crosswalk"
			   " WHERE entity = ?1 AND canonical_id = ?2 AND system = ?3",
	[ST_XW_BY_KEY] = "SELECT canonical_id FROM crosswalk"
			 " WHERE entity = ?1 AND system = ?2 AND system_key = ?3",
	[ST_XW_INS] = "INSERT INTO crosswalk (entity, canonical_id, system, system_key)"
		      " VALUES (?1, ?2, ?3, ?4)",
	[ST_CP_GET] = "SELECT position FROM checkpoint WHERE target = ?1",
	[ST_CP_SET] = "INSERT INTO checkpoint (target, position) VALUES (?1, ?2)"
		      " ON CONFLICT (target) DO UPDATE SET position = excluded.position",
	[ST_OB_FIND] = "SELECT id FROM outbox WHERE idem_key = ?1",
	[ST_OB_INS] = "INSERT INTO outbox (entity, entity_id, target, idem_key, request, source,"
		      " position, attempts, next_attempt_ms, created_ms)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	/* The head of each (target, entity, entity_id) queue, if it is due. */
	[ST_OB_DUE] = "SELECT " OB_COLS " FROM outbox WHERE id IN"
		      " (SELECT min(id) FROM outbox WHERE state = 'pending'"
		      "  GROUP BY target, entity, entity_id)"
		      " AND next_attempt_ms <= ?1 ORDER BY id LIMIT ?2",
	/* Rows queued after the last one the worker holds (primary key range). */
	[ST_OB_AFTER] = "SELECT " OB_COLS " FROM outbox WHERE id > ?1 AND state = 'pending'"
			" ORDER BY id LIMIT ?2",
	[ST_OB_DEL] = "DELETE FROM outbox WHERE id = ?1",
	[ST_OB_RESCHED] = "UPDATE outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4"
			  " WHERE id = ?1",
	[ST_OB_COUNT] = "SELECT count(*) FROM outbox WHERE state = 'pending'",
	[ST_OB_COUNT_T] = "SELECT count(*) FROM outbox WHERE state = 'pending' AND target = ?1",
	[ST_DLQ_INS] = "INSERT INTO dlq (time_ms, entity, entity_id, target, reason, request,"
		       " response, idem_key, source, position)"
		       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[ST_DLQ_LIST] = "SELECT " DLQ_COLS " FROM dlq WHERE state = ?1 ORDER BY id LIMIT ?2",
	[ST_DLQ_LIST_ALL] = "SELECT " DLQ_COLS " FROM dlq ORDER BY id LIMIT ?1",
	[ST_DLQ_GET] = "SELECT " DLQ_COLS " FROM dlq WHERE id = ?1",
	[ST_DLQ_STATE] = "UPDATE dlq SET state = ?2 WHERE id = ?1",
	[ST_CF_INS] = "INSERT INTO conflict (time_ms, entity, entity_id, field, system, rule, value)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_CF_COUNT] = "SELECT count(*) FROM conflict",
};

struct apply_state {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmts[ST_COUNT];
	bool in_txn;
	bool lazy;          /* synchronous=NORMAL until the transaction ends */
	bool lazy_begin;    /* apply_state_begin called by apply_state_begin_lazy */
};

static apply_status_t
fail(apply_state_t *s, int rc, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Map an SQLite result code to retriable/permanent and write the message. */
static apply_status_t
fail(apply_state_t *s, int rc, char *err, size_t errlen, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s in state store \"%s\": %s", what,
			 s && s->path ? s->path : "?",
			 s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_PROTOCOL:
		return APPLY_RETRIABLE;
	case SQLITE_CONSTRAINT:
		return APPLY_CONFLICT;
	default:
		return APPLY_PERMANENT;
	}
}

static sqlite3_stmt *
stmt_get(apply_state_t *s, stmt_id_t id, int *rc)
{
	if (!s->stmts[id]) {
		*rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					 &s->stmts[id], NULL);
		if (*rc != SQLITE_OK)
			return NULL;
	}
	*rc = SQLITE_OK;
	return s->stmts[id];
}

static void
stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static void
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void
bind_pos(sqlite3_stmt *st, int i, const position_t *p)
{
	/* A zero-length blob, not NULL: "before everything" is a position. */
	if (p)
		sqlite3_bind_blob(st, i, p->bytes, p->len, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static char *
col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? xstrdup((const char *) t) : NULL;
}

static void
col_pos(sqlite3_stmt *st, int i, position_t *p)
{
	const void *b = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);
	p->len = 0;
	if (b && n > 0 && !position_set(p, b, (size_t) n))
		p->len = 0;
}

/* Run a statement that returns no rows; binds already done by the caller. */
static apply_status_t
step_done(apply_state_t *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
	int rc = sqlite3_step(st);
	apply_status_t status = APPLY_OK;
	if (rc != SQLITE_DONE)
		status = fail(s, rc, err, errlen, "could not %s", what);
	stmt_done(st);
	return status;
}

#define PREPARE(st, id, what)                                                  \
	int rc_;                                                               \
	sqlite3_stmt *st = stmt_get(s, id, &rc_);                              \
	if (!st)                                                               \
		return fail(s, rc_, err, errlen, "could not prepare %s", what)

static apply_status_t
exec_sql(apply_state_t *s, const char *sql, const char *what, char *err, size_t errlen)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	sqlite3_free(msg);
	if (rc != SQLITE_OK)
		return fail(s, rc, err, errlen, "could not %s", what);
	return APPLY_OK;
}

static apply_status_t
migrate(apply_state_t *s, char *err, size_t errlen)
{
	int version = apply_state_schema_version(s);
	if (version > APPLY_STATE_SCHEMA_VERSION) {
		snprintf(err, errlen, "state store \"%s\" has schema version %d, newer than "
			 "this steward's %d", s->path, version, APPLY_STATE_SCHEMA_VERSION);
		return APPLY_PERMANENT;
	}
	for (; version < APPLY_STATE_SCHEMA_VERSION; version++) {
		apply_status_t st = apply_state_begin(s, err, errlen);
		if (st != APPLY_OK)
			return st;
		char pragma[64];
		snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version + 1);
		if ((st = exec_sql(s, migrations[version], "migrate schema", err, errlen)) ||
		    (st = exec_sql(s, pragma, "set schema version", err, errlen))) {
			apply_state_rollback(s);
			return st;
		}
		if ((st = apply_state_commit(s, err, errlen)) != APPLY_OK)
			return st;
	}
	return APPLY_OK;
}

apply_status_t
apply_state_open(const char *path, apply_state_t **out, char *err, size_t errlen)
{
	apply_state_t *s = xcalloc(1, sizeof *s);
	apply_status_t st;
	s->path = xstrdup(path);
	*out = NULL;

	int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				 SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		st = fail(s, rc, err, errlen, "could not open");
		goto out;
	}
	sqlite3_extended_result_codes(s->db, 1);
	/* Another process (`steward dlq`) may hold the lock briefly. */
	sqlite3_busy_timeout(s->db, 5000);
	/*
	 * WAL: readers (`steward dlq list`) never block the apply loop.
	 * synchronous=FULL: every commit is fsync'd to the WAL before
	 * COMMIT returns.  NORMAL would be atomic too, but after power loss
	 * it may forget the last commits; we acknowledge change-log positions
	 * (letting segments be garbage-collected) right after a commit, so a
	 * forgotten commit could mean a forgotten change.  Commits are per
	 * batch, so the extra fsync is amortised.
	 */
	if ((st = exec_sql(s, "PRAGMA journal_mode = WAL", "enable WAL", err, errlen)) ||
	    (st = exec_sql(s, "PRAGMA synchronous = FULL", "set synchronous", err, errlen)) ||
	    (st = exec_sql(s, "PRAGMA foreign_keys = ON", "enable foreign keys", err, errlen)))
		goto out;
	if ((st = migrate(s, err, errlen)) != APPLY_OK)
		goto out;
	*out = s;
	return APPLY_OK;
out:
	apply_state_close(s);
	return st;
}

void
apply_state_close(apply_state_t *s)
{
	if (!s)
		return;
	if (s->in_txn)
		apply_state_rollback(s);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

int
apply_state_schema_version(apply_state_t *s)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Back to synchronous=FULL after a lazy transaction. */
static apply_status_t
end_lazy(apply_state_t *s, char *err, size_t errlen)
{
	if (!s->lazy)
		return APPLY_OK;
	apply_status_t st = exec_sql(s, "PRAGMA synchronous = FULL", "set synchronous", err, errlen);
	if (st == APPLY_OK)
		s->lazy = false;
	return st;
}

apply_status_t
apply_state_begin(apply_state_t *s, char *err, size_t errlen)
{
	if (s->in_txn) {
		snprintf(err, errlen, "transaction already open in state store \"%s\"", s->path);
		return APPLY_PERMANENT;
	}
	apply_status_t st = APPLY_OK;
	if (!s->lazy_begin && (st = end_lazy(s, err, errlen)) != APPLY_OK)
		return st;  /* never an ordinary transaction at synchronous=NORMAL */
	st = exec_sql(s, "BEGIN IMMEDIATE", "begin transaction", err, errlen);
	if (st == APPLY_OK)
		s->in_txn = true;
	return st;
}

apply_status_t
apply_state_begin_lazy(apply_state_t *s, char *err, size_t errlen)
{
	if (s->in_txn) {
		snprintf(err, errlen, "transaction already open in state store \"%s\"", s->path);
		return APPLY_PERMANENT;
	}
	/* The safety level cannot change inside a transaction: set it first. */
	apply_status_t st = exec_sql(s, "PRAGMA synchronous = NORMAL", "set synchronous", err, errlen);
	if (st != APPLY_OK)
		return st;
	s->lazy = true;
	s->lazy_begin = true;
	st = apply_state_begin(s, err, errlen);
	s->lazy_begin = false;
	if (st != APPLY_OK)
		apply_state_rollback(s);  /* restores FULL */
	return st;
}

apply_status_t
apply_state_commit(apply_state_t *s, char *err, size_t errlen)
{
	if (!s->in_txn) {
		snprintf(err, errlen, "no transaction open in state store \"%s\"", s->path);
		return APPLY_PERMANENT;
	}
	apply_status_t st = exec_sql(s, "COMMIT", "commit", err, errlen);
	if (st != APPLY_OK) {
		apply_state_rollback(s);
		return st;
	}
	s->in_txn = false;
	/* Committed either way; a failure here leaves s->lazy set and the next
	 * begin or commit tries again (apply_state_begin refuses to start an
	 * ordinary transaction at NORMAL). */
	end_lazy(s, err, errlen);
	return APPLY_OK;
}

void
apply_state_rollback(apply_state_t *s)
{
	if (sqlite3_get_autocommit(s->db) == 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_txn = false;
	char err[256];
	end_lazy(s, err, sizeof err);
}

bool
apply_state_in_txn(apply_state_t *s)
{
	return s->in_txn;
}

/* ---- position rows (cursor, checkpoint) ---- */

static apply_status_t
pos_get(apply_state_t *s, stmt_id_t id, const char *name, position_t *out,
	const char *what, char *err, size_t errlen)
{
	PREPARE(st, id, what);
	bind_text(st, 1, name);
	out->len = 0;
	int rc = sqlite3_step(st);
	apply_status_t status = APPLY_OK;
	if (rc == SQLITE_ROW)
		col_pos(st, 0, out);
	else if (rc != SQLITE_DONE)
		status = fail(s, rc, err, errlen, "could not read %s \"%s\"", what, name);
	stmt_done(st);
	return status;
}

apply_status_t
apply_state_cursor_get(apply_state_t *s, const char *source, position_t *out,
		       char *err, size_t errlen)
{
	return pos_get(s, ST_CURSOR_GET, source, out, "cursor", err, errlen);
}

apply_status_t
apply_state_cursor_set(apply_state_t *s, const char *source, const position_t *pos,
		       char *err, size_t errlen)
{
	PREPARE(st, ST_CURSOR_SET, "cursor update");
	bind_text(st, 1, source);
	bind_pos(st, 2, pos);
	sqlite3_bind_int64(st, 3, 0);
	return step_done(s, st, "update cursor", err, errlen);
}

apply_status_t
apply_state_checkpoint_get(apply_state_t *s, const char *target, position_t *out,
			   char *err, size_t errlen)
{
	return pos_get(s, ST_CP_GET, target, out, "checkpoint", err, errlen);
}

apply_status_t
apply_state_checkpoint_set(apply_state_t *s, const char *target, const position_t *pos,
			   char *err, size_t errlen)
{
	PREPARE(st, ST_CP_SET, "checkpoint update");
	bind_text(st, 1, target);
	bind_pos(st, 2, pos);
	return step_done(s, st, "update checkpoint", err, errlen);
}

/* ---- golden ---- */

/* A single-text-column lookup; APPLY_NOT_FOUND when no row. */
static apply_status_t
text_get(apply_state_t *s, sqlite3_stmt *st, char **out, const char *what,
	 char *err, size_t errlen)
{
	int rc = sqlite3_step(st);
	apply_status_t status = APPLY_OK;
	*out = NULL;
	if (rc == SQLITE_ROW)
		*out = col_text(st, 0);
	else if (rc == SQLITE_DONE)
		status = APPLY_NOT_FOUND;
	else
		status = fail(s, rc, err, errlen, "could not read %s", what);
	stmt_done(st);
	return status;
}

apply_status_t
apply_state_golden_get(apply_state_t *s, const char *entity, const char *entity_id,
		       char **json_out, char *err, size_t errlen)
{
	PREPARE(st, ST_GOLDEN_GET, "golden lookup");
	bind_text(st, 1, entity);
	bind_text(st, 2, entity_id);
	return text_get(s, st, json_out, "golden record", err, errlen);
}

apply_status_t
apply_state_golden_put(apply_state_t *s, const char *entity, const char *entity_id,
		       const char *json, int64_t now_ms, char *err, size_t errlen)
{
	PREPARE(st, ST_GOLDEN_PUT, "golden update");
	bind_text(st, 1, entity);
	bind_text(st, 2, entity_id);
	bind_text(st, 3, json);
	sqlite3_bind_int64(st, 4, now_ms);
	return step_done(s, st, "write golden record", err, errlen);
}

apply_status_t
apply_state_golden_delete(apply_state_t *s, const char *entity, const char *entity_id,
			  char *err, size_t errlen)
{
	PREPARE(st, ST_GOLDEN_DEL, "golden delete");
	bind_text(st, 1, entity);
	bind_text(st, 2, entity_id);
	return step_done(s, st, "delete golden record", err, errlen);
}

/* ---- crosswalk ---- */

apply_status_t
apply_state_xwalk_key(apply_state_t *s, const char *entity, const char *canonical_id,
		      const char *system, char **key_out, char *err, size_t errlen)
{
	PREPARE(st, ST_XW_BY_CANON, "crosswalk lookup");
	bind_text(st, 1, entity);
	bind_text(st, 2, canonical_id);
	bind_text(st, 3, system);
	return text_get(s, st, key_out, "crosswalk", err, errlen);
}

apply_status_t
apply_state_xwalk_canonical(apply_state_t *s, const char *entity, const char *system,
			    const char *system_key, char **canonical_out, char *err, size_t errlen)
{
	PREPARE(st, ST_XW_BY_KEY, "crosswalk lookup");
	bind_text(st, 1, entity);
	bind_text(st, 2, system);
	bind_text(st, 3, system_key);
	return text_get(s, st, canonical_out, "crosswalk", err, errlen);
}

apply_status_t
apply_state_xwalk_put(apply_state_t *s, const char *entity, const char *canonical_id,
		      const char *system, const char *system_key, char *err, size_t errlen)
{
	char *have = NULL;
	apply_status_t st = apply_state_xwalk_key(s, entity, canonical_id, system, &have,
						  err, errlen);
	if (st == APPLY_OK) {
		if (strcmp(have, system_key) != 0) {
			snprintf(err, errlen, "ambiguous identity: %s \"%s\" is already \"%s\" "
				 "in %s, not \"%s\"", entity, canonical_id, have, system, system_key);
			st = APPLY_CONFLICT;
		}
		free(have);
		return st;
	}
	if (st != APPLY_NOT_FOUND)
		return st;
	st = apply_state_xwalk_canonical(s, entity, system, system_key, &have, err, errlen);
	if (st == APPLY_OK) {
		snprintf(err, errlen, "ambiguous identity: %s key \"%s\" in %s already belongs "
			 "to \"%s\", not \"%s\"", entity, system_key, system, have, canonical_id);
		free(have);
		return APPLY_CONFLICT;
	}
	if (st != APPLY_NOT_FOUND)
		return st;
	PREPARE(ins, ST_XW_INS, "crosswalk insert");
	bind_text(ins, 1, entity);
	bind_text(ins, 2, canonical_id);
	bind_text(ins, 3, system);
	bind_text(ins, 4, system_key);
	return step_done(s, ins, "write crosswalk", err, errlen);
}

/* ---- outbox ---- */

apply_status_t
apply_state_outbox_add(apply_state_t *s, const apply_outbox_row_t *row, int64_t *id_out,
		       bool *added, char *err, size_t errlen)
{
	if (added)
		*added = false;
	{
		PREPARE(st, ST_OB_FIND, "outbox lookup");
		bind_text(st, 1, row->idem_key);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			if (id_out)
				*id_out = sqlite3_column_int64(st, 0);
			stmt_done(st);
			return APPLY_OK;  /* already queued: a replayed change */
		}
		stmt_done(st);
		if (rc != SQLITE_DONE)
			return fail(s, rc, err, errlen, "could not look up outbox key");
	}
	PREPARE(st, ST_OB_INS, "outbox insert");
	bind_text(st, 1, row->entity);
	bind_text(st, 2, row->entity_id);
	bind_text(st, 3, row->target);
	bind_text(st, 4, row->idem_key);
	bind_text(st, 5, row->request);
	bind_text(st, 6, row->source);
	bind_pos(st, 7, &row->pos);
	sqlite3_bind_int(st, 8, row->attempts);
	sqlite3_bind_int64(st, 9, row->next_attempt_ms);
	sqlite3_bind_int64(st, 10, row->created_ms);
	apply_status_t status = step_done(s, st, "queue outbox row", err, errlen);
	if (status == APPLY_OK) {
		if (id_out)
			*id_out = sqlite3_last_insert_rowid(s->db);
		if (added)
			*added = true;
	}
	return status;
}

static void
outbox_row_read(sqlite3_stmt *st, apply_outbox_row_t *r)
{
	r->id = sqlite3_column_int64(st, 0);
	r->entity = col_text(st, 1);
	r->entity_id = col_text(st, 2);
	r->target = col_text(st, 3);
	r->idem_key = col_text(st, 4);
	r->request = col_text(st, 5);
	r->source = col_text(st, 6);
	col_pos(st, 7, &r->pos);
	r->attempts = sqlite3_column_int(st, 8);
	r->next_attempt_ms = sqlite3_column_int64(st, 9);
	r->created_ms = sqlite3_column_int64(st, 10);
	r->last_error = col_text(st, 11);
}

/* Step a bound outbox statement, reading every row into *rows (caller frees). */
static apply_status_t
outbox_rows_collect(apply_state_t *s, sqlite3_stmt *st, const char *what,
		    apply_outbox_row_t **rows, size_t *n, char *err, size_t errlen)
{
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*rows = xrealloc(*rows, cap * sizeof **rows);
		}
		outbox_row_read(st, &(*rows)[(*n)++]);
	}
	stmt_done(st);
	if (rc != SQLITE_DONE) {
		apply_state_outbox_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
		return fail(s, rc, err, errlen, "%s", what);
	}
	return APPLY_OK;
}

apply_status_t
apply_state_outbox_due(apply_state_t *s, int64_t now_ms, size_t limit,
		       apply_outbox_row_t **rows, size_t *n, char *err, size_t errlen)
{
	*rows = NULL;
	*n = 0;
	PREPARE(st, ST_OB_DUE, "outbox scan");
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64) limit);
	return outbox_rows_collect(s, st, "could not scan outbox", rows, n, err, errlen);
}

apply_status_t
apply_state_outbox_after(apply_state_t *s, int64_t after_id, size_t limit,
			 apply_outbox_row_t **rows, size_t *n, char *err, size_t errlen)
{
	*rows = NULL;
	*n = 0;
	PREPARE(st, ST_OB_AFTER, "outbox read");
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64) limit);
	return outbox_rows_collect(s, st, "could not read outbox", rows, n, err, errlen);
}

apply_status_t
apply_state_outbox_done(apply_state_t *s, int64_t id, char *err, size_t errlen)
{
	PREPARE(st, ST_OB_DEL, "outbox delete");
	sqlite3_bind_int64(st, 1, id);
	return step_done(s, st, "remove outbox row", err, errlen);
}

apply_status_t
apply_state_outbox_reschedule(apply_state_t *s, int64_t id, int attempts,
			      int64_t next_attempt_ms, const char *last_error,
			      char *err, size_t errlen)
{
	PREPARE(st, ST_OB_RESCHED, "outbox update");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, attempts);
	sqlite3_bind_int64(st, 3, next_attempt_ms);
	bind_text(st, 4, last_error);
	return step_done(s, st, "reschedule outbox row", err, errlen);
}

static apply_status_t
count_rows(apply_state_t *s, sqlite3_stmt *st, int64_t *n, char *err, size_t errlen)
{
	int rc = sqlite3_step(st);
	apply_status_t status = APPLY_OK;
	*n = 0;
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	else
		status = fail(s, rc, err, errlen, "could not count rows");
	stmt_done(st);
	return status;
}

apply_status_t
apply_state_outbox_count(apply_state_t *s, const char *target, int64_t *n,
			 char *err, size_t errlen)
{
	PREPARE(st, target ? ST_OB_COUNT_T : ST_OB_COUNT, "outbox count");
	if (target)
		bind_text(st, 1, target);
	return count_rows(s, st, n, err, errlen);
}

void
apply_state_outbox_rows_free(apply_outbox_row_t *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++) {
		free(rows[i].entity);
		free(rows[i].entity_id);
		free(rows[i].target);
		free(rows[i].idem_key);
		free(rows[i].request);
		free(rows[i].source);
		free(rows[i].last_error);
	}
	free(rows);
}

/* ---- dead-letter queue ---- */

apply_status_t
apply_state_dlq_add(apply_state_t *s, const apply_dlq_entry_t *e, int64_t *id_out,
		    char *err, size_t errlen)
{
	PREPARE(st, ST_DLQ_INS, "dead-letter insert");
	sqlite3_bind_int64(st, 1, e->time_ms);
	bind_text(st, 2, e->entity);
	bind_text(st, 3, e->entity_id);
	bind_text(st, 4, e->target);
	bind_text(st, 5, e->reason ? e->reason : "unspecified");
	bind_text(st, 6, e->request);
	bind_text(st, 7, e->response);
	bind_text(st, 8, e->idem_key);
	bind_text(st, 9, e->source);
	bind_pos(st, 10, &e->pos);
	apply_status_t status = step_done(s, st, "add dead letter", err, errlen);
	if (status == APPLY_OK && id_out)
		*id_out = sqlite3_last_insert_rowid(s->db);
	return status;
}

static void
dlq_read(sqlite3_stmt *st, apply_dlq_entry_t *e)
{
	e->id = sqlite3_column_int64(st, 0);
	e->time_ms = sqlite3_column_int64(st, 1);
	e->entity = col_text(st, 2);
	e->entity_id = col_text(st, 3);
	e->target = col_text(st, 4);
	e->reason = col_text(st, 5);
	e->request = col_text(st, 6);
	e->response = col_text(st, 7);
	e->idem_key = col_text(st, 8);
	e->source = col_text(st, 9);
	col_pos(st, 10, &e->pos);
	e->state = col_text(st, 11);
}

apply_status_t
apply_state_dlq_list(apply_state_t *s, const char *state, size_t limit,
		     apply_dlq_entry_t **entries, size_t *n, char *err, size_t errlen)
{
	*entries = NULL;
	*n = 0;
	PREPARE(st, state ? ST_DLQ_LIST : ST_DLQ_LIST_ALL, "dead-letter list");
	if (state) {
		bind_text(st, 1, state);
		sqlite3_bind_int64(st, 2, (sqlite3_int64) limit);
	} else {
		sqlite3_bind_int64(st, 1, (sqlite3_int64) limit);
	}
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*entries = xrealloc(*entries, cap * sizeof **entries);
		}
		dlq_read(st, &(*entries)[(*n)++]);
	}
	stmt_done(st);
	if (rc != SQLITE_DONE) {
		apply_state_dlq_free(*entries, *n);
		*entries = NULL;
		*n = 0;
		return fail(s, rc, err, errlen, "could not list dead letters");
	}
	return APPLY_OK;
}

apply_status_t
apply_state_dlq_get(apply_state_t *s, int64_t id, apply_dlq_entry_t *e, char *err, size_t errlen)
{
	memset(e, 0, sizeof *e);
	PREPARE(st, ST_DLQ_GET, "dead-letter lookup");
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	apply_status_t status = APPLY_OK;
	if (rc == SQLITE_ROW) {
		dlq_read(st, e);
	} else if (rc == SQLITE_DONE) {
		snprintf(err, errlen, "no dead letter %lld", (long long) id);
		status = APPLY_NOT_FOUND;
	} else {
		status = fail(s, rc, err, errlen, "could not read dead letter %lld", (long long) id);
	}
	stmt_done(st);
	return status;
}

apply_status_t
apply_state_dlq_set_state(apply_state_t *s, int64_t id, const char *state,
			  char *err, size_t errlen)
{
	PREPARE(st, ST_DLQ_STATE, "dead-letter update");
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, state);
	apply_status_t status = step_done(s, st, "update dead letter", err, errlen);
	if (status == APPLY_OK && sqlite3_changes(s->db) == 0) {
		snprintf(err, errlen, "no dead letter %lld", (long long) id);
		status = APPLY_NOT_FOUND;
	}
	return status;
}

void
apply_state_dlq_clear(apply_dlq_entry_t *e)
{
	if (!e)
		return;
	free(e->entity);
	free(e->entity_id);
	free(e->target);
	free(e->reason);
	free(e->request);
	free(e->response);
	free(e->idem_key);
	free(e->source);
	free(e->state);
	memset(e, 0, sizeof *e);
}

void
apply_state_dlq_free(apply_dlq_entry_t *entries, size_t n)
{
	for (size_t i = 0; entries && i < n; i++)
		apply_state_dlq_clear(&entries[i]);
	free(entries);
}

/* ---- conflicts ---- */

apply_status_t
apply_state_conflict_add(apply_state_t *s, int64_t time_ms, const char *entity,
			 const char *entity_id, const char *field, const char *system,
			 const char *rule, const char *value, char *err, size_t errlen)
{
	PREPARE(st, ST_CF_INS, "conflict insert");
	sqlite3_bind_int64(st, 1, time_ms);
	bind_text(st, 2, entity);
	bind_text(st, 3, entity_id);
	bind_text(st, 4, field);
	bind_text(st, 5, system);
	bind_text(st, 6, rule);
	bind_text(st, 7, value);
	return step_done(s, st, "log conflict", err, errlen);
}

apply_status_t
apply_state_conflict_count(apply_state_t *s, int64_t *n, char *err, size_t errlen)
{
	PREPARE(st, ST_CF_COUNT, "conflict count");
	return count_rows(s, st, n, err, errlen);
}
