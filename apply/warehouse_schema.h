/*
 * warehouse_schema.h — the warehouse's tables: creating them, evolving
 * them as source columns appear or widen, and the Steward state table
 * that holds each source's applied position.
 *
 * A wh_schema_t caches, per base table name, the columns the warehouse
 * has, so the catalog is read once per table and DDL is issued only when a
 * change brings a column or type the table has not seen.  All DDL runs in
 * the caller's open transaction (PostgreSQL DDL is transactional): if the
 * batch rolls back, call wh_schema_invalidate so the cache is re-read.
 *
 * Names are quoted with PQescapeIdentifier only; type strings come from
 * wh_type_map, which admits nothing but plain type spellings.
 */
#ifndef STEWARD_APPLY_WAREHOUSE_SCHEMA_H
#define STEWARD_APPLY_WAREHOUSE_SCHEMA_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "position.h"
#include "warehouse_rows.h"

#define WH_STATE_TABLE "_steward_apply_state"

typedef struct wh_column {
	char *name;          /* column name (raw) */
	char *ident;         /* quoted identifier */
	char *type;          /* the warehouse column's type (catalog spelling) */
	char *seen_type;     /* last incoming type found acceptable (fast path) */
} wh_column_t;

/* One source table (or entity) in the warehouse.  Owned by the wh_schema_t. */
typedef struct wh_table {
	char *base;            /* base name, e.g. erp__customers */
	char *mirror_qname;    /* "schema"."erp__customers" */
	char *history_qname;   /* "schema"."erp__customers__history" */
	bool has_mirror;       /* the mirror table exists (has a key) */
	bool has_history;
	bool history_ready;    /* ensured this run (SCD2 columns included) */
	bool history_old;      /* the history table has the pre-typed shape */
	/* The history table has _steward_position_text and a generated
	 * _steward_correlation_id (tables created before the correlation id was
	 * sent by apply): its rows are written in that shape. */
	bool history_ptext;
	wh_column_t *cols;     /* mirror data columns (no _steward_* columns) */
	size_t ncols;
	size_t *key;           /* indexes into cols of the primary key */
	size_t nkey;
	size_t *hint;          /* hint[i]: column of the i-th value last time */
	size_t nhint;
	/* History data columns (typed like the mirror's, evolved the same way,
	 * but their own list: the two tables can be altered independently). */
	wh_column_t *hcols;
	size_t nhcols;
	size_t *hhint;
	size_t nhhint;
	size_t *hkey;          /* indexes into hcols of the key columns (SCD2) */
	size_t nhkey;
	bool warned_no_key;
	unsigned direct_skip;  /* mirror batches left to merge before trying direct COPY */
	unsigned direct_backoff;
	unsigned id;           /* distinct among the schema's tables until invalidated */
	unsigned mirror_shape; /* bumped by every change to the mirror's columns */
	unsigned history_shape; /* ... and to the history's (its COPY encoders follow) */
	/* The mirror's staging table (warehouse_merge.c), a session temp table. */
	bool stage_ready;      /* exists with the columns of stage_shape */
	unsigned stage_shape;
	unsigned stage_txn;    /* the batch transaction that last filled it */
	struct wh_layout *layout;  /* the last stable_names change's mapping (private) */
} wh_table_t;

typedef struct wh_schema wh_schema_t;

typedef struct wh_schema_options {
	const char *schema;    /* warehouse schema name */
	unsigned modes;        /* WH_MODE_* */
	bool scd2;             /* history tables carry valid_from/valid_to */
} wh_schema_options_t;

/*
 * Called before the schema runs a statement on a connection during a
 * batch (catalog reads, DDL, the state table): lets the batch end a COPY
 * it keeps open between changes.  A failure is returned by the schema
 * function that was about to run the statement.
 */
typedef wh_status_t (*wh_schema_sql_hook_t)(void *arg, PGconn *conn, char *err, size_t errlen);

/* opts->schema is copied. */
wh_schema_t *wh_schema_create(const wh_schema_options_t *opts);
void wh_schema_free(wh_schema_t *s);         /* accepts NULL */
/* Install the hook (arg borrowed; NULL fn removes it). */
void wh_schema_set_sql_hook(wh_schema_t *s, wh_schema_sql_hook_t fn, void *arg);
/* Forget everything cached (after a rollback or reconnect). */
void wh_schema_invalidate(wh_schema_t *s);
/* The quoted schema name, valid until wh_schema_free. */
const char *wh_schema_qname(const wh_schema_t *s);

/*
 * Create the schema and the state table if missing, and take the
 * session advisory lock that keeps a second `steward apply` off this
 * warehouse schema (WH_FATAL if someone holds it).  Outside a transaction.
 */
wh_status_t wh_schema_bootstrap(PGconn *conn, wh_schema_t *s, char *err, size_t errlen);

/* Column indexes of one change's images in one table (arrays of at least
 * nafter / nbefore entries, owned by the caller). */
typedef struct wh_colmap {
	size_t *after;
	size_t *before;
} wh_colmap_t;

/*
 * Make the tables for c->target exist with every column of c's images,
 * adding columns (ALTER TABLE … ADD COLUMN) and widening types as needed,
 * in the mirror and the history table alike.  On WH_OK *out is the table,
 * mirror->after[i] / ->before[i] the mirror column of c->after[i] /
 * c->before[i] and history->… the history data column (SIZE_MAX when
 * that table is not written or the value was unchanged and unknown).
 * WH_SCHEMA: an incompatible type change (err names table, column and
 * both types) or a history table of the pre-typed shape (err names it).
 * Runs inside the caller's transaction.
 */
wh_status_t wh_schema_prepare(PGconn *conn, wh_schema_t *s, const wh_change_t *c,
			      wh_table_t **out, wh_colmap_t *mirror, wh_colmap_t *history,
			      char *err, size_t errlen);

/* WH_SCHEMA with a message when t's history table has the pre-typed
 * shape and history is written; else WH_OK. */
wh_status_t wh_schema_history_check(const wh_schema_t *s, const wh_table_t *t, char *err,
				    size_t errlen);

/*
 * Find a table already known or existing in the warehouse (for truncate);
 * *out NULL when the warehouse has no table of that name.
 */
wh_status_t wh_schema_lookup(PGconn *conn, wh_schema_t *s, const char *base,
			     wh_table_t **out, char *err, size_t errlen);

/* Stored position of source; *found false when none.  Any time. */
wh_status_t wh_state_load(PGconn *conn, wh_schema_t *s, const char *source,
			  position_t *pos, bool *found, char *err, size_t errlen);

/*
 * Classify a failed result (res may be NULL for a connection failure) and
 * write "what: server message (retriable|not retriable)" to err.
 */
wh_status_t wh_pg_error(PGconn *conn, const PGresult *res, const char *what,
			char *err, size_t errlen);

/* Run a command with no parameters; WH_OK when its status is ok. */
wh_status_t wh_exec(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen);

/* PQescapeIdentifier into an xmalloc'd string (caller frees). */
char *wh_ident(PGconn *conn, const char *name);

#endif
