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

#include "buf.h"
#include "clog.h"
#include "exitcodes.h"
#include "log.h"
#include "position.h"
#include "redact.h"
#include "warehouse_batch.h"
#include "warehouse_feed.h"
#include "warehouse_schema.h"
#include "xalloc.h"

#define AREA "warehouse"

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
} log_state_t;

typedef struct session {
	const warehouse_config_t *cfg;
	PGconn *conn;
	wh_schema_t *schema;
	wh_batch_t *batch;
	wh_feed_t *feed;           /* reads the logs on its own thread */
	clog_reader_t **readers;   /* the feed's view of logs[i].reader */
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

/*
 * After a synchronous COMMIT: the server has flushed our commit record,
 * and with it every earlier one (the WAL is flushed in order), so every
 * candidate and the positions just committed are durable now.
 */
static void
checkpoint_synced(session_t *s)
{
	for (size_t i = 0; i < s->nsources; i++) {
		source_state_t *ss = &s->sources[i];
		durable_wait_t w = {true, 0, ss->pending, ss->log_dir};
		if (ss->pending_count)
			checkpoint_save(s, &w);
		else if (ss->newest.set)
			checkpoint_save(s, &ss->newest);
		else if (ss->oldest.set)
			checkpoint_save(s, &ss->oldest);
		ss->oldest.set = ss->newest.set = false;
	}
}

/* Commit the batch; sync: the session's synchronous_commit is on. */
static wh_status_t
commit_batch(session_t *s, bool sync, char *err, size_t errlen)
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
	if (sync)
		checkpoint_synced(s);
	else if (checkpoint_after_commit(s, ckerr, sizeof(ckerr)) != WH_OK) {
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

/* Apply one record of a chunk (or skip it when already applied). */
static wh_status_t
apply_record(session_t *s, const wh_chunk_t *ch, const wh_record_t *r, char *err, size_t errlen)
{
	wh_status_t st = WH_OK;
	source_state_t *ss = source_get(s, r->source, &st, err, errlen);
	if (!ss)
		return st;
	if (ss->found && position_cmp(&r->position, &ss->applied) <= 0)
		return WH_OK;
	for (size_t i = 0; i < r->n && st == WH_OK; i++)
		st = wh_batch_add(s->batch, s->conn, &ch->changes[r->first + i], err, errlen);
	if (st != WH_OK)
		return st;
	ss->pending = r->position;
	free(ss->pending_text);
	ss->pending_text = xstrdup(r->position_text);
	ss->log_dir = s->logs[r->log].dir;
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
 * Open l's reader where this warehouse left off: when its first record is
 * already applied, reopen after the stored position (records at or before
 * it are skipped by the reader); otherwise from the start.  Correctness
 * does not depend on it: apply_record skips applied records anyway.
 */
static int
resume_log(session_t *s, log_state_t *l, wh_status_t *st, char *err, size_t errlen)
{
	int rc = open_reader(l, NULL, err, errlen);
	if (rc != STEWARD_EXIT_OK)
		return rc;
	const Steward__Change *c;
	clog_status_t cs = clog_reader_next(l->reader, &c, err, errlen);
	if (cs == CLOG_END)
		return open_reader(l, NULL, err, errlen);
	if (cs != CLOG_OK)
		return cs == CLOG_CORRUPT ? STEWARD_EXIT_DATAERR : STEWARD_EXIT_IOERR;
	position_t pos = {0};
	if (c->has_position)
		position_set(&pos, c->position.data, c->position.len);
	source_state_t *ss = source_get(s, c->source ? c->source : "", st, err, errlen);
	if (!ss)
		return status_exit(*st);
	if (!ss->found || position_cmp(&pos, &ss->applied) > 0)
		return open_reader(l, NULL, err, errlen);
	char hex[2 * POSITION_MAX + 1];
	position_hex(&ss->applied, hex, sizeof(hex));
	log_info(AREA, "resuming %s after %s", l->dir, hex);
	return open_reader(l, &ss->applied, err, errlen);
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
		if ((rc = resume_log(s, &s->logs[i], st, err, errlen)) != STEWARD_EXIT_OK)
			return rc;
	}
	clog_reader_t **readers = xcalloc(cfg->nlogs, sizeof(*readers));
	for (size_t i = 0; i < cfg->nlogs; i++)
		readers[i] = s->logs[i].reader;
	wh_feed_config_t fc = {readers, cfg->nlogs, cfg->batch_size, cfg->once, cfg->poll_ms,
			       cfg->stop};
	s->feed = wh_feed_start(&fc);
	s->readers = readers;
	/* A batch (one warehouse transaction) is one or more chunks; the feed
	 * reads the next chunk meanwhile and says which one ends the batch. */
	for (;;) {
		wh_chunk_t *ch = wh_feed_next(s->feed);
		bool last = ch->last;
		bool sync = ch->caught_up || last;
		bool ch_ends_batch = ch->ends_batch;
		for (size_t i = 0; i < ch->nrecords; i++) {
			*st = apply_record(s, ch, &ch->records[i], err, errlen);
			if (*st == WH_SCHEMA) {
				/* Keep what came before; the failing change waits. */
				char err2[1024];
				wh_feed_release(s->feed, ch);
				wh_status_t st2 = commit_batch(s, false, err2, sizeof(err2));
				if (st2 != WH_OK)
					log_error(AREA, "%s", err2);
				return status_exit(*st);
			}
			if (*st != WH_OK) {
				wh_feed_release(s->feed, ch);
				return status_exit(*st);
			}
		}
		if (ch->rc != STEWARD_EXIT_OK) {
			/* As before the feed: what was read before a broken log is
			 * not committed; a restart re-reads it. */
			snprintf(err, errlen, "%s", ch->err);
			rc = ch->rc;
			wh_feed_release(s->feed, ch);
			return rc;
		}
		/* wh_batch_add copied what it keeps. */
		wh_feed_release(s->feed, ch);
		bool pending = wh_batch_count(s->batch) > 0;
		for (size_t i = 0; i < s->nsources && !pending; i++)
			pending = s->sources[i].pending_count > 0;
		if (pending && ch_ends_batch) {
			/* Asynchronous while more is waiting; a commit that catches
			 * up (or ends the run) is synchronous, so its position can be
			 * checkpointed at once. */
			if ((sync && (*st = wh_batch_pause(s->batch, s->conn, err, errlen)) != WH_OK) ||
			    (sync && (*st = wh_exec(s->conn, "SET synchronous_commit = on",
						    "could not configure the warehouse session",
						    err, errlen)) != WH_OK) ||
			    (*st = commit_batch(s, sync, err, errlen)) != WH_OK ||
			    (sync && (*st = wh_exec(s->conn, "SET synchronous_commit = off",
						    "could not configure the warehouse session",
						    err, errlen)) != WH_OK))
				return status_exit(*st);
		}
		if (last)
			return STEWARD_EXIT_OK;
	}
}

static void
session_close(session_t *s)
{
	/* Abort first: it forgets the schema's cached layouts, which point at
	 * the feed's interned names; then stop the feed, before the readers
	 * it borrows are closed. */
	if (s->batch)
		wh_batch_abort(s->batch, s->conn);
	wh_feed_stop(s->feed);
	free(s->readers);
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
