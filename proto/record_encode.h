/*
 * record_encode.h — a steward.Change encoder for capture agents' hot path:
 * writes the protobuf wire format (proto/steward.proto) of one record from
 * precomputed constant parts and per-row fields, with every length known up
 * front (no packed-size pass, no strlen).
 *
 * The output unpacks with protobuf-c to the same message as
 * protobuf_c_message_pack of the equivalent Steward__Change, and is
 * byte-identical to it: fields are written in field-number order, as
 * protobuf-c does (tests/unit/test_record_encode.c checks both).
 *
 * Use: once per table (re-done when the table's shape changes) build the
 * head (Change fields 1-6), the key list (field 13) and one Value prefix
 * per column (Value fields 1-3) into buffers the caller owns; per row fill
 * a record_enc_row_t and record_enc_value_t arrays pointing at them, ask
 * record_encode_size, reserve that many bytes (e.g. clog_writer_reserve)
 * and call record_encode.
 *
 * Compact ("shaped") records: the constant parts go into a steward.Shape
 * instead (record_enc_shape_head/keys/column; registered with the change
 * log writer, which gives it an id and writes it into each batch before
 * its first use: clog_writer_shape, clog_writer_reserve_shaped); each
 * record then has head_len = keys_len = 0, value prefixes of length 0,
 * has_shape and the shape's id, and each image either empty or with
 * exactly one value per shape column, in the shape's order.
 */
#ifndef STEWARD_PROTO_RECORD_ENCODE_H
#define STEWARD_PROTO_RECORD_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "buf.h"
#include "steward.pb-c.h"

/*
 * Append Change fields 1-6 to out: version, source, source_kind, database,
 * schema, table.  A NULL string is left out (as protobuf-c does); "" is
 * written as an empty field.
 */
void record_enc_head(buf_t *out, uint32_t version, const char *source, Steward__SourceKind kind,
		     const char *database, const char *schema, const char *table);

/* Append field 13 (key column names), one entry per name. */
void record_enc_keys(buf_t *out, char *const *names, size_t n);

/* Append Value fields 1-3 of one column (name, type_id, type_name); NULL strings are left out. */
void record_enc_value_prefix(buf_t *out, const char *name, uint32_t type_id,
			     const char *type_name);

/*
 * Append Shape fields 2-7 (version, source, source_kind, database, schema,
 * table), as record_enc_head does for a Change.  The Shape's id (field 1)
 * is written by the change log writer in front of these bytes.
 */
void record_enc_shape_head(buf_t *out, uint32_t version, const char *source,
			   Steward__SourceKind kind, const char *database, const char *schema,
			   const char *table);

/*
 * Append Column fields 4-5 (codec; scale when not 0) after a column's
 * record_enc_value_prefix bytes: the column of a shape whose records are
 * packed (proto/steward.proto, Codec).
 */
void record_enc_column_codec(buf_t *out, Steward__Codec codec, unsigned scale);

/* Append Shape field 10 (position_text_by_seq) = true. */
void record_enc_shape_position_by_seq(buf_t *out);
/* Append Shape field 11 (value_refs) = true. */
void record_enc_shape_value_refs(buf_t *out);

/* Append Shape field 8 (key column names). */
void record_enc_shape_keys(buf_t *out, char *const *names, size_t n);

/*
 * Append Shape field 9: one Column.  A Column's fields are Value's 1-3, so
 * its bytes are a record_enc_value_prefix (borrowed for the call).
 */
void record_enc_shape_column(buf_t *out, const uint8_t *prefix, size_t len);

/* The per-row fields 7-12.  NULL pointers leave a field out. */
typedef struct record_enc_row {
	Steward__Op op;
	const char *txid;           /* field 8 */
	size_t txid_len;
	bool has_commit_ts;
	int64_t commit_ts_us;       /* field 9 */
	const uint8_t *position;    /* field 10 (NULL: left out, packed records only) */
	size_t position_len;
	const char *position_text;  /* field 11 */
	size_t position_text_len;
	bool has_seq;
	uint32_t seq;               /* field 12 */
} record_enc_row_t;

typedef enum record_enc_kind {
	RECORD_ENC_TEXT = 0,       /* text/len */
	RECORD_ENC_NULL = 1,       /* is_null = true, no text */
	RECORD_ENC_UNCHANGED = 2,  /* unchanged = true, no text */
} record_enc_kind_t;

/* One column of an image; prefix from record_enc_value_prefix (borrowed). */
typedef struct record_enc_value {
	const uint8_t *prefix;
	size_t prefix_len;
	record_enc_kind_t kind;
	const char *text;
	size_t len;
} record_enc_value_t;

/* One record's parts; everything is borrowed for the call. */
typedef struct record_enc_change {
	const uint8_t *head;   /* record_enc_head */
	size_t head_len;
	record_enc_row_t row;
	const uint8_t *keys;   /* record_enc_keys */
	size_t keys_len;
	const record_enc_value_t *before;  /* field 14 */
	size_t nbefore;
	const record_enc_value_t *after;   /* field 15 */
	size_t nafter;
	bool has_shape;                    /* field 20: a shaped record */
	uint32_t shape;
	/*
	 * Packed images (fields 21, 22; NULL: absent): a packed record has
	 * these instead of before/after and goes into the batch as Batch field
	 * 3 (clog_writer_reserve_packed).
	 */
	const uint8_t *before_packed;
	size_t before_packed_len;
	const uint8_t *after_packed;
	size_t after_packed_len;
} record_enc_change_t;

/* Exact size in bytes of the encoded Change message (without any outer tag or length). */
size_t record_encode_size(const record_enc_change_t *c);

/* Write the Change message to out (record_encode_size(c) bytes); returns the bytes written. */
size_t record_encode(const record_enc_change_t *c, uint8_t *out);

/* Bytes of a protobuf varint of v (1..10). */
static inline size_t
record_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/*
 * Read a protobuf varint of at most 64 bits from [*pp, end), advancing *pp;
 * false if it is cut short or longer (the reader's check of untrusted bytes).
 */
static inline bool
record_varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	if (p < end && *p < 0x80) {  /* most values: one byte */
		*v = *p;
		*pp = p + 1;
		return true;
	}
	uint64_t r = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (p == end)
			return false;
		uint8_t b = *p++;
		if (shift == 63 && b > 1)
			return false;  /* more than 64 bits */
		r |= (uint64_t) (b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			*pp = p;
			return true;
		}
	}
	return false;  /* an 11th byte */
}

/* Write a protobuf varint; returns the bytes written. */
static inline size_t
record_varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t) v;
	return n;
}

/*
 * The common packed record, a later row of the previous record's
 * transaction: no position, txid or commit time, and op, seq and shape
 * only when they differ from what a reader derives (the previous record's
 * op and shape, its seq + 1), then the packed images.  The same bytes
 * protobuf-c packs for such a Change, without the general encoder's
 * per-field work (it runs once per row).
 */
typedef struct record_enc_packed_row {
	bool has_op;
	Steward__Op op;
	bool has_seq;
	uint32_t seq;
	bool has_shape;
	uint32_t shape;
	const uint8_t *before;    /* field 21; NULL: absent */
	size_t before_len;
	const uint8_t *after;     /* field 22; NULL: absent */
	size_t after_len;
} record_enc_packed_row_t;

static inline size_t
record_encode_packed_row_size(const record_enc_packed_row_t *r)
{
	size_t n = 0;
	if (r->has_op)
		n += 2;  /* every Op is below 128 */
	if (r->has_seq)
		n += 1 + record_varint_len(r->seq);
	if (r->has_shape)
		n += 2 + record_varint_len(r->shape);
	if (r->before)
		n += 2 + record_varint_len(r->before_len) + r->before_len;
	if (r->after)
		n += 2 + record_varint_len(r->after_len) + r->after_len;
	return n;
}

size_t record_encode_packed_row(const record_enc_packed_row_t *r, uint8_t *out);

#endif
