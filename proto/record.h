/*
 * record.h — helpers around the steward.Change record (proto/steward.proto).
 */
#ifndef STEWARD_PROTO_RECORD_H
#define STEWARD_PROTO_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "position.h"
#include "steward.pb-c.h"

#define STEWARD_RECORD_VERSION 1

/* "insert", "update", "delete", "truncate", "snapshot", "message". */
const char *record_op_name(Steward__Op op);
/* Inverse of record_op_name; OP_UNSPECIFIED when unknown. */
Steward__Op record_op_from_name(const char *name);
/* "postgresql", "mysql". */
const char *record_source_kind_name(Steward__SourceKind kind);

/* The record's position as a position_t; false if absent or too long. */
bool record_position(const Steward__Change *c, position_t *out);

/*
 * Append the record as one JSON object (no newline) in the `steward log
 * dump` format documented in docs/change-log.md:
 *   {"source","table":"schema.table","op","pos","txid","commit_ts",
 *    "key":{col:text},"before":{col:text|null}|null,
 *    "after":{col:text|null}|null,"unchanged":[col,...],
 *    "types":{col:type_name}}
 * commit_ts is RFC 3339 UTC with microseconds.  Values are JSON strings of
 * the source's text form; SQL NULL is null; unchanged TOAST columns are
 * absent from before/after and listed in "unchanged".
 */
void record_to_json(const Steward__Change *c, buf_t *out);

/*
 * Parse a `log dump` JSON line back into a record.  On success returns a
 * newly allocated record (free with record_free) and NULL otherwise, with
 * the reason in err.  "pos" becomes position_text; position is taken from
 * the optional "pos_hex" field when present.
 */
Steward__Change *record_from_json(const char *json, char *err, size_t errlen);

/* Free a record built by record_from_json or record_dup.  Accepts NULL. */
void record_free(Steward__Change *c);
/* Deep copy (heap); free with record_free. */
Steward__Change *record_dup(const Steward__Change *c);

/* Look up a column in an image by name; NULL if absent. Borrowed. */
const Steward__Value *record_find_value(Steward__Value *const *values, size_t n,
					const char *name);

#endif
