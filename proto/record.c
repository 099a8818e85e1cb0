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
 * A JSON string of text.  Source text is UTF-8; should invalid bytes ever
 * appear, they are replaced by U+FFFD rather than emitting invalid JSON.
 */
static json_t *
json_text(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	size_t n = strlen(s);
	char *fixed = xmalloc(3 * n + 1);
	size_t o = 0;
	const unsigned char *p = (const unsigned char *) s;
	while (*p) {
		size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 :
			     (*p & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = len > 0;
		for (size_t k = 1; ok && k < len; k++)
			ok = (p[k] & 0xc0) == 0x80;
		if (ok && len > 1) {
			char one[5] = {0};
			memcpy(one, p, len);
			json_t *probe = json_string(one);  /* rejects overlong forms and surrogates */
			ok = probe != NULL;
			json_decref(probe);
		}
		if (ok) {
			memcpy(fixed + o, p, len);
			o += len;
			p += len;
		} else {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
		}
	}
	fixed[o] = '\0';
	j = json_string(fixed);
	free(fixed);
	return j;
}

static json_t *
json_text_or_null(const char *s)
{
	return s ? json_text(s) : json_null();
}

/* One column's value: null for SQL NULL, else the source's text. */
static json_t *
json_value(const Steward__Value *v)
{
	if (v->is_null || v->text == NULL)
		return json_null();
	return json_text(v->text);
}

/* An image as {col: text|null}, leaving out unchanged TOAST columns. */
static json_t *
json_image(Steward__Value *const *values, size_t n)
{
	if (n == 0)
		return json_null();
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++) {
		const Steward__Value *v = values[i];
		if (v->unchanged || v->name == NULL)
			continue;
		json_object_set_new(o, v->name, json_value(v));
	}
	return o;
}

static bool
in_list(char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

/* A usable (sent, named) value for a key column, or NULL. */
static const Steward__Value *
key_value(Steward__Value *const *values, size_t n, const char *name)
{
	const Steward__Value *v = record_find_value(values, n, name);
	return v && !v->unchanged ? v : NULL;
}

static void
format_commit_ts(int64_t us, char *out, size_t outlen)
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
		snprintf(out, outlen, "invalid");
		return;
	}
	char date[64];
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%06" PRId64 "Z", date, frac);
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
add_types(json_t *types, Steward__Value *const *values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const Steward__Value *v = values[i];
		if (v->name && v->type_name && !json_object_get(types, v->name))
			json_object_set_new(types, v->name, json_text(v->type_name));
	}
}

void
record_to_json(const Steward__Change *c, buf_t *out)
{
	json_t *o = json_object();
	json_object_set_new(o, "source", json_text_or_null(c->source));
	const char *schema = c->schema ? c->schema : "";
	const char *table = c->table ? c->table : "";
	if (*schema || *table) {
		char *qualified = xasprintf("%s.%s", schema, table);
		json_object_set_new(o, "table", json_text(qualified));
		free(qualified);
	} else {
		json_object_set_new(o, "table", json_null());
	}
	json_object_set_new(o, "op", json_string(record_op_name(c->has_op ? c->op : 0)));
	json_object_set_new(o, "pos", json_text_or_null(c->position_text));
	json_object_set_new(o, "txid", json_text_or_null(c->txid));
	if (c->has_commit_ts_us) {
		char ts[80];
		format_commit_ts(c->commit_ts_us, ts, sizeof(ts));
		json_object_set_new(o, "commit_ts", json_string(ts));
	} else {
		json_object_set_new(o, "commit_ts", json_null());
	}

	/* Key values: the new image for insert/snapshot/update, the old for delete. */
	bool from_before = c->has_op && c->op == STEWARD__OP__OP_DELETE;
	json_t *key = json_object();
	for (size_t i = 0; i < c->n_key; i++) {
		const char *name = c->key[i];
		const Steward__Value *v = from_before ? key_value(c->before, c->n_before, name)
						      : key_value(c->after, c->n_after, name);
		if (v == NULL)
			v = from_before ? key_value(c->after, c->n_after, name)
					: key_value(c->before, c->n_before, name);
		if (v)
			json_object_set_new(key, name, json_value(v));
	}
	json_object_set_new(o, "key", key);
	json_object_set_new(o, "before", json_image(c->before, c->n_before));
	json_object_set_new(o, "after", json_image(c->after, c->n_after));

	/* Unchanged columns: the record's list plus any value flagged unchanged. */
	json_t *unchanged = json_array();
	for (size_t i = 0; i < c->n_unchanged; i++)
		json_array_append_new(unchanged, json_text(c->unchanged[i]));
	for (int img = 0; img < 2; img++) {
		Steward__Value *const *values = img ? c->after : c->before;
		size_t n = img ? c->n_after : c->n_before;
		for (size_t i = 0; i < n; i++) {
			const Steward__Value *v = values[i];
			if (!v->unchanged || v->name == NULL || in_list(c->unchanged, c->n_unchanged, v->name))
				continue;
			bool seen = false;
			for (size_t k = 0; k < json_array_size(unchanged) && !seen; k++)
				seen = strcmp(json_string_value(json_array_get(unchanged, k)), v->name) == 0;
			if (!seen)
				json_array_append_new(unchanged, json_text(v->name));
		}
	}
	json_object_set_new(o, "unchanged", unchanged);

	json_t *types = json_object();
	add_types(types, c->after, c->n_after);
	add_types(types, c->before, c->n_before);
	json_object_set_new(o, "types", types);

	buf_t hex = BUF_INIT;
	if (c->has_position)
		hex_encode(c->position.data, c->position.len, &hex);
	json_object_set_new(o, "pos_hex", c->has_position ? json_string(hex.data ? hex.data : "")
							  : json_null());
	buf_free(&hex);

	/* Fields that only some records carry, kept so a line round-trips. */
	if (c->has_source_kind && c->source_kind != STEWARD__SOURCE_KIND__SOURCE_KIND_UNSPECIFIED)
		json_object_set_new(o, "source_kind", json_string(record_source_kind_name(c->source_kind)));
	if (c->database)
		json_object_set_new(o, "database", json_text(c->database));
	if (c->has_seq)
		json_object_set_new(o, "seq", json_integer(c->seq));
	if (c->n_truncated_tables > 0) {
		json_t *t = json_array();
		for (size_t i = 0; i < c->n_truncated_tables; i++)
			json_array_append_new(t, json_text(c->truncated_tables[i]));
		json_object_set_new(o, "truncated_tables", t);
	}
	if (c->message_prefix)
		json_object_set_new(o, "message_prefix", json_text(c->message_prefix));
	if (c->has_message_content) {
		buf_t mh = BUF_INIT;
		hex_encode(c->message_content.data, c->message_content.len, &mh);
		json_object_set_new(o, "message_content_hex", json_string(mh.data ? mh.data : ""));
		buf_free(&mh);
	}

	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (text == NULL) {
		fprintf(stderr, "steward: could not format a change record as JSON\n");
		abort();
	}
	buf_append_str(out, text);
	free(text);
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
