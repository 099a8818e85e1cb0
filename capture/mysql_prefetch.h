/*
 * mysql_prefetch.h — reads the binlog stream on a thread of its own.
 *
 * Receiving an event (the socket, Connector/C's copy of it into the event,
 * its CRC32) is a fifth of the capture's work per row; on its own thread
 * it overlaps with decoding the events before it.  Events come out in
 * stream order, each owning its bytes (Connector/C copies every packet
 * into the event's own memory), so the stream code reads them exactly as
 * it would read mariadb_rpl_fetch's.  Only the reading thread touches the
 * connection and the replication handle while it runs.
 */
#ifndef STEWARD_CAPTURE_MYSQL_PREFETCH_H
#define STEWARD_CAPTURE_MYSQL_PREFETCH_H

#include <stdbool.h>
#include <stddef.h>

#include <mysql.h>
#include <mariadb_rpl.h>

typedef struct mysql_prefetch mysql_prefetch_t;

/* Why mysql_prefetch_next returned no event. */
typedef struct mysql_prefetch_end {
	bool stopped;            /* *stop was set: no error */
	unsigned errnum;         /* mysql_errno, or the library's own (a checksum); 0: end of stream */
	char msg[512];           /* its message */
} mysql_prefetch_end_t;

/*
 * Start reading rpl (opened on m) ahead of the caller, at most a bounded
 * number of events.  verify: check each event's CRC32 as it is read, as
 * Connector/C would with MARIADB_RPL_VERIFY_CHECKSUM (which rpl must have
 * off: its byte-at-a-time CRC32 is a fifth of this thread's work, the one
 * here a hundredth); a mismatch ends the stream with errnum
 * CR_ERR_CHECKSUM_VERIFICATION_ERROR.  *stop is polled by
 * mysql_prefetch_next (the signal handler's flag).  NULL on failure with
 * the reason in err.
 */
mysql_prefetch_t *mysql_prefetch_start(MYSQL *m, MARIADB_RPL *rpl, bool verify,
				       volatile int *stop, char *err, size_t errlen);

/*
 * The next event, the caller's until mysql_prefetch_release; *use_checksum
 * is whether it ends in a CRC32 (the stream's setting when it was read).
 * NULL at the end of the stream, on an error or a stop: *end says which.
 */
MARIADB_RPL_EVENT *mysql_prefetch_next(mysql_prefetch_t *pf, bool *use_checksum,
				       mysql_prefetch_end_t *end);

/* Hand an event back (it is reused for a later one). */
void mysql_prefetch_release(mysql_prefetch_t *pf, MARIADB_RPL_EVENT *ev);

/* Has the reading thread ended (the stream ended or failed)? */
bool mysql_prefetch_done(mysql_prefetch_t *pf);

/*
 * Stop the reading thread and free everything (accepts NULL).  A read in
 * progress is waited for: it ends with the server's next heartbeat (every
 * second), or at once when the server ends the dump (KILL of the
 * connection from another one, which the caller does first to stop
 * promptly).  Call it only to close the stream.
 */
void mysql_prefetch_stop(mysql_prefetch_t *pf);

#endif
