/*
 * rules_value.c — canonical text of typed values.
 *
 * Two systems report the same value in different spellings (PostgreSQL's
 * "5000.00" and "t", MariaDB's "5000.0" and "1"); echo detection compares
 * canonical text, so every value entering the engine goes through here.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "rules_internal.h"

static const char *const type_names[] = {
	[RULES_TYPE_STRING] = "string",       [RULES_TYPE_INTEGER] = "integer",
	[RULES_TYPE_DECIMAL] = "decimal",     [RULES_TYPE_BOOLEAN] = "boolean",
	[RULES_TYPE_DATE] = "date",           [RULES_TYPE_TIMESTAMP] = "timestamp",
	[RULES_TYPE_JSON] = "json",           [RULES_TYPE_REFERENCE] = "reference",
};

const char *
rules_type_name(rules_type_t t)
{
	if ((size_t)t < sizeof type_names / sizeof type_names[0])
		return type_names[t];
	return "?";
}

bool
rules_type_from_name(const char *name, rules_type_t *t)
{
	for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
		if (strcmp(name, type_names[i]) == 0) {
			*t = (rules_type_t)i;
			return true;
		}
	return false;
}

/* Digits with optional sign and fraction; integer-only when !frac_ok. */
static bool
canon_number(const char *s, bool frac_ok, buf_t *out)
{
	bool neg = false;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	const char *int_start = s;
	while (isdigit((unsigned char)*s))
		s++;
	const char *int_end = s;
	const char *frac_start = NULL, *frac_end = NULL;
	if (*s == '.' && frac_ok) {
		frac_start = ++s;
		while (isdigit((unsigned char)*s))
			s++;
		frac_end = s;
	}
	if (*s != '\0' || (int_end == int_start && (frac_start == NULL || frac_end == frac_start)))
		return false;
	while (int_start < int_end - 1 && *int_start == '0')
		int_start++;
	if (frac_start)
		while (frac_end > frac_start && frac_end[-1] == '0')
			frac_end--;
	bool zero = true;
	for (const char *p = int_start; p < int_end; p++)
		if (*p != '0')
			zero = false;
	if (frac_start && frac_end > frac_start)
		zero = false;
	if (neg && !zero)
		buf_append_char(out, '-');
	if (int_end == int_start)
		buf_append_char(out, '0');
	else
		buf_append(out, int_start, (size_t)(int_end - int_start));
	if (frac_start && frac_end > frac_start) {
		buf_append_char(out, '.');
		buf_append(out, frac_start, (size_t)(frac_end - frac_start));
	}
	return true;
}

static bool
canon_bool(const char *s, buf_t *out)
{
	static const char *const yes[] = {"t", "true", "1", "yes", "y", "on"};
	static const char *const no[] = {"f", "false", "0", "no", "n", "off"};
	for (size_t i = 0; i < 6; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			buf_append_str(out, "true");
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			buf_append_str(out, "false");
			return true;
		}
	}
	return false;
}

static bool
digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static long long
days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(long long z, int *y, int *m, int *d)
{
	z += 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	long long doe = z - era * 146097;
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long long mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static bool
parse_date(const char *s, int *y, int *m, int *d)
{
	return digits(s, 4, y) && s[4] == '-' && digits(s + 5, 2, m) && s[7] == '-' &&
	       digits(s + 8, 2, d) && *m >= 1 && *m <= 12 && *d >= 1 && *d <= 31;
}

/*
 * Timestamps become UTC "YYYY-MM-DDTHH:MM:SS[.f]Z"; a value without a zone
 * (MySQL DATETIME) is taken as UTC, which is how Steward's sources are
 * configured (docs/ownership-rules.md).
 */
static bool
canon_timestamp(const char *s, buf_t *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0;
	if (!parse_date(s, &y, &mo, &d))
		return false;
	s += 10;
	if (*s == ' ' || *s == 'T') {
		s++;
		if (!digits(s, 2, &h) || s[2] != ':' || !digits(s + 3, 2, &mi))
			return false;
		s += 5;
		if (*s == ':') {
			if (!digits(s + 1, 2, &sec))
				return false;
			s += 3;
		}
	} else if (*s != '\0') {
		return false;
	}
	char frac[16] = "";
	if (*s == '.') {
		size_t n = 0;
		s++;
		while (isdigit((unsigned char)*s) && n < sizeof frac - 1)
			frac[n++] = *s++;
		while (isdigit((unsigned char)*s))
			s++;
		while (n > 0 && frac[n - 1] == '0')
			n--;
		frac[n] = '\0';
	}
	int off = 0;
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int sign = *s == '-' ? -1 : 1, oh, om = 0;
		s++;
		if (!digits(s, 2, &oh))
			return false;
		s += 2;
		if (*s == ':')
			s++;
		if (isdigit((unsigned char)*s)) {
			if (!digits(s, 2, &om))
				return false;
			s += 2;
		}
		off = sign * (oh * 60 + om);
	}
	if (*s != '\0' || h > 23 || mi > 59 || sec > 60)
		return false;
	long long t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off * 60;
	long long days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	long long rem = t - days * 86400;
	civil_from_days(days, &y, &mo, &d);
	buf_printf(out, "%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, (int)(rem / 3600),
		   (int)(rem / 60 % 60), (int)(rem % 60));
	if (frac[0])
		buf_printf(out, ".%s", frac);
	buf_append_char(out, 'Z');
	return true;
}

bool
rules_value_canon(rules_type_t t, const char *text, buf_t *out)
{
	buf_reset(out);
	buf_reserve(out, strlen(text) + 32);
	switch (t) {
	case RULES_TYPE_INTEGER:
		return canon_number(text, false, out);
	case RULES_TYPE_DECIMAL:
		return canon_number(text, true, out);
	case RULES_TYPE_BOOLEAN:
		return canon_bool(text, out);
	case RULES_TYPE_DATE: {
		int y, m, d;
		if (!parse_date(text, &y, &m, &d) || text[10] != '\0')
			return false;
		buf_append_str(out, text);
		return true;
	}
	case RULES_TYPE_TIMESTAMP:
		return canon_timestamp(text, out);
	case RULES_TYPE_REFERENCE:
		if (*text == '\0')
			return false;
		buf_append_str(out, text);
		return true;
	case RULES_TYPE_STRING:
	case RULES_TYPE_JSON:
	default:
		buf_append_str(out, text);
		return true;
	}
}
