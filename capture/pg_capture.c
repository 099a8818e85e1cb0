/*
 * pg_capture.c — `steward capture` for PostgreSQL: pg_capture_run wires
 * the connections, the change log, the slot and publication, the initial
 * snapshot and the streaming loop together, and reconnects with bounded
 * exponential backoff when the connection is lost.
 *
 * Snapshot state lives next to the change log in DIR/postgresql-snapshot
 * (written atomically: temp file, fsync, rename, fsync of the directory):
 *   slot=NAME
 *   state=started|done
 *   consistent_lsn=X/X
 * "started" is written before the slot is created, "done" after the
 * snapshot's last record is durable.  A restart that finds "started"
 * drops the slot and redoes the snapshot, prefixed by a truncate record
 * so the interrupted copy is superseded.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "capture_metrics.h"
#include "exitcodes.h"
#include "log.h"
#include "pg_agent.h"
#include "pg_check.h"
#include "pg_slot.h"
#include "pg_snapshot.h"
#include "pg_stream.h"
#include "xalloc.h"

#define RECONNECT_MAX_ATTEMPTS 10
#define RECONNECT_MAX_DELAY_MS 30000
#define MARKER_FILE "postgresql-snapshot"

static volatile sig_atomic_t stop_signal;

static void
on_stop_signal(int sig)
{
	stop_signal = sig;
}

bool
pgcap_stop_requested(void)
{
	return stop_signal != 0;
}

int
pgcap_status_exit(pgcap_status_t st)
{
	switch (st) {
	case PGCAP_OK:
	case PGCAP_STOPPED: return STEWARD_EXIT_OK;
	case PGCAP_RETRY:
	case PGCAP_UNAVAILABLE: return STEWARD_EXIT_UNAVAILABLE;
	case PGCAP_IOERR: return STEWARD_EXIT_IOERR;
	case PGCAP_DATAERR: return STEWARD_EXIT_DATAERR;
	case PGCAP_CONFIG: return STEWARD_EXIT_CONFIG;
	case PGCAP_CHECK_PROBLEMS: return STEWARD_EXIT_CHECK_FAILED;
	default: return STEWARD_EXIT_FAILURE;
	}
}

pgcap_status_t
pgcap_append(pgcap_agent_t *ag, const Steward__Change *c, char *err, size_t errlen)
{
	clog_status_t cs = clog_writer_append(ag->log, c, err, errlen);
	if (cs == CLOG_OK)
		capture_metrics_on_append(c);
	arena_reset(ag->arena);
	if (cs == CLOG_OK || cs == CLOG_DUPLICATE)
		return PGCAP_OK;
	return PGCAP_IOERR;
}

/* ---- snapshot marker ---- */

typedef enum marker_state { MARKER_NONE, MARKER_STARTED, MARKER_DONE } marker_state_t;

static marker_state_t
marker_read(const char *dir, char *slot, size_t slotlen)
{
	char *path = xasprintf("%s/%s", dir, MARKER_FILE);
	marker_state_t state = MARKER_NONE;
	char line[256];
	FILE *f = fopen(path, "r");
	if (f == NULL)
		goto out;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "slot=", 5) == 0 && strlen(line + 5) < slotlen)
			memcpy(slot, line + 5, strlen(line + 5) + 1);
		else if (strcmp(line, "state=done") == 0)
			state = MARKER_DONE;
		else if (strcmp(line, "state=started") == 0)
			state = MARKER_STARTED;
	}
	fclose(f);
out:
	free(path);
	return state;
}

static pgcap_status_t
marker_write(const char *dir, const char *slot, marker_state_t state, uint64_t lsn,
	     char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", dir, MARKER_FILE);
	char *tmp = xasprintf("%s.tmp", path);
	pgcap_status_t st = PGCAP_IOERR;
	int fd = -1, dfd = -1;
	char *text = xasprintf("slot=%s\nstate=%s\nconsistent_lsn=%X/%X\n", slot,
			       state == MARKER_DONE ? "done" : "started", PGCAP_LSN_ARGS(lsn));
	size_t len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, len) != (ssize_t) len || fsync(fd) != 0) {
		snprintf(err, errlen, "could not write file \"%s\": %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "could not rename file \"%s\": %s", tmp, strerror(errno));
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		snprintf(err, errlen, "could not fsync directory \"%s\": %s", dir, strerror(errno));
		goto out;
	}
	st = PGCAP_OK;
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(text);
	free(tmp);
	free(path);
	return st;
}

/* ---- connections ---- */

static pgcap_status_t
connect_all(pgcap_agent_t *ag, char *err, size_t errlen)
{
	if (ag->query == NULL) {
		ag->query = pgcap_connect(ag->dsn, false, err, errlen);
		if (ag->query == NULL)
			return PGCAP_RETRY;
		ag->server_version = PQserverVersion(ag->query);
		pgcap_schema_set_conn(ag->schema, ag->query);
	}
	if (ag->repl == NULL) {
		ag->repl = pgcap_connect(ag->dsn, true, err, errlen);
		if (ag->repl == NULL)
			return PGCAP_RETRY;
	}
	return PGCAP_OK;
}

static void
disconnect_all(pgcap_agent_t *ag)
{
	if (ag->repl)
		PQfinish(ag->repl);
	if (ag->query)
		PQfinish(ag->query);
	ag->repl = ag->query = NULL;
}

static pgcap_status_t
load_database(pgcap_agent_t *ag, char *err, size_t errlen)
{
	PGresult *res = PQexec(ag->query, "SELECT current_database()");
	pgcap_status_t st = PGCAP_OK;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		pgcap_error(ag->dsn, "could not read the database name", PQerrorMessage(ag->query),
			    err, errlen);
		st = PGCAP_FAILURE;
		goto out;
	}
	ag->database = xstrdup(PQgetvalue(res, 0, 0));
out:
	PQclear(res);
	return st;
}

/* Sleep ms, waking early on a stop request. */
static void
sleep_interruptible(int64_t ms)
{
	int64_t until = pgcap_monotonic_ms() + ms;
	while (!pgcap_stop_requested() && pgcap_monotonic_ms() < until)
		usleep(100 * 1000);
}

/* ---- slot, snapshot ---- */

static pgcap_status_t
create_and_snapshot(pgcap_agent_t *ag, bool reset_first, char *err, size_t errlen)
{
	char snapshot_name[64] = "";
	uint64_t consistent = 0;
	bool snapshot = !ag->cfg->no_snapshot;
	pgcap_status_t st = marker_write(ag->cfg->data_dir, ag->slot, MARKER_STARTED, 0, err, errlen);
	if (st != PGCAP_OK)
		return st;
	st = pgcap_slot_create(ag, snapshot ? snapshot_name : NULL, &consistent, err, errlen);
	if (st != PGCAP_OK)
		return st;
	if (snapshot) {
		st = pgcap_snapshot_run(ag, snapshot_name, consistent, reset_first, err, errlen);
		if (st == PGCAP_STOPPED)
			log_warn("capture", "snapshot interrupted; it will be redone on the next start");
		if (st != PGCAP_OK)
			return st;
	}
	return marker_write(ag->cfg->data_dir, ag->slot, MARKER_DONE, consistent, err, errlen);
}

/* Decide between reusing the slot, redoing an interrupted snapshot, or starting fresh. */
static pgcap_status_t
prepare_slot(pgcap_agent_t *ag, char *err, size_t errlen)
{
	char marker_slot[128] = "";
	marker_state_t marker = marker_read(ag->cfg->data_dir, marker_slot, sizeof(marker_slot));
	position_t last;
	bool has_log = clog_writer_last_position(ag->log, &last);
	pgcap_slot_info_t info;
	pgcap_status_t st;

	if (marker != MARKER_NONE && strcmp(marker_slot, ag->slot) != 0) {
		snprintf(err, errlen,
			 "data directory \"%s\" holds changes from replication slot \"%s\", not "
			 "\"%s\": use --slot %s or another data directory",
			 ag->cfg->data_dir, marker_slot, ag->slot, marker_slot);
		return PGCAP_CONFIG;
	}
	if ((st = pgcap_slot_lookup(ag, &info, err, errlen)) != PGCAP_OK)
		return st;
	if (info.exists) {
		if (!info.logical || strcmp(info.plugin, "pgoutput") != 0 ||
		    strcmp(info.database, ag->database) != 0) {
			snprintf(err, errlen,
				 "replication slot \"%s\" exists but is not a pgoutput logical slot "
				 "of database \"%s\" (plugin \"%s\", database \"%s\"): choose another "
				 "--slot or drop it (SELECT pg_drop_replication_slot('%s'))",
				 ag->slot, ag->database, info.plugin, info.database, ag->slot);
			return PGCAP_CONFIG;
		}
		if (marker == MARKER_DONE)
			return PGCAP_OK;
		if (marker == MARKER_STARTED) {
			log_warn("capture", "the initial snapshot into \"%s\" did not finish; dropping "
				 "replication slot \"%s\" to redo it", ag->cfg->data_dir, ag->slot);
			if ((st = pgcap_slot_drop(ag, err, errlen)) != PGCAP_OK)
				return st;
			return create_and_snapshot(ag, has_log, err, errlen);
		}
		if (has_log || ag->cfg->no_snapshot) {
			log_info("capture", "reusing replication slot \"%s\" (confirmed %X/%X)",
				 ag->slot, PGCAP_LSN_ARGS(info.confirmed_flush));
			return marker_write(ag->cfg->data_dir, ag->slot, MARKER_DONE,
					    info.confirmed_flush, err, errlen);
		}
		snprintf(err, errlen,
			 "replication slot \"%s\" already exists but its initial snapshot is not in "
			 "\"%s\": use --no-snapshot to stream from the slot, or drop it "
			 "(SELECT pg_drop_replication_slot('%s')) so a consistent snapshot can be taken",
			 ag->slot, ag->cfg->data_dir, ag->slot);
		return PGCAP_CONFIG;
	}
	if (marker == MARKER_DONE || (marker == MARKER_NONE && has_log)) {
		snprintf(err, errlen,
			 "replication slot \"%s\" does not exist but \"%s\" already holds changes "
			 "captured through it: the slot was dropped and changes since its last "
			 "acknowledged position may be lost; start over with a new data directory",
			 ag->slot, ag->cfg->data_dir);
		return PGCAP_UNAVAILABLE;
	}
	return create_and_snapshot(ag, has_log, err, errlen);
}

/* Stream, reconnecting with exponential backoff (1 s doubling to 30 s, 10 attempts). */
static pgcap_status_t
stream_with_reconnect(pgcap_agent_t *ag, char *err, size_t errlen)
{
	int attempts = 0;
	int64_t delay_ms = 1000;
	for (;;) {
		bool progressed = false;
		pgcap_status_t st = connect_all(ag, err, errlen);
		if (st == PGCAP_OK)
			st = pgcap_stream_run(ag, &progressed, err, errlen);
		if (st != PGCAP_RETRY)
			return st;
		if (progressed) {
			attempts = 0;
			delay_ms = 1000;
		}
		if (pgcap_stop_requested())
			return PGCAP_STOPPED;
		if (++attempts > RECONNECT_MAX_ATTEMPTS) {
			size_t l = strlen(err);
			snprintf(err + l, errlen - l, " (gave up after %d reconnection attempts)",
				 RECONNECT_MAX_ATTEMPTS);
			return PGCAP_UNAVAILABLE;
		}
		capture_metrics_set_state(CAPTURE_STATE_RECONNECTING, err);
		log_warn("capture", "%s; reconnecting in %lld ms (attempt %d of %d)", err,
			 (long long) delay_ms, attempts, RECONNECT_MAX_ATTEMPTS);
		disconnect_all(ag);
		pgcap_schema_forget_relations(ag->schema);
		sleep_interruptible(delay_ms);
		delay_ms = delay_ms * 2 > RECONNECT_MAX_DELAY_MS ? RECONNECT_MAX_DELAY_MS : delay_ms * 2;
	}
}

static void
install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;  /* no SA_RESTART: select() must wake up */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int
pg_capture_run(const capture_config_t *cfg)
{
	char err[2048] = "";
	pgcap_agent_t ag;
	pgcap_status_t st = PGCAP_OK;
	int code;

	memset(&ag, 0, sizeof(ag));
	ag.cfg = cfg;
	ag.slot = cfg->slot ? cfg->slot : "steward";
	ag.publication = cfg->publication ? cfg->publication : "steward";
	ag.default_publication = cfg->publication == NULL;
	ag.status_interval_ms = cfg->status_interval_ms > 0 ? cfg->status_interval_ms : 1000;
	if (!pgcap_slot_name_valid(ag.slot)) {
		fprintf(stderr, "steward capture: invalid replication slot name \"%s\": use 1 to 63 "
				"lower-case letters, digits and underscores\n", ag.slot);
		return STEWARD_EXIT_USAGE;
	}
	if (cfg->endpos) {
		if (!pgcap_lsn_parse(cfg->endpos, &ag.endpos)) {
			fprintf(stderr, "steward capture: invalid --endpos \"%s\": expected an LSN "
					"such as 0/16B3748\n", cfg->endpos);
			return STEWARD_EXIT_USAGE;
		}
		ag.has_endpos = true;
	}
	install_signals();
	ag.dsn = pgcap_dsn_parse(cfg->dsn, err, sizeof(err));
	if (ag.dsn == NULL) {
		st = PGCAP_CONFIG;
		goto out;
	}
	ag.schema = pgcap_schema_create(NULL);
	ag.arena = arena_create(256 * 1024);
	ag.query = pgcap_connect(ag.dsn, false, err, sizeof(err));
	if (ag.query == NULL) {
		st = PGCAP_UNAVAILABLE;
		goto out;
	}
	ag.server_version = PQserverVersion(ag.query);
	pgcap_schema_set_conn(ag.schema, ag.query);
	if (cfg->check) {
		st = pgcap_check_run(&ag, stdout, err, sizeof(err));
		goto out;
	}
	if (ag.server_version < 100000) {
		snprintf(err, sizeof(err), "PostgreSQL %d is not supported: version 10 or later is "
			 "needed for pgoutput", ag.server_version / 10000);
		st = PGCAP_CONFIG;
		goto out;
	}
	if ((st = load_database(&ag, err, sizeof(err))) != PGCAP_OK)
		goto out;
	ag.source.name = cfg->source_name ? cfg->source_name : ag.database;
	ag.source.database = ag.database;
	if (clog_writer_open(cfg->data_dir, NULL, &ag.log, err, sizeof(err)) != CLOG_OK) {
		st = PGCAP_IOERR;
		goto out;
	}
	if ((st = pgcap_publication_ensure(&ag, err, sizeof(err))) != PGCAP_OK)
		goto out;
	if ((st = connect_all(&ag, err, sizeof(err))) != PGCAP_OK) {
		st = PGCAP_UNAVAILABLE;
		goto out;
	}
	if ((st = prepare_slot(&ag, err, sizeof(err))) != PGCAP_OK) {
		if (st == PGCAP_RETRY)
			st = PGCAP_UNAVAILABLE;
		goto out;
	}
	st = stream_with_reconnect(&ag, err, sizeof(err));
out:
	if (ag.log && st != PGCAP_IOERR) {
		char ferr[512];
		if (clog_writer_flush(ag.log, ferr, sizeof(ferr)) != CLOG_OK && st == PGCAP_STOPPED) {
			snprintf(err, sizeof(err), "%s", ferr);
			st = PGCAP_IOERR;
		}
	}
	code = pgcap_status_exit(st);
	if (code != STEWARD_EXIT_OK && code != STEWARD_EXIT_CHECK_FAILED && err[0])
		log_error("capture", "%s", err);
	if (st == PGCAP_STOPPED && stop_signal)
		log_info("capture", "stopped by signal %d", (int) stop_signal);
	clog_writer_close(ag.log);
	disconnect_all(&ag);
	arena_destroy(ag.arena);
	pgcap_schema_destroy(ag.schema);
	pgcap_dsn_free(ag.dsn);
	free(ag.database);
	return code;
}
