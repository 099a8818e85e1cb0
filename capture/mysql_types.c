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

#include "xalloc.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return MYDEC_ERROR; } while (0)
#define NEED(n) do { if (avail < (size_t) (n)) \
	FAIL("value needs %zu bytes, %zu left", (size_t) (n), avail); } while (0)

/*
 * buf_append for the value formatters: a value's text usually fits the
 * room left in the (reused) row buffer, so copy it inline and call out
 * only to grow.  Keeps buf.h's NUL after the data.
 */
static inline void
text_append(buf_t *out, const void *p, size_t n)
{
	if (out->len + n < out->cap) {
		memcpy(out->data + out->len, p, n);
		out->len += n;
		out->data[out->len] = '\0';
	} else {
		buf_append(out, p, n);
	}
}

static size_t put_u64(char *dst, uint64_t v);

/* Decimal digits without printf: integers are most of the values we print. */
static void
append_u64(buf_t *out, uint64_t v)
{
	char tmp[24];
	text_append(out, tmp, put_u64(tmp, v));
}

/* "00".."99": two digits per division in the hot formatters */
static const char digit_pairs[201] =
	"0001020304050607080910111213141516171819"
	"2021222324252627282930313233343536373839"
	"4041424344454647484950515253545556575859"
	"6061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* v as exactly `width` digits (zero-padded) at dst, for dates and times. */
static inline void
put_padded(char *dst, unsigned v, int width)
{
	int i = width;
	for (; i >= 2; i -= 2) {
		unsigned q = v / 100;
		memcpy(dst + i - 2, digit_pairs + 2 * (v - q * 100), 2);
		v = q;
	}
	if (i)
		dst[0] = (char) ('0' + v % 10);
}

/* v in decimal at dst (no leading zeros, "0" for 0); returns the digits written. */
static size_t
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

static void
append_padded(buf_t *out, unsigned v, int width)
{
	char tmp[12];
	put_padded(tmp, v, width);
	text_append(out, tmp, (size_t) width);
}

/* YYYY-MM-DD HH:MM:SS, then .ffffff to fsp digits when fsp > 0; one append */
static void
append_datetime_frac(buf_t *out, unsigned y, unsigned mo, unsigned d, unsigned h, unsigned mi,
		     unsigned se, unsigned fsp, unsigned long usec)
{
	static const unsigned long div[7] = {1000000, 100000, 10000, 1000, 100, 10, 1};
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
	size_t n = 19;
	if (fsp > 0 && fsp <= 6) {
		t[n++] = '.';
		put_padded(t + n, (unsigned) (usec / div[fsp]), (int) fsp);
		n += fsp;
	}
	text_append(out, t, n);
}

static void
append_datetime(buf_t *out, unsigned y, unsigned mo, unsigned d, unsigned h, unsigned mi, unsigned se)
{
	append_datetime_frac(out, y, mo, d, h, mi, se, 0, 0);
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
	if (decpt >= -14 && (decpt <= 15 || len > decpt)) {
		/* at most 1 + 2 + 14 + 17 or 1 + 17 + 1 chars (len <= 17, decpt <= 17 here) */
		char t[64];
		size_t n = 0;
		if (neg)
			t[n++] = '-';
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
		text_append(out, t, n);
		return;
	}
	if (neg)
		buf_append_char(out, '-');
	buf_append_char(out, digits[0]);
	if (len > 1) {
		buf_append_char(out, '.');
		text_append(out, digits + 1, (size_t) (len - 1));
	}
	buf_printf(out, "e%d", decpt - 1);
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

static u128
pow10_u128(int k)
{
	static const uint64_t small[20] = {
		1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
		100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
		10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
		100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
	};
	return k < 20 ? small[k] : (u128) small[19] * small[k - 19];
}

/* r / 2^s rounded to nearest, ties to even. */
static u128
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
mysql_format_double(double v, buf_t *out)
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
mysql_format_float(float v, buf_t *out)
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
 * column): each part's groups add up in one uint64, printed with digit
 * pairs; no per-digit work, no leading-zero scan.  b is the value with the
 * sign bit flipped and, for negatives, every byte inverted.  false: a
 * group wider than its digits (a corrupt value).
 */
static bool
decimal_small_text(const uint8_t *b, unsigned intg, unsigned scale, bool neg, buf_t *out)
{
	unsigned intg0 = intg / 9, intg0x = intg % 9, frac0 = scale / 9, frac0x = scale % 9;
	uint64_t iv = 0, fv = 0, g;
	size_t o = 0;
	if (intg0x) {
		unsigned n = (unsigned) dig2bytes[intg0x];
		if ((iv = mysql_be(b, n)) >= pow10_u64[intg0x])
			return false;
		o += n;
	}
	for (unsigned i = 0; i < intg0; i++, o += 4) {
		if ((g = mysql_be(b + o, 4)) >= 1000000000ull)
			return false;
		iv = iv * 1000000000ull + g;
	}
	for (unsigned i = 0; i < frac0; i++, o += 4) {
		if ((g = mysql_be(b + o, 4)) >= 1000000000ull)
			return false;
		fv = fv * 1000000000ull + g;
	}
	if (frac0x) {
		if ((g = mysql_be(b + o, (unsigned) dig2bytes[frac0x])) >= pow10_u64[frac0x])
			return false;
		fv = fv * pow10_u64[frac0x] + g;
	}
	char t[1 + 19 + 1 + 18];
	size_t n = 0;
	if (neg && (iv || fv))
		t[n++] = '-';
	n += put_u64(t + n, iv);
	if (scale) {
		t[n++] = '.';
		/* fv < 10^scale: scale digits, zero-padded */
		for (unsigned i = scale; i > 0; i--) {
			t[n + i - 1] = (char) ('0' + fv % 10);
			fv /= 10;
		}
		n += scale;
	}
	text_append(out, t, n);
	return true;
}

static mydec_status_t
decimal_text(unsigned precision, unsigned scale, const uint8_t *p, size_t avail,
	     size_t *used, buf_t *out, char *err, size_t errlen)
{
	if (precision == 0 || precision > 65 || scale > 38 || scale > precision)
		FAIL("invalid decimal(%u,%u) metadata", precision, scale);
	unsigned intg = precision - scale;
	unsigned intg0 = intg / 9, intg0x = intg % 9, frac0 = scale / 9, frac0x = scale % 9;
	size_t size = intg0 * 4 + (size_t) dig2bytes[intg0x] + frac0 * 4 + (size_t) dig2bytes[frac0x];
	NEED(size);
	uint8_t b[40];
	memcpy(b, p, size);
	bool neg = !(b[0] & 0x80);
	b[0] ^= 0x80;
	if (neg)
		for (size_t i = 0; i < size; i++)
			b[i] = (uint8_t) ~b[i];
	if (intg <= 18 && scale <= 18) {
		if (!decimal_small_text(b, intg, scale, neg, out))
			FAIL("invalid decimal(%u,%u) digits", precision, scale);
		*used = size;
		return MYDEC_OK;
	}
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
	text_append(out, t, n);
	*used = size;
	return MYDEC_OK;
}

/* ---- temporal ---- */

static void
append_frac(buf_t *out, unsigned fsp, unsigned long usec)
{
	if (fsp == 0)
		return;
	static const unsigned long div[7] = {1000000, 100000, 10000, 1000, 100, 10, 1};
	buf_append_char(out, '.');
	append_padded(out, (unsigned) (usec / div[fsp]), (int) fsp);
}

/* Fractional seconds after a DATETIME2/TIMESTAMP2 value, in microseconds. */
static unsigned long
read_frac(const uint8_t *p, unsigned fsp)
{
	switch ((fsp + 1) / 2) {
	case 1: return (unsigned long) p[0] * 10000;
	case 2: return (unsigned long) mysql_be(p, 2) * 100;
	case 3: return (unsigned long) mysql_be(p, 3);
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
	append_frac(out, fsp, (unsigned long) usec);
	*used = n;
	return MYDEC_OK;
}

static void
timestamp_text(uint64_t secs, unsigned fsp, unsigned long usec, buf_t *out)
{
	if (secs == 0 && usec == 0) {
		buf_append_str(out, "0000-00-00 00:00:00");
		append_frac(out, fsp, 0);
		return;
	}
	time_t t = (time_t) secs;
	struct tm tm;
	gmtime_r(&t, &tm);
	append_datetime(out, (unsigned) tm.tm_year + 1900, (unsigned) tm.tm_mon + 1, (unsigned) tm.tm_mday,
			(unsigned) tm.tm_hour, (unsigned) tm.tm_min, (unsigned) tm.tm_sec);
	append_frac(out, fsp, usec);
}

/* ---- strings ---- */

static bool
is_latin1(uint32_t coll)
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
		text_append(out, u, 2);
	} else {
		u[0] = (char) (0xE0 | cp >> 12);
		u[1] = (char) (0x80 | ((cp >> 6) & 63));
		u[2] = (char) (0x80 | (cp & 63));
		text_append(out, u, 3);
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
		text_append(out, h, 2);
	}
}

static void
append_string(buf_t *out, uint32_t coll, const uint8_t *p, size_t n)
{
	if (coll == 63) {
		append_hex(out, p, n);
	} else if (is_latin1(coll)) {
		for (size_t i = 0; i < n; i++) {
			unsigned c = p[i];
			append_utf8(out, c >= 0x80 && c < 0xa0 ? cp1252_hi[c - 0x80] : c);
		}
	} else {
		text_append(out, p, n);
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
		unsigned n = c->type == MYT_TINY ? 1 : c->type == MYT_SHORT ? 2 :
			     c->type == MYT_INT24 ? 3 : c->type == MYT_LONG ? 4 : 8;
		NEED(n);
		uint64_t u;
		if (n == 8) {
			memcpy(&u, p, 8);
			u = le64toh(u);
		} else {
			u = mysql_le(p, n);
		}
		if (c->is_unsigned) {
			append_u64(out, u);
		} else {
			if (n < 8 && (u >> (8 * n - 1)) & 1)
				u |= ~0ULL << (8 * n);  /* sign-extend */
			if ((int64_t) u < 0) {
				char tmp[24];
				int i = (int) sizeof(tmp);
				u = -u;  /* also right for INT64_MIN: its magnitude as unsigned */
				do {
					tmp[--i] = (char) ('0' + u % 10);
					u /= 10;
				} while (u);
				tmp[--i] = '-';
				text_append(out, tmp + i, sizeof(tmp) - (size_t) i);
			} else {
				append_u64(out, u);
			}
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
		mysql_format_float(f, out);
		*used = 4;
		return MYDEC_OK;
	}
	case MYT_DOUBLE: {
		NEED(8);
		double d;
		uint64_t u = mysql_le(p, 8);
		memcpy(&d, &u, 8);
		mysql_format_double(d, out);
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
		uint32_t v = (uint32_t) mysql_le(p, 3);
		buf_printf(out, "%04u-%02u-%02u", v >> 9, (v >> 5) & 15, v & 31);
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
		uint64_t v = mysql_be(p, 5) - 0x8000000000ULL;
		uint64_t ymd = v >> 17, ym = ymd >> 5, hms = v & 0x1ffff;
		append_datetime_frac(out, (unsigned) (ym / 13), (unsigned) (ym % 13),
				     (unsigned) (ymd & 31), (unsigned) (hms >> 12),
				     (unsigned) ((hms >> 6) & 63), (unsigned) (hms & 63), meta,
				     read_frac(p + 5, meta));
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
		timestamp_text(mysql_be(p, 4), meta, read_frac(p + 4, meta), out);
		*used = n;
		return MYDEC_OK;
	}
	case MYT_TIMESTAMP:
		NEED(4);
		timestamp_text(mysql_le(p, 4), 0, 0, out);
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
	if (coll == 63 || is_latin1(coll) || coll == 11 || coll == 65)
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
