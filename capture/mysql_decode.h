/*
 * mysql_decode.h — binlog row events to column text, with no I/O.
 *
 * The capture agent (mysql_stream.c) feeds raw event bodies from the
 * replication connection through these functions; the unit tests feed the
 * same bytes from fixture files.  Every parser bounds-checks against the
 * length it is given: truncated or garbage input is MYDEC_ERROR with a
 * message naming the event and the cause, never a read past the end.
 *
 * "body" everywhere means the event bytes after the 19-byte common header,
 * with any CRC32 trailer already removed.
 */
#ifndef STEWARD_CAPTURE_MYSQL_DECODE_H
#define STEWARD_CAPTURE_MYSQL_DECODE_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "packed_ref.h"

typedef enum mydec_status {
	MYDEC_OK = 0,
	MYDEC_ERROR = 1,  /* malformed or unsupported input; message in err */
} mydec_status_t;

/* Column type codes as they appear in a table map (enum_field_types). */
enum {
	MYT_DECIMAL = 0, MYT_TINY = 1, MYT_SHORT = 2, MYT_LONG = 3, MYT_FLOAT = 4,
	MYT_DOUBLE = 5, MYT_NULL = 6, MYT_TIMESTAMP = 7, MYT_LONGLONG = 8,
	MYT_INT24 = 9, MYT_DATE = 10, MYT_TIME = 11, MYT_DATETIME = 12,
	MYT_YEAR = 13, MYT_NEWDATE = 14, MYT_VARCHAR = 15, MYT_BIT = 16,
	MYT_TIMESTAMP2 = 17, MYT_DATETIME2 = 18, MYT_TIME2 = 19,
	MYT_JSON = 245, MYT_NEWDECIMAL = 246, MYT_ENUM = 247, MYT_SET = 248,
	MYT_TINY_BLOB = 249, MYT_MEDIUM_BLOB = 250, MYT_LONG_BLOB = 251,
	MYT_BLOB = 252, MYT_VAR_STRING = 253, MYT_STRING = 254, MYT_GEOMETRY = 255,
};

/* One column of a table map.  Strings are owned by the mysql_table_t. */
typedef struct mysql_column {
	uint8_t binlog_type;   /* type code as written in the table map */
	uint8_t type;          /* real type: ENUM/SET resolved out of STRING */
	uint16_t meta;         /* decoded metadata (see mysql_types.c) */
	/* how values go into packed records (mysql_column_codec): first, read per value */
	uint8_t codec;         /* Steward__Codec of the value in packed records */
	uint8_t scale;         /* the codec's scale (proto/steward.proto, Column.scale) */
	uint8_t width;         /* bytes of a non-text codec's binlog value; 0 for text */
	bool raw_text;         /* VARCHAR in UTF-8: the binlog's bytes are the text */
	uint8_t dec_lead;      /* DECIMAL: digits of the leading partial integer group, */
	uint8_t dec_intg;      /* whole integer groups (9 digits in 4 bytes), */
	uint8_t dec_frac;      /* whole fraction groups, */
	uint8_t dec_tail;      /* digits of the trailing partial fraction group */
	bool is_unsigned;      /* from SIGNEDNESS metadata */
	bool nullable;
	uint32_t collation;    /* collation id, 0 = unknown / not a string */
	char *name;            /* NULL when the map carries no names */
	char **values;         /* ENUM / SET member strings (UTF-8) */
	size_t nvalues;
	uint32_t geometry_type;
	char *type_name;       /* COLUMN_TYPE style, e.g. "decimal(12,2)" */
} mysql_column_t;

/* The most columns a table map or rows event may name (the servers allow 4096). */
#define MYSQL_MAX_COLUMNS 4096

/* A decoded TABLE_MAP event. */
typedef struct mysql_table {
	uint64_t table_id;
	char *schema;
	char *name;
	size_t ncols;
	mysql_column_t *cols;
	bool has_names;        /* column names came with the map (row_metadata=FULL) */
	size_t *pk;            /* primary-key column indexes, npk of them */
	size_t npk;
} mysql_table_t;

/*
 * Parse a TABLE_MAP body.  post_header_len is 8 (6-byte table ids) or 6.
 * On MYDEC_OK *out is a new table the caller frees with mysql_table_free.
 */
mydec_status_t mysql_table_map_parse(const uint8_t *body, size_t len, unsigned post_header_len,
				     mysql_table_t **out, char *err, size_t errlen);
void mysql_table_free(mysql_table_t *t);  /* accepts NULL */

/*
 * Give the table column names from another source (information_schema),
 * used when the map carries none.  names[i] is copied; n must equal ncols.
 */
void mysql_table_set_names(mysql_table_t *t, char *const *names, size_t n);

/* Deep copy (heap); free with mysql_table_free. */
mysql_table_t *mysql_table_dup(const mysql_table_t *t);

/* True if both maps describe the same columns (types, metadata, names). */
bool mysql_table_same_shape(const mysql_table_t *a, const mysql_table_t *b);

typedef enum mysql_rows_kind {
	MYSQL_ROWS_WRITE = 0,
	MYSQL_ROWS_UPDATE = 1,
	MYSQL_ROWS_DELETE = 2,
} mysql_rows_kind_t;

/* A rows event's header; pointers borrow from the body given to the parser. */
typedef struct mysql_rows {
	mysql_rows_kind_t kind;
	uint64_t table_id;
	uint16_t flags;            /* bit 0: end of statement */
	size_t ncols;
	const uint8_t *present;        /* columns in the before/only image */
	const uint8_t *present_after;  /* update: columns in the after image */
	bool compressed;               /* rows is a MariaDB compressed block */
	const uint8_t *rows;           /* row images */
	size_t rows_len;
} mysql_rows_t;

/* True for the event types mysql_rows_parse accepts. */
bool mysql_is_rows_event(unsigned event_type);

/*
 * Parse a rows event body (v1, v2 or MariaDB compressed; post_header_len
 * 8 or 6 as for the table map).  For a compressed event, rows/rows_len is
 * the compressed block; the caller substitutes the inflated bytes.
 */
mydec_status_t mysql_rows_parse(unsigned event_type, const uint8_t *body, size_t len,
				unsigned post_header_len, mysql_rows_t *out,
				char *err, size_t errlen);

/* One column value of one row image.  text is owned by the arena. */
typedef struct mysql_value {
	bool present;   /* column is in the image */
	bool is_null;
	const char *text;
	size_t len;
} mysql_value_t;

/*
 * Decode one row image starting at *p (< end) for the columns in `present`
 * (a bitmap of t->ncols bits), advancing *p past it.  vals has t->ncols
 * entries; text is allocated in arena a.  A rows event whose column count
 * differs from the table map is an error (never a shifted column).
 */
mydec_status_t mysql_row_decode(const mysql_table_t *t, const uint8_t *present,
				const uint8_t **p, const uint8_t *end, arena_t *a,
				mysql_value_t *vals, char *err, size_t errlen);

/*
 * As mysql_row_decode, but the texts are appended one after another to
 * `text` (not reset first); vals[i].text points into text->data and stays
 * valid until text is next changed.
 */
mydec_status_t mysql_row_decode_buf(const mysql_table_t *t, const uint8_t *present,
				    const uint8_t **p, const uint8_t *end, buf_t *text,
				    mysql_value_t *vals, char *err, size_t errlen);

/*
 * Decode one row image that holds every column of t into a packed image
 * (proto/steward.proto, Change.after_packed): the null bitmap, then each
 * value by its column's codec (mysql_column_codec) — integers, floating
 * point, DECIMAL up to 18 digits and DATE/DATETIME/TIMESTAMP as numbers,
 * every other value as the text mysql_value_text prints.  Appended to out;
 * *p advanced past the image.  With refs (the table's shape has
 * value_refs), each value is coded against its column's reference, which
 * becomes the value (proto/packed_ref.h: the image packed_refs_encode
 * would make of the plain one); refs are then undefined on an error.
 */
mydec_status_t mysql_row_decode_packed(const mysql_table_t *t, const uint8_t **p,
				       const uint8_t *end, packed_refs_t *refs, buf_t *out,
				       char *err, size_t errlen);

/* ---- mysql_types.c ---- */

/* Fractional seconds after a DATETIME2/TIMESTAMP2/TIME2 value of fsp digits, in microseconds. */
uint64_t mysql_frac_usec(const uint8_t *p, unsigned fsp);

/* Is the collation id one of latin1's (MySQL's latin1 is cp1252, printed as UTF-8)? */
bool mysql_is_latin1(uint32_t coll);

/* How a column's values go into packed records (sets c->codec, scale, raw_text, width, dec_*). */
void mysql_column_codec(mysql_column_t *c);

/*
 * A DECIMAL(precision, scale) value with precision <= 18 at p as an
 * integer: the value times 10^scale.  *used: the bytes it takes.
 */
mydec_status_t mysql_decimal_unscaled(unsigned precision, unsigned scale, const uint8_t *p,
				      size_t avail, size_t *used, int64_t *v, char *err,
				      size_t errlen);

/*
 * The same for a column of the DECIMAL codec, from the layout
 * mysql_column_codec worked out: p has at least c->width bytes (avail in
 * all).  false: a group wider than its digits (a corrupt value).
 */
bool mysql_decimal_packed(const mysql_column_t *c, const uint8_t *p, size_t avail, int64_t *v);

/*
 * Append the text form of one non-NULL value of column c at p (at most
 * avail bytes) to out, as the mariadb client prints it for a SELECT;
 * *used receives the bytes consumed.
 */
mydec_status_t mysql_value_text(const mysql_column_t *c, const uint8_t *p, size_t avail,
				size_t *used, buf_t *out, char *err, size_t errlen);

/* Derive the COLUMN_TYPE-style name of a column from its map entry (heap). */
char *mysql_column_type_name(const mysql_column_t *c);


/* ---- mysql_json.c ---- */

/* MySQL's binary JSON (type 245) to JSON text as the mysql client prints it. */
mydec_status_t mysql_json_to_text(const uint8_t *p, size_t len, buf_t *out,
				  char *err, size_t errlen);

/* The binlog's integers: little-endian, except DECIMAL groups and temporal types. */
#define mysql_le buf_get_le
#define mysql_be buf_get_be

/* An integer column's value of n bytes (BIGINT in one load). */
static inline uint64_t
mysql_int_get(const uint8_t *p, unsigned n)
{
	if (n == 8) {
		uint64_t u;
		memcpy(&u, p, 8);
		return le64toh(u);
	}
	return buf_get_le(p, n);
}

/* Bytes of an integer column's value (TINYINT 1 … BIGINT 8). */
static inline unsigned
mysql_int_width(uint8_t type)
{
	return type == MYT_TINY ? 1 : type == MYT_SHORT ? 2 : type == MYT_INT24 ? 3 :
	       type == MYT_LONG ? 4 : 8;
}

#endif
