/*
 * warehouse_types.c — type mapping, value conversion, names and escaping
 * for the warehouse target; see warehouse_types.h.
 */
#include "warehouse_types.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- parsing type strings ---- */

/*
 * A type string split into base name (typmod and "[]" removed, spaces
 * kept), the typmod numbers, and array dimensions.
 * "timestamp(3) with time zone[]" → base "timestamp with time zone",
 * args {3}, array 1.
 */
typedef struct parsed_type {
	char base[WH_TYPE_MAX];
	long args[2];
	int nargs;
	int array;
	bool has_paren;
	char paren[WH_TYPE_MAX]; /* text between the parentheses */
	char after[WH_TYPE_MAX]; /* text after ')' (MySQL "unsigned zerofill") */
} parsed_type_t;

static void
parse_type(const char *s, bool lower, parsed_type_t *p)
{
	memset(p, 0, sizeof(*p));
	size_t n = strlen(s);
	while (n >= 2 && s[n - 2] == '[' && s[n - 1] == ']') {
		p->array++;
		n -= 2;
	}
	size_t bi = 0, pi = 0, ai = 0;
	int depth = 0;
	bool seen_close = false;
	for (size_t i = 0; i < n; i++) {
		char c = lower ? (char) tolower((unsigned char) s[i]) : s[i];
		if (c == '(' && depth++ == 0) {
			p->has_paren = true;
			continue;
		}
		if (c == ')' && depth > 0 && --depth == 0) {
			seen_close = true;
			continue;
		}
		if (depth > 0) {
			if (pi + 1 < sizeof(p->paren))
				p->paren[pi++] = c;
			continue;
		}
		if (seen_close && ai + 1 < sizeof(p->after))
			p->after[ai++] = c;
		if (bi + 1 < sizeof(p->base))
			p->base[bi++] = c;
	}
	/* Collapse the double space left by "timestamp(3) with time zone". */
	char *w = p->base;
	for (const char *r = p->base; *r; r++)
		if (!(*r == ' ' && (w == p->base || w[-1] == ' ')))
			*w++ = *r;
	while (w > p->base && w[-1] == ' ')
		w--;
	*w = '\0';
	if (p->has_paren) {
		char *end = p->paren;
		while (p->nargs < 2 && *end) {
			char *next;
			long v = strtol(end, &next, 10);
			if (next == end)
				break;
			p->args[p->nargs++] = v;
			end = next;
			while (*end == ',' || *end == ' ')
				end++;
		}
	}
}

static bool
in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static void
set_type(wh_type_t *out, wh_conv_t conv, const char *fmt_base, const char *typmod, int array)
{
	char arr[16] = "";
	for (int i = 0; i < array && i < 6; i++)
		strcat(arr, "[]");
	out->conv = conv;
	if (typmod && *typmod)
		snprintf(out->name, sizeof(out->name), "%s(%s)%s", fmt_base, typmod, arr);
	else
		snprintf(out->name, sizeof(out->name), "%s%s", fmt_base, arr);
}

/* PostgreSQL types whose format_type spelling we keep verbatim. */
static const char *const pg_keep[] = {
	"smallint", "integer", "bigint", "real", "double precision", "numeric",
	"boolean", "text", "character varying", "character", "bytea", "date",
	"time without time zone", "time with time zone",
	"timestamp without time zone", "timestamp with time zone",
	"uuid", "jsonb", "inet", "cidr", "macaddr", "macaddr8", "bit",
	"bit varying", "xml", "tsvector", "point", NULL,
};

static void
map_pg(const char *src, wh_type_t *out)
{
	parsed_type_t p;
	parse_type(src, false, &p);
	if (in_list(p.base, pg_keep)) {
		/* Verbatim, keeping typmod placement ("timestamp(3) with time zone"). */
		out->conv = WH_CONV_NONE;
		snprintf(out->name, sizeof(out->name), "%s", src);
		return;
	}
	if (strncmp(p.base, "interval", 8) == 0) {
		snprintf(out->name, sizeof(out->name), "%s", src);
		out->conv = WH_CONV_NONE;
		return;
	}
	if (strcmp(p.base, "json") == 0) {
		set_type(out, WH_CONV_NONE, "jsonb", NULL, p.array);
		return;
	}
	if (strcmp(p.base, "oid") == 0 || strcmp(p.base, "xid8") == 0) {
		set_type(out, WH_CONV_NONE, "bigint", NULL, p.array);
		return;
	}
	/* Enums, domains, composites, extension types, money, "char", name… */
	set_type(out, WH_CONV_NONE, "text", NULL, p.array);
}

static void
map_mysql(const char *src, wh_type_t *out)
{
	parsed_type_t p;
	parse_type(src, true, &p);
	/* base still holds trailing words ("int unsigned zerofill"): take the first. */
	char word[WH_TYPE_MAX];
	size_t wl = strcspn(p.base, " ");
	snprintf(word, sizeof(word), "%.*s", (int) wl, p.base);
	bool is_unsigned = strstr(p.base, "unsigned") != NULL;
	char typmod[64] = "";

	if (strcmp(word, "tinyint") == 0 || strcmp(word, "year") == 0 ||
	    strcmp(word, "bool") == 0 || strcmp(word, "boolean") == 0) {
		set_type(out, WH_CONV_NONE, "smallint", NULL, 0);
	} else if (strcmp(word, "smallint") == 0) {
		set_type(out, WH_CONV_NONE, is_unsigned ? "integer" : "smallint", NULL, 0);
	} else if (strcmp(word, "mediumint") == 0) {
		set_type(out, WH_CONV_NONE, "integer", NULL, 0);
	} else if (strcmp(word, "int") == 0 || strcmp(word, "integer") == 0) {
		set_type(out, WH_CONV_NONE, is_unsigned ? "bigint" : "integer", NULL, 0);
	} else if (strcmp(word, "bigint") == 0) {
		if (is_unsigned)
			set_type(out, WH_CONV_NONE, "numeric", "20,0", 0);
		else
			set_type(out, WH_CONV_NONE, "bigint", NULL, 0);
	} else if (strcmp(word, "decimal") == 0 || strcmp(word, "numeric") == 0 ||
		   strcmp(word, "fixed") == 0 || strcmp(word, "dec") == 0) {
		long prec = p.nargs >= 1 ? p.args[0] : 10, scale = p.nargs >= 2 ? p.args[1] : 0;
		if (prec < 1 || prec > 1000 || scale < 0 || scale > prec) {
			set_type(out, WH_CONV_NONE, "numeric", NULL, 0);
		} else {
			snprintf(typmod, sizeof(typmod), "%ld,%ld", prec, scale);
			set_type(out, WH_CONV_NONE, "numeric", typmod, 0);
		}
	} else if (strcmp(word, "float") == 0) {
		/* float(p) with p > 24 is a double in MySQL. */
		bool dbl = p.nargs >= 1 && p.args[0] > 24;
		set_type(out, WH_CONV_NONE, dbl ? "double precision" : "real", NULL, 0);
	} else if (strcmp(word, "double") == 0 || strcmp(word, "real") == 0) {
		set_type(out, WH_CONV_NONE, "double precision", NULL, 0);
	} else if (strcmp(word, "bit") == 0) {
		long n = p.nargs >= 1 ? p.args[0] : 1;
		snprintf(typmod, sizeof(typmod), "%ld", n < 1 ? 1 : n > 64 ? 64 : n);
		set_type(out, WH_CONV_BITS, "bit varying", typmod, 0);
	} else if (strcmp(word, "date") == 0) {
		set_type(out, WH_CONV_ZERO_DATE, "date", NULL, 0);
	} else if (strcmp(word, "datetime") == 0 || strcmp(word, "timestamp") == 0) {
		/* TIMESTAMP is a UTC instant; DATETIME is a wall-clock value. */
		const char *zone = word[0] == 't' ? "with time zone" : "without time zone";
		long fsp = p.nargs >= 1 ? p.args[0] : 0;
		snprintf(out->name, sizeof(out->name), "timestamp(%ld) %s", fsp < 0 ? 0 : fsp > 6 ? 6 : fsp, zone);
		out->conv = WH_CONV_ZERO_DATE;
	} else if (strcmp(word, "time") == 0) {
		/* MySQL TIME spans -838:59:59..838:59:59: an interval, not a time of day. */
		set_type(out, WH_CONV_NONE, "interval", NULL, 0);
	} else if (strcmp(word, "char") == 0 || strcmp(word, "varchar") == 0 ||
		   strcmp(word, "tinytext") == 0 || strcmp(word, "text") == 0 ||
		   strcmp(word, "mediumtext") == 0 || strcmp(word, "longtext") == 0 ||
		   strcmp(word, "enum") == 0 || strcmp(word, "set") == 0) {
		set_type(out, WH_CONV_NONE, "text", NULL, 0);
	} else if (strcmp(word, "binary") == 0 || strcmp(word, "varbinary") == 0 ||
		   strcmp(word, "tinyblob") == 0 || strcmp(word, "blob") == 0 ||
		   strcmp(word, "mediumblob") == 0 || strcmp(word, "longblob") == 0) {
		set_type(out, WH_CONV_BYTES, "bytea", NULL, 0);
	} else if (strcmp(word, "json") == 0) {
		set_type(out, WH_CONV_NONE, "jsonb", NULL, 0);
	} else if (strcmp(word, "geometry") == 0 || strcmp(word, "point") == 0 ||
		   strcmp(word, "linestring") == 0 || strcmp(word, "polygon") == 0 ||
		   strcmp(word, "multipoint") == 0 || strcmp(word, "multilinestring") == 0 ||
		   strcmp(word, "multipolygon") == 0 || strcmp(word, "geometrycollection") == 0 ||
		   strcmp(word, "geomcollection") == 0) {
		set_type(out, WH_CONV_HEX_BYTES, "bytea", NULL, 0);
	} else {
		set_type(out, WH_CONV_NONE, "text", NULL, 0);
	}
}

/*
 * Type strings end up in DDL, so only the shapes we produce pass: words of
 * [a-z0-9 ], at most one "(digits[,digits])" group, then "[]"s.  Anything
 * else becomes text.
 */
static bool
type_is_safe(const char *t)
{
	int parens = 0;
	bool inside = false;
	for (const char *c = t; *c; c++) {
		if (*c == '(') {
			if (inside || parens++)
				return false;
			inside = true;
		} else if (*c == ')') {
			if (!inside)
				return false;
			inside = false;
		} else if (inside) {
			if (!isdigit((unsigned char) *c) && *c != ',' && *c != ' ')
				return false;
		} else if (*c == '[') {
			if (c[1] != ']')
				return false;
			c++;
		} else if (!(islower((unsigned char) *c) || isdigit((unsigned char) *c) || *c == ' ')) {
			return false;
		}
	}
	return !inside && *t;
}

static void
map_any(Steward__SourceKind kind, const char *source_type, wh_type_t *out)
{
	memset(out, 0, sizeof(*out));
	if (!source_type || !*source_type) {
		set_type(out, WH_CONV_NONE, "text", NULL, 0);
		return;
	}
	switch (kind) {
	case STEWARD__SOURCE_KIND__SOURCE_KIND_MYSQL:
		map_mysql(source_type, out);
		break;
	case STEWARD__SOURCE_KIND__SOURCE_KIND_POSTGRESQL:
		map_pg(source_type, out);
		break;
	default:
		/* Already a warehouse type (canonical entity fields). */
		snprintf(out->name, sizeof(out->name), "%s", source_type);
		out->conv = WH_CONV_NONE;
		break;
	}
}

void
wh_type_map(Steward__SourceKind kind, const char *source_type, wh_type_t *out)
{
	map_any(kind, source_type, out);
	if (!type_is_safe(out->name))
		set_type(out, WH_CONV_NONE, "text", NULL, 0);
}

/* ---- compatibility ---- */

static int
int_rank(const char *base)
{
	if (strcmp(base, "smallint") == 0)
		return 1;
	if (strcmp(base, "integer") == 0)
		return 2;
	if (strcmp(base, "bigint") == 0)
		return 3;
	return 0;
}

static const int int_digits[] = {0, 5, 10, 19};

/* Precision of a time-like type: its typmod, or PostgreSQL's default 6. */
static long
time_precision(const parsed_type_t *p)
{
	return p->nargs >= 1 ? p->args[0] : 6;
}

bool
wh_type_accepts(const char *existing, const char *incoming)
{
	if (strcmp(existing, incoming) == 0)
		return true;
	parsed_type_t e, i;
	parse_type(existing, false, &e);
	parse_type(incoming, false, &i);
	/* text takes any input form; text[] any array of as many dimensions. */
	if (strcmp(e.base, "text") == 0)
		return e.array == 0 || e.array == i.array;
	if (e.array != i.array)
		return false;
	int er = int_rank(e.base), ir = int_rank(i.base);
	if (er && ir)
		return er >= ir;
	if (strcmp(e.base, "numeric") == 0) {
		if (e.nargs == 0)
			return ir > 0 || strcmp(i.base, "numeric") == 0;
		long eint = e.args[0] - (e.nargs > 1 ? e.args[1] : 0);
		long escale = e.nargs > 1 ? e.args[1] : 0;
		if (ir)
			return eint >= int_digits[ir];
		if (strcmp(i.base, "numeric") == 0 && i.nargs > 0) {
			long iscale = i.nargs > 1 ? i.args[1] : 0;
			return escale >= iscale && eint >= i.args[0] - iscale;
		}
		return false;
	}
	if (strcmp(e.base, "double precision") == 0)
		return strcmp(i.base, "real") == 0 || (ir > 0 && ir < 3);
	if (strcmp(e.base, "real") == 0)
		return ir == 1;
	if (strcmp(e.base, "character varying") == 0) {
		bool ichar = strcmp(i.base, "character varying") == 0 || strcmp(i.base, "character") == 0;
		if (e.nargs == 0)
			return ichar || strcmp(i.base, "text") == 0;
		return ichar && i.nargs > 0 && i.args[0] <= e.args[0];
	}
	if (strcmp(e.base, "jsonb") == 0)
		return strcmp(i.base, "json") == 0;
	if (strcmp(e.base, "bit varying") == 0) {
		bool ibit = strcmp(i.base, "bit") == 0 || strcmp(i.base, "bit varying") == 0;
		if (e.nargs == 0)
			return ibit;
		return ibit && i.nargs > 0 && i.args[0] <= e.args[0];
	}
	if (strcmp(e.base, i.base) == 0 &&
	    (strncmp(e.base, "time", 4) == 0 || strncmp(e.base, "interval", 8) == 0)) {
		if (strncmp(e.base, "interval", 8) == 0 && strcmp(e.base, "interval") != 0)
			return false;  /* a fields-restricted interval takes only its own kind */
		return time_precision(&e) >= time_precision(&i);
	}
	return false;
}

/* ---- value conversion ---- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
all_hex(const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (hexval(s[k]) < 0)
			return false;
	return true;
}

static void
hex_encode(buf_t *out, const char *s, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	buf_append(out, "\\x", 2);
	buf_reserve(out, n * 2);
	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char) s[k];
		out->data[out->len++] = digits[c >> 4];
		out->data[out->len++] = digits[c & 15];
	}
	out->data[out->len] = '\0';
}

void
wh_value_convert(wh_conv_t conv, const char *text, size_t len, buf_t *out,
		 const char **res, size_t *reslen, bool *is_null)
{
	*res = text;
	*reslen = len;
	*is_null = false;
	switch (conv) {
	case WH_CONV_NONE:
		return;
	case WH_CONV_ZERO_DATE:
		/* "0000-00-00", "2020-00-10": MySQL's zero dates have no PostgreSQL form. */
		if ((len >= 4 && memcmp(text, "0000", 4) == 0) ||
		    (len >= 7 && memcmp(text + 4, "-00", 3) == 0) ||
		    (len >= 10 && memcmp(text + 7, "-00", 3) == 0))
			*is_null = true;
		return;
	case WH_CONV_BYTES:
		if (len >= 2 && text[0] == '\\' && text[1] == 'x' && (len - 2) % 2 == 0 &&
		    all_hex(text + 2, len - 2))
			return;
		buf_reset(out);
		hex_encode(out, text, len);
		break;
	case WH_CONV_HEX_BYTES: {
		const char *h = text;
		size_t hl = len;
		if (hl >= 2 && (memcmp(h, "\\x", 2) == 0 || memcmp(h, "0x", 2) == 0 ||
				memcmp(h, "0X", 2) == 0)) {
			h += 2;
			hl -= 2;
		}
		buf_reset(out);
		if (hl % 2 == 0 && all_hex(h, hl)) {
			buf_append(out, "\\x", 2);
			buf_append(out, h, hl);
		} else {
			hex_encode(out, text, len);
		}
		break;
	}
	case WH_CONV_BITS: {
		buf_reset(out);
		if (len >= 3 && (text[0] == 'b' || text[0] == 'B') && text[1] == '\'' &&
		    text[len - 1] == '\'') {
			buf_append(out, text + 2, len - 3);
		} else if (len > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X') &&
			   all_hex(text + 2, len - 2)) {
			for (size_t k = 2; k < len; k++) {
				int v = hexval(text[k]);
				for (int bit = 3; bit >= 0; bit--)
					buf_append_char(out, (v >> bit) & 1 ? '1' : '0');
			}
		} else {
			return;
		}
		break;
	}
	}
	*res = out->data ? out->data : "";
	*reslen = out->len;
}

/* ---- escaping ---- */

/* The letter after the backslash for each byte COPY text needs escaped
 * (0 = copied as is). */
static const char copy_escapes[256] = {
	['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
	['\b'] = 'b', ['\f'] = 'f', ['\v'] = 'v',
};

void
wh_copy_escape(buf_t *out, const char *text, size_t len)
{
	/* Worst case every byte doubles; reserve once and write directly.
	 * Most values need no escape at all: copy runs of plain bytes. */
	if (out->len + len * 2 + 1 > out->cap)
		buf_reserve(out, len * 2);
	char *w = out->data + out->len;
	const unsigned char *p = (const unsigned char *) text, *end = p + len;
	while (p < end) {
		const unsigned char *run = p;
		while (p < end && !copy_escapes[*p])
			p++;
		memcpy(w, run, (size_t) (p - run));
		w += p - run;
		if (p < end) {
			*w++ = '\\';
			*w++ = copy_escapes[*p++];
		}
	}
	out->len = (size_t) (w - out->data);
	out->data[out->len] = '\0';
}

void
wh_json_string(buf_t *out, const char *text, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	buf_reserve(out, len * 6 + 2);
	char *w = out->data + out->len;
	*w++ = '"';
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char) text[k];
		if (c == '"' || c == '\\') {
			*w++ = '\\';
			*w++ = (char) c;
		} else if (c == '\n') {
			*w++ = '\\'; *w++ = 'n';
		} else if (c == '\r') {
			*w++ = '\\'; *w++ = 'r';
		} else if (c == '\t') {
			*w++ = '\\'; *w++ = 't';
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(w, "\\u00", 4);
			w += 4;
			*w++ = digits[c >> 4];
			*w++ = digits[c & 15];
		} else {
			*w++ = (char) c;
		}
	}
	*w++ = '"';
	out->len = (size_t) (w - out->data);
	out->data[out->len] = '\0';
}

/* ---- names ---- */

static uint32_t
fnv1a(const char *s, const char *t)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	for (; *t; t++)
		h = (h ^ (unsigned char) *t) * 16777619u;
	return h;
}

void
wh_name_fit(const char *name, const char *suffix, char *out)
{
	size_t nl = strlen(name), sl = strlen(suffix);
	if (nl + sl <= WH_NAME_MAX) {
		memcpy(out, name, nl);
		memcpy(out + nl, suffix, sl + 1);
		return;
	}
	/* name[..cut] + "_" + 8 hex + suffix; cut back to a UTF-8 lead byte. */
	size_t cut = WH_NAME_MAX - sl - 9;
	if (sl > WH_NAME_MAX - 9)
		cut = 0;
	while (cut > 0 && ((unsigned char) name[cut] & 0xC0) == 0x80)
		cut--;
	memcpy(out, name, cut);
	snprintf(out + cut, WH_NAME_MAX + 1 - cut, "_%08x%s", fnv1a(name, suffix), suffix);
}

void
wh_table_name(const char *source, const char *schema, const char *database,
	      const char *table, const char *suffix, char *out)
{
	buf_t b = BUF_INIT;
	buf_append_str(&b, source && *source ? source : "source");
	buf_append_str(&b, "__");
	if (schema && *schema && strcmp(schema, "public") != 0 &&
	    !(database && strcmp(schema, database) == 0)) {
		buf_append_str(&b, schema);
		buf_append_str(&b, "__");
	}
	buf_append_str(&b, table ? table : "");
	wh_name_fit(b.data, suffix ? suffix : "", out);
	buf_free(&b);
}

/*
 * Proleptic Gregorian date of a day number (days since 1970-01-01), by
 * counting 400-year eras from 0000-03-01 so that leap days fall at the
 * end of each year; valid for any int64 day in range of year int.
 */
static void
civil_from_days(int64_t z, int *year, int *month, int *day)
{
	z += 719468;  /* days from 0000-03-01 to 1970-01-01 */
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;                                    /* [0, 146096] */
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);              /* [0, 365] */
	int64_t mp = (5 * doy + 2) / 153;                                   /* March = 0 */
	*day = (int) (doy - (153 * mp + 2) / 5 + 1);
	*month = (int) (mp < 10 ? mp + 3 : mp - 9);
	*year = (int) (yoe + era * 400 + (*month <= 2));
}

void
wh_append_ts(buf_t *out, int64_t us)
{
	int64_t secs = us / 1000000, frac = us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	int64_t days = secs / 86400, sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	int year, month, day;
	civil_from_days(days, &year, &month, &day);
	int hour = (int) (sod / 3600), min = (int) (sod / 60 % 60), sec = (int) (sod % 60);
	if (year < 1 || year > 9999) {
		buf_printf(out, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", year, month, day, hour,
			   min, sec, (long long) frac);
		return;
	}
	/* The hot path of every history and mirror row: no printf, no gmtime. */
	char s[32];
	int f = (int) frac;
	int fields[] = {year / 100, year % 100, month, day, hour, min, sec, f / 10000,
			f / 100 % 100, f % 100};
	static const char sep[10] = {0, 0, '-', '-', ' ', ':', ':', '.', 0, 0};
	char *w = s;
	for (int i = 0; i < 10; i++) {
		if (sep[i])
			*w++ = sep[i];
		*w++ = (char) ('0' + fields[i] / 10);
		*w++ = (char) ('0' + fields[i] % 10);
	}
	memcpy(w, "+00", 3);
	w += 3;
	buf_append(out, s, (size_t) (w - s));
}

/* ---- COPY BINARY ---- */

wh_bin_t
wh_bin_for_type(const char *type)
{
	parsed_type_t p;
	parse_type(type, false, &p);
	if (p.array)
		return WH_BIN_NONE;
	static const struct {
		const char *base;
		wh_bin_t bin;
	} map[] = {
		{"text", WH_BIN_RAW}, {"character varying", WH_BIN_RAW}, {"character", WH_BIN_RAW},
		{"json", WH_BIN_RAW}, {"jsonb", WH_BIN_JSONB}, {"smallint", WH_BIN_INT2},
		{"integer", WH_BIN_INT4}, {"bigint", WH_BIN_INT8}, {"boolean", WH_BIN_BOOL},
		{"timestamp with time zone", WH_BIN_TIMESTAMPTZ},
		{"timestamp without time zone", WH_BIN_TIMESTAMP}, {"date", WH_BIN_DATE},
		{"bytea", WH_BIN_BYTEA}, {"uuid", WH_BIN_UUID},
	};
	if (strcmp(p.base, "numeric") == 0)
		return p.has_paren ? WH_BIN_NUMERIC_MOD : WH_BIN_NUMERIC;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(p.base, map[i].base) == 0)
			return map[i].bin;
	return WH_BIN_NONE;
}

void
wh_bin_header(buf_t *out)
{
	wh_put(out, "PGCOPY\n\377\r\n\0", 11);
	wh_bin_i32(out, 0);  /* flags: no OIDs */
	wh_bin_i32(out, 0);  /* header extension length */
}

/* n decimal digits at s into *v; false unless all are digits. */
static bool
digits_n(const char *s, size_t n, int *v)
{
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		r = r * 10 + (s[i] - '0');
	}
	*v = r;
	return true;
}

/* An integer "[-+]digits" within [lo, hi] (the int2/4/8 input form, no spaces). */
static bool
parse_int(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (i == n || n - i > 19)
		return false;
	uint64_t v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t) (s[i] - '0');  /* at most 19 digits: no wrap */
	}
	if (neg ? v > (uint64_t) -(lo + 1) + 1 : v > (uint64_t) hi)
		return false;
	*out = neg ? (int64_t) (0 - v) : (int64_t) v;
	return true;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (inverse of civil_from_days). */
static int64_t
days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool
valid_date(int y, int m, int d)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1 || m < 1 || m > 12 || d < 1)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d <= mdays[m - 1] + (m == 2 && leap);
}

/* "YYYY-MM-DD" (years 0001..9999, AD) → days since 1970. */
static bool
parse_date(const char *s, size_t n, int64_t *days)
{
	int y, m, d;
	if (n < 10 || s[4] != '-' || s[7] != '-' || !digits_n(s, 4, &y) ||
	    !digits_n(s + 5, 2, &m) || !digits_n(s + 8, 2, &d) || !valid_date(y, m, d))
		return false;
	*days = days_from_civil(y, m, d);
	return true;
}

/*
 * "YYYY-MM-DD HH:MM:SS[.f{1,6}][±HH[:MM[:SS]]]" → microseconds since 1970
 * UTC (no offset: UTC).  has_zone tells whether an offset was given.
 */
static bool
parse_timestamp(const char *s, size_t n, int64_t *us, bool *has_zone)
{
	int64_t days;
	int hh, mi, ss;
	if (n < 19 || !parse_date(s, 10, &days) || s[10] != ' ' || s[13] != ':' ||
	    s[16] != ':' || !digits_n(s + 11, 2, &hh) || !digits_n(s + 14, 2, &mi) ||
	    !digits_n(s + 17, 2, &ss) || hh > 23 || mi > 59 || ss > 59)
		return false;
	size_t i = 19;
	int64_t frac = 0;
	if (i < n && s[i] == '.') {
		size_t k = 0;
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++)
			frac = frac * 10 + (s[i] - '0');
		if (k == 0 || k > 6)
			return false;  /* more than µs: the server rounds, let it */
		for (; k < 6; k++)
			frac *= 10;
	}
	int64_t zone = 0;
	*has_zone = false;
	if (i < n) {
		int zh, zm = 0, zs = 0;
		if ((s[i] != '+' && s[i] != '-') || n - i < 3 || !digits_n(s + i + 1, 2, &zh))
			return false;
		size_t j = i + 3;
		if (j < n && (n - j < 3 || s[j] != ':' || !digits_n(s + j + 1, 2, &zm)))
			return false;
		j += j < n ? 3 : 0;
		if (j < n && (n - j != 3 || s[j] != ':' || !digits_n(s + j + 1, 2, &zs)))
			return false;
		if (zh > 15 || zm > 59 || zs > 59)
			return false;
		zone = (zh * 3600 + zm * 60 + zs) * (s[i] == '-' ? -1 : 1);
		*has_zone = true;
	}
	*us = ((days * 86400 + hh * 3600 + mi * 60 + ss) - zone) * 1000000 + frac;
	return true;
}

/*
 * Numeric "[-+]digits[.digits]" (or ".5", "5.") in base-10000 send form:
 * ndigits, weight, sign, dscale, digits.  dscale is the count of digits
 * written after the point, as numeric_in keeps it ("12.50" → 2).
 */
static bool
numeric_field(const char *s, size_t n, bool allow_inf, buf_t *out)
{
	int16_t sign = 0;
	if (n == 3 && memcmp(s, "NaN", 3) == 0)
		sign = (int16_t) 0xC000;
	else if (allow_inf && n == 8 && memcmp(s, "Infinity", 8) == 0)
		sign = (int16_t) 0xD000;
	else if (allow_inf && n == 9 && memcmp(s, "-Infinity", 9) == 0)
		sign = (int16_t) 0xF000;
	if (sign) {
		wh_bin_i32(out, 8);
		wh_bin_i16(out, 0);
		wh_bin_i16(out, 0);
		wh_bin_i16(out, sign);
		wh_bin_i16(out, 0);
		return true;
	}
	size_t i = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		sign = s[i++] == '-' ? 0x4000 : 0;
	const char *ip = s + i;
	size_t il = 0, fl = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++, il++;
	const char *fp = s + i + 1;
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			fl++;
	/* Far inside numeric's limits (131072 / 16383 digits): the rest is the server's. */
	if (i != n || il + fl == 0 || il > 1000 || fl > 1000)
		return false;
	while (il > 0 && *ip == '0')
		ip++, il--;
	/* Groups of 4 digits aligned on the decimal point. */
	size_t ig = (il + 3) / 4, fg = (fl + 3) / 4;
	int16_t digits[600];
	size_t nd = 0;
	for (size_t g = 0; g < ig; g++) {
		int v = 0;
		for (size_t k = 0; k < 4; k++) {
			long pos = (long) il - (long) (ig - g) * 4 + (long) k;
			v = v * 10 + (pos >= 0 ? ip[pos] - '0' : 0);
		}
		digits[nd++] = (int16_t) v;
	}
	for (size_t g = 0; g < fg; g++) {
		int v = 0;
		for (size_t k = 0; k < 4; k++) {
			size_t pos = g * 4 + k;
			v = v * 10 + (pos < fl ? fp[pos] - '0' : 0);
		}
		digits[nd++] = (int16_t) v;
	}
	int weight = (int) ig - 1;
	size_t first = 0;
	while (first < nd && digits[first] == 0)
		first++, weight--;
	while (nd > first && digits[nd - 1] == 0)
		nd--;
	nd -= first;
	if (nd == 0) {
		weight = 0;
		sign = 0;
	}
	wh_bin_i32(out, (int32_t) (8 + 2 * nd));
	wh_bin_i16(out, (int) nd);
	wh_bin_i16(out, weight);
	wh_bin_i16(out, sign);
	wh_bin_i16(out, (int) fl);
	for (size_t k = 0; k < nd; k++)
		wh_bin_i16(out, digits[first + k]);
	return true;
}

static bool
hex_pairs(const char *h, size_t hl, buf_t *out)
{
	if (hl % 2 || !all_hex(h, hl))
		return false;
	wh_bin_i32(out, (int32_t) (hl / 2));
	buf_reserve(out, hl / 2);
	for (size_t k = 0; k < hl; k += 2)
		out->data[out->len++] = (char) (hexval(h[k]) << 4 | hexval(h[k + 1]));
	out->data[out->len] = '\0';
	return true;
}

bool
wh_bin_field(wh_bin_t bin, const char *s, size_t n, buf_t *out)
{
	int64_t v;
	bool zone;
	switch (bin) {
	case WH_BIN_NONE:
		return false;
	case WH_BIN_RAW:
		wh_bin_bytes(out, s, n);
		return true;
	case WH_BIN_JSONB:
		wh_bin_i32(out, (int32_t) (n + 1));
		wh_put_char(out, 1);
		wh_put(out, s, n);
		return true;
	case WH_BIN_INT2:
		if (!parse_int(s, n, INT16_MIN, INT16_MAX, &v))
			return false;
		wh_bin_i32(out, 2);
		wh_bin_i16(out, (int) v);
		return true;
	case WH_BIN_INT4:
		if (!parse_int(s, n, INT32_MIN, INT32_MAX, &v))
			return false;
		wh_bin_i32(out, 4);
		wh_bin_i32(out, (int32_t) v);
		return true;
	case WH_BIN_INT8:
		if (!parse_int(s, n, INT64_MIN, INT64_MAX, &v))
			return false;
		wh_bin_i32(out, 8);
		wh_bin_i64(out, v);
		return true;
	case WH_BIN_BOOL: {
		int b = (n == 1 && s[0] == 't') || (n == 4 && memcmp(s, "true", 4) == 0)    ? 1
			: (n == 1 && s[0] == 'f') || (n == 5 && memcmp(s, "false", 5) == 0) ? 0
											     : -1;
		if (b < 0)
			return false;
		wh_bin_i32(out, 1);
		wh_put_char(out, (char) b);
		return true;
	}
	case WH_BIN_NUMERIC:
	case WH_BIN_NUMERIC_MOD:
		return numeric_field(s, n, bin == WH_BIN_NUMERIC, out);
	case WH_BIN_TIMESTAMPTZ:
	case WH_BIN_TIMESTAMP:
		/* timestamp without time zone ignores a written offset: leave that to the server */
		if (!parse_timestamp(s, n, &v, &zone) || (zone && bin == WH_BIN_TIMESTAMP))
			return false;
		wh_bin_ts(out, v);
		return true;
	case WH_BIN_DATE:
		if (n != 10 || !parse_date(s, n, &v))
			return false;
		wh_bin_i32(out, 4);
		wh_bin_i32(out, (int32_t) (v - 10957));  /* days since 2000-01-01 */
		return true;
	case WH_BIN_BYTEA:
		return n >= 2 && s[0] == '\\' && s[1] == 'x' && hex_pairs(s + 2, n - 2, out);
	case WH_BIN_UUID: {
		char h[32];
		size_t k = 0;
		if (n != 36)
			return false;
		for (size_t i = 0; i < 36; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23) {
				if (s[i] != '-')
					return false;
			} else {
				h[k++] = s[i];
			}
		}
		if (!all_hex(h, 32))
			return false;
		wh_bin_i32(out, 16);
		for (k = 0; k < 32; k += 2)
			wh_put_char(out, (char) (hexval(h[k]) << 4 | hexval(h[k + 1])));
		return true;
	}
	}
	return false;
}
