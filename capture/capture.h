/*
 * capture.h — what `steward capture` hands to a source-specific agent.
 *
 * cli/cmd_capture.c parses the command line into a capture_config_t and
 * calls the agent for the DSN's kind.  The agent owns its connection(s),
 * writes to the change log in data_dir, and returns an exit code from
 * common/exitcodes.h.  Strings are borrowed from argv for the whole run.
 */
#ifndef STEWARD_CAPTURE_CAPTURE_H
#define STEWARD_CAPTURE_CAPTURE_H

#include <stdbool.h>

typedef struct capture_config {
	const char *dsn;           /* libpq conninfo/URI, or mysql:// / mariadb:// URI */
	const char *data_dir;      /* change log directory */
	const char *source_name;   /* name stored in every record (default: database name) */
	const char *slot;          /* PostgreSQL replication slot */
	const char *publication;   /* PostgreSQL publication */
	const char *tables;        /* comma-separated schema.table filter, NULL = all */
	bool no_snapshot;          /* skip the initial snapshot */
	bool check;                /* preflight only: report problems, change nothing */
	const char *endpos;        /* stop once this source position is durable */
	int status_interval_ms;    /* how often to flush + acknowledge */
	int server_id;             /* MySQL replica server id */
	const char *metrics_listen; /* host:port for /metrics, NULL = off */
	const char *tls_ca;        /* CA file for TLS verification (pass-through) */
} capture_config_t;

/* Both return an exit code (STEWARD_EXIT_*). */
int pg_capture_run(const capture_config_t *cfg);
int mysql_capture_run(const capture_config_t *cfg);

/* True if the DSN names a MySQL/MariaDB server (mysql:// or mariadb://). */
bool capture_dsn_is_mysql(const char *dsn);

#endif
