/*
 * capture_metrics.c — a capture agent's /metrics and /status; see
 * capture_metrics.h.  The hooks update counters under one mutex; a poller
 * thread refreshes the gauges once a second and queries the source for its
 * slot or binlog position every POLL_SOURCE_S seconds.
 */
#include "capture_metrics.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "buf.h"
#include "clog.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "mysql_capture.h"
#include "pg_conn.h"
#include "xalloc.h"

#define POLL_SOURCE_S 15
#define SERIES_CACHE 128
#define IDLE_AFTER_S 5.0

static const char *const state_names[] = {"starting", "snapshotting", "streaming",
					  "reconnecting", "stopped"};
#define NSTATES (sizeof(state_names) / sizeof(state_names[0]))
static const char *const wal_statuses[] = {"reserved", "extended", "unreserved", "lost"};
#define NWALSTATUS (sizeof(wal_statuses) / sizeof(wal_statuses[0]))

typedef struct table_series {
	char *table;
	int op;
	metrics_series_t *changes;   /* steward_capture_changes_total */
	metrics_series_t *snapshot;  /* steward_capture_snapshot_rows_total (snapshot op only) */
} table_series_t;

struct capture_metrics {
	const capture_config_t *cfg;
	bool mysql;
	metrics_t *reg;
	httpd_t *httpd;
	pthread_t poller;
	bool poller_started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	/* everything below under lock */
	char *source;                /* label value; NULL until known */
	capture_state_t state;
	double state_since;          /* wall seconds */
	char last_error[512];
	char position[128];          /* last durable position (text) */
	uint64_t changes, txns, batch_pending;
	int64_t last_commit_us;      /* commit time of the last captured change */
	double last_append_wall;     /* wall seconds of that append */
	table_series_t cache[SERIES_CACHE];
	size_t ncache;
	/* source-side gauges, refreshed by the poller */
	bool have_slot;
	double retained_wal, safe_wal;
	bool safe_wal_known;
	char wal_status[16];
	bool have_binlog;
	double binlog_behind;
	uint64_t changelog_bytes;
	/* families and fixed series */
	metrics_family_t *f_changes, *f_txns, *f_snapshot, *f_state, *f_lag, *f_commit, *f_flush,
		*f_batch, *f_size, *f_retained, *f_safe, *f_walstatus, *f_binlog;
	metrics_series_t *s_txns, *s_lag, *s_commit, *s_flush, *s_batch, *s_size, *s_binlog,
		*s_state[NSTATES], *s_retained, *s_safe, *s_walstatus[NWALSTATUS];
};

/* The installed instance (one per process, see the header). */
static capture_metrics_t *installed;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

static double
wall_now(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}

double
capture_metrics_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Per-source series, created once the source name is known.  Lock held. */
static void
source_series_init(capture_metrics_t *m, const char *source)
{
	const char *lv[] = {source};
	m->source = xstrdup(source);
	m->s_txns = metrics_series(m->f_txns, lv);
	m->s_lag = metrics_series(m->f_lag, lv);
	m->s_commit = metrics_series(m->f_commit, lv);
	m->s_flush = metrics_series(m->f_flush, lv);
	m->s_batch = metrics_series(m->f_batch, lv);
	m->s_size = metrics_series(m->f_size, lv);
	for (size_t i = 0; i < NSTATES; i++) {
		const char *sv[] = {source, state_names[i]};
		m->s_state[i] = metrics_series(m->f_state, sv);
	}
}

static const char *
op_name(int op)
{
	switch (op) {
	case STEWARD__OP__OP_INSERT: return "insert";
	case STEWARD__OP__OP_UPDATE: return "update";
	case STEWARD__OP__OP_DELETE: return "delete";
	case STEWARD__OP__OP_TRUNCATE: return "truncate";
	case STEWARD__OP__OP_SNAPSHOT_READ: return "snapshot";
	case STEWARD__OP__OP_MESSAGE: return "message";
	default: return "unknown";
	}
}

/* The series of (table, op), created on first use.  Lock held. */
static table_series_t *
table_series(capture_metrics_t *m, const char *table, int op)
{
	for (size_t i = 0; i < m->ncache; i++)
		if (m->cache[i].op == op && strcmp(m->cache[i].table, table) == 0)
			return &m->cache[i];
	/* Lock held, so one spill slot is enough when the cache is full. */
	static table_series_t spill;
	table_series_t *t = &spill;
	if (m->ncache < SERIES_CACHE) {
		t = &m->cache[m->ncache++];
		t->table = xstrdup(table);
	}
	t->op = op;
	const char *lv[] = {m->source, table, op_name(op)};
	t->changes = metrics_series(m->f_changes, lv);
	t->snapshot = NULL;
	if (op == STEWARD__OP__OP_SNAPSHOT_READ) {
		const char *sv[] = {m->source, table};
		t->snapshot = metrics_series(m->f_snapshot, sv);
	}
	return t;
}

/* Count n appended changes of one table and op.  table may be NULL. */
static void
count_appended(const char *source, const char *schema, const char *table, int op,
	       int64_t commit_ts_us, uint64_t n)
{
	pthread_mutex_lock(&install_lock);
	capture_metrics_t *m = installed;
	if (!m) {
		pthread_mutex_unlock(&install_lock);
		return;
	}
	pthread_mutex_lock(&m->lock);
	pthread_mutex_unlock(&install_lock);
	if (!m->source)
		source_series_init(m, source && *source ? source : "unknown");
	char name[256];
	if (op == STEWARD__OP__OP_MESSAGE || !table)
		snprintf(name, sizeof name, "%s", op == STEWARD__OP__OP_MESSAGE ? "(message)" : "(none)");
	else
		snprintf(name, sizeof name, "%s.%s", schema ? schema : "", table);
	table_series_t *t = table_series(m, name, op);
	metrics_add(t->changes, (double) n);
	if (t->snapshot)
		metrics_add(t->snapshot, (double) n);
	if (op == STEWARD__OP__OP_SNAPSHOT_READ && m->state != CAPTURE_STATE_SNAPSHOTTING) {
		m->state = CAPTURE_STATE_SNAPSHOTTING;
		m->state_since = wall_now();
	}
	m->changes += n;
	m->batch_pending += n;
	if (commit_ts_us > 0 && op != STEWARD__OP__OP_SNAPSHOT_READ) {
		m->last_commit_us = commit_ts_us;
		m->last_append_wall = wall_now();
	}
	pthread_mutex_unlock(&m->lock);
}

void
capture_metrics_on_append(const Steward__Change *c)
{
	count_appended(c->source, c->schema, c->table, c->op,
		       c->has_commit_ts_us ? c->commit_ts_us : 0, 1);
}

void
capture_metrics_on_append_rows(const char *source, const char *schema, const char *table,
			       Steward__Op op, int64_t commit_ts_us, uint64_t n)
{
	if (n)
		count_appended(source, schema, table, op, commit_ts_us, n);
}

void
capture_metrics_on_commit(void)
{
	pthread_mutex_lock(&install_lock);
	capture_metrics_t *m = installed;
	if (m) {
		pthread_mutex_lock(&m->lock);
		m->txns++;
		if (m->s_txns)
			metrics_add(m->s_txns, 1);
		pthread_mutex_unlock(&m->lock);
	}
	pthread_mutex_unlock(&install_lock);
}

void
capture_metrics_on_flush(double seconds, const char *position_text)
{
	pthread_mutex_lock(&install_lock);
	capture_metrics_t *m = installed;
	if (m) {
		pthread_mutex_lock(&m->lock);
		if (m->s_flush && m->batch_pending > 0) {
			metrics_observe(m->s_flush, seconds);
			metrics_observe(m->s_batch, (double) m->batch_pending);
		}
		m->batch_pending = 0;
		if (position_text)
			snprintf(m->position, sizeof m->position, "%s", position_text);
		pthread_mutex_unlock(&m->lock);
	}
	pthread_mutex_unlock(&install_lock);
}

void
capture_metrics_set_state(capture_state_t state, const char *error)
{
	pthread_mutex_lock(&install_lock);
	capture_metrics_t *m = installed;
	if (m) {
		pthread_mutex_lock(&m->lock);
		if (m->state != state)
			m->state_since = wall_now();
		m->state = state;
		if (error && *error)
			snprintf(m->last_error, sizeof m->last_error, "%s", error);
		else if (state == CAPTURE_STATE_STREAMING)
			m->last_error[0] = '\0';
		pthread_mutex_unlock(&m->lock);
	}
	pthread_mutex_unlock(&install_lock);
}

/* ---- source-side polling (own connection, poller thread only) ---- */

typedef struct poll_conn {
	PGconn *pg;
	pgcap_dsn_t *pg_dsn;
	mysql_dsn_t my_dsn;
	bool my_dsn_ok;
} poll_conn_t;

static void
poll_pg(capture_metrics_t *m, poll_conn_t *pc)
{
	char err[512];
	const char *slot = m->cfg->slot ? m->cfg->slot : "steward";
	if (!pc->pg_dsn && !(pc->pg_dsn = pgcap_dsn_parse(m->cfg->dsn, err, sizeof err)))
		return;
	if (pc->pg && PQstatus(pc->pg) != CONNECTION_OK) {
		PQfinish(pc->pg);
		pc->pg = NULL;
	}
	if (!pc->pg && !(pc->pg = pgcap_connect(pc->pg_dsn, false, err, sizeof err))) {
		log_debug("capture", "metrics: %s", err);
		return;
	}
	bool v13 = PQserverVersion(pc->pg) >= 130000;
	const char *sql = v13
		? "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8, "
		  "safe_wal_size::float8, wal_status FROM pg_replication_slots WHERE slot_name = $1"
		: "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8, NULL, NULL "
		  "FROM pg_replication_slots WHERE slot_name = $1";
	const char *params[] = {slot};
	PGresult *res = PQexecParams(pc->pg, sql, 1, NULL, params, NULL, NULL, 0);
	pthread_mutex_lock(&m->lock);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		m->have_slot = true;
		m->retained_wal = PQgetisnull(res, 0, 0) ? 0 : atof(PQgetvalue(res, 0, 0));
		m->safe_wal_known = !PQgetisnull(res, 0, 1);
		m->safe_wal = m->safe_wal_known ? atof(PQgetvalue(res, 0, 1)) : 0;
		snprintf(m->wal_status, sizeof m->wal_status, "%s",
			 PQgetisnull(res, 0, 2) ? "" : PQgetvalue(res, 0, 2));
	} else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_debug("capture", "metrics: could not read pg_replication_slots: %s",
			  PQerrorMessage(pc->pg));
	}
	pthread_mutex_unlock(&m->lock);
	PQclear(res);
}

static void
poll_mysql(capture_metrics_t *m, poll_conn_t *pc)
{
	char err[512];
	mysql_resume_t res;
	if (!pc->my_dsn_ok && !(pc->my_dsn_ok = mysql_dsn_parse(m->cfg->dsn, &pc->my_dsn, err,
								  sizeof err)))
		return;
	if (!m->cfg->data_dir || !mysql_resume_load(m->cfg->data_dir, &res, err, sizeof err))
		return;
	const char *file = res.file;
	uint64_t pos = res.offset;
	MYSQL *my = mysql_conn_open(&pc->my_dsn, 10, err, sizeof err);
	MYSQL_RES *r = NULL;
	MYSQL_ROW row;
	if (!my) {
		log_debug("capture", "metrics: %s", err);
		goto out;
	}
	if (mysql_query(my, "SHOW BINARY LOGS") != 0 || !(r = mysql_store_result(my)))
		goto out;
	uint64_t ours = mysql_binlog_file_no(file);
	double behind = 0;
	while ((row = mysql_fetch_row(r)) != NULL) {
		if (!row[0] || !row[1])
			continue;
		uint64_t no = mysql_binlog_file_no(row[0]);
		double size = atof(row[1]);
		if (no == ours)
			behind += size > (double) pos ? size - (double) pos : 0;
		else if (no > ours)
			behind += size;
	}
	pthread_mutex_lock(&m->lock);
	m->have_binlog = true;
	m->binlog_behind = behind;
	pthread_mutex_unlock(&m->lock);
out:
	if (r)
		mysql_free_result(r);
	if (my)
		mysql_close(my);
	mysql_resume_clear(&res);
}

/* Refresh the gauges from the counters.  Lock held. */
static void
refresh_gauges(capture_metrics_t *m, double now)
{
	if (!m->source) {
		if (!m->cfg->source_name)
			return;
		source_series_init(m, m->cfg->source_name);
	}
	for (size_t i = 0; i < NSTATES; i++)
		metrics_set(m->s_state[i], (size_t) m->state == i ? 1 : 0);
	double lag = 0;
	double delay = m->last_commit_us ? m->last_append_wall - (double) m->last_commit_us / 1e6 : 0;
	if (delay < 0)
		delay = 0;
	if (m->state == CAPTURE_STATE_SNAPSHOTTING)
		lag = now - m->state_since;
	else if (m->state == CAPTURE_STATE_STREAMING)
		lag = m->last_append_wall && now - m->last_append_wall < IDLE_AFTER_S ? delay : 0;
	else if (m->last_append_wall)
		lag = now - m->last_append_wall + delay;  /* not reading: the gap grows */
	metrics_set(m->s_lag, lag);
	if (m->last_commit_us)
		metrics_set(m->s_commit, (double) m->last_commit_us / 1e6);
	metrics_set(m->s_size, (double) m->changelog_bytes);
	if (m->have_slot) {
		const char *slot = m->cfg->slot ? m->cfg->slot : "steward";
		const char *lv[] = {m->source, slot};
		if (!m->s_retained)
			m->s_retained = metrics_series(m->f_retained, lv);
		metrics_set(m->s_retained, m->retained_wal);
		if (m->safe_wal_known) {
			if (!m->s_safe)
				m->s_safe = metrics_series(m->f_safe, lv);
			metrics_set(m->s_safe, m->safe_wal);
		}
		if (m->wal_status[0]) {
			for (size_t i = 0; i < NWALSTATUS; i++) {
				const char *sv[] = {m->source, slot, wal_statuses[i]};
				if (!m->s_walstatus[i])
					m->s_walstatus[i] = metrics_series(m->f_walstatus, sv);
				metrics_set(m->s_walstatus[i],
					    strcmp(m->wal_status, wal_statuses[i]) == 0 ? 1 : 0);
			}
		}
	}
	if (m->have_binlog) {
		const char *lv[] = {m->source};
		if (!m->s_binlog)
			m->s_binlog = metrics_series(m->f_binlog, lv);
		metrics_set(m->s_binlog, m->binlog_behind);
	}
}

static void *
poller_main(void *arg)
{
	capture_metrics_t *m = arg;
	poll_conn_t pc;
	memset(&pc, 0, sizeof pc);
	double next_source = capture_metrics_now() + 2;
	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		double mono = capture_metrics_now();
		bool poll_source = mono >= next_source && !m->cfg->check &&
				   m->state != CAPTURE_STATE_STARTING;
		pthread_mutex_unlock(&m->lock);
		uint64_t size = m->cfg->data_dir ? clog_size_bytes(m->cfg->data_dir) : 0;
		if (poll_source) {
			if (m->mysql)
				poll_mysql(m, &pc);
			else
				poll_pg(m, &pc);
			next_source = mono + POLL_SOURCE_S;
		}
		pthread_mutex_lock(&m->lock);
		m->changelog_bytes = size;
		refresh_gauges(m, wall_now());
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (!m->stopping)
			pthread_cond_timedwait(&m->wake, &m->lock, &until);
	}
	pthread_mutex_unlock(&m->lock);
	if (pc.pg)
		PQfinish(pc.pg);
	pgcap_dsn_free(pc.pg_dsn);
	if (pc.my_dsn_ok)
		mysql_dsn_clear(&pc.my_dsn);
	return NULL;
}

/* ---- GET /status ---- */

static void
json_str(buf_t *b, const char *s)
{
	if (!s) {
		buf_append_str(b, "null");
		return;
	}
	buf_append_char(b, '"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char) *s;
		if (ch == '"' || ch == '\\') {
			buf_append_char(b, '\\');
			buf_append_char(b, (char) ch);
		} else if (ch < 0x20) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\u%04x", ch);
			buf_append_str(b, esc);
		} else {
			buf_append_char(b, (char) ch);
		}
	}
	buf_append_char(b, '"');
}

static void
status_json(capture_metrics_t *m, buf_t *b)
{
	char num[128];
	pthread_mutex_lock(&m->lock);
	double lag = m->s_lag ? metrics_value(m->s_lag) : 0;
	buf_append_str(b, "{\"source\":");
	json_str(b, m->source ? m->source : m->cfg->source_name);
	buf_append_str(b, ",\"kind\":");
	json_str(b, m->mysql ? "mysql" : "postgresql");
	buf_append_str(b, ",\"state\":");
	json_str(b, state_names[m->state]);
	snprintf(num, sizeof num, ",\"lag_seconds\":%.3f,\"changes_total\":%llu,"
		 "\"transactions_total\":%llu,\"changelog_bytes\":%llu", lag,
		 (unsigned long long) m->changes, (unsigned long long) m->txns,
		 (unsigned long long) m->changelog_bytes);
	buf_append_str(b, num);
	buf_append_str(b, ",\"position\":");
	json_str(b, m->position[0] ? m->position : NULL);
	buf_append_str(b, ",\"last_error\":");
	json_str(b, m->last_error[0] ? m->last_error : NULL);
	if (m->have_slot) {
		buf_append_str(b, ",\"slot\":{\"name\":");
		json_str(b, m->cfg->slot ? m->cfg->slot : "steward");
		snprintf(num, sizeof num, ",\"retained_wal_bytes\":%.0f,\"safe_wal_size_bytes\":",
			 m->retained_wal);
		buf_append_str(b, num);
		if (m->safe_wal_known) {
			snprintf(num, sizeof num, "%.0f", m->safe_wal);
			buf_append_str(b, num);
		} else {
			buf_append_str(b, "null");
		}
		buf_append_str(b, ",\"wal_status\":");
		json_str(b, m->wal_status[0] ? m->wal_status : NULL);
		buf_append_char(b, '}');
	}
	if (m->have_binlog) {
		snprintf(num, sizeof num, ",\"binlog_behind_bytes\":%.0f", m->binlog_behind);
		buf_append_str(b, num);
	}
	snprintf(num, sizeof num, ",\"time_ms\":%lld}\n", (long long) (wall_now() * 1000));
	buf_append_str(b, num);
	pthread_mutex_unlock(&m->lock);
}

static int
http_handler(void *ctx, const httpd_request_t *req, httpd_response_t *resp)
{
	capture_metrics_t *m = ctx;
	if (strcmp(req->method, "GET") != 0 || strcmp(req->path, "/status") != 0)
		return 1;
	status_json(m, &resp->body);
	resp->content_type = "application/json";
	return 0;
}

/* ---- lifecycle ---- */

capture_metrics_t *
capture_metrics_start(const capture_config_t *cfg, char *err, size_t errlen)
{
	capture_metrics_t *m = xcalloc(1, sizeof *m);
	m->cfg = cfg;
	m->mysql = cfg->dsn && capture_dsn_is_mysql(cfg->dsn);
	m->state_since = wall_now();
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	metrics_t *r = m->reg = metrics_create();
	m->f_changes = metrics_family(r, "steward_capture_changes_total", METRICS_COUNTER,
				      "Changes appended to the change log", "source,table,op", NULL, 0);
	m->f_txns = metrics_family(r, "steward_capture_transactions_total", METRICS_COUNTER,
				   "Source transactions captured", "source", NULL, 0);
	m->f_snapshot = metrics_family(r, "steward_capture_snapshot_rows_total", METRICS_COUNTER,
				       "Rows read by the initial snapshot", "source,table", NULL, 0);
	m->f_state = metrics_family(r, "steward_capture_state", METRICS_GAUGE,
				    "1 for the agent's current state", "source,state", NULL, 0);
	m->f_lag = metrics_family(r, "steward_capture_lag_seconds", METRICS_GAUGE,
				  "Now minus the commit time of the last captured change (0 when "
				  "caught up)", "source", NULL, 0);
	m->f_commit = metrics_family(r, "steward_capture_last_commit_timestamp_seconds",
				     METRICS_GAUGE, "Commit time of the last captured change",
				     "source", NULL, 0);
	m->f_flush = metrics_family(r, "steward_capture_flush_duration_seconds", METRICS_HISTOGRAM,
				    "Time to make a batch durable (write and fdatasync)", "source",
				    METRICS_LATENCY_BUCKETS, METRICS_LATENCY_NBUCKETS);
	m->f_batch = metrics_family(r, "steward_capture_batch_changes", METRICS_HISTOGRAM,
				    "Changes per durable flush", "source", METRICS_SIZE_BUCKETS,
				    METRICS_SIZE_NBUCKETS);
	m->f_size = metrics_family(r, "steward_changelog_size_bytes", METRICS_GAUGE,
				   "Bytes of change-log segments on disk", "source", NULL, 0);
	m->f_retained = metrics_family(r, "steward_pg_slot_retained_wal_bytes", METRICS_GAUGE,
				       "WAL the replication slot holds back", "source,slot", NULL, 0);
	m->f_safe = metrics_family(r, "steward_pg_slot_safe_wal_size_bytes", METRICS_GAUGE,
				   "WAL that can still be written before the slot is lost",
				   "source,slot", NULL, 0);
	m->f_walstatus = metrics_family(r, "steward_pg_slot_wal_status", METRICS_GAUGE,
					"1 for the slot's current wal_status", "source,slot,status",
					NULL, 0);
	m->f_binlog = metrics_family(r, "steward_mysql_binlog_behind_bytes", METRICS_GAUGE,
				     "Bytes of binlog between the server's position and ours",
				     "source", NULL, 0);
	pthread_mutex_lock(&m->lock);
	if (cfg->source_name)
		source_series_init(m, cfg->source_name);
	pthread_mutex_unlock(&m->lock);
	m->httpd = httpd_start(cfg->metrics_listen, m->reg, http_handler, m, err, errlen);
	if (!m->httpd) {
		capture_metrics_stop(m);
		return NULL;
	}
	if (pthread_create(&m->poller, NULL, poller_main, m) == 0)
		m->poller_started = true;
	pthread_mutex_lock(&install_lock);
	installed = m;
	pthread_mutex_unlock(&install_lock);
	log_info("capture", "metrics and status on http://%s/metrics",
		 cfg->metrics_listen);
	return m;
}

void
capture_metrics_stop(capture_metrics_t *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&install_lock);
	if (installed == m)
		installed = NULL;
	pthread_mutex_unlock(&install_lock);
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	if (m->poller_started)
		pthread_join(m->poller, NULL);
	httpd_stop(m->httpd);
	metrics_destroy(m->reg);
	for (size_t i = 0; i < m->ncache; i++)
		free(m->cache[i].table);
	free(m->source);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
