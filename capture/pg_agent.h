/*
 * pg_agent.h — the PostgreSQL capture agent's run state, shared by its
 * modules (pg_capture.c orchestrates; pg_slot, pg_snapshot, pg_stream and
 * pg_check do one job each).  Not a public API: cli/ sees only capture.h.
 *
 * Ownership: pg_capture.c creates and destroys everything in the agent;
 * the modules borrow it for the duration of a call.
 */
#ifndef STEWARD_CAPTURE_PG_AGENT_H
#define STEWARD_CAPTURE_PG_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "arena.h"
#include "capture.h"
#include "clog.h"
#include "pg_conn.h"
#include "pg_record.h"
#include "pg_schema.h"

/* Outcome of an agent step; pgcap_status_exit maps it to an exit code. */
typedef enum pgcap_status {
	PGCAP_OK = 0,
	PGCAP_STOPPED,      /* SIGINT/SIGTERM or --endpos reached: clean exit */
	PGCAP_RETRY,        /* connection lost or slot busy: reconnect with backoff */
	PGCAP_UNAVAILABLE,  /* server unreachable after retries, or slot dropped */
	PGCAP_IOERR,        /* change log write/fsync failed */
	PGCAP_DATAERR,      /* undecodable stream */
	PGCAP_CONFIG,       /* bad DSN, missing publication, wrong slot plugin */
	PGCAP_FAILURE,      /* anything else */
	PGCAP_CHECK_PROBLEMS, /* --check found problems */
} pgcap_status_t;

typedef struct pgcap_agent {
	const capture_config_t *cfg;
	pgcap_dsn_t *dsn;
	PGconn *query;             /* normal connection: catalog lookups, snapshot */
	PGconn *repl;              /* walsender connection */
	clog_writer_t *log;
	pgcap_schema_t *schema;
	arena_t *arena;            /* per change; reset after each append */
	pgcap_source_t source;
	char *database;            /* current_database() */
	const char *slot;
	const char *publication;
	bool default_publication;  /* create it FOR ALL TABLES when missing */
	bool has_endpos;
	uint64_t endpos;
	int status_interval_ms;
	int server_version;        /* PQserverVersion of the query connection */
} pgcap_agent_t;

int pgcap_status_exit(pgcap_status_t st);

/* Set from the SIGINT/SIGTERM handler; checked by every loop. */
bool pgcap_stop_requested(void);

/*
 * Append a record to the change log.  CLOG_DUPLICATE (a change re-sent
 * after a restart, already durable) counts as success.  Resets the arena.
 */
pgcap_status_t pgcap_append(pgcap_agent_t *ag, const Steward__Change *c, char *err,
			    size_t errlen);

#endif
