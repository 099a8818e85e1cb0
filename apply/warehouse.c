/*
 * warehouse.c — the warehouse apply loop: change logs → wh_change_t →
 * batches, resume from stored positions, retries; see warehouse.h.
 */
#include "warehouse.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "buf.h"
#include "clog.h"
#include "exitcodes.h"
#include "log.h"
#include "position.h"
#include "redact.h"
#include "warehouse_batch.h"
#include "warehouse_schema.h"
#include "warehouse_types.h"
#include "xalloc.h"

#define AREA "warehouse"

/* ---- record → wh_change_t ---- */

#define TYPE_CACHE_SLOTS 1024

typedef struct type_entry {
	char *source_type;  /* NULL = empty slot */
	int kind;
	wh_type_t type;
} type_entry_t;

typedef struct adapter {
	arena_t *arena;             /* per change */
	type_entry_t *types;        /* cache: mapping a type string parses it */
	size_t ntypes;
	wh_value_t *vals;
	size_t capvals;
	buf_t conv;
} adapter_t;

static void
adapter_init(adapter_t *a)
{
	memset(a, 0, sizeof(*a));
	a->arena = arena_create(64 * 1024);
	a->types = xcalloc(TYPE_CACHE_SLOTS, sizeof(*a->types));
}

static void
adapter_free(adapter_t *a)
{
	for (size_t i = 0; i < TYPE_CACHE_SLOTS; i++)
		free(a->types[i].source_type);
	free(a->types);
	free(a->vals);
	buf_free(&a->conv);
	arena_destroy(a->arena);
}

static const wh_type_t *
adapter_type(adapter_t *a, int kind, const char *source_type)
{
	if (!source_type)
		source_type = "";
	uint32_t h = 2166136261u ^ (uint32_t) kind;
	for (const char *p = source_type; *p; p++)
		h = (h ^ (unsigned char) *p) * 16777619u;
	size_t s = h & (TYPE_CACHE_SLOTS - 1);
	for (size_t probe = 0; probe < TYPE_CACHE_SLOTS; probe++, s = (s + 1) & (TYPE_CACHE_SLOTS - 1)) {
		type_entry_t *e = &a->types[s];
		if (!e->source_type) {
			if (a->ntypes * 2 > TYPE_CACHE_SLOTS)
				break;  /* full enough: map without caching */
			e->source_type = xstrdup(source_type);
			e->kind = kind;
			wh_type_map((Steward__SourceKind) kind, source_type, &e->type);
			a->ntypes++;
			return &e->type;
		}
		if (e->kind == kind && strcmp(e->source_type, source_type) == 0)
			return &e->type;
	}
	static wh_type_t uncached;  /* only when >512 distinct types: single thread */
	wh_type_map((Steward__SourceKind) kind, source_type, &uncached);
	return &uncached;
}

static wh_value_t *
adapter_values(adapter_t *a, int kind, Steward__Value *const *src, size_t n,
	       char *const *unchanged, size_t nunchanged, size_t *nout)
{
	wh_value_t *v = arena_calloc(a->arena, (n + nunchanged + 1) * sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const Steward__Value *sv = src[i];
		const wh_type_t *t = adapter_type(a, kind, sv->type_name);
		v[k].name = sv->name ? sv->name : "";
		v[k].type = t->name;
		if (sv->has_unchanged && sv->unchanged) {
			v[k].unchanged = true;
		} else if (!(sv->has_is_null && sv->is_null)) {
			const char *text = sv->text ? sv->text : "";
			const char *res;
			size_t reslen;
			bool is_null;
			wh_value_convert(t->conv, text, strlen(text), &a->conv, &res, &reslen, &is_null);
			if (!is_null) {
				v[k].text = res == text ? text : arena_memdup(a->arena, res, reslen + 1);
				v[k].len = reslen;
			}
		}
		k++;
	}
	/* TOASTed columns the source listed but did not include as values. */
	for (size_t u = 0; u < nunchanged && n > 0; u++) {
		bool present = false;
		for (size_t i = 0; i < k && !present; i++)
			present = strcmp(v[i].name, unchanged[u]) == 0;
		if (!present) {
			v[k].name = unchanged[u];
			v[k].type = "text";
			v[k].unchanged = true;
			k++;
		}
	}
	*nout = k;
	return v;
}

/* Fill *out from record c for table (schema, table); all borrowed from c or a. */
static void
adapter_change(adapter_t *a, const Steward__Change *c, const char *schema, const char *table,
	       char *target, wh_change_t *out)
{
	int kind = c->has_source_kind ? (int) c->source_kind : 0;
	memset(out, 0, sizeof(*out));
	wh_table_name(c->source, schema, c->database, table, "", target);
	out->target = target;
	out->source = c->source ? c->source : "";
	out->position_text = c->position_text ? c->position_text : "";
	out->position = c->has_position ? c->position.data : NULL;
	out->position_len = c->has_position ? c->position.len : 0;
	out->txid = c->txid;
	out->commit_ts_us = c->has_commit_ts_us ? c->commit_ts_us : 0;
	out->key = (const char *const *) c->key;
	out->nkey = c->n_key;
	switch (c->op) {
	case STEWARD__OP__OP_DELETE:
		out->op = WH_OP_DELETE;
		out->op_name = "delete";
		break;
	case STEWARD__OP__OP_TRUNCATE:
		out->op = WH_OP_TRUNCATE;
		out->op_name = "truncate";
		return;
	case STEWARD__OP__OP_UPDATE:
		out->op = WH_OP_UPSERT;
		out->op_name = "update";
		break;
	case STEWARD__OP__OP_SNAPSHOT_READ:
		out->op = WH_OP_UPSERT;
		out->op_name = "snapshot";
		break;
	default:
		out->op = WH_OP_UPSERT;
		out->op_name = "insert";
		break;
	}
	out->before = adapter_values(a, kind, c->before, c->n_before, NULL, 0, &out->nbefore);
	out->after = adapter_values(a, kind, c->after, c->n_after, c->unchanged, c->n_unchanged,
				    &out->nafter);
}

/* ---- per-source and per-log state ---- */

/* A committed position waiting for its commit record to be flushed. */
typedef struct durable_wait {
	bool set;
	uint64_t commit_lsn;       /* WAL insert position just after the COMMIT */
	position_t pos;
	const char *log_dir;
} durable_wait_t;

typedef struct source_state {
	char *name;
	position_t applied;        /* stored in the warehouse */
	bool found;
	position_t pending;        /* last change added to the open batch */
	char *pending_text;
	const char *log_dir;
	uint64_t pending_count;
	durable_wait_t oldest, newest;  /* checkpoint candidates, oldest first */
} source_state_t;

typedef struct log_state {
	const char *dir;
	clog_reader_t *reader;
	bool caught_up;
	bool resumed;              /* first record seen and resume position checked */
} log_state_t;

typedef struct session {
	const warehouse_config_t *cfg;
	PGconn *conn;
	wh_schema_t *schema;
	wh_batch_t *batch;
	adapter_t adapter;
	log_state_t *logs;
	source_state_t *sources;
	size_t nsources;
	uint64_t applied;          /* changes committed this session */
	char reader_name[96];      /* change log checkpoint name of this warehouse */
	bool warned_checkpoint;
} session_t;

static bool
stopping(const warehouse_config_t *cfg)
{
	return cfg->stop && *cfg->stop;
}

static void
quiet_notices(void *arg, const char *message)
{
	(void) arg;
	log_debug(AREA, "server notice: %s", message);
}

static source_state_t *
source_get(session_t *s, const char *name, wh_status_t *st, char *err, size_t errlen)
{
	for (size_t i = 0; i < s->nsources; i++)
		if (strcmp(s->sources[i].name, name) == 0)
			return &s->sources[i];
	source_state_t ss = {0};
	*st = wh_state_load(s->conn, s->schema, name, &ss.applied, &ss.found, err, errlen);
	if (*st != WH_OK)
		return NULL;
	ss.name = xstrdup(name);
	s->sources = xrealloc(s->sources, (s->nsources + 1) * sizeof(*s->sources));
	s->sources[s->nsources] = ss;
	return &s->sources[s->nsources++];
}

/* ---- change log checkpoints: only for durable positions ----
 *
 * The warehouse session runs with synchronous_commit = off: COMMIT returns
 * before the commit record is flushed, and a warehouse server crash can
 * lose the last few hundred milliseconds of commits.  That does not weaken
 * exactly-once, because a batch's rows and its applied position commit in
 * one transaction: a lost commit loses both, the stored position goes back
 * with the rows, and apply re-reads those changes from the change log.
 *
 * It holds only while the change log still has them.  The log's gc removes
 * segments below every reader's checkpoint, so the checkpoint of this
 * reader must never run ahead of what the warehouse holds durably.  After
 * each COMMIT we note pg_current_wal_insert_lsn(), which is past our commit
 * record; a position is checkpointed only once pg_current_wal_flush_lsn()
 * has reached that LSN (the WAL writer flushes asynchronous commits within
 * a few wal_writer_delay).  If the server crashes first, the checkpoint
 * stays at an older, durable position and gc keeps what may be re-applied.
 */

static bool
parse_lsn(const char *text, uint64_t *out)
{
	unsigned hi, lo;
	if (sscanf(text, "%X/%X", &hi, &lo) != 2)
		return false;
	*out = ((uint64_t) hi << 32) | lo;
	return true;
}

/* The reader name: "warehouse-<schema>-<hash of dsn and schema>". */
static void
reader_name_init(session_t *s)
{
	const warehouse_config_t *cfg = s->cfg;
	char safe[512];
	redact_dsn(cfg->dsn, safe, sizeof(safe));
	uint32_t h = 2166136261u;
	for (const char *p = safe; *p; p++)
		h = (h ^ (unsigned char) *p) * 16777619u;
	for (const char *p = cfg->schema; *p; p++)
		h = (h ^ (unsigned char) *p) * 16777619u;
	char schema[40];
	size_t n = 0;
	for (const char *p = cfg->schema; *p && n < sizeof(schema) - 1; p++) {
		unsigned char c = (unsigned char) *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
		schema[n++] = ok ? (char) c : '_';
	}
	schema[n] = '\0';
	snprintf(s->reader_name, sizeof(s->reader_name), "warehouse-%s-%08x", schema, h);
}

/* Current WAL insert and flush positions of the warehouse. */
static wh_status_t
wal_positions(session_t *s, uint64_t *insert_lsn, uint64_t *flush_lsn, char *err, size_t errlen)
{
	wh_status_t st = WH_OK;
	PGresult *res = PQexec(s->conn, "SELECT pg_current_wal_insert_lsn()::text,"
					" pg_current_wal_flush_lsn()::text");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		st = wh_pg_error(s->conn, res, "could not read the warehouse WAL position", err,
				 errlen);
	} else if (!parse_lsn(PQgetvalue(res, 0, 0), insert_lsn) ||
		   !parse_lsn(PQgetvalue(res, 0, 1), flush_lsn)) {
		snprintf(err, errlen, "could not parse the warehouse WAL position \"%s\" (not retriable)",
			 PQgetvalue(res, 0, 0));
		st = WH_FATAL;
	}
	PQclear(res);
	return st;
}

static void
checkpoint_save(session_t *s, const durable_wait_t *w)
{
	char err[512];
	if (clog_checkpoint_save(w->log_dir, s->reader_name, &w->pos, err, sizeof(err)) == CLOG_OK)
		return;
	if (!s->warned_checkpoint)
		log_warn(AREA, "could not save change log checkpoint \"%s\" in %s: %s (log gc will"
			 " keep what this warehouse has not checkpointed)", s->reader_name,
			 w->log_dir, err);
	s->warned_checkpoint = true;
}

/* Checkpoint every candidate whose commit record is flushed. */
static void
checkpoint_durable(session_t *s, uint64_t flush_lsn)
{
	for (size_t i = 0; i < s->nsources; i++) {
		source_state_t *ss = &s->sources[i];
		if (ss->newest.set && ss->newest.commit_lsn <= flush_lsn) {
			checkpoint_save(s, &ss->newest);
			ss->oldest.set = ss->newest.set = false;
		} else if (ss->oldest.set && ss->oldest.commit_lsn <= flush_lsn) {
			checkpoint_save(s, &ss->oldest);
			ss->oldest = ss->newest;
			ss->newest.set = false;
		}
	}
}

/* After a COMMIT: note the candidates and checkpoint what is durable. */
static wh_status_t
checkpoint_after_commit(session_t *s, char *err, size_t errlen)
{
	uint64_t insert_lsn = 0, flush_lsn = 0;
	wh_status_t st = wal_positions(s, &insert_lsn, &flush_lsn, err, errlen);
	if (st != WH_OK)
		return st;
	for (size_t i = 0; i < s->nsources; i++) {
		source_state_t *ss = &s->sources[i];
		if (!ss->pending_count)
			continue;
		durable_wait_t w = {true, insert_lsn, ss->pending, ss->log_dir};
		if (!ss->oldest.set)
			ss->oldest = w;
		else
			ss->newest = w;
	}
	checkpoint_durable(s, flush_lsn);
	return WH_OK;
}

/* Before leaving: wait (briefly) for the WAL writer, then checkpoint. */
static void
checkpoint_finish(session_t *s)
{
	for (int i = 0; i < 40; i++) {
		bool waiting = false;
		for (size_t k = 0; k < s->nsources && !waiting; k++)
			waiting = s->sources[k].oldest.set;
		if (!waiting)
			return;
		char err[512];
		uint64_t insert_lsn, flush_lsn;
		if (wal_positions(s, &insert_lsn, &flush_lsn, err, sizeof(err)) != WH_OK)
			return;  /* keep the older checkpoint: safe */
		checkpoint_durable(s, flush_lsn);
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static wh_status_t
commit_batch(session_t *s, char *err, size_t errlen)
{
	wh_progress_t *prog = xcalloc(s->nsources + 1, sizeof(*prog));
	size_t n = 0;
	for (size_t i = 0; i < s->nsources; i++) {
		source_state_t *ss = &s->sources[i];
		if (!ss->pending_count)
			continue;
		prog[n].source = ss->name;
		prog[n].position = ss->pending.bytes;
		prog[n].position_len = ss->pending.len;
		prog[n].position_text = ss->pending_text;
		prog[n].log_dir = ss->log_dir;
		prog[n].changes = ss->pending_count;
		n++;
	}
	size_t count = wh_batch_count(s->batch);
	wh_status_t st = wh_batch_commit(s->batch, s->conn, prog, n, err, errlen);
	free(prog);
	if (st != WH_OK)
		return st;
	char ckerr[512];
	if (checkpoint_after_commit(s, ckerr, sizeof(ckerr)) != WH_OK) {
		/* Committed all the same; the checkpoint just stays behind. */
		if (!s->warned_checkpoint)
			log_warn(AREA, "%s; change log checkpoint not advanced", ckerr);
		s->warned_checkpoint = true;
	}
	for (size_t i = 0; i < s->nsources; i++) {
		source_state_t *ss = &s->sources[i];
		if (ss->pending_count) {
			ss->applied = ss->pending;
			ss->found = true;
			log_debug(AREA, "applied up to %s:%s", ss->name, ss->pending_text);
		}
		ss->pending_count = 0;
	}
	s->applied += count;
	return WH_OK;
}

/* Apply one record (or skip it when already applied). */
static wh_status_t
handle_record(session_t *s, log_state_t *l, const Steward__Change *c, bool *reopen, char *err,
	      size_t errlen)
{
	wh_status_t st = WH_OK;
	position_t pos = {0};
	if (c->has_position)
		position_set(&pos, c->position.data, c->position.len);
	source_state_t *ss = source_get(s, c->source ? c->source : "", &st, err, errlen);
	if (!ss)
		return st;
	bool done = ss->found && position_cmp(&pos, &ss->applied) <= 0;
	if (!l->resumed) {
		l->resumed = true;
		if (done) {
			*reopen = true;  /* skip straight to the stored position */
			return WH_OK;
		}
	}
	if (done)
		return WH_OK;
	if (c->op == STEWARD__OP__OP_TRUNCATE) {
		size_t n = c->n_truncated_tables;
		for (size_t i = 0; i < (n ? n : 1) && st == WH_OK; i++) {
			char schema[256] = "", target[WH_NAME_MAX + 1];
			const char *table = c->table;
			if (n) {
				const char *q = c->truncated_tables[i], *dot = strchr(q, '.');
				snprintf(schema, sizeof(schema), "%.*s", dot ? (int) (dot - q) : 0, q);
				table = dot ? dot + 1 : q;
			} else {
				snprintf(schema, sizeof(schema), "%s", c->schema ? c->schema : "");
			}
			wh_change_t wc;
			adapter_change(&s->adapter, c, schema, table, target, &wc);
			st = wh_batch_add(s->batch, s->conn, &wc, err, errlen);
		}
	} else if (c->op != STEWARD__OP__OP_MESSAGE && c->table && *c->table) {
		char target[WH_NAME_MAX + 1];
		wh_change_t wc;
		adapter_change(&s->adapter, c, c->schema, c->table, target, &wc);
		st = wh_batch_add(s->batch, s->conn, &wc, err, errlen);
	}
	arena_reset(s->adapter.arena);
	if (st != WH_OK)
		return st;
	ss->pending = pos;
	free(ss->pending_text);
	ss->pending_text = xstrdup(c->position_text ? c->position_text : "");
	ss->log_dir = l->dir;
	ss->pending_count++;
	return WH_OK;
}

static int
status_exit(wh_status_t st)
{
	switch (st) {
	case WH_OK: return STEWARD_EXIT_OK;
	case WH_RETRY: return STEWARD_EXIT_UNAVAILABLE;
	case WH_SCHEMA: return STEWARD_EXIT_DATAERR;
	default: return STEWARD_EXIT_FAILURE;
	}
}

static void
sleep_ms(const warehouse_config_t *cfg, int ms)
{
	while (ms > 0 && !stopping(cfg)) {
		int step = ms < 50 ? ms : 50;
		struct timespec ts = {0, (long) step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static int
open_reader(log_state_t *l, const position_t *after, char *err, size_t errlen)
{
	clog_reader_close(l->reader);
	l->reader = NULL;
	clog_status_t cs = clog_reader_open(l->dir, after, &l->reader, err, errlen);
	if (cs == CLOG_OK)
		return STEWARD_EXIT_OK;
	return cs == CLOG_CORRUPT ? STEWARD_EXIT_DATAERR : STEWARD_EXIT_IOERR;
}

/*
 * One connected session: returns an exit code, and *st = WH_RETRY when the
 * failure is worth a reconnect.
 */
static int
session_run(session_t *s, wh_status_t *st, char *err, size_t errlen)
{
	const warehouse_config_t *cfg = s->cfg;
	int rc = STEWARD_EXIT_OK;
	*st = WH_OK;
	s->conn = PQconnectdb(cfg->dsn);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		char safe[512], msg[512];
		redact_dsn(cfg->dsn, safe, sizeof(safe));
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(s->conn));
		msg[strcspn(msg, "\n")] = '\0';
		snprintf(err, errlen, "could not connect to warehouse \"%s\": %s (retriable)", safe,
			 msg);
		*st = WH_RETRY;
		return STEWARD_EXIT_UNAVAILABLE;
	}
	PQsetNoticeProcessor(s->conn, quiet_notices, NULL);
	/* UTC so that zone-less timestamps are read as UTC, ISO so ours parse.
	 * synchronous_commit off: see "change log checkpoints" above for why
	 * that keeps exactly-once.  temp_buffers: staging tables stay in memory. */
	if ((*st = wh_exec(s->conn, "SET application_name = 'steward apply';"
				    " SET TIME ZONE 'UTC'; SET datestyle = 'ISO, YMD';"
				    " SET synchronous_commit = off; SET temp_buffers = '64MB'",
			   "could not configure the warehouse session", err, errlen)) != WH_OK ||
	    (*st = wh_schema_bootstrap(s->conn, s->schema, err, errlen)) != WH_OK)
		return status_exit(*st);
	for (size_t i = 0; i < cfg->nlogs; i++) {
		s->logs[i].dir = cfg->log_dirs[i];
		if ((rc = open_reader(&s->logs[i], NULL, err, errlen)) != STEWARD_EXIT_OK)
			return rc;
	}
	for (;;) {
		bool all_caught_up = true;
		for (size_t i = 0; i < cfg->nlogs && !stopping(cfg); i++) {
			log_state_t *l = &s->logs[i];
			l->caught_up = false;
			while (wh_batch_count(s->batch) < cfg->batch_size && !stopping(cfg)) {
				const Steward__Change *c;
				clog_status_t cs = clog_reader_next(l->reader, &c, err, errlen);
				if (cs == CLOG_END) {
					l->caught_up = true;
					break;
				}
				if (cs != CLOG_OK)
					return cs == CLOG_CORRUPT ? STEWARD_EXIT_DATAERR : STEWARD_EXIT_IOERR;
				bool reopen = false;
				*st = handle_record(s, l, c, &reopen, err, errlen);
				if (*st == WH_SCHEMA) {
					/* Keep what came before; the failing change waits. */
					char err2[1024];
					wh_status_t st2 = commit_batch(s, err2, sizeof(err2));
					if (st2 != WH_OK)
						log_error(AREA, "%s", err2);
					return status_exit(*st);
				}
				if (*st != WH_OK)
					return status_exit(*st);
				if (reopen) {
					source_state_t *ss = source_get(s, c->source ? c->source : "", st,
									err, errlen);
					if (!ss)
						return status_exit(*st);
					char hex[2 * POSITION_MAX + 1];
					position_hex(&ss->applied, hex, sizeof(hex));
					log_info(AREA, "resuming %s after %s", l->dir, hex);
					if ((rc = open_reader(l, &ss->applied, err, errlen)) != STEWARD_EXIT_OK)
						return rc;
				}
			}
			if (!l->caught_up)
				all_caught_up = false;
		}
		bool pending = wh_batch_count(s->batch) > 0;
		for (size_t i = 0; i < s->nsources && !pending; i++)
			pending = s->sources[i].pending_count > 0;
		if (pending && (all_caught_up || stopping(cfg) ||
				wh_batch_count(s->batch) >= cfg->batch_size)) {
			/* Asynchronous while more is waiting; a commit that catches
			 * up (or ends the run) is synchronous, so its position can be
			 * checkpointed at once. */
			bool sync = all_caught_up || stopping(cfg);
			if ((sync && (*st = wh_exec(s->conn, "SET synchronous_commit = on",
						    "could not configure the warehouse session",
						    err, errlen)) != WH_OK) ||
			    (*st = commit_batch(s, err, errlen)) != WH_OK ||
			    (sync && (*st = wh_exec(s->conn, "SET synchronous_commit = off",
						    "could not configure the warehouse session",
						    err, errlen)) != WH_OK))
				return status_exit(*st);
			continue;
		}
		if (stopping(cfg))
			return STEWARD_EXIT_OK;
		if (all_caught_up) {
			if (cfg->once)
				return STEWARD_EXIT_OK;
			sleep_ms(cfg, cfg->poll_ms);
		}
	}
}

static void
session_close(session_t *s)
{
	if (s->batch)
		wh_batch_abort(s->batch, s->conn);
	if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
		checkpoint_finish(s);
	wh_batch_free(s->batch);
	wh_schema_free(s->schema);
	for (size_t i = 0; i < s->cfg->nlogs; i++)
		clog_reader_close(s->logs[i].reader);
	free(s->logs);
	for (size_t i = 0; i < s->nsources; i++) {
		free(s->sources[i].name);
		free(s->sources[i].pending_text);
	}
	free(s->sources);
	adapter_free(&s->adapter);
	PQfinish(s->conn);
}

int
warehouse_run(const warehouse_config_t *cfg)
{
	int rc = STEWARD_EXIT_OK;
	uint64_t total = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int attempt = 0;; attempt++) {
		char err[2048] = "";
		wh_status_t st = WH_OK;
		session_t s = {.cfg = cfg};
		wh_schema_options_t so = {cfg->schema, cfg->modes, cfg->scd2};
		wh_batch_options_t bo = {cfg->modes, cfg->hard_delete, cfg->scd2};
		s.schema = wh_schema_create(&so);
		s.batch = wh_batch_create(&bo, s.schema);
		s.logs = xcalloc(cfg->nlogs, sizeof(*s.logs));
		adapter_init(&s.adapter);
		reader_name_init(&s);
		rc = session_run(&s, &st, err, sizeof(err));
		total += s.applied;
		if (s.applied > 0)
			attempt = 0;  /* progress was made: the retry budget starts over */
		session_close(&s);
		if (rc == STEWARD_EXIT_OK)
			break;
		if (st == WH_RETRY && !stopping(cfg) && (cfg->retries == 0 || attempt + 1 < cfg->retries)) {
			int delay = 500 << (attempt < 6 ? attempt : 6);
			if (delay > 30000)
				delay = 30000;
			log_warn(AREA, "%s; retrying in %d ms", err, delay);
			sleep_ms(cfg, delay);
			if (!stopping(cfg))
				continue;
			rc = STEWARD_EXIT_OK;
			break;
		}
		log_error(AREA, "%s", err);
		break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
	log_info(AREA, "applied %llu changes in %.3f s (%.0f changes/s)", (unsigned long long) total,
		 secs, secs > 0 ? (double) total / secs : 0.0);
	return rc;
}
