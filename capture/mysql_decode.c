/*
 * mysql_decode.c — TABLE_MAP and rows events from raw bytes; see
 * mysql_decode.h.  Value text forms live in mysql_types.c.
 */
#include "mysql_decode.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record_encode.h"
#include "xalloc.h"

/* A bounds-checked cursor over one event body. */
typedef struct cursor {
	const uint8_t *p, *end;
	bool bad;
} cursor_t;

static bool
cur_need(cursor_t *c, size_t n)
{
	if (c->bad || (size_t) (c->end - c->p) < n) {
		c->bad = true;
		return false;
	}
	return true;
}

static uint64_t
cur_uint(cursor_t *c, unsigned n)
{
	if (!cur_need(c, n))
		return 0;
	uint64_t v = mysql_le(c->p, n);
	c->p += n;
	return v;
}

/* MySQL's length-encoded integer (net_field_length). */
static uint64_t
cur_packed(cursor_t *c)
{
	if (!cur_need(c, 1))
		return 0;
	uint8_t b = *c->p++;
	if (b < 0xfb)
		return b;
	if (b == 0xfc)
		return cur_uint(c, 2);
	if (b == 0xfd)
		return cur_uint(c, 3);
	if (b == 0xfe)
		return cur_uint(c, 8);
	c->bad = true;  /* 0xfb (NULL) and 0xff are not lengths here */
	return 0;
}

static const uint8_t *
cur_bytes(cursor_t *c, size_t n)
{
	if (!cur_need(c, n))
		return NULL;
	const uint8_t *r = c->p;
	c->p += n;
	return r;
}

static bool
bit_at(const uint8_t *bitmap, size_t i)
{
	return (bitmap[i / 8] >> (i % 8)) & 1;
}

/* Optional-metadata bitmaps are most-significant bit first. */
static bool
bit_at_msb(const uint8_t *bitmap, size_t i)
{
	return (bitmap[i / 8] >> (7 - i % 8)) & 1;
}

static bool
is_numeric(uint8_t type)
{
	switch (type) {
	case MYT_TINY: case MYT_SHORT: case MYT_INT24: case MYT_LONG:
	case MYT_LONGLONG: case MYT_FLOAT: case MYT_DOUBLE: case MYT_NEWDECIMAL:
	case MYT_DECIMAL:
		return true;
	default:
		return false;
	}
}

static bool
is_enum_set(const mysql_column_t *c)
{
	return c->type == MYT_ENUM || c->type == MYT_SET;
}

/* Columns that carry a collation in COLUMN_CHARSET / DEFAULT_CHARSET. */
static bool
is_character(const mysql_column_t *c)
{
	if (is_enum_set(c))
		return false;
	switch (c->binlog_type) {
	case MYT_STRING: case MYT_VAR_STRING: case MYT_VARCHAR: case MYT_BLOB:
	case MYT_TINY_BLOB: case MYT_MEDIUM_BLOB: case MYT_LONG_BLOB:
		return true;
	default:
		return false;
	}
}

/* Read the per-column metadata block into cols[].meta / .type. */
static bool
read_column_meta(cursor_t *c, mysql_column_t *cols, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		mysql_column_t *col = &cols[i];
		col->type = col->binlog_type;
		switch (col->binlog_type) {
		case MYT_FLOAT: case MYT_DOUBLE: case MYT_BLOB: case MYT_TINY_BLOB:
		case MYT_MEDIUM_BLOB: case MYT_LONG_BLOB: case MYT_GEOMETRY: case MYT_JSON:
		case MYT_TIMESTAMP2: case MYT_DATETIME2: case MYT_TIME2:
			col->meta = (uint16_t) cur_uint(c, 1);
			break;
		case MYT_VARCHAR: case MYT_VAR_STRING:
			col->meta = (uint16_t) cur_uint(c, 2);
			break;
		case MYT_BIT: case MYT_NEWDECIMAL: case MYT_DECIMAL: {
			/* BIT: bits%8, bytes; DECIMAL: precision, scale */
			const uint8_t *m = cur_bytes(c, 2);
			if (m)
				col->meta = (uint16_t) (m[0] << 8 | m[1]);
			break;
		}
		case MYT_STRING: case MYT_ENUM: case MYT_SET: {
			const uint8_t *m = cur_bytes(c, 2);
			if (!m)
				break;
			uint8_t real = m[0];
			unsigned length = m[1];
			/* CHAR > 255 bytes keeps two length bits in the type byte */
			if ((real & 0x30) != 0x30) {
				length |= ((real & 0x30) ^ 0x30) << 4;
				real |= 0x30;
			}
			if (real == MYT_ENUM || real == MYT_SET || real == MYT_STRING)
				col->type = real;
			col->meta = (uint16_t) length;
			break;
		}
		default:
			break;
		}
		if (c->bad)
			return false;
	}
	return true;
}

static char *
dup_counted(cursor_t *c)
{
	uint64_t n = cur_packed(c);
	const uint8_t *s = cur_bytes(c, n);
	return s ? xstrndup((const char *) s, n) : NULL;
}

/* Collations for the columns selected by `want`, DEFAULT_CHARSET form. */
static bool
read_default_charset(cursor_t *f, mysql_column_t *cols, size_t n,
		     bool (*want)(const mysql_column_t *))
{
	uint32_t def = (uint32_t) cur_packed(f);
	for (size_t i = 0; i < n; i++)
		if (want(&cols[i]))
			cols[i].collation = def;
	while (!f->bad && f->p < f->end) {
		uint64_t idx = cur_packed(f), coll = cur_packed(f);
		if (f->bad)
			return false;
		/* idx counts only the selected columns */
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (!want(&cols[i]))
				continue;
			if (k++ == idx) {
				cols[i].collation = (uint32_t) coll;
				break;
			}
		}
	}
	return !f->bad;
}

static bool
read_column_charset(cursor_t *f, mysql_column_t *cols, size_t n,
		    bool (*want)(const mysql_column_t *))
{
	for (size_t i = 0; i < n && !f->bad; i++)
		if (want(&cols[i]))
			cols[i].collation = (uint32_t) cur_packed(f);
	return !f->bad;
}

static bool
read_str_values(cursor_t *f, mysql_column_t *cols, size_t n, uint8_t type)
{
	for (size_t i = 0; i < n && !f->bad; i++) {
		if (cols[i].type != type)
			continue;
		for (size_t k = 0; k < cols[i].nvalues; k++)
			free(cols[i].values[k]);
		free(cols[i].values);
		cols[i].values = NULL;
		cols[i].nvalues = 0;
		uint64_t cnt = cur_packed(f);
		if (f->bad || cnt > (uint64_t) (f->end - f->p))
			return false;
		cols[i].values = xcalloc(cnt ? cnt : 1, sizeof(char *));
		cols[i].nvalues = cnt;
		for (uint64_t k = 0; k < cnt; k++) {
			cols[i].values[k] = dup_counted(f);
			if (!cols[i].values[k])
				return false;
		}
	}
	return !f->bad;
}

/* The TLV list after the null bitmap (binlog_row_metadata=MINIMAL/FULL). */
static bool
read_optional_meta(cursor_t *c, mysql_table_t *t)
{
	mysql_column_t *cols = t->cols;
	size_t n = t->ncols;
	while (!c->bad && c->p < c->end) {
		unsigned kind = (unsigned) cur_uint(c, 1);
		uint64_t flen = cur_packed(c);
		const uint8_t *field = cur_bytes(c, flen);
		if (!field)
			return false;
		cursor_t f = {field, field + flen, false};
		switch (kind) {
		case 1: {  /* SIGNEDNESS: one bit per numeric column, 1 = unsigned */
			size_t k = 0;
			for (size_t i = 0; i < n; i++) {
				if (!is_numeric(cols[i].type))
					continue;
				if (k / 8 >= flen)
					return false;
				cols[i].is_unsigned = bit_at_msb(field, k);
				k++;
			}
			break;
		}
		case 2:
			if (!read_default_charset(&f, cols, n, is_character))
				return false;
			break;
		case 3:
			if (!read_column_charset(&f, cols, n, is_character))
				return false;
			break;
		case 4:  /* COLUMN_NAME */
			for (size_t i = 0; i < n; i++) {
				free(cols[i].name);  /* a repeated field replaces the first */
				cols[i].name = dup_counted(&f);
				if (!cols[i].name)
					return false;
			}
			t->has_names = true;
			break;
		case 5:
			if (!read_str_values(&f, cols, n, MYT_SET))
				return false;
			break;
		case 6:
			if (!read_str_values(&f, cols, n, MYT_ENUM))
				return false;
			break;
		case 7:  /* GEOMETRY_TYPE */
			for (size_t i = 0; i < n && !f.bad; i++)
				if (cols[i].type == MYT_GEOMETRY)
					cols[i].geometry_type = (uint32_t) cur_packed(&f);
			if (f.bad)
				return false;
			break;
		case 8:    /* SIMPLE_PRIMARY_KEY */
		case 9: {  /* PRIMARY_KEY_WITH_PREFIX: (index, prefix) pairs */
			while (f.p < f.end && !f.bad) {
				uint64_t idx = cur_packed(&f);
				if (kind == 9)
					(void) cur_packed(&f);
				if (f.bad || idx >= n)
					return false;
				t->pk = xrealloc(t->pk, (t->npk + 1) * sizeof(size_t));
				t->pk[t->npk++] = (size_t) idx;
			}
			if (f.bad)
				return false;
			break;
		}
		case 10:
			if (!read_default_charset(&f, cols, n, is_enum_set))
				return false;
			break;
		case 11:
			if (!read_column_charset(&f, cols, n, is_enum_set))
				return false;
			break;
		default:
			break;  /* unknown fields are skippable by design */
		}
	}
	return !c->bad;
}

mydec_status_t
mysql_table_map_parse(const uint8_t *body, size_t len, unsigned post_header_len,
		      mysql_table_t **out, char *err, size_t errlen)
{
	mydec_status_t st = MYDEC_ERROR;
	mysql_table_t *t = xcalloc(1, sizeof(*t));
	cursor_t c = {body, body + len, false};
	const char *what = "header";

	t->table_id = cur_uint(&c, post_header_len == 6 ? 4 : 6);
	(void) cur_uint(&c, 2);  /* flags */
	if (post_header_len > 8)
		(void) cur_bytes(&c, post_header_len - 8);
	what = "schema name";
	uint64_t n = cur_uint(&c, 1);
	const uint8_t *s = cur_bytes(&c, n + 1);
	if (!s)
		goto out;
	t->schema = xstrndup((const char *) s, n);
	what = "table name";
	n = cur_uint(&c, 1);
	s = cur_bytes(&c, n + 1);
	if (!s)
		goto out;
	t->name = xstrndup((const char *) s, n);
	what = "column count";
	n = cur_packed(&c);
	if (c.bad || n == 0 || n > MYSQL_MAX_COLUMNS || n > len)
		goto out;
	t->ncols = (size_t) n;
	t->cols = xcalloc(t->ncols, sizeof(mysql_column_t));
	what = "column types";
	const uint8_t *types = cur_bytes(&c, t->ncols);
	if (!types)
		goto out;
	for (size_t i = 0; i < t->ncols; i++)
		t->cols[i].binlog_type = types[i];
	what = "column metadata";
	uint64_t mlen = cur_packed(&c);
	const uint8_t *meta = cur_bytes(&c, mlen);
	if (!meta)
		goto out;
	cursor_t mc = {meta, meta + mlen, false};
	if (!read_column_meta(&mc, t->cols, t->ncols))
		goto out;
	what = "null bitmap";
	const uint8_t *nulls = cur_bytes(&c, (t->ncols + 7) / 8);
	if (!nulls)
		goto out;
	for (size_t i = 0; i < t->ncols; i++)
		t->cols[i].nullable = bit_at(nulls, i);
	what = "optional metadata";
	if (!read_optional_meta(&c, t))
		goto out;
	for (size_t i = 0; i < t->ncols; i++) {
		t->cols[i].type_name = mysql_column_type_name(&t->cols[i]);
		mysql_column_codec(&t->cols[i]);
	}
	st = MYDEC_OK;
out:
	if (st != MYDEC_OK) {
		snprintf(err, errlen, "malformed table map event%s%s%s: truncated or invalid %s",
			 t->name ? " for \"" : "", t->name ? t->name : "", t->name ? "\"" : "", what);
		mysql_table_free(t);
		t = NULL;
	}
	*out = t;
	return st;
}

static void
column_clear(mysql_column_t *c)
{
	free(c->name);
	for (size_t k = 0; k < c->nvalues; k++)
		free(c->values[k]);
	free(c->values);
	free(c->type_name);
}

void
mysql_table_free(mysql_table_t *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncols && t->cols; i++)
		column_clear(&t->cols[i]);
	free(t->cols);
	free(t->pk);
	free(t->schema);
	free(t->name);
	free(t);
}

void
mysql_table_set_names(mysql_table_t *t, char *const *names, size_t n)
{
	if (n != t->ncols)
		return;
	for (size_t i = 0; i < n; i++) {
		free(t->cols[i].name);
		t->cols[i].name = xstrdup(names[i]);
	}
}

mysql_table_t *
mysql_table_dup(const mysql_table_t *t)
{
	mysql_table_t *d = xcalloc(1, sizeof(*d));
	*d = *t;
	d->schema = xstrdup(t->schema);
	d->name = xstrdup(t->name);
	d->cols = xcalloc(t->ncols, sizeof(mysql_column_t));
	for (size_t i = 0; i < t->ncols; i++) {
		mysql_column_t *c = &d->cols[i];
		*c = t->cols[i];
		c->name = t->cols[i].name ? xstrdup(t->cols[i].name) : NULL;
		c->type_name = t->cols[i].type_name ? xstrdup(t->cols[i].type_name) : NULL;
		c->values = xcalloc(c->nvalues ? c->nvalues : 1, sizeof(char *));
		for (size_t k = 0; k < c->nvalues; k++)
			c->values[k] = xstrdup(t->cols[i].values[k]);
	}
	d->pk = t->npk ? xmemdup(t->pk, t->npk * sizeof(size_t)) : NULL;
	return d;
}

static bool
streq_null(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

bool
mysql_table_same_shape(const mysql_table_t *a, const mysql_table_t *b)
{
	if (a->ncols != b->ncols || !streq_null(a->schema, b->schema) ||
	    !streq_null(a->name, b->name) || a->has_names != b->has_names)
		return false;
	for (size_t i = 0; i < a->ncols; i++) {
		const mysql_column_t *x = &a->cols[i], *y = &b->cols[i];
		if (x->binlog_type != y->binlog_type || x->type != y->type || x->meta != y->meta ||
		    x->is_unsigned != y->is_unsigned || x->collation != y->collation ||
		    !streq_null(x->name, y->name) || !streq_null(x->type_name, y->type_name))
			return false;
	}
	return true;
}

bool
mysql_is_rows_event(unsigned t)
{
	return (t >= 23 && t <= 25) || (t >= 30 && t <= 32) || (t >= 166 && t <= 171);
}

mydec_status_t
mysql_rows_parse(unsigned type, const uint8_t *body, size_t len, unsigned post_header_len,
		 mysql_rows_t *out, char *err, size_t errlen)
{
	cursor_t c = {body, body + len, false};
	bool v2 = type == 30 || type == 31 || type == 32 || (type >= 169 && type <= 171);
	unsigned base;
	memset(out, 0, sizeof(*out));
	if (type >= 23 && type <= 25)
		base = 23;
	else if (type >= 30 && type <= 32)
		base = 30;
	else if (type >= 166 && type <= 168)
		base = 166;
	else if (type >= 169 && type <= 171)
		base = 169;
	else {
		snprintf(err, errlen, "event type %u is not a rows event", type);
		return MYDEC_ERROR;
	}
	out->kind = (mysql_rows_kind_t) (type - base);
	out->compressed = base >= 166;
	out->table_id = cur_uint(&c, post_header_len == 6 ? 4 : 6);
	out->flags = (uint16_t) cur_uint(&c, 2);
	if (v2) {
		uint64_t extra = cur_uint(&c, 2);
		if (extra < 2) {
			c.bad = true;
		} else {
			(void) cur_bytes(&c, extra - 2);
		}
	} else if (post_header_len > 8) {
		(void) cur_bytes(&c, post_header_len - 8);
	}
	uint64_t n = cur_packed(&c);
	if (c.bad || n == 0 || n > MYSQL_MAX_COLUMNS)
		goto bad;
	out->ncols = (size_t) n;
	out->present = cur_bytes(&c, (out->ncols + 7) / 8);
	if (out->kind == MYSQL_ROWS_UPDATE)
		out->present_after = cur_bytes(&c, (out->ncols + 7) / 8);
	if (c.bad)
		goto bad;
	out->rows = c.p;
	out->rows_len = (size_t) (c.end - c.p);
	return MYDEC_OK;
bad:
	snprintf(err, errlen, "malformed rows event (type %u, table id %llu): truncated header",
		 type, (unsigned long long) out->table_id);
	return MYDEC_ERROR;
}

/* "could not decode column N ("name") of "schema.table": why" into err. */
static mydec_status_t
column_error(const mysql_table_t *t, size_t i, const char *why, char *err, size_t errlen)
{
	const char *name = t->cols[i].name;
	snprintf(err, errlen, "could not decode column %zu%s%s%s of \"%s.%s\": %s", i + 1,
		 name ? " (\"" : "", name ? name : "", name ? "\")" : "", t->schema, t->name, why);
	return MYDEC_ERROR;
}

mydec_status_t
mysql_row_decode_buf(const mysql_table_t *t, const uint8_t *present, const uint8_t **p,
		     const uint8_t *end, buf_t *text, mysql_value_t *vals, char *err, size_t errlen)
{
	size_t npresent = 0;
	for (size_t i = 0; i < t->ncols; i++)
		npresent += bit_at(present, i);
	size_t nbytes = (npresent + 7) / 8;
	if ((size_t) (end - *p) < nbytes) {
		snprintf(err, errlen, "malformed rows event for \"%s.%s\": truncated null bitmap",
			 t->schema, t->name);
		return MYDEC_ERROR;
	}
	const uint8_t *nulls = *p;
	const uint8_t *q = *p + nbytes;
	size_t k = 0;
	/* Texts go one after another into `text`; pointers are set once it stops moving. */
	for (size_t i = 0; i < t->ncols; i++) {
		mysql_value_t *v = &vals[i];
		memset(v, 0, sizeof(*v));
		if (!bit_at(present, i))
			continue;
		v->present = true;
		if (bit_at(nulls, k++)) {
			v->is_null = true;
			continue;
		}
		size_t used = 0, start = text->len;
		char verr[200];
		if (mysql_value_text(&t->cols[i], q, (size_t) (end - q), &used, text, verr,
				     sizeof(verr)) != MYDEC_OK) {
			return column_error(t, i, verr, err, errlen);
		}
		q += used;
		v->text = (const char *) (uintptr_t) start;  /* offset until the loop ends */
		v->len = text->len - start;
	}
	if (!text->data)
		buf_reserve(text, 1);
	for (size_t i = 0; i < t->ncols; i++)
		if (vals[i].present && !vals[i].is_null)
			vals[i].text = text->data + (uintptr_t) vals[i].text;
	*p = q;
	return MYDEC_OK;
}

/* Bytes a packed value may take beyond a string's bytes: varints and fixed widths. */
#define PACKED_VALUE_MAX 24

/* buf_reserve without the call when there is room already (once or twice per value). */
static inline void
room(buf_t *out, size_t n)
{
	if (out->cap - out->len <= n)
		buf_reserve(out, n);
}

static inline uint8_t *
put_varint(uint8_t *o, uint64_t v)
{
	while (v >= 0x80) {
		*o++ = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	*o++ = (uint8_t) v;
	return o;
}

/*
 * A text value of column c at q into out as varint length + bytes: the
 * text goes after one length byte, moved up when its length needs more;
 * then room for ncols_left fixed-width values is kept, as the caller expects.
 */
static mydec_status_t
packed_text(const mysql_column_t *c, const uint8_t *q, size_t avail, size_t *used, buf_t *out,
	    size_t ncols_left, char *err, size_t errlen)
{
	size_t at = out->len;
	out->len++;
	if (mysql_value_text(c, q, avail, used, out, err, errlen) != MYDEC_OK)
		return MYDEC_ERROR;
	size_t n = out->len - at - 1;
	size_t hl = record_varint_len(n);
	if (hl > 1) {
		buf_reserve(out, hl - 1);
		memmove(out->data + at + hl, out->data + at + 1, n);
		out->len += hl - 1;
	}
	record_varint_put((uint8_t *) out->data + at, n);
	room(out, ncols_left * PACKED_VALUE_MAX);
	return MYDEC_OK;
}

static inline uint64_t
zigzag64(uint64_t v)
{
	return (v << 1) ^ (uint64_t) ((int64_t) v >> 63);
}

/*
 * A number as the plain coding has it (after zigzag decoding, for the
 * signed codecs), coded against column i's reference when there are
 * references (proto/packed_ref.h), else as plain: zigzag says whether the
 * plain coding zigzags it.
 */
static inline uint8_t *
put_number(uint8_t *o, packed_refs_t *refs, size_t i, uint64_t x, bool zigzag)
{
	if (refs) {
		uint64_t d = x - refs->num[i];
		refs->num[i] = x;
		return put_varint(o, zigzag64(d));
	}
	return put_varint(o, zigzag ? zigzag64(x) : x);
}

/*
 * Recode the plain text value at out[at..out->len) (varint length, bytes)
 * against column i's text reference: shared prefix length, rest length,
 * rest; the reference becomes the text.
 */
static void
text_against_ref(buf_t *out, size_t at, packed_refs_t *refs, size_t i)
{
	const uint8_t *v = (const uint8_t *) out->data + at;
	uint64_t n = 0;
	size_t hl = 0;
	for (int shift = 0;; shift += 7) {
		uint8_t b = v[hl++];
		n |= (uint64_t) (b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
	}
	buf_t *ref = &refs->text[i];
	const uint8_t *txt = v + hl;
	size_t max = n < ref->len ? (size_t) n : ref->len;
	size_t k = max ? packed_shared_prefix((const uint8_t *) ref->data, txt, max) : 0;
	/* the new reference first: the text moves below */
	ref->len = k;
	if (n + 1 > ref->cap)
		buf_reserve(ref, (size_t) n - k);
	memcpy(ref->data + k, txt + k, (size_t) n - k);
	ref->len = (size_t) n;
	uint8_t head[20];
	size_t nh = (size_t) (put_varint(put_varint(head, k), n - k) - head);
	size_t rest = (size_t) n - k;
	if (nh > hl + k)
		buf_reserve(out, nh - hl - k);
	uint8_t *o = (uint8_t *) out->data + at;
	memmove(o + nh, o + hl + k, rest);
	memcpy(o, head, nh);
	out->len = at + nh + rest;
}

mydec_status_t
mysql_row_decode_packed(const mysql_table_t *t, const uint8_t **p, const uint8_t *end,
			packed_refs_t *refs, buf_t *out, char *err, size_t errlen)
{
	size_t nbytes = (t->ncols + 7) / 8;
	if ((size_t) (end - *p) < nbytes) {
		snprintf(err, errlen, "malformed rows event for \"%s.%s\": truncated null bitmap",
			 t->schema, t->name);
		return MYDEC_ERROR;
	}
	const uint8_t *nulls = *p;
	const uint8_t *q = *p + nbytes;
	/*
	 * The same bitmap as the row image's (every column present), its
	 * padding bits cleared; then room for every fixed-width value, kept
	 * after each string.
	 */
	room(out, nbytes + t->ncols * PACKED_VALUE_MAX);
	for (size_t k = 0; k < nbytes; k++)  /* a byte or two: no memcpy call */
		out->data[out->len + k] = (char) nulls[k];
	if (t->ncols % 8)
		out->data[out->len + nbytes - 1] &= (char) ((1u << (t->ncols % 8)) - 1);
	out->len += nbytes;
	/* o is where the next value goes; out->len catches up before anything may grow out */
	uint8_t *o = (uint8_t *) out->data + out->len;
	for (size_t i = 0; i < t->ncols; i++) {
		if (bit_at(nulls, i))
			continue;
		const mysql_column_t *c = &t->cols[i];
		size_t avail = (size_t) (end - q), used;
		bool wide = avail >= 8;  /* fixed-width fields in one load */
		char verr[200];
		/* a fixed-width codec's value, in one load where the event goes on for 8 bytes */
		unsigned w = c->width;
		if (avail < w)  /* 0 for text: checked as it is read */
			goto short_value;
		switch (c->codec) {
		case STEWARD__CODEC__CODEC_INT: {
			uint64_t u = wide ? buf_get_le_wide(q, w) : buf_get_le(q, w);
			unsigned sh = 64 - 8 * w;  /* sign-extend */
			o = put_number(o, refs, i, (uint64_t) ((int64_t) (u << sh) >> sh), true);
			used = w;
			break;
		}
		case STEWARD__CODEC__CODEC_UINT:
			o = put_number(o, refs, i, wide ? buf_get_le_wide(q, w) : buf_get_le(q, w),
				       false);
			used = w;
			break;
		case STEWARD__CODEC__CODEC_DOUBLE:
		case STEWARD__CODEC__CODEC_FLOAT: {
			/* the binlog's IEEE bytes are little-endian, as packed images hold them */
			uint64_t bits = wide ? buf_get_le_wide(q, w) : buf_get_le(q, w);
			if (refs) {
				uint64_t x = bits ^ refs->num[i];
				refs->num[i] = bits;
				bits = x;
			}
			bits = htole64(bits);
			memcpy(o, &bits, 8);  /* a FLOAT's 4 more bytes are room, overwritten next */
			o += w;
			used = w;
			break;
		}
		case STEWARD__CODEC__CODEC_DECIMAL: {
			int64_t v;
			if (!mysql_decimal_packed(c, q, avail, &v)) {
				snprintf(verr, sizeof verr, "invalid decimal(%u,%u) digits", c->meta >> 8,
					 c->meta & 0xff);
				return column_error(t, i, verr, err, errlen);
			}
			o = put_number(o, refs, i, (uint64_t) v, true);
			used = w;
			break;
		}
		case STEWARD__CODEC__CODEC_DATE:
			o = put_number(o, refs, i, wide ? buf_get_le_wide(q, 3) : mysql_le(q, 3), false);
			used = 3;
			break;
		case STEWARD__CODEC__CODEC_DATETIME: {
			uint64_t v = wide ? buf_get_be_wide(q, 5) : mysql_be(q, 5);
			if (v < 0x8000000000ULL)  /* the sign bit: no DATETIME is negative */
				return column_error(t, i, "invalid datetime value (sign bit clear)", err,
						    errlen);
			o = put_number(o, refs, i, v - 0x8000000000ULL, false);
			if (c->scale)
				o = put_varint(o, mysql_frac_usec(q + 5, c->scale));
			used = w;
			break;
		}
		case STEWARD__CODEC__CODEC_TIMESTAMP:
			o = put_number(o, refs, i, wide ? buf_get_be_wide(q, 4) : mysql_be(q, 4), false);
			if (c->scale)
				o = put_varint(o, mysql_frac_usec(q + 4, c->scale));
			used = w;
			break;
		default:
			out->len = (size_t) ((char *) o - out->data);
			if (c->raw_text) {
				/* UTF-8 text as the binlog holds it: the common case, copied once */
				unsigned lb = c->meta > 255 ? 2 : 1;
				size_t n;
				if (avail < lb || (n = (size_t) mysql_le(q, lb)) > avail - lb)
					goto short_value;
				if (n > c->meta) {
					snprintf(verr, sizeof verr, "string of %zu bytes exceeds the column's %u",
						 n, c->meta);
					return column_error(t, i, verr, err, errlen);
				}
				room(out, n + t->ncols * PACKED_VALUE_MAX);
				o = (uint8_t *) out->data + out->len;
				if (refs) {
					/* shared prefix with the reference, the rest; the reference becomes it */
					buf_t *ref = &refs->text[i];
					const uint8_t *txt = q + lb;
					size_t max = n < ref->len ? n : ref->len;
					size_t k = max ? packed_shared_prefix((const uint8_t *) ref->data,
									      txt, max) : 0;
					o = put_varint(o, k);
					o = put_varint(o, n - k);
					packed_copy_small(o, txt + k, n - k);
					o += n - k;
					ref->len = k;
					if (n + 1 > ref->cap)
						buf_reserve(ref, n - k);
					packed_copy_small((uint8_t *) ref->data + k, txt + k, n - k);
					ref->len = n;
				} else {
					o = put_varint(o, n);
					memcpy(o, q + lb, n);
					o += n;
				}
				used = lb + n;
				break;
			}
			size_t at = out->len;
			if (packed_text(c, q, avail, &used, out, t->ncols - i, verr, sizeof(verr)) !=
			    MYDEC_OK)
				return column_error(t, i, verr, err, errlen);
			if (refs) {
				text_against_ref(out, at, refs, i);
				room(out, (t->ncols - i) * PACKED_VALUE_MAX);
			}
			o = (uint8_t *) out->data + out->len;
			break;
		}
		q += used;
		continue;
short_value:
		return column_error(t, i, "value runs past the end of the event", err, errlen);
	}
	out->len = (size_t) ((char *) o - out->data);
	*p = q;
	return MYDEC_OK;
}

mydec_status_t
mysql_row_decode(const mysql_table_t *t, const uint8_t *present, const uint8_t **p,
		 const uint8_t *end, arena_t *a, mysql_value_t *vals, char *err, size_t errlen)
{
	buf_t text = BUF_INIT;
	mydec_status_t st = mysql_row_decode_buf(t, present, p, end, &text, vals, err, errlen);
	if (st == MYDEC_OK) {
		for (size_t i = 0; i < t->ncols; i++)
			if (vals[i].present && !vals[i].is_null)
				vals[i].text = arena_strndup(a, vals[i].text, vals[i].len);
	}
	buf_free(&text);
	return st;
}
