/*
 * mysql_types.c — one binlog column value to the text the mariadb client
 * prints for a plain SELECT, and a column's COLUMN_TYPE-style name.
 *
 * Conventions (docs/capture-mysql.md, "Text forms"): binary strings, BIT
 * and GEOMETRY are printed as the client's --binary-as-hex does ("0x" and
 * upper-case hex, "0x" alone when empty; GEOMETRY is the server's SRID + WKB value); TIMESTAMP is
 * UTC; latin1 is converted to UTF-8 (MySQL's latin1 is cp1252).
 */
#include "mysql_decode.h"

#include <endian.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "steward.pb-c.h"
#include "value_text.h"
#include "xalloc.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return MYDEC_ERROR; } while (0)
#define NEED(n) do { if (avail < (size_t) (n)) \
	FAIL("value needs %zu bytes, %zu left", (size_t) (n), avail); } while (0)

/* ---- DECIMAL ---- */

/*
 * One decimal group as exactly `width` digits (zero-padded) at dst; a
 * value too wide for its group (a corrupt one) writes width + 1 digits so
 * the caller's length check rejects it.  Returns the digits written.
 */
static size_t
put_group(char *dst, uint64_t v, unsigned width)
{
	uint64_t lim = 1;
	for (unsigned i = 0; i < width; i++)
		lim *= 10;
	if (v >= lim)
		width++;
	for (unsigned i = width; i > 0; i--) {
		dst[i - 1] = (char) ('0' + v % 10);
		v /= 10;
	}
	return width;
}

static const int dig2bytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
static const uint64_t pow10_u64[19] = {
	1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
	1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
	100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
	1000000000000000000ull,
};

/*
 * DECIMAL with at most 18 integer and 18 fraction digits (nearly every
 * column): each part's groups add up in one uint64 (*iv, *fv); no
 * per-digit work.  b is the value with the sign bit flipped and, for
 * negatives, every byte inverted, in 16 readable bytes (decimal_unbias16):
 * each group is one load.  false: a group wider than its digits (a
 * corrupt value).
 */
static bool
decimal_small_parts(const uint8_t *b, unsigned intg, unsigned scale, uint64_t *ivp, uint64_t *fvp)
{
	unsigned intg0 = intg / 9, intg0x = intg % 9, frac0 = scale / 9, frac0x = scale % 9;
	uint64_t iv = 0, fv = 0, g;
	size_t o = 0;
	if (intg0x) {
		unsigned n = (unsigned) dig2bytes[intg0x];
		if ((iv = buf_get_be_wide(b, n)) >= pow10_u64[intg0x])
			return false;
		o += n;
	}
	for (unsigned i = 0; i < intg0; i++, o += 4) {
		if ((g = buf_get_be_wide(b + o, 4)) >= 1000000000ull)
			return false;
		iv = iv * 1000000000ull + g;
	}
	for (unsigned i = 0; i < frac0; i++, o += 4) {
		if ((g = buf_get_be_wide(b + o, 4)) >= 1000000000ull)
			return false;
		fv = fv * 1000000000ull + g;
	}
	if (frac0x) {
		if ((g = buf_get_be_wide(b + o, (unsigned) dig2bytes[frac0x])) >= pow10_u64[frac0x])
			return false;
		fv = fv * pow10_u64[frac0x] + g;
	}
	*ivp = iv;
	*fvp = fv;
	return true;
}

/* The bytes of a DECIMAL(precision, scale), or 0 for metadata no server writes. */
static size_t
decimal_size(unsigned precision, unsigned scale)
{
	if (precision == 0 || precision > 65 || scale > 38 || scale > precision)
		return 0;
	unsigned intg = precision - scale;
	return (size_t) (intg / 9) * 4 + (size_t) dig2bytes[intg % 9] + (size_t) (scale / 9) * 4 +
	       (size_t) dig2bytes[scale % 9];
}

/* The value's bytes with the sign bit flipped and a negative's bytes inverted, into b. */
static bool
decimal_unbias(const uint8_t *p, size_t size, uint8_t *b)
{
	memcpy(b, p, size);
	bool neg = !(b[0] & 0x80);
	b[0] ^= 0x80;
	if (neg)
		for (size_t i = 0; i < size; i++)
			b[i] = (uint8_t) ~b[i];
	return neg;
}

/*
 * decimal_unbias for a value of at most 9 bytes (precision <= 18), into
 * 16 bytes of b (past the value: zeros, or inverted bytes that follow it)
 * with two word operations instead of a loop.
 */
static bool
decimal_unbias16(const uint8_t *p, size_t avail, size_t size, uint8_t b[16])
{
	if (avail >= 16) {
		memcpy(b, p, 16);
	} else {
		memset(b, 0, 16);
		memcpy(b, p, size);
	}
	bool neg = !(b[0] & 0x80);
	if (neg) {
		uint64_t w[2];
		memcpy(w, b, 16);
		w[0] = ~w[0];
		w[1] = ~w[1];
		memcpy(b, w, 16);
	}
	b[0] ^= 0x80;
	return neg;
}

bool
mysql_decimal_packed(const mysql_column_t *c, const uint8_t *p, size_t avail, int64_t *v)
{
	uint8_t b[16];
	bool neg = decimal_unbias16(p, avail, c->width, b);
	uint64_t iv = 0, fv = 0, g;
	size_t o = 0;
	if (c->dec_lead) {
		unsigned n = (unsigned) dig2bytes[c->dec_lead];
		if ((iv = buf_get_be_wide(b, n)) >= pow10_u64[c->dec_lead])
			return false;
		o = n;
	}
	for (unsigned i = 0; i < c->dec_intg; i++, o += 4) {
		if ((g = buf_get_be_wide(b + o, 4)) >= 1000000000ull)
			return false;
		iv = iv * 1000000000ull + g;
	}
	for (unsigned i = 0; i < c->dec_frac; i++, o += 4) {
		if ((g = buf_get_be_wide(b + o, 4)) >= 1000000000ull)
			return false;
		fv = fv * 1000000000ull + g;
	}
	if (c->dec_tail) {
		if ((g = buf_get_be_wide(b + o, (unsigned) dig2bytes[c->dec_tail])) >=
		    pow10_u64[c->dec_tail])
			return false;
		fv = fv * pow10_u64[c->dec_tail] + g;
	}
	/* at most 18 digits: below 10^18, no overflow */
	int64_t u = (int64_t) (iv * pow10_u64[c->scale] + fv);
	*v = neg ? -u : u;
	return true;
}

mydec_status_t
mysql_decimal_unscaled(unsigned precision, unsigned scale, const uint8_t *p, size_t avail,
		       size_t *used, int64_t *v, char *err, size_t errlen)
{
	size_t size = decimal_size(precision, scale);
	if (size == 0 || precision > 18)
		FAIL("invalid decimal(%u,%u) metadata", precision, scale);
	NEED(size);
	uint8_t b[16];
	bool neg = decimal_unbias16(p, avail, size, b);
	uint64_t iv, fv;
	if (!decimal_small_parts(b, precision - scale, scale, &iv, &fv))
		FAIL("invalid decimal(%u,%u) digits", precision, scale);
	/* precision <= 18 digits: below 10^18, no overflow */
	int64_t u = (int64_t) (iv * pow10_u64[scale] + fv);
	*v = neg ? -u : u;
	*used = size;
	return MYDEC_OK;
}

static mydec_status_t
decimal_text(unsigned precision, unsigned scale, const uint8_t *p, size_t avail,
	     size_t *used, buf_t *out, char *err, size_t errlen)
{
	size_t size = decimal_size(precision, scale);
	if (size == 0)
		FAIL("invalid decimal(%u,%u) metadata", precision, scale);
	unsigned intg = precision - scale;
	unsigned intg0 = intg / 9, intg0x = intg % 9, frac0 = scale / 9, frac0x = scale % 9;
	NEED(size);
	uint8_t b[40];
	if (precision <= 18) {
		/* nearly every column: one integer, printed as packed records print it */
		bool neg = decimal_unbias16(p, avail, size, b);
		uint64_t iv, fv;
		if (!decimal_small_parts(b, intg, scale, &iv, &fv))
			FAIL("invalid decimal(%u,%u) digits", precision, scale);
		int64_t u = (int64_t) (iv * pow10_u64[scale] + fv);
		value_text_decimal(neg ? -u : u, scale, out);
		*used = size;
		return MYDEC_OK;
	}
	bool neg = decimal_unbias(p, size, b);
	char ip[80], fp[80];
	size_t il = 0, fl = 0, o = 0;
	if (intg0x) {
		unsigned n = (unsigned) dig2bytes[intg0x];
		il += put_group(ip + il, mysql_be(b + o, n), intg0x);
		o += n;
	}
	for (unsigned i = 0; i < intg0; i++, o += 4)
		il += put_group(ip + il, mysql_be(b + o, 4), 9);
	for (unsigned i = 0; i < frac0; i++, o += 4)
		fl += put_group(fp + fl, mysql_be(b + o, 4), 9);
	if (frac0x) {
		unsigned n = (unsigned) dig2bytes[frac0x];
		fl += put_group(fp + fl, mysql_be(b + o, n), frac0x);
	}
	/* a group wider than its digits means a corrupt value, not a number */
	if (il != intg || fl != scale)
		FAIL("invalid decimal(%u,%u) digits", precision, scale);
	size_t lead = 0;
	while (lead + 1 < il && ip[lead] == '0')
		lead++;
	bool zero = true;
	for (size_t i = lead; i < il; i++)
		zero &= ip[i] == '0';
	for (size_t i = 0; i < fl; i++)
		zero &= fp[i] == '0';
	char t[2 + 80 + 1 + 80];
	size_t n = 0;
	if (neg && !zero)
		t[n++] = '-';
	if (il == 0) {
		t[n++] = '0';
	} else {
		memcpy(t + n, ip + lead, il - lead);
		n += il - lead;
	}
	if (scale) {
		t[n++] = '.';
		memcpy(t + n, fp, fl);
		n += fl;
	}
	buf_append_inline(out, t, n);
	*used = size;
	return MYDEC_OK;
}

/* ---- temporal ---- */

uint64_t
mysql_frac_usec(const uint8_t *p, unsigned fsp)
{
	switch ((fsp + 1) / 2) {
	case 1: return (uint64_t) p[0] * 10000;
	case 2: return mysql_be(p, 2) * 100;
	case 3: return mysql_be(p, 3);
	default: return 0;
	}
}

static mydec_status_t
time2_text(unsigned fsp, const uint8_t *p, size_t avail, size_t *used, buf_t *out,
	   char *err, size_t errlen)
{
	size_t n = 3 + (fsp + 1) / 2;
	NEED(n);
	int64_t packed;  /* (h<<12|m<<6|s) << 24 | microseconds, signed */
	int64_t intpart = (int64_t) mysql_be(p, 3) - 0x800000;
	switch ((fsp + 1) / 2) {
	case 1: {
		int64_t frac = p[3];
		if (intpart < 0 && frac) {
			intpart++;
			frac -= 0x100;
		}
		packed = intpart * (1 << 24) + frac * 10000;
		break;
	}
	case 2: {
		int64_t frac = (int64_t) mysql_be(p + 3, 2);
		if (intpart < 0 && frac) {
			intpart++;
			frac -= 0x10000;
		}
		packed = intpart * (1 << 24) + frac * 100;
		break;
	}
	case 3:
		packed = (int64_t) mysql_be(p, 6) - 0x800000000000LL;
		break;
	default:
		packed = intpart * (1 << 24);
		break;
	}
	bool neg = packed < 0;
	uint64_t u = neg ? (uint64_t) -packed : (uint64_t) packed;
	uint64_t hms = u >> 24, usec = u & 0xffffff;
	buf_printf(out, "%s%02u:%02u:%02u", neg ? "-" : "", (unsigned) ((hms >> 12) & 0x3ff),
		   (unsigned) ((hms >> 6) & 63), (unsigned) (hms & 63));
	if (fsp) {
		static const unsigned div[7] = {1000000, 100000, 10000, 1000, 100, 10, 1};
		buf_printf(out, ".%0*u", (int) fsp, (unsigned) (usec / div[fsp]));
	}
	*used = n;
	return MYDEC_OK;
}

/* ---- strings ---- */

bool
mysql_is_latin1(uint32_t coll)
{
	return coll == 5 || coll == 8 || coll == 15 || coll == 31 || coll == 47 || coll == 48 ||
	       coll == 49 || coll == 94;
}

/* 0x80..0x9f of MySQL's latin1 (which is cp1252; undefined bytes map to C1). */
static const uint16_t cp1252_hi[32] = {
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

static void
append_utf8(buf_t *out, unsigned cp)
{
	char u[3];
	if (cp < 0x80) {
		buf_append_char(out, (char) cp);
	} else if (cp < 0x800) {
		u[0] = (char) (0xC0 | cp >> 6);
		u[1] = (char) (0x80 | (cp & 63));
		buf_append_inline(out, u, 2);
	} else {
		u[0] = (char) (0xE0 | cp >> 12);
		u[1] = (char) (0x80 | ((cp >> 6) & 63));
		u[2] = (char) (0x80 | (cp & 63));
		buf_append_inline(out, u, 3);
	}
}

static void
append_hex(buf_t *out, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	buf_reserve(out, 2 + 2 * n);
	buf_append_str(out, "0x");
	for (size_t i = 0; i < n; i++) {
		char h[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
		buf_append_inline(out, h, 2);
	}
}

static void
append_string(buf_t *out, uint32_t coll, const uint8_t *p, size_t n)
{
	if (coll == 63) {
		append_hex(out, p, n);
	} else if (mysql_is_latin1(coll)) {
		for (size_t i = 0; i < n; i++) {
			unsigned c = p[i];
			append_utf8(out, c >= 0x80 && c < 0xa0 ? cp1252_hi[c - 0x80] : c);
		}
	} else {
		buf_append_inline(out, p, n);
	}
}

/* ---- packed records ---- */

void
mysql_column_codec(mysql_column_t *c)
{
	unsigned meta = c->meta, codec = STEWARD__CODEC__CODEC_TEXT, scale = 0;
	c->width = c->dec_lead = c->dec_intg = c->dec_frac = c->dec_tail = 0;
	switch (c->type) {
	case MYT_TINY: case MYT_SHORT: case MYT_INT24: case MYT_LONG: case MYT_LONGLONG:
		codec = c->is_unsigned ? STEWARD__CODEC__CODEC_UINT : STEWARD__CODEC__CODEC_INT;
		break;
	case MYT_DOUBLE:
		codec = STEWARD__CODEC__CODEC_DOUBLE;
		break;
	case MYT_FLOAT:
		codec = STEWARD__CODEC__CODEC_FLOAT;
		break;
	case MYT_NEWDECIMAL:
		/* wider ones stay text: their value times 10^scale does not fit 64 bits */
		if (decimal_size(meta >> 8, meta & 0xff) && (meta >> 8) <= 18) {
			codec = STEWARD__CODEC__CODEC_DECIMAL;
			scale = meta & 0xff;
			unsigned intg = (meta >> 8) - scale;
			c->width = (uint8_t) decimal_size(meta >> 8, scale);
			c->dec_lead = (uint8_t) (intg % 9);
			c->dec_intg = (uint8_t) (intg / 9);
			c->dec_frac = (uint8_t) (scale / 9);
			c->dec_tail = (uint8_t) (scale % 9);
		}
		break;
	case MYT_DATE: case MYT_NEWDATE:
		codec = STEWARD__CODEC__CODEC_DATE;
		break;
	case MYT_DATETIME2:
		if (meta <= 6) {
			codec = STEWARD__CODEC__CODEC_DATETIME;
			scale = meta;
		}
		break;
	case MYT_TIMESTAMP2:
		if (meta <= 6) {
			codec = STEWARD__CODEC__CODEC_TIMESTAMP;
			scale = meta;
		}
		break;
	default:
		break;
	}
	c->codec = (uint8_t) codec;
	c->scale = (uint8_t) scale;
	c->raw_text = c->type == MYT_VARCHAR && c->collation != 63 && !mysql_is_latin1(c->collation);
	switch (codec) {
	case STEWARD__CODEC__CODEC_INT: case STEWARD__CODEC__CODEC_UINT:
		c->width = c->type == MYT_TINY ? 1 : c->type == MYT_SHORT ? 2 :
			   c->type == MYT_INT24 ? 3 : c->type == MYT_LONG ? 4 : 8;
		break;
	case STEWARD__CODEC__CODEC_DOUBLE: c->width = 8; break;
	case STEWARD__CODEC__CODEC_FLOAT: c->width = 4; break;
	case STEWARD__CODEC__CODEC_DATE: c->width = 3; break;
	case STEWARD__CODEC__CODEC_DATETIME: c->width = (uint8_t) (5 + (scale + 1) / 2); break;
	case STEWARD__CODEC__CODEC_TIMESTAMP: c->width = (uint8_t) (4 + (scale + 1) / 2); break;
	default: break;
	}
}

/* ---- the dispatcher ---- */

mydec_status_t
mysql_value_text(const mysql_column_t *c, const uint8_t *p, size_t avail, size_t *used,
		 buf_t *out, char *err, size_t errlen)
{
	unsigned meta = c->meta;
	switch (c->type) {
	case MYT_TINY: case MYT_SHORT: case MYT_INT24: case MYT_LONG: case MYT_LONGLONG: {
		unsigned n = mysql_int_width(c->type);
		NEED(n);
		uint64_t u = mysql_int_get(p, n);
		if (c->is_unsigned) {
			value_text_uint(u, out);
		} else {
			if (n < 8 && (u >> (8 * n - 1)) & 1)
				u |= ~0ULL << (8 * n);  /* sign-extend */
			value_text_int((int64_t) u, out);
		}
		*used = n;
		return MYDEC_OK;
	}
	case MYT_YEAR:
		NEED(1);
		if (p[0] == 0)
			buf_append_str(out, "0000");
		else
			buf_printf(out, "%u", 1900u + p[0]);
		*used = 1;
		return MYDEC_OK;
	case MYT_FLOAT: {
		NEED(4);
		float f;
		uint32_t u = (uint32_t) mysql_le(p, 4);
		memcpy(&f, &u, 4);
		value_text_float(f, out);
		*used = 4;
		return MYDEC_OK;
	}
	case MYT_DOUBLE: {
		NEED(8);
		double d;
		uint64_t u = mysql_le(p, 8);
		memcpy(&d, &u, 8);
		value_text_double(d, out);
		*used = 8;
		return MYDEC_OK;
	}
	case MYT_NEWDECIMAL:
		return decimal_text(meta >> 8, meta & 0xff, p, avail, used, out, err, errlen);
	case MYT_BIT: {
		unsigned nbytes = (meta & 0xff) + ((meta >> 8) ? 1 : 0);
		NEED(nbytes);
		append_hex(out, p, nbytes);
		*used = nbytes;
		return MYDEC_OK;
	}
	case MYT_DATE: case MYT_NEWDATE: {
		NEED(3);
		value_text_date(mysql_le(p, 3), out);
		*used = 3;
		return MYDEC_OK;
	}
	case MYT_TIME2:
		if (meta > 6)
			FAIL("invalid time precision %u", meta);
		return time2_text(meta, p, avail, used, out, err, errlen);
	case MYT_TIME: {  /* pre-5.6 format: HHMMSS as a signed 3-byte integer */
		NEED(3);
		int32_t v = (int32_t) mysql_le(p, 3);
		if (v & 0x800000)
			v |= ~0xffffff;
		bool neg = v < 0;
		uint32_t u = (uint32_t) (neg ? -v : v);
		buf_printf(out, "%s%02u:%02u:%02u", neg ? "-" : "", u / 10000, u / 100 % 100, u % 100);
		*used = 3;
		return MYDEC_OK;
	}
	case MYT_DATETIME2: {
		if (meta > 6)
			FAIL("invalid datetime precision %u", meta);
		size_t n = 5 + (meta + 1) / 2;
		NEED(n);
		uint64_t v = mysql_be(p, 5);
		if (v < 0x8000000000ULL)  /* the sign bit: no DATETIME is negative */
			FAIL("invalid datetime value (sign bit clear)");
		value_text_datetime(v - 0x8000000000ULL, meta, mysql_frac_usec(p + 5, meta), out);
		*used = n;
		return MYDEC_OK;
	}
	case MYT_DATETIME: {  /* pre-5.6 format: YYYYMMDDhhmmss as an integer */
		NEED(8);
		uint64_t v = mysql_le(p, 8), d = v / 1000000, t = v % 1000000;
		buf_printf(out, "%04u-%02u-%02u %02u:%02u:%02u", (unsigned) (d / 10000),
			   (unsigned) (d / 100 % 100), (unsigned) (d % 100), (unsigned) (t / 10000),
			   (unsigned) (t / 100 % 100), (unsigned) (t % 100));
		*used = 8;
		return MYDEC_OK;
	}
	case MYT_TIMESTAMP2: {
		if (meta > 6)
			FAIL("invalid timestamp precision %u", meta);
		size_t n = 4 + (meta + 1) / 2;
		NEED(n);
		value_text_timestamp(mysql_be(p, 4), meta, mysql_frac_usec(p + 4, meta), out);
		*used = n;
		return MYDEC_OK;
	}
	case MYT_TIMESTAMP:
		NEED(4);
		value_text_timestamp(mysql_le(p, 4), 0, 0, out);
		*used = 4;
		return MYDEC_OK;
	case MYT_VARCHAR: case MYT_VAR_STRING: case MYT_STRING: {
		unsigned lb = meta > 255 ? 2 : 1;
		NEED(lb);
		size_t n = (size_t) mysql_le(p, lb);
		if (n > meta)
			FAIL("string of %zu bytes exceeds the column's %u", n, meta);
		NEED(lb + n);
		if (c->type == MYT_STRING && c->collation == 63 && n < meta) {
			/* BINARY(n): the binlog drops the trailing zero padding */
			uint8_t *padded = xcalloc(meta, 1);
			memcpy(padded, p + lb, n);
			append_hex(out, padded, meta);
			free(padded);
		} else {
			append_string(out, c->collation, p + lb, n);
		}
		*used = lb + n;
		return MYDEC_OK;
	}
	case MYT_BLOB: case MYT_TINY_BLOB: case MYT_MEDIUM_BLOB: case MYT_LONG_BLOB:
	case MYT_GEOMETRY: case MYT_JSON: {
		if (meta < 1 || meta > 4)
			FAIL("invalid blob length size %u", meta);
		NEED(meta);
		size_t n = (size_t) mysql_le(p, meta);
		NEED(meta + n);
		if (c->type == MYT_GEOMETRY)
			append_hex(out, p + meta, n);
		else if (c->type == MYT_JSON) {
			if (mysql_json_to_text(p + meta, n, out, err, errlen) != MYDEC_OK)
				return MYDEC_ERROR;
		} else
			append_string(out, c->collation, p + meta, n);
		*used = meta + n;
		return MYDEC_OK;
	}
	case MYT_ENUM: {
		if (meta != 1 && meta != 2)
			FAIL("invalid enum size %u", meta);
		NEED(meta);
		unsigned idx = (unsigned) mysql_le(p, meta);
		if (idx == 0)
			;  /* the empty "error" member */
		else if (idx <= c->nvalues)
			buf_append_str(out, c->values[idx - 1]);
		else if (c->nvalues == 0)
			buf_printf(out, "%u", idx);
		else
			FAIL("enum index %u out of range (%zu members)", idx, c->nvalues);
		*used = meta;
		return MYDEC_OK;
	}
	case MYT_SET: {
		if (meta < 1 || meta > 8)
			FAIL("invalid set size %u", meta);
		NEED(meta);
		uint64_t bits = mysql_le(p, meta);
		bool first = true;
		for (unsigned i = 0; i < 64; i++) {
			if (!((bits >> i) & 1))
				continue;
			if (!first)
				buf_append_char(out, ',');
			first = false;
			if (i < c->nvalues)
				buf_append_str(out, c->values[i]);
			else
				buf_printf(out, "%u", i + 1);
		}
		*used = meta;
		return MYDEC_OK;
	}
	default:
		FAIL("unsupported column type %u", c->type);
	}
}

/* ---- type names ---- */

static unsigned
mbmaxlen(uint32_t coll)
{
	if (coll == 63 || mysql_is_latin1(coll) || coll == 11 || coll == 65)
		return 1;
	if (coll == 33 || coll == 83 || (coll >= 192 && coll <= 223) || coll == 76 ||
	    (coll >= 576 && coll <= 599) || (coll >= 2048 && coll < 2304))
		return 3;
	if (coll == 45 || coll == 46 || (coll >= 224 && coll <= 247) || coll >= 255)
		return 4;
	return 1;
}

static void
append_members(buf_t *b, const mysql_column_t *c)
{
	buf_append_char(b, '(');
	for (size_t i = 0; i < c->nvalues; i++) {
		if (i)
			buf_append_char(b, ',');
		buf_append_char(b, '\'');
		for (const char *s = c->values[i]; *s; s++) {
			if (*s == '\'')
				buf_append_char(b, '\'');
			buf_append_char(b, *s);
		}
		buf_append_char(b, '\'');
	}
	buf_append_char(b, ')');
}

char *
mysql_column_type_name(const mysql_column_t *c)
{
	static const char *const geo[] = {"geometry", "point", "linestring", "polygon",
					  "multipoint", "multilinestring", "multipolygon",
					  "geometrycollection"};
	buf_t b = BUF_INIT;
	const char *uns = c->is_unsigned ? " unsigned" : "";
	bool bin = c->collation == 63;
	unsigned m = c->meta;
	switch (c->type) {
	case MYT_TINY: buf_printf(&b, "tinyint(%d)%s", c->is_unsigned ? 3 : 4, uns); break;
	case MYT_SHORT: buf_printf(&b, "smallint(%d)%s", c->is_unsigned ? 5 : 6, uns); break;
	case MYT_INT24: buf_printf(&b, "mediumint(%d)%s", c->is_unsigned ? 8 : 9, uns); break;
	case MYT_LONG: buf_printf(&b, "int(%d)%s", c->is_unsigned ? 10 : 11, uns); break;
	case MYT_LONGLONG: buf_printf(&b, "bigint(20)%s", uns); break;
	case MYT_FLOAT: buf_printf(&b, "float%s", uns); break;
	case MYT_DOUBLE: buf_printf(&b, "double%s", uns); break;
	case MYT_NEWDECIMAL: buf_printf(&b, "decimal(%u,%u)%s", m >> 8, m & 0xff, uns); break;
	case MYT_YEAR: buf_append_str(&b, "year(4)"); break;
	case MYT_BIT: buf_printf(&b, "bit(%u)", (m & 0xff) * 8 + (m >> 8)); break;
	case MYT_DATE: case MYT_NEWDATE: buf_append_str(&b, "date"); break;
	case MYT_TIME: case MYT_TIME2: buf_append_str(&b, "time"); goto fsp;
	case MYT_DATETIME: case MYT_DATETIME2: buf_append_str(&b, "datetime"); goto fsp;
	case MYT_TIMESTAMP: case MYT_TIMESTAMP2: buf_append_str(&b, "timestamp"); goto fsp;
	fsp:
		if ((c->type == MYT_TIME2 || c->type == MYT_DATETIME2 || c->type == MYT_TIMESTAMP2) && m)
			buf_printf(&b, "(%u)", m);
		break;
	case MYT_VARCHAR: case MYT_VAR_STRING:
		buf_printf(&b, "%s(%u)", bin ? "varbinary" : "varchar", m / mbmaxlen(c->collation));
		break;
	case MYT_STRING:
		buf_printf(&b, "%s(%u)", bin ? "binary" : "char", m / mbmaxlen(c->collation));
		break;
	case MYT_BLOB: case MYT_TINY_BLOB: case MYT_MEDIUM_BLOB: case MYT_LONG_BLOB: {
		static const char *const pre[] = {"tiny", "", "medium", "long"};
		buf_printf(&b, "%s%s", m >= 1 && m <= 4 ? pre[m - 1] : "", bin ? "blob" : "text");
		break;
	}
	case MYT_JSON: buf_append_str(&b, "json"); break;
	case MYT_GEOMETRY:
		buf_append_str(&b, c->geometry_type < 8 ? geo[c->geometry_type] : "geometry");
		break;
	case MYT_ENUM: buf_append_str(&b, "enum"); append_members(&b, c); break;
	case MYT_SET: buf_append_str(&b, "set"); append_members(&b, c); break;
	default: buf_printf(&b, "type%u", c->type); break;
	}
	return buf_steal(&b);
}
