/*
 * pg_schema.h — what the capture agent knows about the source's tables:
 * relations as last described by pgoutput Relation messages (so an ALTER
 * TABLE mid-stream takes effect at the right change), and type names from
 * format_type(oid, typmod), looked up once per (oid, typmod) on a normal
 * (non-replication) connection and cached for the life of the cache.
 */
#ifndef STEWARD_CAPTURE_PG_SCHEMA_H
#define STEWARD_CAPTURE_PG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "pgoutput.h"

typedef struct pgcap_column {
	char *name;
	uint32_t type_oid;
	int32_t typmod;
	const char *type_name;  /* owned by the schema cache */
	bool key;               /* replica identity column */
} pgcap_column_t;

typedef struct pgcap_relation {
	uint32_t relid;
	char *schema;
	char *table;
	char replident;
	size_t ncols;
	pgcap_column_t *cols;
} pgcap_relation_t;

typedef struct pgcap_schema pgcap_schema_t;

/* conn is borrowed and may be replaced with pgcap_schema_set_conn. */
pgcap_schema_t *pgcap_schema_create(PGconn *conn);
void pgcap_schema_set_conn(pgcap_schema_t *s, PGconn *conn);
void pgcap_schema_destroy(pgcap_schema_t *s);  /* accepts NULL */

/*
 * Replace (or add) the relation described by a Relation message, looking up
 * type names it has not seen.  Returns false with a message in err when the
 * lookup fails.
 */
bool pgcap_schema_relation_update(pgcap_schema_t *s, const pgoutput_msg_t *rel,
				  char *err, size_t errlen);
/* The relation, or NULL if no Relation message named it.  Borrowed until the next update. */
const pgcap_relation_t *pgcap_schema_relation(pgcap_schema_t *s, uint32_t relid);
/* Forget relations (after a reconnect the server describes them again). */
void pgcap_schema_forget_relations(pgcap_schema_t *s);

/*
 * format_type(oid, typmod), cached.  Remember a name looked up elsewhere
 * (the snapshot's catalog query) with pgcap_schema_type_remember.
 * Returns NULL with a message in err on failure; the string is owned by s.
 */
const char *pgcap_schema_type_name(pgcap_schema_t *s, uint32_t oid, int32_t typmod,
				   char *err, size_t errlen);
const char *pgcap_schema_type_remember(pgcap_schema_t *s, uint32_t oid, int32_t typmod,
				       const char *name);

#endif
