/*
 * pg_stream.h — the streaming loop: START_REPLICATION on the walsender
 * connection, decode pgoutput, append to the change log, and acknowledge.
 *
 * Acknowledgement promise (kept in stream_ack): the flush position sent to
 * the server is always the end LSN of a commit whose changes, and all
 * before it, clog_writer_flush has made durable — or, when nothing is in
 * flight and nothing appended is pending, a keepalive's WAL end (the
 * heartbeat that lets an idle slot advance).  Flushing and acknowledging
 * happen on a timer (status_interval_ms), never per message.
 */
#ifndef STEWARD_CAPTURE_PG_STREAM_H
#define STEWARD_CAPTURE_PG_STREAM_H

#include "pg_agent.h"

/*
 * Stream from the slot's confirmed position until a stop is requested,
 * --endpos is durable (PGCAP_STOPPED), or an error: PGCAP_RETRY for a
 * lost connection or a busy slot, PGCAP_UNAVAILABLE when the slot no
 * longer exists, PGCAP_IOERR when the change log fails, PGCAP_DATAERR for
 * an undecodable message.  *progressed is set when at least one message
 * arrived (the caller resets its backoff).
 */
pgcap_status_t pgcap_stream_run(pgcap_agent_t *ag, bool *progressed, char *err, size_t errlen);

#endif
