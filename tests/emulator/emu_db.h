/*
 * emu_db.h — the emulator's database connections: one bounded pool per
 * platform (PostgreSQL for erp and support, MariaDB for crm and billing),
 * shared by the HTTP threads.
 *
 * A handler takes a connection with emu_db_get, uses it alone, and gives it
 * back with emu_db_put.  Connections are opened lazily and replaced after a
 * connection-level failure, so a database restart costs one failed request.
 */
#ifndef STEWARD_TESTS_EMULATOR_EMU_DB_H
#define STEWARD_TESTS_EMULATOR_EMU_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>
#include <mysql.h>

#include "buf.h"
#include "emu.h"

typedef struct emu_dbconn {
	emu_platform_t platform;
	PGconn *pg;   /* erp, support */
	MYSQL *my;    /* crm, billing */
	bool broken;  /* set by users after a connection-level error */
	struct emu_dbconn *next;
} emu_dbconn_t;

/*
 * dsn[p] is a libpq DSN (erp, support) or mysql://user:pass@host:port/db
 * (crm, billing), or NULL when the platform is not served.  The strings are
 * copied.  max_per_platform bounds each pool.
 */
emu_db_t *emu_db_create(const char *const dsn[EMU_NPLATFORMS], int max_per_platform);
void emu_db_destroy(emu_db_t *db);  /* accepts NULL; all connections must be back */

/* True when the platform has a DSN. */
bool emu_db_configured(emu_db_t *db, emu_platform_t p);

/* Connect once to every configured database; 0 or -1 with a message. */
int emu_db_check(emu_db_t *db, char *err, size_t errlen);

/*
 * Take a connected connection for platform p (waits while the pool is
 * exhausted).  NULL with a message when the database cannot be reached.
 * The connection is the caller's until emu_db_put.
 */
emu_dbconn_t *emu_db_get(emu_db_t *db, emu_platform_t p, char *err, size_t errlen);
/* Give c back; a connection marked broken is closed instead of pooled. */
void emu_db_put(emu_db_t *db, emu_dbconn_t *c);

/* Execute a statement; returns the result (caller PQclear()s it). */
PGresult *emu_pg_exec(emu_dbconn_t *c, const char *sql, int nparams, const char *const *params);
/* True when res succeeded (COMMAND_OK or TUPLES_OK); else err gets the
 * message and, on a lost connection, c is marked broken. */
bool emu_pg_ok(emu_dbconn_t *c, PGresult *res, char *err, size_t errlen);
/* SQLSTATE of a failed result, "" when none. */
const char *emu_pg_sqlstate(const PGresult *res);

/* Append s as a quoted MariaDB string literal (mysql_real_escape_string),
 * or NULL when s is NULL. */
void emu_my_quote(emu_dbconn_t *c, buf_t *sql, const char *s);
/* Run one statement; 0 on success, else the MariaDB error number with the
 * message in err (a lost connection marks c broken). */
unsigned emu_my_exec(emu_dbconn_t *c, const char *sql, char *err, size_t errlen);

#endif
