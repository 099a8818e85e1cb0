/*
 * warehouse_types.h — the pure part of the warehouse target: how source
 * column types become warehouse column types, how source text forms become
 * PostgreSQL input forms, how names become warehouse table names, and the
 * byte-exact escaping of COPY text format and JSON strings.
 *
 * No I/O and no libpq: everything here is unit-tested on strings
 * (tests/unit/test_warehouse_types.c).  Type strings on both sides are
 * spelled as PostgreSQL's format_type() prints them, so a mapped type can
 * be compared with the catalog's type of an existing column.
 */
#ifndef STEWARD_APPLY_WAREHOUSE_TYPES_H
#define STEWARD_APPLY_WAREHOUSE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "steward.pb-c.h"

#define WH_TYPE_MAX 128      /* longest warehouse type string we produce */
#define WH_NAME_MAX 63       /* PostgreSQL's NAMEDATALEN - 1 (bytes) */

/* How a source value's text is turned into the warehouse column's input. */
typedef enum wh_conv {
	WH_CONV_NONE = 0,      /* the text is already valid input */
	WH_CONV_ZERO_DATE,     /* MySQL date/datetime: "0000-00-00…" becomes NULL */
	WH_CONV_BYTES,         /* bytea: "\x…" hex kept, anything else hex-encoded */
	WH_CONV_HEX_BYTES,     /* hex digits (WKB), "\x"/"0x" optional → bytea */
	WH_CONV_BITS,          /* MySQL BIT: b'0101' / 0x.. / digits → bit string */
} wh_conv_t;

typedef struct wh_type {
	char name[WH_TYPE_MAX]; /* warehouse column type, format_type spelling */
	wh_conv_t conv;
} wh_type_t;

/*
 * Map a source column type to a warehouse column type.  kind selects the
 * dialect of source_type: PostgreSQL format_type() strings, MySQL
 * COLUMN_TYPE strings, or SOURCE_KIND_UNSPECIFIED for types that are
 * already warehouse types (canonical entities).  Never fails: an unknown
 * or empty type maps to "text" (arrays of unknown types to "text[]").
 */
void wh_type_map(Steward__SourceKind kind, const char *source_type, wh_type_t *out);

/*
 * Whether a column of type `existing` can store every value of type
 * `incoming` without loss (both format_type spellings): equal types,
 * text, integer and numeric widening, longer varchar, json into jsonb,
 * higher time precision.  Used both ways by schema evolution: existing
 * accepts incoming → nothing to do; incoming accepts existing → widen the
 * column; neither → an incompatible change.
 */
bool wh_type_accepts(const char *existing, const char *incoming);

/*
 * Convert a value's source text (len bytes) for column conversion conv.
 * Sets *is_null when the value becomes NULL (zero dates).  The result is
 * written to out (reset first) unless conv needs no change, in which case
 * *res and *reslen point at the input and out is untouched.
 */
void wh_value_convert(wh_conv_t conv, const char *text, size_t len, buf_t *out,
		      const char **res, size_t *reslen, bool *is_null);

/*
 * Append n bytes (or one) to b: the COPY encoders append a few bytes per
 * field, and a call into buf_append per tab was a tenth of their time.
 */
static inline void
wh_put(buf_t *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap)
		buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static inline void
wh_put_char(buf_t *b, char c)
{
	if (b->len + 2 > b->cap)
		buf_reserve(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

/* Append text as one COPY text-format field (backslash escapes). */
void wh_copy_escape(buf_t *out, const char *text, size_t len);
/* Append text as a JSON string literal, quotes included. */
void wh_json_string(buf_t *out, const char *text, size_t len);
/*
 * Append a timestamptz input form of us microseconds since 1970 UTC:
 * "YYYY-MM-DD HH:MM:SS.ffffff+00" (years 0001..9999; others via gmtime).
 */
void wh_append_ts(buf_t *out, int64_t us);

/*
 * The base warehouse table name for a source table: "<source>__<table>",
 * or "<source>__<schema>__<table>" when schema is neither "public" nor the
 * source database's name (MySQL reports the database as schema).  Then
 * suffix (e.g. "__history", or "") is appended and the whole fitted into
 * WH_NAME_MAX bytes: a name too long is cut at a UTF-8 boundary and ends
 * in "_" + 8 hex digits of a hash of the full name, so distinct long
 * names stay distinct.  out must hold WH_NAME_MAX + 1 bytes.
 */
void wh_table_name(const char *source, const char *schema, const char *database,
		   const char *table, const char *suffix, char *out);

/* Fit an arbitrary name + suffix into WH_NAME_MAX bytes as above. */
void wh_name_fit(const char *name, const char *suffix, char *out);

/* ---- COPY BINARY ---- */

/*
 * The binary send form a warehouse column type is written in, when the
 * history COPY uses FORMAT binary (docs/warehouse.md).  WH_BIN_NONE: no
 * encoder, and a table with such a column stays on COPY text.
 */
typedef enum wh_bin {
	WH_BIN_NONE = 0,
	WH_BIN_RAW,          /* text, varchar, char, json: the UTF-8 bytes */
	WH_BIN_JSONB,        /* version byte 1, then the text */
	WH_BIN_INT2,
	WH_BIN_INT4,
	WH_BIN_INT8,
	WH_BIN_BOOL,
	WH_BIN_NUMERIC,      /* unconstrained: NaN and ±Infinity too */
	WH_BIN_NUMERIC_MOD,  /* numeric(p,s): NaN too (an infinity is the server's error) */
	WH_BIN_TIMESTAMPTZ,
	WH_BIN_TIMESTAMP,
	WH_BIN_DATE,
	WH_BIN_BYTEA,
	WH_BIN_UUID,
} wh_bin_t;

/* The encoder of a warehouse type (format_type spelling). */
wh_bin_t wh_bin_for_type(const char *type);

/* The 19 bytes that open a COPY BINARY stream: signature, flags, no extension. */
void wh_bin_header(buf_t *out);

/*
 * Append one COPY BINARY field (int32 length + send form) for a value's
 * input text under encoder bin.  Only the plain forms the capture agents
 * print are taken ("-12.50", "2024-01-01 00:00:01.5+05:30", "\\x00ff", "t"),
 * and each exactly as the server's input function reads it; anything else
 * (other spellings, out-of-range values, "infinity") returns false with
 * out unchanged: the caller then writes the row as COPY text and the
 * server judges the value, so a bad value fails with the server's own
 * error and an odd but valid one is stored as before.  Assumes the
 * session's TimeZone is UTC (a timestamptz without offset is UTC).
 */
bool wh_bin_field(wh_bin_t bin, const char *text, size_t len, buf_t *out);

/* Big-endian integers of the binary format. */
static inline void
wh_bin_i16(buf_t *b, int v)
{
	char s[2] = {(char) (v >> 8), (char) v};
	wh_put(b, s, 2);
}

static inline void
wh_bin_i32(buf_t *b, int32_t v)
{
	uint32_t u = (uint32_t) v;
	char s[4] = {(char) (u >> 24), (char) (u >> 16), (char) (u >> 8), (char) u};
	wh_put(b, s, 4);
}

static inline void
wh_bin_i64(buf_t *b, int64_t v)
{
	wh_bin_i32(b, (int32_t) (uint32_t) ((uint64_t) v >> 32));
	wh_bin_i32(b, (int32_t) (uint32_t) (uint64_t) v);
}

/* A field of n raw bytes (text, json, bytea); NULL p = SQL NULL. */
static inline void
wh_bin_bytes(buf_t *b, const char *p, size_t n)
{
	if (!p) {
		wh_bin_i32(b, -1);
		return;
	}
	wh_bin_i32(b, (int32_t) n);
	wh_put(b, p, n);
}

/* A timestamptz field of us microseconds since 1970 UTC. */
static inline void
wh_bin_ts(buf_t *b, int64_t us)
{
	wh_bin_i32(b, 8);
	wh_bin_i64(b, us - INT64_C(946684800000000));  /* the server counts from 2000 */
}

#endif
