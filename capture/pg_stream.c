/*
 * pg_stream.c — the streaming replication loop; see pg_stream.h.
 *
 * Replication stream messages (inside CopyData, all integers big-endian):
 *   XLogData        'w' Int64 dataStart, Int64 walEnd, Int64 sendTime, payload
 *   keepalive       'k' Int64 walEnd, Int64 sendTime, Byte1 replyRequested
 *   status update   'r' Int64 written, Int64 flushed, Int64 applied,
 *                       Int64 sendTime (µs since 2000), Byte1 replyRequested
 */
#include "pg_stream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "buf.h"
#include "capture_metrics.h"
#include "log.h"
#include "pgoutput.h"
#include "xalloc.h"

typedef struct stream {
	pgcap_agent_t *ag;
	pgcap_txn_t txn;
	bool in_txn;
	uint64_t last_commit_end;   /* end LSN of the last commit fully appended */
	uint64_t heartbeat_lsn;     /* keepalive walEnd seen while nothing was in flight */
	uint64_t acked_lsn;         /* last flush position sent */
	bool appended;              /* appended since the last flush */
	bool endpos_reached;
	uint64_t changes;           /* counters for the periodic log line */
	uint64_t txns;
	int64_t next_status_ms;
	int64_t next_log_ms;
	arena_t *msg_arena;         /* pgoutput arrays; reset per message */
	const pgcap_relation_t **trunc_rels;
	size_t trunc_cap;
} stream_t;

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t) v;
		v >>= 8;
	}
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static pgcap_status_t
send_status(stream_t *s, uint64_t lsn, bool reply, char *err, size_t errlen)
{
	PGconn *conn = s->ag->repl;
	uint8_t msg[1 + 8 + 8 + 8 + 8 + 1];
	msg[0] = 'r';
	put_be64(msg + 1, lsn);   /* written */
	put_be64(msg + 9, lsn);   /* flushed: durable in the change log */
	put_be64(msg + 17, lsn);  /* applied */
	put_be64(msg + 25, (uint64_t) (pgcap_now_us() - PGOUTPUT_EPOCH_OFFSET_US));
	msg[33] = reply ? 1 : 0;
	if (PQputCopyData(conn, (const char *) msg, sizeof(msg)) <= 0 || PQflush(conn) != 0) {
		pgcap_error(s->ag->dsn, "could not send a status update", PQerrorMessage(conn),
			    err, errlen);
		return PGCAP_RETRY;
	}
	return PGCAP_OK;
}

/*
 * Make everything appended durable, then acknowledge: the promise of
 * pg_stream.h is kept here.  last_commit_end only ever names a commit
 * whose changes were appended before this flush.
 */
static pgcap_status_t
stream_ack(stream_t *s, char *err, size_t errlen)
{
	if (s->appended || clog_writer_pending_bytes(s->ag->log) > 0) {
		double t0 = capture_metrics_now();
		if (clog_writer_flush(s->ag->log, err, errlen) != CLOG_OK)
			return PGCAP_IOERR;
		s->appended = false;
		char lsn_text[40];
		snprintf(lsn_text, sizeof lsn_text, "%X/%X", PGCAP_LSN_ARGS(s->last_commit_end));
		capture_metrics_on_flush(capture_metrics_now() - t0, lsn_text);
	}
	uint64_t lsn = s->last_commit_end;
	if (!s->in_txn && s->heartbeat_lsn > lsn)
		lsn = s->heartbeat_lsn;
	if (lsn < s->acked_lsn)
		lsn = s->acked_lsn;
	pgcap_status_t st = send_status(s, lsn, false, err, errlen);
	if (st == PGCAP_OK) {
		if (lsn != s->acked_lsn)
			log_debug("capture", "acknowledged %X/%X", PGCAP_LSN_ARGS(lsn));
		s->acked_lsn = lsn;
	}
	s->next_status_ms = pgcap_monotonic_ms() + s->ag->status_interval_ms;
	return st;
}

static pgcap_status_t
append(stream_t *s, const Steward__Change *c, char *err, size_t errlen)
{
	pgcap_status_t st = pgcap_append(s->ag, c, err, errlen);
	if (st == PGCAP_OK) {
		s->appended = true;
		s->changes++;
	}
	return st;
}

static pgcap_status_t
relation_for(stream_t *s, uint32_t relid, const pgcap_relation_t **rel, char *err,
	     size_t errlen)
{
	*rel = pgcap_schema_relation(s->ag->schema, relid);
	if (*rel == NULL) {
		snprintf(err, errlen,
			 "change for relation %u at %X/%X arrived before its relation message",
			 relid, PGCAP_LSN_ARGS(s->txn.final_lsn));
		return PGCAP_DATAERR;
	}
	return PGCAP_OK;
}

static pgcap_status_t
handle_message(stream_t *s, const pgoutput_msg_t *m, char *err, size_t errlen)
{
	pgcap_agent_t *ag = s->ag;
	const pgcap_relation_t *rel;
	Steward__Change c;
	pgcap_status_t st = PGCAP_OK;

	switch (m->type) {
	case PGOUTPUT_BEGIN:
		if (ag->has_endpos && m->u.begin.final_lsn > ag->endpos) {
			s->endpos_reached = true;
			return PGCAP_OK;
		}
		s->in_txn = true;
		s->txn.final_lsn = m->u.begin.final_lsn;
		s->txn.commit_ts_us = m->u.begin.commit_ts + PGOUTPUT_EPOCH_OFFSET_US;
		s->txn.xid = m->u.begin.xid;
		s->txn.seq = 0;
		return PGCAP_OK;
	case PGOUTPUT_COMMIT:
		s->in_txn = false;
		s->last_commit_end = m->u.commit.end_lsn;
		s->txns++;
		capture_metrics_on_commit();
		if (ag->has_endpos && m->u.commit.end_lsn >= ag->endpos)
			s->endpos_reached = true;
		return PGCAP_OK;
	case PGOUTPUT_RELATION:
		if (!pgcap_schema_relation_update(ag->schema, m, err, errlen))
			return PQstatus(ag->query) == CONNECTION_OK ? PGCAP_FAILURE : PGCAP_RETRY;
		log_debug("capture", "relation %u is \"%s.%s\" with %u columns", m->u.relation.relid,
			  m->u.relation.nspname, m->u.relation.relname, m->u.relation.ncols);
		return PGCAP_OK;
	case PGOUTPUT_ORIGIN:
	case PGOUTPUT_TYPE:
		/* Type names come from format_type(); origins are not recorded. */
		return PGCAP_OK;
	case PGOUTPUT_INSERT:
	case PGOUTPUT_UPDATE:
	case PGOUTPUT_DELETE:
		if (!s->in_txn) {
			snprintf(err, errlen, "%s message outside a transaction",
				 pgoutput_type_name(m->type));
			return PGCAP_DATAERR;
		}
		if ((st = relation_for(s, m->u.change.relid, &rel, err, errlen)) != PGCAP_OK)
			return st;
		if (!pgcap_record_change(&c, ag->arena, &ag->source, rel, m, &s->txn, err, errlen))
			return PGCAP_DATAERR;
		st = append(s, &c, err, errlen);
		s->txn.seq++;
		return st;
	case PGOUTPUT_TRUNCATE:
		if (!s->in_txn) {
			snprintf(err, errlen, "truncate message outside a transaction");
			return PGCAP_DATAERR;
		}
		if (m->u.truncate.nrelids > s->trunc_cap) {
			s->trunc_cap = m->u.truncate.nrelids;
			s->trunc_rels = xrealloc(s->trunc_rels, s->trunc_cap * sizeof(*s->trunc_rels));
		}
		for (uint32_t i = 0; i < m->u.truncate.nrelids; i++)
			if ((st = relation_for(s, m->u.truncate.relids[i], &s->trunc_rels[i], err,
					       errlen)) != PGCAP_OK)
				return st;
		pgcap_record_truncate(&c, ag->arena, &ag->source, s->trunc_rels,
				      m->u.truncate.nrelids, &s->txn);
		st = append(s, &c, err, errlen);
		s->txn.seq++;
		return st;
	case PGOUTPUT_MESSAGE:
		if (s->in_txn) {
			pgcap_record_message(&c, ag->arena, &ag->source, m, s->txn.final_lsn,
					     s->txn.seq, &s->txn);
			s->txn.seq++;
			return append(s, &c, err, errlen);
		}
		/*
		 * Non-transactional: decoded where it sits in the WAL, between the
		 * commits around it, so its own LSN orders it.  It is durable with
		 * the next flush; acknowledging its LSN is the heartbeat's job.
		 */
		pgcap_record_message(&c, ag->arena, &ag->source, m, m->u.message.lsn, 0, NULL);
		return append(s, &c, err, errlen);
	default:
		snprintf(err, errlen, "unexpected pgoutput message type 0x%02x",
			 (unsigned char) m->type);
		return PGCAP_DATAERR;
	}
}

static pgcap_status_t
handle_copy_data(stream_t *s, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	if (len >= 1 + 8 + 8 + 8 && buf[0] == 'w') {
		pgoutput_msg_t m;
		char perr[512];
		uint64_t data_start = get_be64(buf + 1);
		if (pgoutput_parse(buf + 25, len - 25, s->msg_arena, &m, perr, sizeof(perr)) !=
		    PGOUTPUT_OK) {
			snprintf(err, errlen, "could not decode the message at %X/%X: %s",
				 PGCAP_LSN_ARGS(data_start), perr);
			return PGCAP_DATAERR;
		}
		pgcap_status_t st = handle_message(s, &m, err, errlen);
		arena_reset(s->msg_arena);
		return st;
	}
	if (len >= 1 + 8 + 8 + 1 && buf[0] == 'k') {
		uint64_t wal_end = get_be64(buf + 1);
		bool reply = buf[17] != 0;
		/*
		 * Heartbeat: with no transaction open and everything appended
		 * already durable, nothing at or before walEnd is still owed to
		 * the log, so the slot may move up to it.
		 */
		if (!s->in_txn && !s->appended && clog_writer_pending_bytes(s->ag->log) == 0 &&
		    wal_end > s->heartbeat_lsn)
			s->heartbeat_lsn = wal_end;
		if (s->ag->has_endpos && !s->in_txn && wal_end >= s->ag->endpos)
			s->endpos_reached = true;
		if (reply)
			return stream_ack(s, err, errlen);
		return PGCAP_OK;
	}
	snprintf(err, errlen, "unexpected replication message type 0x%02x (%zu bytes)",
		 len ? buf[0] : 0, len);
	return PGCAP_DATAERR;
}

/* START_REPLICATION from the slot's confirmed position (0/0 = "where the slot is"). */
static pgcap_status_t
start_replication(pgcap_agent_t *ag, char *err, size_t errlen)
{
	pgcap_status_t st = PGCAP_OK;
	/* publication_names is a list of identifiers inside a string literal. */
	buf_t names = BUF_INIT;
	buf_append_char(&names, '"');
	for (const char *p = ag->publication; *p; p++) {
		if (*p == '"')
			buf_append_char(&names, '"');
		buf_append_char(&names, *p);
	}
	buf_append_char(&names, '"');
	char *lit = PQescapeLiteral(ag->repl, names.data, names.len);
	/* Logical decoding messages are sent only when asked for (14 and later). */
	char *sql = xasprintf("START_REPLICATION SLOT \"%s\" LOGICAL 0/0 "
			      "(proto_version '1', publication_names %s%s)",
			      ag->slot, lit ? lit : "'\"steward\"'",
			      PQserverVersion(ag->repl) >= 140000 ? ", messages 'true'" : "");
	PGresult *res = PQexec(ag->repl, sql);
	if (PQresultStatus(res) != PGRES_COPY_BOTH) {
		char what[200];
		const char *state = pgcap_sqlstate(res);
		snprintf(what, sizeof(what), "could not start replication from slot \"%s\"",
			 ag->slot);
		pgcap_error(ag->dsn, what, PQerrorMessage(ag->repl), err, errlen);
		if (strcmp(state, "42704") == 0) {
			size_t l = strlen(err);
			snprintf(err + l, errlen - l,
				 " (the slot was dropped; changes after its last acknowledged "
				 "position are lost to it: start over with a new data directory)");
			st = PGCAP_UNAVAILABLE;
		} else if (strcmp(state, "55006") == 0 || PQstatus(ag->repl) != CONNECTION_OK) {
			st = PGCAP_RETRY;  /* slot still held by a dying walsender, or outage */
		} else {
			st = PGCAP_CONFIG;
		}
	}
	PQclear(res);
	free(sql);
	if (lit)
		PQfreemem(lit);
	buf_free(&names);
	return st;
}

/* Wait for the socket or the next status deadline; EINTR just returns. */
static pgcap_status_t
wait_for_data(stream_t *s, char *err, size_t errlen)
{
	PGconn *conn = s->ag->repl;
	int fd = PQsocket(conn);
	int64_t wait_ms = s->next_status_ms - pgcap_monotonic_ms();
	if (wait_ms < 0)
		wait_ms = 0;
	if (wait_ms > 1000)
		wait_ms = 1000;
	fd_set rfds;
	FD_ZERO(&rfds);
	FD_SET(fd, &rfds);
	struct timeval tv = {(time_t) (wait_ms / 1000), (suseconds_t) (wait_ms % 1000) * 1000};
	int r = select(fd + 1, &rfds, NULL, NULL, &tv);
	if (r < 0 && errno != EINTR) {
		snprintf(err, errlen, "could not wait for replication data: %s", strerror(errno));
		return PGCAP_RETRY;
	}
	if (r > 0 && PQconsumeInput(conn) == 0) {
		pgcap_error(s->ag->dsn, "lost the replication connection", PQerrorMessage(conn),
			    err, errlen);
		return PGCAP_RETRY;
	}
	return PGCAP_OK;
}

static pgcap_status_t
stream_end(stream_t *s, char *err, size_t errlen)
{
	/* The server ended COPY: usually the slot was dropped or the backend killed. */
	PGconn *conn = s->ag->repl;
	pgcap_status_t st = PGCAP_RETRY;
	PGresult *res = PQgetResult(conn);
	if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
		pgcap_error(s->ag->dsn, "replication stream ended", PQresultErrorMessage(res), err,
			    errlen);
		if (strcmp(pgcap_sqlstate(res), "42704") == 0)
			st = PGCAP_UNAVAILABLE;
	} else {
		pgcap_error(s->ag->dsn, "replication stream ended", PQerrorMessage(conn), err,
			    errlen);
	}
	PQclear(res);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	return st;
}

static void
log_progress(stream_t *s)
{
	int64_t now = pgcap_monotonic_ms();
	if (now < s->next_log_ms)
		return;
	if (s->changes || s->txns)
		log_info("capture", "streaming: %" PRIu64 " changes in %" PRIu64
			 " transactions, acknowledged %X/%X",
			 s->changes, s->txns, PGCAP_LSN_ARGS(s->acked_lsn));
	s->next_log_ms = now + 30000;
}

pgcap_status_t
pgcap_stream_run(pgcap_agent_t *ag, bool *progressed, char *err, size_t errlen)
{
	stream_t s;
	memset(&s, 0, sizeof(s));
	s.ag = ag;
	s.msg_arena = arena_create(64 * 1024);
	pgcap_status_t st = start_replication(ag, err, errlen);
	if (st != PGCAP_OK)
		goto out;
	log_info("capture", "streaming from replication slot \"%s\", publication \"%s\"",
		 ag->slot, ag->publication);
	capture_metrics_set_state(CAPTURE_STATE_STREAMING, NULL);
	s.next_status_ms = pgcap_monotonic_ms() + ag->status_interval_ms;
	s.next_log_ms = pgcap_monotonic_ms() + 30000;
	for (;;) {
		if (pgcap_stop_requested() || s.endpos_reached) {
			st = stream_ack(&s, err, errlen);
			if (st == PGCAP_OK)
				st = PGCAP_STOPPED;
			break;
		}
		if (pgcap_monotonic_ms() >= s.next_status_ms) {
			if ((st = stream_ack(&s, err, errlen)) != PGCAP_OK)
				break;
			log_progress(&s);
		}
		char *buf = NULL;
		int n = PQgetCopyData(ag->repl, &buf, 1);
		if (n == 0) {
			if ((st = wait_for_data(&s, err, errlen)) != PGCAP_OK)
				break;
			continue;
		}
		if (n == -1) {
			st = stream_end(&s, err, errlen);
			break;
		}
		if (n < 0) {
			pgcap_error(ag->dsn, "lost the replication connection",
				    PQerrorMessage(ag->repl), err, errlen);
			st = PGCAP_RETRY;
			break;
		}
		*progressed = true;
		st = handle_copy_data(&s, (const uint8_t *) buf, (size_t) n, err, errlen);
		PQfreemem(buf);
		if (st != PGCAP_OK)
			break;
	}
	if (st == PGCAP_RETRY || st == PGCAP_UNAVAILABLE) {
		/* Keep what arrived: durable now, acknowledged by the next session. */
		char ferr[512];
		if (clog_writer_flush(ag->log, ferr, sizeof(ferr)) != CLOG_OK) {
			snprintf(err, errlen, "%s", ferr);
			st = PGCAP_IOERR;
		}
	}
	if (st == PGCAP_STOPPED)
		log_info("capture", "stopped after %" PRIu64 " changes; acknowledged %X/%X",
			 s.changes, PGCAP_LSN_ARGS(s.acked_lsn));
out:
	free(s.trunc_rels);
	arena_destroy(s.msg_arena);
	return st;
}
