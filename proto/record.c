/*
 * record.c — helpers around steward.Change: names of enums, positions,
 * deep copies, and the `steward log dump` JSON line format (both ways).
 * The JSON format is a contract for scripts; it is documented in
 * docs/change-log.md.
 */
#define _GNU_SOURCE 1  /* strptime, timegm */
#include "record.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xalloc.h"

static void *
pbc_alloc(void *data, size_t size)
{
	(void) data;
	return xmalloc(size ? size : 1);
}

static void
pbc_free(void *data, void *p)
{
	(void) data;
	free(p);
}

/* Records built here are freed with protobuf-c's free_unpacked and this. */
static ProtobufCAllocator record_allocator = {pbc_alloc, pbc_free, NULL};

static const struct {
	Steward__Op op;
	const char *name;
} op_names[] = {
	{STEWARD__OP__OP_INSERT, "insert"},
	{STEWARD__OP__OP_UPDATE, "update"},
	{STEWARD__OP__OP_DELETE, "delete"},
	{STEWARD__OP__OP_TRUNCATE, "truncate"},
	{STEWARD__OP__OP_SNAPSHOT_READ, "snapshot"},
	{STEWARD__OP__OP_MESSAGE, "message"},
};

const char *
record_op_name(Steward__Op op)
{
	for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (op_names[i].op == op)
			return op_names[i].name;
	return "unspecified";
}

Steward__Op
record_op_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (strcmp(op_names[i].name, name) == 0)
			return op_names[i].op;
	return STEWARD__OP__OP_UNSPECIFIED;
}

const char *
record_source_kind_name(Steward__SourceKind kind)
{
	switch (kind) {
	case STEWARD__SOURCE_KIND__SOURCE_KIND_POSTGRESQL:
		return "postgresql";
	case STEWARD__SOURCE_KIND__SOURCE_KIND_MYSQL:
		return "mysql";
	default:
		return "unspecified";
	}
}

static Steward__SourceKind
source_kind_from_name(const char *name)
{
	if (strcmp(name, "postgresql") == 0)
		return STEWARD__SOURCE_KIND__SOURCE_KIND_POSTGRESQL;
	if (strcmp(name, "mysql") == 0)
		return STEWARD__SOURCE_KIND__SOURCE_KIND_MYSQL;
	return STEWARD__SOURCE_KIND__SOURCE_KIND_UNSPECIFIED;
}

bool
record_position(const Steward__Change *c, position_t *out)
{
	if (!c->has_position || c->position.len == 0)
		return false;
	return position_set(out, c->position.data, c->position.len);
}

const Steward__Value *
record_find_value(Steward__Value *const *values, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (values[i]->name && strcmp(values[i]->name, name) == 0)
			return values[i];
	return NULL;
}

void
record_free(Steward__Change *c)
{
	if (c)
		steward__change__free_unpacked(c, &record_allocator);
}

Steward__Change *
record_dup(const Steward__Change *c)
{
	size_t len = steward__change__get_packed_size(c);
	uint8_t *tmp = xmalloc(len ? len : 1);
	steward__change__pack(c, tmp);
	/* Our own packing always decodes; NULL would mean a protobuf-c bug. */
	Steward__Change *copy = steward__change__unpack(&record_allocator, len, tmp);
	free(tmp);
	if (copy == NULL) {
		fprintf(stderr, "steward: could not copy a change record\n");
		abort();
	}
	return copy;
}

/* ---- to JSON ---- */

/*
 * The dump writes JSON straight into the output buffer rather than building
 * a jansson tree per record: a log holds millions of records and the tree
 * (an allocation and a hash insert per value) cost about five times the
 * rest of `steward log dump`.  jansson still parses lines (record_from_json).
 * The output is what json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER) printed.
 */

/* Length of a valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return 0;  /* continuation byte, overlong 2-byte lead, beyond U+10FFFF */
	size_t len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	if (c == 0xe0 && p[1] < 0xa0)
		return 0;  /* overlong */
	if (c == 0xed && p[1] >= 0xa0)
		return 0;  /* UTF-16 surrogate */
	if (c == 0xf0 && p[1] < 0x90)
		return 0;  /* overlong */
	if (c == 0xf4 && p[1] >= 0x90)
		return 0;  /* beyond U+10FFFF */
	return len;
}

/*
 * A JSON string of text.  Source text is UTF-8; should invalid bytes ever
 * appear, each is replaced by U+FFFD rather than emitting invalid JSON.
 */
static void
put_text(buf_t *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *) s;
	size_t n = strlen(s);
	buf_reserve(out, n + 2);
	out->data[out->len++] = '"';
	size_t i = 0;
	while (i < n) {
		/* Copy the longest run that needs no escaping in one go. */
		size_t run = i;
		while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
			run++;
		if (run > i) {
			buf_append(out, p + i, run - i);
			i = run;
			continue;
		}
		unsigned char c = p[i];
		if (c >= 0x80) {
			size_t len = utf8_seq_len(p + i, n - i);
			if (len == 0) {
				buf_append(out, "\xef\xbf\xbd", 3);
				i++;
			} else {
				buf_append(out, p + i, len);
				i += len;
			}
			continue;
		}
		char esc[7] = {'\\', 0};
		size_t elen = 2;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		}
		buf_append(out, esc, elen);
		i++;
	}
	buf_append_char(out, '"');
}

static void
put_text_or_null(buf_t *out, const char *s)
{
	if (s)
		put_text(out, s);
	else
		buf_append(out, "null", 4);
}

/* "name": with the separator before it unless it is the first member. */
static void
put_member(buf_t *out, bool *first, const char *name)
{
	if (!*first)
		buf_append_char(out, ',');
	*first = false;
	put_text(out, name);
	buf_append_char(out, ':');
}

/* One column's value: null for SQL NULL, else the source's text. */
static void
put_value(buf_t *out, const Steward__Value *v)
{
	put_text_or_null(out, v->is_null ? NULL : v->text);
}

static bool
in_list(char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

/*
 * An image as {col: text|null}, leaving out unchanged TOAST columns.
 * Column names within an image are unique (capture writes them so).
 */
static void
put_image(buf_t *out, Steward__Value *const *values, size_t n)
{
	if (n == 0) {
		buf_append(out, "null", 4);
		return;
	}
	bool first = true;
	buf_append_char(out, '{');
	for (size_t i = 0; i < n; i++) {
		const Steward__Value *v = values[i];
		if (v->unchanged || v->name == NULL)
			continue;
		put_member(out, &first, v->name);
		put_value(out, v);
	}
	buf_append_char(out, '}');
}

/* A usable (sent, named) value for a key column, or NULL. */
static const Steward__Value *
key_value(Steward__Value *const *values, size_t n, const char *name)
{
	const Steward__Value *v = record_find_value(values, n, name);
	return v && !v->unchanged ? v : NULL;
}

/* Appends "YYYY-MM-DDTHH:MM:SS.ffffffZ" (or "invalid") as a JSON string. */
static void
put_commit_ts(buf_t *out, int64_t us)
{
	/* Floor division so times before 1970 still get a positive fraction. */
	int64_t secs = us / 1000000, frac = us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	time_t t = (time_t) secs;
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL) {
		buf_append(out, "\"invalid\"", 9);
		return;
	}
	char date[64];
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_printf(out, "\"%s.%06" PRId64 "Z\"", date, frac);
}

static void
hex_encode(const uint8_t *p, size_t n, buf_t *out)
{
	static const char hex[] = "0123456789abcdef";
	buf_reserve(out, 2 * n);
	for (size_t i = 0; i < n; i++) {
		out->data[out->len++] = hex[p[i] >> 4];
		out->data[out->len++] = hex[p[i] & 15];
	}
	out->data[out->len] = '\0';
}

static void
put_hex(buf_t *out, const uint8_t *p, size_t n)
{
	buf_append_char(out, '"');
	hex_encode(p, n, out);
	buf_append_char(out, '"');
}

/*
 * "types": the type of every named column of the new image, then of those
 * only the old image has (a delete's, or a key change's old columns).
 */
static void
put_types(buf_t *out, const Steward__Change *c)
{
	bool first = true;
	buf_append_char(out, '{');
	for (size_t i = 0; i < c->n_after; i++) {
		const Steward__Value *v = c->after[i];
		if (v->name && v->type_name) {
			put_member(out, &first, v->name);
			put_text(out, v->type_name);
		}
	}
	for (size_t i = 0; i < c->n_before; i++) {
		const Steward__Value *v = c->before[i];
		if (v->name == NULL || v->type_name == NULL)
			continue;
		/* The common update: the old image has the new one's columns, in order. */
		const Steward__Value *same = i < c->n_after ? c->after[i] : NULL;
		if (same && same->name && same->type_name && strcmp(same->name, v->name) == 0)
			continue;
		bool seen = false;
		for (size_t k = 0; k < c->n_after && !seen; k++)
			seen = c->after[k]->name && c->after[k]->type_name &&
			       strcmp(c->after[k]->name, v->name) == 0;
		if (!seen) {
			put_member(out, &first, v->name);
			put_text(out, v->type_name);
		}
	}
	buf_append_char(out, '}');
}

/* "unchanged": the record's list plus any value flagged unchanged. */
static void
put_unchanged(buf_t *out, const Steward__Change *c)
{
	bool first = true;
	buf_append_char(out, '[');
	for (size_t i = 0; i < c->n_unchanged; i++) {
		if (!first)
			buf_append_char(out, ',');
		first = false;
		put_text(out, c->unchanged[i]);
	}
	for (int img = 0; img < 2; img++) {
		Steward__Value *const *values = img ? c->after : c->before;
		size_t n = img ? c->n_after : c->n_before;
		for (size_t i = 0; i < n; i++) {
			const Steward__Value *v = values[i];
			if (!v->unchanged || v->name == NULL || in_list(c->unchanged, c->n_unchanged, v->name))
				continue;
			/* Already listed from the old image or earlier in this one? */
			bool seen = false;
			for (size_t k = 0; k < i && !seen; k++)
				seen = values[k]->unchanged && values[k]->name && strcmp(values[k]->name, v->name) == 0;
			for (size_t k = 0; img && k < c->n_before && !seen; k++)
				seen = c->before[k]->unchanged && c->before[k]->name &&
				       strcmp(c->before[k]->name, v->name) == 0;
			if (seen)
				continue;
			if (!first)
				buf_append_char(out, ',');
			first = false;
			put_text(out, v->name);
		}
	}
	buf_append_char(out, ']');
}

void
record_to_json(const Steward__Change *c, buf_t *out)
{
	buf_append(out, "{\"source\":", 10);
	put_text_or_null(out, c->source);
	buf_append(out, ",\"table\":", 9);
	const char *schema = c->schema ? c->schema : "";
	const char *table = c->table ? c->table : "";
	if (*schema || *table) {
		char *qualified = xasprintf("%s.%s", schema, table);
		put_text(out, qualified);
		free(qualified);
	} else {
		buf_append(out, "null", 4);
	}
	buf_append(out, ",\"op\":", 6);
	put_text(out, record_op_name(c->has_op ? c->op : 0));
	buf_append(out, ",\"pos\":", 7);
	put_text_or_null(out, c->position_text);
	buf_append(out, ",\"txid\":", 8);
	put_text_or_null(out, c->txid);
	buf_append(out, ",\"commit_ts\":", 13);
	if (c->has_commit_ts_us)
		put_commit_ts(out, c->commit_ts_us);
	else
		buf_append(out, "null", 4);

	/* Key values: the new image for insert/snapshot/update, the old for delete. */
	bool from_before = c->has_op && c->op == STEWARD__OP__OP_DELETE;
	bool first = true;
	buf_append(out, ",\"key\":{", 8);
	for (size_t i = 0; i < c->n_key; i++) {
		const char *name = c->key[i];
		if (in_list(c->key, i, name))
			continue;
		const Steward__Value *v = from_before ? key_value(c->before, c->n_before, name)
						      : key_value(c->after, c->n_after, name);
		if (v == NULL)
			v = from_before ? key_value(c->after, c->n_after, name)
					: key_value(c->before, c->n_before, name);
		if (v) {
			put_member(out, &first, name);
			put_value(out, v);
		}
	}
	buf_append(out, "},\"before\":", 11);
	put_image(out, c->before, c->n_before);
	buf_append(out, ",\"after\":", 9);
	put_image(out, c->after, c->n_after);
	buf_append(out, ",\"unchanged\":", 13);
	put_unchanged(out, c);
	buf_append(out, ",\"types\":", 9);
	put_types(out, c);
	buf_append(out, ",\"pos_hex\":", 11);
	if (c->has_position)
		put_hex(out, c->position.data, c->position.len);
	else
		buf_append(out, "null", 4);

	/* Fields that only some records carry, kept so a line round-trips. */
	if (c->has_source_kind && c->source_kind != STEWARD__SOURCE_KIND__SOURCE_KIND_UNSPECIFIED) {
		buf_append(out, ",\"source_kind\":", 15);
		put_text(out, record_source_kind_name(c->source_kind));
	}
	if (c->database) {
		buf_append(out, ",\"database\":", 12);
		put_text(out, c->database);
	}
	if (c->has_seq)
		buf_printf(out, ",\"seq\":%" PRIu32, c->seq);
	if (c->n_truncated_tables > 0) {
		buf_append(out, ",\"truncated_tables\":[", 21);
		for (size_t i = 0; i < c->n_truncated_tables; i++) {
			if (i)
				buf_append_char(out, ',');
			put_text(out, c->truncated_tables[i]);
		}
		buf_append_char(out, ']');
	}
	if (c->message_prefix) {
		buf_append(out, ",\"message_prefix\":", 18);
		put_text(out, c->message_prefix);
	}
	if (c->has_message_content) {
		buf_append(out, ",\"message_content_hex\":", 23);
		put_hex(out, c->message_content.data, c->message_content.len);
	}
	buf_append_char(out, '}');
}

/* ---- from JSON ---- */

static bool
hex_decode(const char *hex, uint8_t **out, size_t *outlen)
{
	size_t n = strlen(hex);
	if (n % 2)
		return false;
	uint8_t *p = xmalloc(n / 2 + 1);
	for (size_t i = 0; i < n / 2; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char ch = hex[2 * i + (size_t) k];
			int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
				ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
			if (d < 0) {
				free(p);
				return false;
			}
			v = v << 4 | d;
		}
		p[i] = (uint8_t) v;
	}
	*out = p;
	*outlen = n / 2;
	return true;
}

/* Optional string field: absent or null leaves *dst NULL. */
static bool
get_opt_string(json_t *o, const char *field, char **dst, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, field);
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "field \"%s\" must be a string or null", field);
		return false;
	}
	*dst = xstrdup(json_string_value(v));
	return true;
}

static Steward__Value *
new_value(const char *name)
{
	Steward__Value *v = xmalloc(sizeof(*v));
	steward__value__init(v);
	v->name = xstrdup(name);
	return v;
}

/* Parse an image object {col: text|null} (or null) into *values. */
static bool
parse_image(json_t *o, const char *field, json_t *types, Steward__Value ***values, size_t *n,
	    char *err, size_t errlen)
{
	json_t *img = json_object_get(o, field);
	if (img == NULL || json_is_null(img))
		return true;
	if (!json_is_object(img)) {
		snprintf(err, errlen, "field \"%s\" must be an object or null", field);
		return false;
	}
	size_t count = json_object_size(img);
	*values = xcalloc(count ? count : 1, sizeof(**values));
	const char *col;
	json_t *val;
	json_object_foreach(img, col, val) {
		if (!json_is_string(val) && !json_is_null(val)) {
			snprintf(err, errlen, "column \"%s\" in \"%s\" must be a string or null", col, field);
			return false;
		}
		Steward__Value *v = new_value(col);
		(*values)[(*n)++] = v;
		if (json_is_null(val)) {
			v->has_is_null = true;
			v->is_null = true;
		} else {
			v->text = xstrdup(json_string_value(val));
		}
		json_t *t = types ? json_object_get(types, col) : NULL;
		if (t && json_is_string(t))
			v->type_name = xstrdup(json_string_value(t));
	}
	return true;
}

static bool
parse_string_array(json_t *o, const char *field, char ***out, size_t *n, char *err, size_t errlen)
{
	json_t *a = json_object_get(o, field);
	if (a == NULL || json_is_null(a))
		return true;
	if (!json_is_array(a)) {
		snprintf(err, errlen, "field \"%s\" must be an array of strings", field);
		return false;
	}
	size_t count = json_array_size(a);
	*out = xcalloc(count ? count : 1, sizeof(**out));
	for (size_t i = 0; i < count; i++) {
		json_t *s = json_array_get(a, i);
		if (!json_is_string(s)) {
			snprintf(err, errlen, "field \"%s\" must be an array of strings", field);
			return false;
		}
		(*out)[(*n)++] = xstrdup(json_string_value(s));
	}
	return true;
}

Steward__Change *
record_from_json(const char *json, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL) {
		snprintf(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
			 jerr.text);
		return NULL;
	}
	Steward__Change *c = xmalloc(sizeof(*c));
	steward__change__init(c);
	bool ok = false;
	if (!json_is_object(o)) {
		snprintf(err, errlen, "change record must be a JSON object");
		goto out;
	}
	c->has_version = true;
	c->version = STEWARD_RECORD_VERSION;

	json_t *op = json_object_get(o, "op");
	if (op == NULL || !json_is_string(op)) {
		snprintf(err, errlen, "field \"op\" is missing or not a string");
		goto out;
	}
	c->op = record_op_from_name(json_string_value(op));
	if (c->op == STEWARD__OP__OP_UNSPECIFIED) {
		snprintf(err, errlen, "field \"op\" has unknown value \"%s\" "
			 "(insert, update, delete, truncate, snapshot, message)", json_string_value(op));
		goto out;
	}
	c->has_op = true;

	if (!get_opt_string(o, "source", &c->source, err, errlen) ||
	    !get_opt_string(o, "pos", &c->position_text, err, errlen) ||
	    !get_opt_string(o, "txid", &c->txid, err, errlen) ||
	    !get_opt_string(o, "database", &c->database, err, errlen) ||
	    !get_opt_string(o, "message_prefix", &c->message_prefix, err, errlen))
		goto out;

	json_t *table = json_object_get(o, "table");
	if (table && json_is_string(table)) {
		/* "schema.table": the schema is up to the first dot. */
		const char *t = json_string_value(table);
		const char *dot = strchr(t, '.');
		if (dot == NULL) {
			snprintf(err, errlen, "field \"table\" must be \"schema.table\", got \"%s\"", t);
			goto out;
		}
		c->schema = xstrndup(t, (size_t) (dot - t));
		c->table = xstrdup(dot + 1);
	} else if (table && !json_is_null(table)) {
		snprintf(err, errlen, "field \"table\" must be a string or null");
		goto out;
	}

	json_t *ts = json_object_get(o, "commit_ts");
	if (ts && json_is_string(ts)) {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		const char *s = json_string_value(ts);
		const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
		long frac = 0;
		int digits = 0;
		if (rest && *rest == '.') {
			for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
				if (digits < 6)
					frac = frac * 10 + (*rest - '0');
			for (int d = digits; d < 6; d++)
				frac *= 10;
		}
		if (rest == NULL || strcmp(rest, "Z") != 0) {
			snprintf(err, errlen, "field \"commit_ts\" must be RFC 3339 UTC "
				 "(e.g. 2026-11-25T12:00:00.123456Z), got \"%s\"", s);
			goto out;
		}
		c->has_commit_ts_us = true;
		c->commit_ts_us = (int64_t) timegm(&tm) * 1000000 + frac;
	} else if (ts && !json_is_null(ts)) {
		snprintf(err, errlen, "field \"commit_ts\" must be a string or null");
		goto out;
	}

	json_t *pos_hex = json_object_get(o, "pos_hex");
	if (pos_hex && json_is_string(pos_hex)) {
		if (!hex_decode(json_string_value(pos_hex), &c->position.data, &c->position.len) ||
		    c->position.len > POSITION_MAX) {
			snprintf(err, errlen, "field \"pos_hex\" must be hex of at most %d bytes",
				 POSITION_MAX);
			goto out;
		}
		c->has_position = true;
	} else if (pos_hex && !json_is_null(pos_hex)) {
		snprintf(err, errlen, "field \"pos_hex\" must be a string or null");
		goto out;
	}

	json_t *kind = json_object_get(o, "source_kind");
	if (kind && json_is_string(kind)) {
		c->source_kind = source_kind_from_name(json_string_value(kind));
		c->has_source_kind = c->source_kind != STEWARD__SOURCE_KIND__SOURCE_KIND_UNSPECIFIED;
	}
	json_t *seq = json_object_get(o, "seq");
	if (seq && json_is_integer(seq)) {
		c->has_seq = true;
		c->seq = (uint32_t) json_integer_value(seq);
	}
	json_t *content = json_object_get(o, "message_content_hex");
	if (content && json_is_string(content)) {
		if (!hex_decode(json_string_value(content), &c->message_content.data,
				&c->message_content.len)) {
			snprintf(err, errlen, "field \"message_content_hex\" must be hex");
			goto out;
		}
		c->has_message_content = true;
	}

	json_t *types = json_object_get(o, "types");
	if (types && !json_is_object(types) && !json_is_null(types)) {
		snprintf(err, errlen, "field \"types\" must be an object");
		goto out;
	}
	if (!parse_image(o, "before", types, &c->before, &c->n_before, err, errlen) ||
	    !parse_image(o, "after", types, &c->after, &c->n_after, err, errlen) ||
	    !parse_string_array(o, "unchanged", &c->unchanged, &c->n_unchanged, err, errlen) ||
	    !parse_string_array(o, "truncated_tables", &c->truncated_tables,
				&c->n_truncated_tables, err, errlen))
		goto out;

	/* Unchanged TOAST columns come back as unchanged values of the new image. */
	if (c->n_unchanged > 0 && c->after) {
		c->after = xrealloc(c->after, (c->n_after + c->n_unchanged) * sizeof(*c->after));
		for (size_t i = 0; i < c->n_unchanged; i++) {
			Steward__Value *v = new_value(c->unchanged[i]);
			v->has_unchanged = true;
			v->unchanged = true;
			json_t *t = types ? json_object_get(types, c->unchanged[i]) : NULL;
			if (t && json_is_string(t))
				v->type_name = xstrdup(json_string_value(t));
			c->after[c->n_after++] = v;
		}
	}

	json_t *key = json_object_get(o, "key");
	if (key && json_is_object(key)) {
		c->key = xcalloc(json_object_size(key) + 1, sizeof(*c->key));
		const char *col;
		json_t *val;
		json_object_foreach(key, col, val) c->key[c->n_key++] = xstrdup(col);
	} else if (key && !json_is_null(key)) {
		snprintf(err, errlen, "field \"key\" must be an object");
		goto out;
	}
	ok = true;
out:
	json_decref(o);
	if (!ok) {
		record_free(c);
		return NULL;
	}
	return c;
}
