/*
 * pg_conn.h — libpq connections for the PostgreSQL capture agent.
 *
 * The DSN (any libpq conninfo string or URI) is parsed once with
 * PQconninfoParse; connections are opened with PQconnectdbParams from the
 * parsed keywords plus our own (replication=database for the walsender
 * connection, client_encoding=UTF8, application_name), so a DSN is never
 * edited as a string.  Every message that may echo connection details is
 * passed through pgcap_redact so the password never reaches a log.
 */
#ifndef STEWARD_CAPTURE_PG_CONN_H
#define STEWARD_CAPTURE_PG_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

typedef struct pgcap_dsn pgcap_dsn_t;

/* Parse dsn; NULL with the (redacted) reason in err.  Free with pgcap_dsn_free. */
pgcap_dsn_t *pgcap_dsn_parse(const char *dsn, char *err, size_t errlen);
void pgcap_dsn_free(pgcap_dsn_t *d);  /* accepts NULL */
/* The DSN with its password masked, for messages.  Borrowed from d. */
const char *pgcap_dsn_display(const pgcap_dsn_t *d);

/*
 * Open a connection: a walsender connection for logical replication when
 * replication is true, a normal one otherwise.  Returns the connection
 * (caller PQfinish-es it) or NULL with a redacted message in err.
 */
PGconn *pgcap_connect(const pgcap_dsn_t *d, bool replication, char *err, size_t errlen);

/*
 * Copy text (a libpq error message) into err with the password masked and
 * the trailing newline removed, prefixed by what ("could not …: ").
 */
void pgcap_error(const pgcap_dsn_t *d, const char *what, const char *text,
		 char *err, size_t errlen);

/* PQresultErrorField(res, PG_DIAG_SQLSTATE), or "" when absent. */
const char *pgcap_sqlstate(const PGresult *res);

/* Parse "X/X"; false on bad input. */
bool pgcap_lsn_parse(const char *text, uint64_t *lsn);
/* Format as "X/X" into out (at least 32 bytes). */
void pgcap_lsn_format(uint64_t lsn, char *out, size_t outlen);
#define PGCAP_LSN_ARGS(lsn) (unsigned) ((lsn) >> 32), (unsigned) (lsn)

/* Microseconds since 1970, wall clock; and monotonic milliseconds. */
int64_t pgcap_now_us(void);
int64_t pgcap_monotonic_ms(void);

#endif
