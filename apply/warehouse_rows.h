/*
 * warehouse_rows.h — the generic input of the warehouse target: "rows
 * with typed columns and a key".
 *
 * Captured source tables (warehouse.c converts each steward.Change) and,
 * later, canonical entities from the apply service are both fed to
 * wh_batch_add (warehouse_batch.h) as a wh_change_t.  Values are already in
 * the warehouse's input form and types already warehouse types
 * (warehouse_types.h), so the batch and schema modules never look at a
 * source dialect.
 */
#ifndef STEWARD_APPLY_WAREHOUSE_ROWS_H
#define STEWARD_APPLY_WAREHOUSE_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status of every warehouse function; the message goes to (err, errlen). */
typedef enum wh_status {
	WH_OK = 0,
	WH_RETRY = 1,     /* retriable: connection lost, serialization, deadlock */
	WH_SCHEMA = 2,    /* not retriable until a user acts: incompatible type change */
	WH_FATAL = 3,     /* not retriable: bad configuration, permission, bad data */
} wh_status_t;

/* What a warehouse apply does with the tables (bit set). */
enum {
	WH_MODE_MIRROR = 1,
	WH_MODE_HISTORY = 2,
};

typedef enum wh_op {
	WH_OP_UPSERT = 0,    /* insert, update, snapshot read: after image is the row */
	WH_OP_DELETE = 1,    /* before image holds at least the key */
	WH_OP_TRUNCATE = 2,  /* the whole table; no images */
} wh_op_t;

typedef struct wh_value {
	const char *name;   /* column name, any characters */
	const char *type;   /* warehouse type, format_type spelling ("numeric(12,2)") */
	const char *text;   /* input form; NULL = SQL NULL */
	size_t len;         /* bytes of text */
	bool unchanged;     /* not sent by the source (TOAST): keep the stored value */
} wh_value_t;

/*
 * One change.  Everything is borrowed for the duration of wh_batch_add,
 * which copies what it keeps (but see stable_names).
 */
typedef struct wh_change {
	const char *target;          /* base table name, fitted (wh_table_name) */
	wh_op_t op;
	const char *op_name;         /* stored in history: "insert", "update", … */
	const char *source;          /* source (or system) name */
	const char *position_text;   /* human form of the position */
	const uint8_t *position;     /* opaque, memcmp-ordered within source */
	size_t position_len;
	const char *txid;            /* may be NULL */
	int64_t commit_ts_us;        /* microseconds since 1970 UTC; 0 = unknown */
	const char *const *key;      /* key column names */
	size_t nkey;
	const wh_value_t *before;    /* old image (may be empty) */
	size_t nbefore;
	const wh_value_t *after;     /* new image (empty for deletes) */
	size_t nafter;
	/*
	 * The caller promises that the name and type strings of both images
	 * stay valid and unchanged for the life of the wh_schema_t (e.g.
	 * interned per session).  The schema then recognises a change laid
	 * out like the previous one of its table by comparing pointers, and
	 * reuses that change's column mapping.  false: names are compared.
	 */
	bool stable_names;
} wh_change_t;

#endif
