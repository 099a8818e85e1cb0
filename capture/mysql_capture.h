/*
 * mysql_capture.h — the MySQL/MariaDB agent's internal contract between
 * its modules: connection (mysql_conn.c), record building
 * (mysql_record.c), snapshot (mysql_snapshot.c), binlog stream
 * (mysql_stream.c), preflight (mysql_check.c) and the driver
 * (mysql_capture.c, which implements mysql_capture_run from capture.h).
 */
#ifndef STEWARD_CAPTURE_MYSQL_CAPTURE_H
#define STEWARD_CAPTURE_MYSQL_CAPTURE_H

#include <mysql.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "capture.h"
#include "clog.h"
#include "mysql_decode.h"
#include "mysql_resume.h"
#include "position.h"

/* ---- mysql_conn.c ---- */

/* A parsed mysql:// or mariadb:// URI.  Strings are owned (mysql_dsn_clear). */
typedef struct mysql_dsn {
	char *user, *password, *host, *database;
	unsigned port;           /* default 3306 */
	int tls;                 /* 0 off, 1 required, 2 verify CA + host name */
	char *tls_ca;            /* CA file (sslca=, or --tls-ca) */
} mysql_dsn_t;

/*
 * Parse dsn: mysql://USER[:PASSWORD]@HOST[:PORT][/DATABASE][?PARAMS] with
 * percent-decoding; PARAMS: ssl-mode=disabled|required|verify-ca|
 * verify-identity (also sslmode=disable|require|verify-ca|verify-full),
 * sslca=FILE.  Errors never contain the password.
 */
bool mysql_dsn_parse(const char *dsn, mysql_dsn_t *out, char *err, size_t errlen);
void mysql_dsn_clear(mysql_dsn_t *d);

/*
 * Connect (utf8mb4, time_zone '+00:00', TLS as the DSN asks).  read_timeout_s
 * 0 = none.  Returns NULL with the reason in err (password redacted).
 */
MYSQL *mysql_conn_open(const mysql_dsn_t *d, unsigned read_timeout_s, char *err, size_t errlen);

/* Run a statement that returns no rows; false with "could not …" in err. */
bool mysql_conn_exec(MYSQL *m, const char *sql, char *err, size_t errlen);

/*
 * Run a query and return the first row's first column (heap, NULL for SQL
 * NULL or no row) in *out.  false on error.
 */
bool mysql_conn_scalar(MYSQL *m, const char *sql, char **out, char *err, size_t errlen);

/* True for client errors that mean the connection is gone (reconnect). */
bool mysql_conn_error_is_lost(unsigned errnum);

/*
 * Whether a statement that may change the columns of a table named `table`
 * was written to the binlog at or after file:pos (an event boundary), up to
 * the server's current end (SHOW BINLOG EVENTS; needs BINLOG MONITOR or
 * REPLICATION SLAVE).  Conservative: any query event other than BEGIN/
 * COMMIT/ROLLBACK/XA/SAVEPOINT that names the table counts.  *ddl_at (heap,
 * caller frees) is "FILE:POS" of the first one, or NULL.  Returns
 * STEWARD_EXIT_OK, _UNAVAILABLE on a lost connection, _FAILURE otherwise.
 */
int mysql_conn_ddl_after(MYSQL *m, const char *file, uint64_t pos, const char *table,
			 char **ddl_at, char *err, size_t errlen);

/*
 * Whether statement text s (NUL-terminated) mentions name as a whole
 * identifier, in any case, quoted or not.  The test by which a statement
 * is taken to leave a table's columns alone: one that does not name the
 * table cannot change them.
 */
bool mysql_mentions_identifier(const char *s, const char *name);

/* Server flavour, from VERSION(). */
bool mysql_conn_is_mariadb(MYSQL *m);

/* The numeric suffix of a binlog file name ("mysql-bin.000012" -> 12). */
uint64_t mysql_binlog_file_no(const char *name);

/* ---- mysql_record.c ---- */

/* What every record of one source carries. */
typedef struct mysql_source {
	const char *source_name;
	const char *database;      /* DSN database, "" = every non-system schema */
	const char *tables;        /* comma-separated schema.table filter or NULL */
} mysql_source_t;

/* True when changes of schema.table are captured. */
bool mysql_source_wants(const mysql_source_t *s, const char *schema, const char *table);

/* Text of a position: "[snapshot:]FILE:OFFSET:SEQ". */
void mysql_position_text(const char *file, uint64_t offset, int phase, uint64_t seq,
			 char *out, size_t outlen);

/* ---- mysql_snapshot.c ---- */

/*
 * Consistent initial snapshot: every wanted table's rows as OP_SNAPSHOT_READ,
 * appended to w and flushed.  On success *file (heap) and *pos are the
 * binlog position of the read view, where the stream starts.
 *
 * Retaking a snapshot that was cut short (label != NULL): records are
 * labelled with label->file/pos and sequence numbers from label->seq, so
 * they sort after what is already durable, and *file and *pos return the label:
 * the stream then replays every change since the first attempt's position,
 * which removes rows the first attempt saw that were deleted since.
 * Returns an exit code (STEWARD_EXIT_OK on success) with the reason in err.
 */
typedef struct mysql_snapshot_label {
	const char *file;
	uint64_t pos, seq;
} mysql_snapshot_label_t;

int mysql_snapshot_run(const mysql_dsn_t *d, const mysql_source_t *src, clog_writer_t *w,
		       const mysql_snapshot_label_t *label, char **file, uint64_t *pos,
		       char *err, size_t errlen);

/* ---- mysql_stream.c ---- */

typedef struct mysql_stream_opts {
	const mysql_dsn_t *dsn;
	const mysql_source_t *src;
	const char *data_dir;
	uint32_t server_id;
	int flush_interval_ms;
	const char *endpos;        /* "FILE:OFFSET" or NULL */
} mysql_stream_opts_t;

/* Where a stream starts; everything borrowed for the call. */
typedef struct mysql_stream_start {
	const char *file;                /* binlog file and offset on the server read */
	uint64_t offset;
	const mysql_gtid_state_t *gtid;  /* MariaDB: the GTID state there, and the dump
					    (and every reconnect) starts by GTID; NULL:
					    by file and offset (MySQL, or a deliberate
					    replay of what the log holds) */
	uint32_t epoch;                  /* of the positions to write (proto/position.h) */
	position_t floor;                /* the last position in the log (len 0: none) */
} mysql_stream_start_t;

/*
 * Stream the binlog from `from` into w until endpos is durable, a fatal
 * error, or a signal.  Reconnects with backoff on a lost connection.
 * Returns an exit code with the reason in err.
 */
int mysql_stream_run(const mysql_stream_opts_t *o, clog_writer_t *w,
		     const mysql_stream_start_t *from, char *err, size_t errlen);

/* ---- mysql_check.c ---- */

/* Preflight; prints one line per problem.  STEWARD_EXIT_OK or _CHECK_FAILED. */
int mysql_check_run(const mysql_dsn_t *d, uint32_t server_id);

/* Set by the signal handler (mysql_capture.c): stop at the next boundary. */
extern volatile int mysql_capture_stop;

#endif
