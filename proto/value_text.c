/*
 * value_text.c — typed column values to their text (proto/value_text.h):
 * integers and dates with two-digit tables, doubles and floats with the
 * server's my_gcvt rules in exact integer arithmetic, and the decoder of
 * packed images built on them.
 */
#include "value_text.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record_encode.h"

/* "00".."99": two digits per division in the hot formatters */
static const char digit_pairs[201] =
	"0001020304050607080910111213141516171819"
	"2021222324252627282930313233343536373839"
	"4041424344454647484950515253545556575859"
	"6061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

static const uint64_t pow10_u64[20] = {
	1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
	1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
	100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
	1000000000000000000ull, 10000000000000000000ull,
};

/* v as exactly `width` digits (zero-padded, higher digits dropped) at dst. */
static inline void
put_padded(char *dst, uint64_t v, int width)
{
	int i = width;
	for (; i >= 2; i -= 2) {
		uint64_t q = v / 100;
		memcpy(dst + i - 2, digit_pairs + 2 * (v - q * 100), 2);
		v = q;
	}
	if (i)
		dst[0] = (char) ('0' + v % 10);
}

/* v in decimal at dst (no leading zeros, "0" for 0); returns the digits written. */
static inline size_t
put_u64(char *dst, uint64_t v)
{
	char tmp[20];
	int i = (int) sizeof(tmp);
	while (v >= 100) {
		uint64_t q = v / 100;
		i -= 2;
		memcpy(tmp + i, digit_pairs + 2 * (v - q * 100), 2);
		v = q;
	}
	if (v >= 10) {
		i -= 2;
		memcpy(tmp + i, digit_pairs + 2 * v, 2);
	} else {
		tmp[--i] = (char) ('0' + v);
	}
	size_t n = sizeof(tmp) - (size_t) i;
	memcpy(dst, tmp + i, n);
	return n;
}

void
value_text_uint(uint64_t v, buf_t *out)
{
	char tmp[24];
	buf_append_inline(out, tmp, put_u64(tmp, v));
}

void
value_text_int(int64_t v, buf_t *out)
{
	char tmp[24];
	size_t n = 0;
	uint64_t u = (uint64_t) v;
	if (v < 0) {
		tmp[n++] = '-';
		u = -u;  /* also right for INT64_MIN: its magnitude as unsigned */
	}
	n += put_u64(tmp + n, u);
	buf_append_inline(out, tmp, n);
}

/* ---- floating point: the server's my_gcvt rules ---- */

/*
 * digits/decpt as dtoa returns them: value = 0.DIGITS * 10^decpt.  The
 * server uses plain notation when -14 <= decpt <= 15, or when the number
 * has a fraction; otherwise 1.5e15 style (no '+', no padded exponent).
 */
static void
format_digits(bool neg, const char *digits, int len, int decpt, buf_t *out)
{
	/* at most 1 + 2 + 14 + 17 or 1 + 17 + 1 chars (len <= 17, decpt <= 17 here) */
	char t[64];
	size_t n = 0;
	if (neg)
		t[n++] = '-';
	if (decpt >= -14 && (decpt <= 15 || len > decpt)) {
		if (decpt <= 0) {
			t[n++] = '0';
			t[n++] = '.';
			for (int i = 0; i < -decpt; i++)
				t[n++] = '0';
			memcpy(t + n, digits, (size_t) len);
			n += (size_t) len;
		} else if (decpt < len) {
			memcpy(t + n, digits, (size_t) decpt);
			n += (size_t) decpt;
			t[n++] = '.';
			memcpy(t + n, digits + decpt, (size_t) (len - decpt));
			n += (size_t) (len - decpt);
		} else {
			memcpy(t + n, digits, (size_t) len);
			n += (size_t) len;
			for (int i = len; i < decpt; i++)
				t[n++] = '0';
		}
		buf_append_inline(out, t, n);
		return;
	}
	/* d[.ddd]e[-]x: at most 1 + 1 + 1 + 16 + 2 + 3 chars */
	t[n++] = digits[0];
	if (len > 1) {
		t[n++] = '.';
		memcpy(t + n, digits + 1, (size_t) (len - 1));
		n += (size_t) (len - 1);
	}
	t[n++] = 'e';
	int e = decpt - 1;
	if (e < 0) {
		t[n++] = '-';
		e = -e;
	}
	n += put_u64(t + n, (uint64_t) e);
	buf_append_inline(out, t, n);
}

/* Split "%.*e" output into significant digits (trailing zeros dropped). */
static void
split_exp(const char *s, char *digits, int *len, int *decpt)
{
	int n = 0;
	const char *p = s;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			digits[n++] = *p;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	*len = n;
	*decpt = atoi(p + 1) + 1;
}

typedef unsigned __int128 u128;

static inline u128
pow10_u128(int k)
{
	return k < 20 ? pow10_u64[k] : (u128) pow10_u64[19] * pow10_u64[k - 19];
}

/* r / 2^s rounded to nearest, ties to even. */
static inline u128
round_shift(u128 r, int s)
{
	u128 q = r >> s, rem = r - (q << s), half = (u128) 1 << (s - 1);
	if (rem > half || (rem == half && (q & 1)))
		q++;
	return q;
}

/* The p digits of n (< 10^p, zero-padded) with trailing zeros dropped, NUL-terminated. */
static void
sig_digits(uint64_t n, int p, char *digits, int *len)
{
	while (p > 1 && n % 10 == 0) {  /* trailing zeros: one division each */
		n /= 10;
		p--;
	}
	int i = p;
	for (; i >= 2; i -= 2) {
		uint64_t q = n / 100;
		memcpy(digits + i - 2, digit_pairs + 2 * (n - q * 100), 2);
		n = q;
	}
	if (i)
		digits[0] = (char) ('0' + n);
	digits[p] = '\0';
	*len = p;
}

/*
 * The first p significant digits of v > 0, correctly rounded (ties to even)
 * exactly as printf's "%.*e" gives them, without printf: v = m / 2^s, so
 * v * 10^k rounds to (m * 10^k + 2^(s-1)) >> s, exact in 128 bits for
 * m < 2^53, 10^k <= 10^21 (times 10) and s <= 120 — every normal double from about
 * 1e-6 (p = 17) up to 2^52.  *sig gets the p digits as an integer
 * (text by sig_digits, only for the precision the caller keeps), *decpt as
 * dtoa's; *roundtrips says whether those digits read back (strtod, round
 * to nearest even) as v.  False when v is outside the exact range: the
 * caller takes the printf path.
 */
static bool
exact_digits(double v, int p, uint64_t *sig, int *decpt, bool *roundtrips)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof bits);
	int biased = (int) ((bits >> 52) & 0x7ff);
	if (biased == 0 || biased == 0x7ff || p < 1 || p > 17)
		return false;  /* subnormal, inf/nan */
	uint64_t m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
	int s = 1075 - biased;
	if (s < 1 || s > 120)
		return false;
	/* floor(log10(2^e)) for v in [2^e, 2^(e+1)): low by at most one, the loop fixes it */
	int e10 = ((biased - 1023) * 78913) >> 18;
	for (int tries = 0; tries < 4; tries++) {
		int k = p - 1 - e10;
		if (k < 0 || k > 21)
			return false;
		u128 r = (u128) m * pow10_u128(k);  /* v * 10^k == r / 2^s */
		u128 q = round_shift(r, s);
		if (q >= pow10_u128(p)) {  /* log10 estimate low, or rounded up to 10^p */
			e10++;
			continue;
		}
		if (q < pow10_u128(p - 1)) {
			e10--;
			continue;
		}
		/*
		 * 10^(p-1) may be 99..9.x rounded up under an estimate one too
		 * high: printf takes the lower exponent when it yields p digits.
		 */
		if (q == pow10_u128(p - 1) && round_shift(r * 10, s) < pow10_u128(p)) {
			e10--;
			continue;
		}
		/*
		 * q * 10^-k reads back as v iff it is within half the gap to
		 * v's neighbour: in units of 2^-s / 10^k the upper half gap is
		 * 10^k / 2, the lower one 10^k / 4 when m is a power of two
		 * (the next double down is twice as close); a tie goes to the
		 * even mantissa.
		 */
		u128 qs = q << s, lim = pow10_u128(k);
		u128 diff = qs > r ? qs - r : r - qs;
		if (qs < r && m == (1ULL << 52) && biased > 1)
			*roundtrips = 4 * diff <= lim;
		else
			*roundtrips = 2 * diff < lim || (2 * diff == lim && !(m & 1));
		*sig = (uint64_t) q;
		*decpt = e10 + 1;
		return true;
	}
	return false;
}

void
value_text_double(double v, buf_t *out)
{
	char s[40], digits[40];
	int len, decpt;
	if (v == 0) {
		buf_append_str(out, signbit(v) ? "-0" : "0");
		return;
	}
	if (!isfinite(v)) {
		buf_append_str(out, isnan(v) ? "nan" : (v < 0 ? "-inf" : "inf"));
		return;
	}
	/*
	 * Shortest digits that read back to the same double.  If 15 digits
	 * round-trip, the shortest form is those digits without trailing
	 * zeros (a normal double is closer to it than half a 15-digit unit);
	 * else 16, else 17 always does.  exact_digits answers that in
	 * integer arithmetic for the usual range; printf + strtod elsewhere.
	 */
	bool rt = false;
	uint64_t sig;
	for (int prec = 15; prec <= 17; prec++) {
		if (!exact_digits(fabs(v), prec, &sig, &decpt, &rt))
			break;
		if (rt || prec == 17) {
			sig_digits(sig, prec, digits, &len);
			format_digits(v < 0, digits, len, decpt, out);
			return;
		}
	}
	int first = fabs(v) < DBL_MIN ? 1 : 15;  /* subnormals carry fewer digits */
	for (int prec = first; prec <= 17; prec++) {
		snprintf(s, sizeof(s), "%.*e", prec - 1, fabs(v));
		if (prec == 17 || strtod(s, NULL) == fabs(v))
			break;
	}
	split_exp(s, digits, &len, &decpt);
	format_digits(v < 0, digits, len, decpt, out);
}

void
value_text_float(float v, buf_t *out)
{
	char s[40], digits[40];
	int len, decpt;
	bool rt;
	double d = v;
	if (d == 0) {
		buf_append_str(out, signbit(d) ? "-0" : "0");
		return;
	}
	if (!isfinite(d)) {
		buf_append_str(out, isnan(d) ? "nan" : (d < 0 ? "-inf" : "inf"));
		return;
	}
	/* FLOAT prints FLT_DIG (6) significant digits, correctly rounded */
	uint64_t sig;
	if (exact_digits(fabs(d), 6, &sig, &decpt, &rt)) {
		sig_digits(sig, 6, digits, &len);
		format_digits(d < 0, digits, len, decpt, out);
		return;
	}
	snprintf(s, sizeof(s), "%.5e", fabs(d));
	split_exp(s, digits, &len, &decpt);
	format_digits(d < 0, digits, len, decpt, out);
}

/* ---- DECIMAL ---- */

void
value_text_decimal(int64_t unscaled, unsigned scale, buf_t *out)
{
	char t[1 + 20 + 1 + 20];
	size_t n = 0;
	uint64_t u = (uint64_t) unscaled;
	if (unscaled < 0) {
		t[n++] = '-';  /* a zigzag value has no negative zero */
		u = -u;
	}
	if (scale == 0) {
		n += put_u64(t + n, u);
	} else {
		if (scale > 19)
			scale = 19;
		uint64_t q = u / pow10_u64[scale];
		n += put_u64(t + n, q);
		t[n++] = '.';
		put_padded(t + n, u - q * pow10_u64[scale], (int) scale);
		n += scale;
	}
	buf_append_inline(out, t, n);
}

/* ---- temporal ---- */

/* ".ffffff" to fsp digits at t; returns the chars written (0 when fsp is 0 or above 6). */
static inline size_t
put_frac(char *t, unsigned fsp, uint64_t usec)
{
	if (fsp == 0 || fsp > 6)
		return 0;
	t[0] = '.';
	put_padded(t + 1, usec / pow10_u64[6 - fsp], (int) fsp);
	return 1 + fsp;
}

/* YYYY-MM-DD HH:MM:SS[.ffffff] in one append; each field at its width. */
static void
append_datetime_frac(buf_t *out, unsigned y, unsigned mo, unsigned d, unsigned h, unsigned mi,
		     unsigned se, unsigned fsp, uint64_t usec)
{
	char t[28];
	put_padded(t, y, 4);
	t[4] = '-';
	put_padded(t + 5, mo, 2);
	t[7] = '-';
	put_padded(t + 8, d, 2);
	t[10] = ' ';
	put_padded(t + 11, h, 2);
	t[13] = ':';
	put_padded(t + 14, mi, 2);
	t[16] = ':';
	put_padded(t + 17, se, 2);
	buf_append_inline(out, t, 19 + put_frac(t + 19, fsp, usec));
}

void
value_text_date(uint64_t packed, buf_t *out)
{
	char t[32];
	uint64_t y = packed >> 9;
	size_t n;
	if (y < 10000) {  /* "%04u": at least four digits */
		put_padded(t, y, 4);
		n = 4;
	} else {
		n = put_u64(t, y);
	}
	t[n++] = '-';
	put_padded(t + n, (packed >> 5) & 15, 2);
	n += 2;
	t[n++] = '-';
	put_padded(t + n, packed & 31, 2);
	n += 2;
	buf_append_inline(out, t, n);
}

void
value_text_datetime(uint64_t packed, unsigned fsp, uint64_t usec, buf_t *out)
{
	uint64_t ymd = packed >> 17, ym = ymd >> 5, hms = packed & 0x1ffff;
	append_datetime_frac(out, (unsigned) (ym / 13), (unsigned) (ym % 13), (unsigned) (ymd & 31),
			     (unsigned) (hms >> 12), (unsigned) ((hms >> 6) & 63),
			     (unsigned) (hms & 63), fsp, usec);
}

void
value_text_timestamp(uint64_t secs, unsigned fsp, uint64_t usec, buf_t *out)
{
	if (secs == 0 && usec == 0) {
		char t[28];
		memcpy(t, "0000-00-00 00:00:00", 19);
		buf_append_inline(out, t, 19 + put_frac(t + 19, fsp, 0));
		return;
	}
	/* the proleptic Gregorian calendar from days since 1970 (what gmtime does, no locks) */
	uint64_t days = secs / 86400, sod = secs % 86400;
	uint64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
	uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	unsigned d = (unsigned) (doy - (153 * mp + 2) / 5 + 1);
	unsigned m = (unsigned) (mp < 10 ? mp + 3 : mp - 9);
	uint64_t y = yoe + era * 400 + (m <= 2);
	append_datetime_frac(out, (unsigned) y, m, d, (unsigned) (sod / 3600),
			     (unsigned) (sod / 60 % 60), (unsigned) (sod % 60), fsp, usec);
}

/* ---- packed images ---- */

/* Finish a text begun at start: its NUL goes into the buffer, after the text. */
static inline void
slot_end(buf_t *text, size_t start, value_text_slot_t *slot)
{
	slot->off = start;
	slot->len = text->len - start;
	slot->is_null = false;
	buf_reserve(text, 1);
	text->data[text->len++] = '\0';
	text->data[text->len] = '\0';
}

#define BAD(...)                                                                   \
	do {                                                                       \
		char what_[160];                                                   \
		snprintf(what_, sizeof(what_), __VA_ARGS__);                       \
		snprintf(why, whylen, "column %zu (\"%s\") of the packed image: %s", i, \
			 col->name ? col->name : "", what_);                       \
		return false;                                                      \
	} while (0)

bool
value_text_packed(const Steward__Shape *sh, const uint8_t *p, size_t len, buf_t *text,
		  value_text_slot_t *slots, char *why, size_t whylen)
{
	size_t ncols = sh->n_columns, nb = (ncols + 7) / 8;
	if (ncols == 0) {
		if (len == 0)
			return true;
		snprintf(why, whylen, "packed image has %zu bytes for a shape of no columns", len);
		return false;
	}
	if (len < nb) {
		snprintf(why, whylen, "packed image of %zu bytes is shorter than its NULL bitmap "
			 "(%zu bytes for %zu columns)", len, nb, ncols);
		return false;
	}
	if (ncols % 8 && (p[nb - 1] >> (ncols % 8))) {
		snprintf(why, whylen, "packed image marks NULL a column past its %zu columns", ncols);
		return false;
	}
	const uint8_t *bitmap = p, *q = p + nb, *end = p + len;
	for (size_t i = 0; i < ncols; i++) {
		const Steward__Column *col = sh->columns[i];
		if (bitmap[i / 8] >> (i % 8) & 1) {
			slots[i] = (value_text_slot_t) {0, 0, true};
			continue;
		}
		size_t start = text->len;
		uint64_t v, usec = 0;
		unsigned scale = col->has_scale ? col->scale : 0;
		int codec = col->has_codec ? (int) col->codec : STEWARD__CODEC__CODEC_TEXT;
		switch (codec) {
		case STEWARD__CODEC__CODEC_TEXT:
			if (!record_varint_get(&q, end, &v))
				BAD("bad text length");
			if (v > (uint64_t) (end - q))
				BAD("text of %" PRIu64 " bytes overruns the image", v);
			buf_append_inline(text, q, (size_t) v);
			q += v;
			break;
		case STEWARD__CODEC__CODEC_INT:
			if (!record_varint_get(&q, end, &v))
				BAD("bad integer varint");
			value_text_int((int64_t) (v >> 1) ^ -(int64_t) (v & 1), text);
			break;
		case STEWARD__CODEC__CODEC_UINT:
			if (!record_varint_get(&q, end, &v))
				BAD("bad unsigned integer varint");
			value_text_uint(v, text);
			break;
		case STEWARD__CODEC__CODEC_DOUBLE: {
			if (end - q < 8)
				BAD("double needs 8 bytes, %zu left", (size_t) (end - q));
			uint64_t u = buf_get_le(q, 8);
			double d;
			memcpy(&d, &u, 8);
			value_text_double(d, text);
			q += 8;
			break;
		}
		case STEWARD__CODEC__CODEC_FLOAT: {
			if (end - q < 4)
				BAD("float needs 4 bytes, %zu left", (size_t) (end - q));
			uint32_t u = (uint32_t) buf_get_le(q, 4);
			float f;
			memcpy(&f, &u, 4);
			value_text_float(f, text);
			q += 4;
			break;
		}
		case STEWARD__CODEC__CODEC_DECIMAL: {
			if (scale > 18)
				BAD("decimal scale %u is above 18", scale);
			if (!record_varint_get(&q, end, &v))
				BAD("bad decimal varint");
			/* |value| from the zigzag form: v >> 1, plus one for negatives */
			uint64_t mag = (v >> 1) + (v & 1);
			if (mag >= pow10_u64[18])
				BAD("decimal magnitude %" PRIu64 " is not below 10^18", mag);
			value_text_decimal((int64_t) (v >> 1) ^ -(int64_t) (v & 1), scale, text);
			break;
		}
		case STEWARD__CODEC__CODEC_DATE:
			if (!record_varint_get(&q, end, &v))
				BAD("bad date varint");
			if (v >> 24)
				BAD("date 0x%" PRIx64 " is wider than 24 bits", v);
			value_text_date(v, text);
			break;
		case STEWARD__CODEC__CODEC_DATETIME:
		case STEWARD__CODEC__CODEC_TIMESTAMP: {
			bool dt = codec == STEWARD__CODEC__CODEC_DATETIME;
			if (scale > 6)
				BAD("%s scale %u is above 6", dt ? "datetime" : "timestamp", scale);
			if (!record_varint_get(&q, end, &v))
				BAD("bad %s varint", dt ? "datetime" : "timestamp");
			if (dt ? v >> 39 : v >> 32)
				BAD("%s 0x%" PRIx64 " is wider than %d bits",
				    dt ? "datetime" : "timestamp", v, dt ? 39 : 32);
			if (scale > 0) {
				if (!record_varint_get(&q, end, &usec))
					BAD("bad microseconds varint");
				if (usec >> 24)
					BAD("microseconds %" PRIu64 " wider than 24 bits", usec);
			}
			if (dt)
				value_text_datetime(v, scale, usec, text);
			else
				value_text_timestamp(v, scale, usec, text);
			break;
		}
		default:
			BAD("unknown codec %d", codec);
		}
		slot_end(text, start, &slots[i]);
	}
	if (q != end) {
		snprintf(why, whylen, "packed image has %zu bytes after its %zu values",
			 (size_t) (end - q), ncols);
		return false;
	}
	return true;
}
