/*
 * mysql_json.c — MySQL's binary JSON column format to JSON text, as the
 * mysql client prints it ({"a": 1, "b": [true, null]}).  MariaDB stores
 * JSON as text and never reaches this file.
 *
 * Layout (MySQL sql-common/json_binary.h): a type byte, then the value.
 * Objects and arrays: count and byte size (2 bytes each when small, 4 when
 * large), key entries (offset, 2-byte length), value entries (type byte,
 * then an inlined scalar or an offset), all offsets relative to the byte
 * after the container's type byte.
 */
#include "mysql_decode.h"

#include <stdio.h>
#include <string.h>

#include "value_text.h"

#define JSON_MAX_DEPTH 100

enum {
	J_SMALL_OBJ = 0, J_LARGE_OBJ = 1, J_SMALL_ARR = 2, J_LARGE_ARR = 3, J_LITERAL = 4,
	J_INT16 = 5, J_UINT16 = 6, J_INT32 = 7, J_UINT32 = 8, J_INT64 = 9, J_UINT64 = 10,
	J_DOUBLE = 11, J_STRING = 12, J_OPAQUE = 15,
};

typedef struct jctx {
	buf_t *out;
	char *err;
	size_t errlen;
} jctx_t;

static bool
jfail(jctx_t *j, const char *what)
{
	snprintf(j->err, j->errlen, "malformed binary JSON: %s", what);
	return false;
}

/* 7 bits per byte, low group first, at most 5 bytes. */
static bool
read_varlen(const uint8_t *p, size_t len, size_t *n, size_t *used)
{
	size_t v = 0;
	for (size_t i = 0; i < 5 && i < len; i++) {
		v |= (size_t) (p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*n = v;
			*used = i + 1;
			return true;
		}
	}
	return false;
}

static void
append_json_string(buf_t *out, const uint8_t *s, size_t n)
{
	buf_append_char(out, '"');
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		switch (c) {
		case '"': buf_append_str(out, "\\\""); break;
		case '\\': buf_append_str(out, "\\\\"); break;
		case '\n': buf_append_str(out, "\\n"); break;
		case '\r': buf_append_str(out, "\\r"); break;
		case '\t': buf_append_str(out, "\\t"); break;
		case '\b': buf_append_str(out, "\\b"); break;
		case '\f': buf_append_str(out, "\\f"); break;
		default:
			if (c < 0x20)
				buf_printf(out, "\\u%04x", c);
			else
				buf_append_char(out, (char) c);
		}
	}
	buf_append_char(out, '"');
}

static bool value(jctx_t *j, unsigned type, const uint8_t *p, size_t len, int depth);

static bool
container(jctx_t *j, bool obj, bool large, const uint8_t *p, size_t len, int depth)
{
	unsigned w = large ? 4 : 2;
	if (len < 2 * w)
		return jfail(j, "truncated container header");
	size_t count = (size_t) mysql_le(p, w), size = (size_t) mysql_le(p + w, w);
	if (size > len)
		return jfail(j, "container larger than its value");
	size_t hdr = 2 * w + (obj ? count * (w + 2) : 0) + count * (1 + w);
	if (count > size || hdr > size)
		return jfail(j, "container entries exceed its size");
	buf_append_char(j->out, obj ? '{' : '[');
	for (size_t i = 0; i < count; i++) {
		if (i)
			buf_append_str(j->out, ", ");
		if (obj) {
			const uint8_t *ke = p + 2 * w + i * (w + 2);
			size_t koff = (size_t) mysql_le(ke, w), klen = (size_t) mysql_le(ke + w, 2);
			if (koff > size || klen > size - koff)
				return jfail(j, "key outside its object");
			append_json_string(j->out, p + koff, klen);
			buf_append_str(j->out, ": ");
		}
		const uint8_t *ve = p + 2 * w + (obj ? count * (w + 2) : 0) + i * (1 + w);
		unsigned t = ve[0];
		bool inlined = t == J_LITERAL || t == J_INT16 || t == J_UINT16 ||
			       (large && (t == J_INT32 || t == J_UINT32));
		if (inlined) {
			if (!value(j, t, ve + 1, w, depth + 1))
				return false;
		} else {
			size_t off = (size_t) mysql_le(ve + 1, w);
			if (off >= size)
				return jfail(j, "value outside its container");
			if (!value(j, t, p + off, size - off, depth + 1))
				return false;
		}
	}
	buf_append_char(j->out, obj ? '}' : ']');
	return true;
}

static bool
value(jctx_t *j, unsigned type, const uint8_t *p, size_t len, int depth)
{
	if (depth > JSON_MAX_DEPTH)
		return jfail(j, "nested too deeply");
	switch (type) {
	case J_SMALL_OBJ: case J_LARGE_OBJ:
		return container(j, true, type == J_LARGE_OBJ, p, len, depth);
	case J_SMALL_ARR: case J_LARGE_ARR:
		return container(j, false, type == J_LARGE_ARR, p, len, depth);
	case J_LITERAL:
		if (len < 1)
			return jfail(j, "truncated literal");
		if (p[0] > 2)
			return jfail(j, "unknown literal");
		buf_append_str(j->out, p[0] == 0 ? "null" : p[0] == 1 ? "true" : "false");
		return true;
	case J_INT16: case J_UINT16: case J_INT32: case J_UINT32: case J_INT64: case J_UINT64: {
		unsigned n = type <= J_UINT16 ? 2 : type <= J_UINT32 ? 4 : 8;
		if (len < n)
			return jfail(j, "truncated number");
		uint64_t u = mysql_le(p, n);
		if (type == J_INT16 || type == J_INT32 || type == J_INT64) {
			if (n < 8 && (u >> (8 * n - 1)) & 1)
				u |= ~0ULL << (8 * n);
			buf_printf(j->out, "%lld", (long long) u);
		} else {
			buf_printf(j->out, "%llu", (unsigned long long) u);
		}
		return true;
	}
	case J_DOUBLE: {
		if (len < 8)
			return jfail(j, "truncated double");
		uint64_t u = mysql_le(p, 8);
		double d;
		memcpy(&d, &u, 8);
		size_t at = j->out->len;
		value_text_double(d, j->out);
		if (!memchr(j->out->data + at, '.', j->out->len - at) &&
		    !memchr(j->out->data + at, 'e', j->out->len - at))
			buf_append_str(j->out, ".0");
		return true;
	}
	case J_STRING: {
		size_t n, used;
		if (!read_varlen(p, len, &n, &used) || n > len - used)
			return jfail(j, "truncated string");
		append_json_string(j->out, p + used, n);
		return true;
	}
	case J_OPAQUE: {
		size_t n, used;
		if (len < 1 || !read_varlen(p + 1, len - 1, &n, &used) || n > len - 1 - used)
			return jfail(j, "truncated opaque value");
		buf_printf(j->out, "\"base64:type%u:", p[0]);
		static const char b64[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		const uint8_t *s = p + 1 + used;
		for (size_t i = 0; i < n; i += 3) {
			uint32_t v = (uint32_t) s[i] << 16 | (i + 1 < n ? (uint32_t) s[i + 1] << 8 : 0) |
				     (i + 2 < n ? s[i + 2] : 0);
			char q[4] = {b64[v >> 18], b64[(v >> 12) & 63],
				     i + 1 < n ? b64[(v >> 6) & 63] : '=', i + 2 < n ? b64[v & 63] : '='};
			buf_append(j->out, q, 4);
		}
		buf_append_char(j->out, '"');
		return true;
	}
	default:
		return jfail(j, "unknown value type");
	}
}

mydec_status_t
mysql_json_to_text(const uint8_t *p, size_t len, buf_t *out, char *err, size_t errlen)
{
	jctx_t j = {out, err, errlen};
	if (len == 0) {  /* MySQL writes an empty value for a JSON null */
		buf_append_str(out, "null");
		return MYDEC_OK;
	}
	return value(&j, p[0], p + 1, len - 1, 0) ? MYDEC_OK : MYDEC_ERROR;
}
