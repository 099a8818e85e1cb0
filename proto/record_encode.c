/*
 * record_encode.c — steward.Change in protobuf wire format from
 * precomputed parts; see record_encode.h.
 *
 * Wire format reminders (proto2, protobuf's encoding): a field is a tag
 * varint (field_number << 3 | wire_type) followed by a varint (wire type 0)
 * or a varint length and that many bytes (wire type 2).  Signed int64 and
 * enums are written as the 64-bit two's complement varint.
 */
#include "record_encode.h"

#include <string.h>

enum { WT_VARINT = 0, WT_LEN = 2 };

#define TAG(field, wt) ((uint8_t) (((field) << 3) | (wt)))

static void
put_len_field(buf_t *out, unsigned field, const void *p, size_t n)
{
	uint8_t hdr[12];
	size_t h = record_varint_put(hdr, (uint64_t) (field << 3 | WT_LEN));
	h += record_varint_put(hdr + h, n);
	buf_append(out, hdr, h);
	if (n)
		buf_append(out, p, n);
}

static void
put_varint_field(buf_t *out, unsigned field, uint64_t v)
{
	uint8_t hdr[12];
	size_t h = record_varint_put(hdr, (uint64_t) (field << 3 | WT_VARINT));
	h += record_varint_put(hdr + h, v);
	buf_append(out, hdr, h);
}

static void
put_str_field(buf_t *out, unsigned field, const char *s)
{
	if (s)
		put_len_field(out, field, s, strlen(s));
}

/* Change fields 1-6 and Shape fields 2-7 are the same list from a different first number. */
static void
put_head(buf_t *out, unsigned first, uint32_t version, const char *source,
	 Steward__SourceKind kind, const char *database, const char *schema, const char *table)
{
	put_varint_field(out, first, version);
	put_str_field(out, first + 1, source);
	put_varint_field(out, first + 2, (uint64_t) (int64_t) kind);
	put_str_field(out, first + 3, database);
	put_str_field(out, first + 4, schema);
	put_str_field(out, first + 5, table);
}

static void
put_keys(buf_t *out, unsigned field, char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put_len_field(out, field, names[i] ? names[i] : "", names[i] ? strlen(names[i]) : 0);
}

void
record_enc_head(buf_t *out, uint32_t version, const char *source, Steward__SourceKind kind,
		const char *database, const char *schema, const char *table)
{
	put_head(out, 1, version, source, kind, database, schema, table);
}

void
record_enc_keys(buf_t *out, char *const *names, size_t n)
{
	put_keys(out, 13, names, n);
}

void
record_enc_shape_head(buf_t *out, uint32_t version, const char *source, Steward__SourceKind kind,
		      const char *database, const char *schema, const char *table)
{
	put_head(out, 2, version, source, kind, database, schema, table);
}

void
record_enc_shape_keys(buf_t *out, char *const *names, size_t n)
{
	put_keys(out, 8, names, n);
}

void
record_enc_shape_column(buf_t *out, const uint8_t *prefix, size_t len)
{
	put_len_field(out, 9, prefix, len);
}

void
record_enc_column_codec(buf_t *out, Steward__Codec codec, unsigned scale)
{
	put_varint_field(out, 4, (uint64_t) (int64_t) codec);
	if (scale)
		put_varint_field(out, 5, scale);
}

void
record_enc_shape_position_by_seq(buf_t *out)
{
	put_varint_field(out, 10, 1);
}

void
record_enc_shape_value_refs(buf_t *out)
{
	put_varint_field(out, 11, 1);
}

void
record_enc_value_prefix(buf_t *out, const char *name, uint32_t type_id, const char *type_name)
{
	put_str_field(out, 1, name);
	put_varint_field(out, 2, type_id);
	put_str_field(out, 3, type_name);
}

/* Size of one Value message (without its tag and length in the Change). */
static inline size_t
value_size(const record_enc_value_t *v)
{
	switch (v->kind) {
	case RECORD_ENC_NULL:
		return v->prefix_len + 2;       /* field 4 = true */
	case RECORD_ENC_UNCHANGED:
		return v->prefix_len + 2;       /* field 6 = true */
	default:
		return v->prefix_len + 1 + record_varint_len(v->len) + v->len;  /* field 5 */
	}
}

static size_t
image_size(const record_enc_value_t *vals, size_t n)
{
	size_t size = 0;
	for (size_t i = 0; i < n; i++) {
		size_t vs = value_size(&vals[i]);
		size += 1 + record_varint_len(vs) + vs;
	}
	return size;
}

static size_t
row_size(const record_enc_row_t *r)
{
	size_t size = 1 + record_varint_len((uint64_t) (int64_t) r->op);
	if (r->txid)
		size += 1 + record_varint_len(r->txid_len) + r->txid_len;
	if (r->has_commit_ts)
		size += 1 + record_varint_len((uint64_t) r->commit_ts_us);
	if (r->position)
		size += 1 + record_varint_len(r->position_len) + r->position_len;
	if (r->position_text)
		size += 1 + record_varint_len(r->position_text_len) + r->position_text_len;
	if (r->has_seq)
		size += 1 + record_varint_len(r->seq);
	return size;
}

size_t
record_encode_size(const record_enc_change_t *c)
{
	size_t before = image_size(c->before, c->nbefore);
	size_t after = image_size(c->after, c->nafter);
	size_t packed = 0;
	if (c->before_packed)  /* two-byte tags: field 21 and 22 */
		packed += 2 + record_varint_len(c->before_packed_len) + c->before_packed_len;
	if (c->after_packed)
		packed += 2 + record_varint_len(c->after_packed_len) + c->after_packed_len;
	return c->head_len + row_size(&c->row) + c->keys_len + before + after +
	       (c->has_shape ? 2 + record_varint_len(c->shape) : 0) + packed;
}

static inline uint8_t *
put_bytes(uint8_t *p, uint8_t tag, const void *data, size_t n)
{
	*p++ = tag;
	p += record_varint_put(p, n);
	if (n)
		memcpy(p, data, n);
	return p + n;
}

static uint8_t *
put_image(uint8_t *p, uint8_t tag, const record_enc_value_t *vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const record_enc_value_t *v = &vals[i];
		*p++ = tag;
		p += record_varint_put(p, value_size(v));
		if (v->prefix_len) {
			memcpy(p, v->prefix, v->prefix_len);
			p += v->prefix_len;
		}
		switch (v->kind) {
		case RECORD_ENC_NULL:
			*p++ = TAG(4, WT_VARINT);
			*p++ = 1;
			break;
		case RECORD_ENC_UNCHANGED:
			*p++ = TAG(6, WT_VARINT);
			*p++ = 1;
			break;
		default:
			p = put_bytes(p, TAG(5, WT_LEN), v->text, v->len);
			break;
		}
	}
	return p;
}

/* Fields 20-22 (shape, packed images), the end of every record that has them. */
static uint8_t *
put_shape_and_packed(uint8_t *p, bool has_shape, uint32_t shape, const uint8_t *before,
		     size_t before_len, const uint8_t *after, size_t after_len)
{
	if (has_shape) {
		*p++ = 0xa0;  /* field 20, wire type 0: a two-byte tag */
		*p++ = 0x01;
		p += record_varint_put(p, shape);
	}
	if (before) {
		*p++ = 0xaa;  /* field 21, wire type 2 */
		*p++ = 0x01;
		p += record_varint_put(p, before_len);
		memcpy(p, before, before_len);
		p += before_len;
	}
	if (after) {
		*p++ = 0xb2;  /* field 22, wire type 2 */
		*p++ = 0x01;
		p += record_varint_put(p, after_len);
		memcpy(p, after, after_len);
		p += after_len;
	}
	return p;
}

size_t
record_encode_packed_row(const record_enc_packed_row_t *r, uint8_t *out)
{
	uint8_t *p = out;
	if (r->has_op) {
		*p++ = TAG(7, WT_VARINT);
		*p++ = (uint8_t) r->op;
	}
	if (r->has_seq) {
		*p++ = TAG(12, WT_VARINT);
		p += record_varint_put(p, r->seq);
	}
	p = put_shape_and_packed(p, r->has_shape, r->shape, r->before, r->before_len, r->after,
				 r->after_len);
	return (size_t) (p - out);
}

size_t
record_encode(const record_enc_change_t *c, uint8_t *out)
{
	const record_enc_row_t *r = &c->row;
	uint8_t *p = out;
	if (c->head_len) {
		memcpy(p, c->head, c->head_len);
		p += c->head_len;
	}
	*p++ = TAG(7, WT_VARINT);
	p += record_varint_put(p, (uint64_t) (int64_t) r->op);
	if (r->txid)
		p = put_bytes(p, TAG(8, WT_LEN), r->txid, r->txid_len);
	if (r->has_commit_ts) {
		*p++ = TAG(9, WT_VARINT);
		p += record_varint_put(p, (uint64_t) r->commit_ts_us);
	}
	if (r->position)
		p = put_bytes(p, TAG(10, WT_LEN), r->position, r->position_len);
	if (r->position_text)
		p = put_bytes(p, TAG(11, WT_LEN), r->position_text, r->position_text_len);
	if (r->has_seq) {
		*p++ = TAG(12, WT_VARINT);
		p += record_varint_put(p, r->seq);
	}
	if (c->keys_len) {
		memcpy(p, c->keys, c->keys_len);
		p += c->keys_len;
	}
	p = put_image(p, TAG(14, WT_LEN), c->before, c->nbefore);
	p = put_image(p, TAG(15, WT_LEN), c->after, c->nafter);
	p = put_shape_and_packed(p, c->has_shape, c->shape, c->before_packed, c->before_packed_len,
				 c->after_packed, c->after_packed_len);
	return (size_t) (p - out);
}
