/*
 * test_record.c — the `steward log dump` JSON line format: SQL NULL vs
 * empty string vs unchanged TOAST, key columns, timestamps, UTF-8, and the
 * round trip through record_from_json; plus record copies and op names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "record.h"

/* A value on the stack: text NULL means SQL NULL; unchanged marks TOAST. */
static void
set_value(Steward__Value *v, const char *name, const char *type, const char *text, bool unchanged)
{
	steward__value__init(v);
	v->name = (char *) name;
	v->type_name = (char *) type;
	if (unchanged) {
		v->has_unchanged = true;
		v->unchanged = true;
	} else if (text == NULL) {
		v->has_is_null = true;
		v->is_null = true;
	} else {
		v->text = (char *) text;
	}
}

static char *
to_json(const Steward__Change *c)
{
	buf_t b = BUF_INIT;
	record_to_json(c, &b);
	return buf_steal(&b);
}

static position_t the_pos;

/* An update of public.customers with NULL, "", an unchanged TOAST column and an emoji. */
static void
build_update(Steward__Change *c, Steward__Value *before, Steward__Value **bp,
	     Steward__Value *after, Steward__Value **ap, char **key, char **unchanged)
{
	steward__change__init(c);
	c->has_version = true;
	c->version = STEWARD_RECORD_VERSION;
	c->source = "erp";
	c->has_source_kind = true;
	c->source_kind = STEWARD__SOURCE_KIND__SOURCE_KIND_POSTGRESQL;
	c->schema = "public";
	c->table = "customers";
	c->has_op = true;
	c->op = STEWARD__OP__OP_UPDATE;
	c->txid = "7412";
	c->has_commit_ts_us = true;
	c->commit_ts_us = 1795608000123456LL;  /* 2026-11-25T12:00:00.123456Z */
	position_pg(&the_pos, 0x16B3748, POSITION_PHASE_STREAM, 3);
	c->has_position = true;
	c->position.data = the_pos.bytes;
	c->position.len = the_pos.len;
	c->position_text = "0/16B3748:3";
	c->has_seq = true;
	c->seq = 3;
	key[0] = "id";
	c->n_key = 1;
	c->key = key;

	set_value(&before[0], "id", "integer", "42", false);
	bp[0] = &before[0];
	c->n_before = 1;
	c->before = bp;

	set_value(&after[0], "id", "integer", "42", false);
	set_value(&after[1], "name", "text", "Zo\xc3\xab \xf0\x9f\x98\x80", false);
	set_value(&after[2], "phone", "text", NULL, false);
	set_value(&after[3], "note", "text", "", false);
	set_value(&after[4], "photo", "bytea", NULL, true);
	for (int i = 0; i < 5; i++)
		ap[i] = &after[i];
	c->n_after = 5;
	c->after = ap;
	unchanged[0] = "photo";
	c->n_unchanged = 1;
	c->unchanged = unchanged;
}

#define UPDATE_JSON                                                                            \
	"{\"source\":\"erp\",\"table\":\"public.customers\",\"op\":\"update\","                 \
	"\"pos\":\"0/16B3748:3\",\"txid\":\"7412\",\"commit_ts\":\"2026-11-25T12:00:00.123456Z\"," \
	"\"key\":{\"id\":\"42\"},\"before\":{\"id\":\"42\"},"                                    \
	"\"after\":{\"id\":\"42\",\"name\":\"Zo\xc3\xab \xf0\x9f\x98\x80\",\"phone\":null,\"note\":\"\"}," \
	"\"unchanged\":[\"photo\"],"                                                             \
	"\"types\":{\"id\":\"integer\",\"name\":\"text\",\"phone\":\"text\",\"note\":\"text\",\"photo\":\"bytea\"}," \
	"\"pos_hex\":\"00000000016b3748010000000000000003\","                                  \
	"\"source_kind\":\"postgresql\",\"seq\":3}"

static void
null_empty_and_unchanged_are_distinct_in_json(void **state)
{
	Steward__Change c;
	Steward__Value before[1], after[5], *bp[1], *ap[5];
	char *key[1], *unchanged[1];
	build_update(&c, before, bp, after, ap, key, unchanged);
	char *json = to_json(&c);
	assert_string_equal(json, UPDATE_JSON);
	free(json);
}

static void
json_line_round_trips_through_record_from_json(void **state)
{
	Steward__Change c;
	Steward__Value before[1], after[5], *bp[1], *ap[5];
	char *key[1], *unchanged[1];
	build_update(&c, before, bp, after, ap, key, unchanged);
	char *json = to_json(&c);
	char err[256] = "";
	Steward__Change *back = record_from_json(json, err, sizeof(err));
	if (back == NULL)
		fail_msg("record_from_json: %s", err);
	assert_int_equal(back->op, STEWARD__OP__OP_UPDATE);
	assert_string_equal(back->schema, "public");
	assert_string_equal(back->table, "customers");
	assert_int_equal(back->commit_ts_us, c.commit_ts_us);
	position_t p;
	assert_true(record_position(back, &p));
	assert_int_equal(position_cmp(&p, &the_pos), 0);
	const Steward__Value *v = record_find_value(back->after, back->n_after, "phone");
	assert_non_null(v);
	assert_true(v->is_null);
	v = record_find_value(back->after, back->n_after, "note");
	assert_non_null(v);
	assert_false(v->is_null);
	assert_string_equal(v->text, "");
	v = record_find_value(back->after, back->n_after, "photo");
	assert_non_null(v);
	assert_true(v->unchanged);
	assert_null(v->text);
	v = record_find_value(back->after, back->n_after, "name");
	assert_string_equal(v->text, "Zo\xc3\xab \xf0\x9f\x98\x80");
	assert_string_equal(v->type_name, "text");
	assert_int_equal(back->n_key, 1);
	assert_string_equal(back->key[0], "id");

	/* The line printed again is byte for byte the same. */
	char *again = to_json(back);
	assert_string_equal(again, json);

	/* And a deep copy packs to the same bytes as the original. */
	Steward__Change *copy = record_dup(back);
	size_t n1 = steward__change__get_packed_size(back), n2 = steward__change__get_packed_size(copy);
	assert_int_equal(n1, n2);
	uint8_t *b1 = malloc(n1), *b2 = malloc(n2);
	steward__change__pack(back, b1);
	steward__change__pack(copy, b2);
	assert_memory_equal(b1, b2, n1);
	free(b1);
	free(b2);
	record_free(copy);
	record_free(back);
	record_free(NULL);
	free(again);
	free(json);
}

static void
delete_key_comes_from_before_image(void **state)
{
	Steward__Change c = STEWARD__CHANGE__INIT;
	Steward__Value before[2], *bp[2];
	char *key[2] = {"tenant", "id"};
	c.schema = "app";
	c.table = "orders";
	c.has_op = true;
	c.op = STEWARD__OP__OP_DELETE;
	c.n_key = 2;
	c.key = key;
	set_value(&before[0], "tenant", "text", "acme", false);
	set_value(&before[1], "id", "bigint", "7", false);
	bp[0] = &before[0];
	bp[1] = &before[1];
	c.n_before = 2;
	c.before = bp;
	char *json = to_json(&c);
	assert_non_null(strstr(json, "\"key\":{\"tenant\":\"acme\",\"id\":\"7\"}"));
	assert_non_null(strstr(json, "\"after\":null"));
	assert_non_null(strstr(json, "\"commit_ts\":null"));
	assert_non_null(strstr(json, "\"pos_hex\":null"));
	free(json);
}

static void
update_key_falls_back_to_before_when_after_lacks_it(void **state)
{
	Steward__Change c = STEWARD__CHANGE__INIT;
	Steward__Value before[1], after[2], *bp[1], *ap[2];
	char *key[1] = {"id"};
	c.schema = "s";
	c.table = "t";
	c.has_op = true;
	c.op = STEWARD__OP__OP_UPDATE;
	c.n_key = 1;
	c.key = key;
	set_value(&before[0], "id", "integer", "1", false);
	bp[0] = &before[0];
	set_value(&after[0], "id", "integer", NULL, true);  /* not sent */
	set_value(&after[1], "v", "text", "x", false);
	ap[0] = &after[0];
	ap[1] = &after[1];
	c.n_before = 1;
	c.before = bp;
	c.n_after = 2;
	c.after = ap;
	char *json = to_json(&c);
	assert_non_null(strstr(json, "\"key\":{\"id\":\"1\"}"));
	/* Flagged unchanged in the value only: still listed, still absent from after. */
	assert_non_null(strstr(json, "\"after\":{\"v\":\"x\"}"));
	assert_non_null(strstr(json, "\"unchanged\":[\"id\"]"));
	free(json);
}

static void
commit_ts_is_rfc3339_utc_with_microseconds(void **state)
{
	Steward__Change c = STEWARD__CHANGE__INIT;
	c.has_op = true;
	c.op = STEWARD__OP__OP_INSERT;
	c.has_commit_ts_us = true;
	c.commit_ts_us = 0;
	char *json = to_json(&c);
	assert_non_null(strstr(json, "\"commit_ts\":\"1970-01-01T00:00:00.000000Z\""));
	free(json);
	c.commit_ts_us = -1;  /* one microsecond before the epoch */
	json = to_json(&c);
	assert_non_null(strstr(json, "\"commit_ts\":\"1969-12-31T23:59:59.999999Z\""));
	char err[256];
	Steward__Change *back = record_from_json(json, err, sizeof(err));
	assert_non_null(back);
	assert_int_equal(back->commit_ts_us, -1);
	record_free(back);
	free(json);

	back = record_from_json("{\"op\":\"insert\",\"commit_ts\":\"2026-11-25T12:00:00.5Z\"}", err,
				sizeof(err));
	assert_non_null(back);
	assert_int_equal(back->commit_ts_us, 1795608000500000LL);
	record_free(back);
}

static void
invalid_utf8_never_produces_invalid_json(void **state)
{
	Steward__Change c = STEWARD__CHANGE__INIT;
	Steward__Value after[1], *ap[1];
	c.schema = "s";
	c.table = "t";
	c.has_op = true;
	c.op = STEWARD__OP__OP_INSERT;
	set_value(&after[0], "v", "text", "ok\xff\xc3(end", false);
	ap[0] = &after[0];
	c.n_after = 1;
	c.after = ap;
	char *json = to_json(&c);
	assert_non_null(strstr(json, "\"v\":\"ok\xef\xbf\xbd\xef\xbf\xbd(end\""));
	char err[256];
	Steward__Change *back = record_from_json(json, err, sizeof(err));
	assert_non_null(back);
	record_free(back);
	free(json);
}

/*
 * Control characters are escaped as JSON requires, and byte sequences that
 * are not UTF-8 scalar values (overlong forms, surrogates, beyond U+10FFFF,
 * a truncated sequence) become U+FFFD; what comes back is the same text.
 */
static void
escapes_and_non_scalar_sequences(void **state)
{
	(void) state;
	Steward__Change c = STEWARD__CHANGE__INIT;
	Steward__Value after[1], *ap[1];
	c.schema = "s";
	c.table = "t";
	c.has_op = true;
	c.op = STEWARD__OP__OP_INSERT;
	set_value(&after[0], "v", "text",
		  "a\x01\"\\\n\t\b\f\r\x7f|\xed\xa0\x80|\xc0\xaf|\xf4\x90\x80\x80|\xe0\x80\x80|\xf0\x9f\x98",
		  false);
	ap[0] = &after[0];
	c.n_after = 1;
	c.after = ap;
	char *json = to_json(&c);
	const char *want = "\"v\":\"a\\u0001\\\"\\\\\\n\\t\\b\\f\\r\x7f|"
			   "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|"
			   "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
			   "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"";
	if (strstr(json, want) == NULL)
		fail_msg("unexpected JSON: %s", json);
	char err[256];
	Steward__Change *back = record_from_json(json, err, sizeof(err));
	assert_non_null(back);
	assert_int_equal(back->n_after, 1);
	assert_memory_equal(back->after[0]->text, "a\x01\"\\\n\t\b\f\r\x7f|", 11);
	record_free(back);
	free(json);
}

static void
bad_json_lines_give_clear_errors(void **state)
{
	static const struct {
		const char *json;
		const char *expect;
	} cases[] = {
		{"{\"op\":", "invalid JSON"},
		{"[1,2]", "must be a JSON object"},
		{"{\"table\":\"s.t\"}", "\"op\" is missing"},
		{"{\"op\":\"upsert\"}", "unknown value \"upsert\""},
		{"{\"op\":\"insert\",\"table\":\"nodot\"}", "\"schema.table\""},
		{"{\"op\":\"insert\",\"pos_hex\":\"zz\"}", "pos_hex"},
		{"{\"op\":\"insert\",\"after\":[1]}", "\"after\" must be an object or null"},
		{"{\"op\":\"insert\",\"after\":{\"a\":1}}", "column \"a\" in \"after\""},
		{"{\"op\":\"insert\",\"commit_ts\":\"yesterday\"}", "RFC 3339"},
		{"{\"op\":\"insert\",\"unchanged\":\"x\"}", "array of strings"},
		{"{\"op\":\"insert\",\"op\":\"delete\"}", "invalid JSON"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		Steward__Change *c = record_from_json(cases[i].json, err, sizeof(err));
		if (c != NULL || strstr(err, cases[i].expect) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].json, err, cases[i].expect);
	}
}

static void
minimal_line_without_optional_fields_parses(void **state)
{
	char err[256] = "";
	Steward__Change *c = record_from_json(
		"{\"source\":\"erp\",\"table\":\"public.t\",\"op\":\"snapshot\",\"pos\":\"snapshot:0/10:1\","
		"\"txid\":null,\"commit_ts\":null,\"key\":{\"id\":\"1\"},\"before\":null,"
		"\"after\":{\"id\":\"1\",\"x\":null},\"unchanged\":[]}",
		err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->op, STEWARD__OP__OP_SNAPSHOT_READ);
	assert_false(c->has_position);
	assert_string_equal(c->position_text, "snapshot:0/10:1");
	assert_int_equal(c->n_before, 0);
	assert_int_equal(c->n_after, 2);
	assert_true(c->after[1]->is_null);
	assert_null(c->after[1]->type_name);
	record_free(c);
}

static void
op_and_kind_names(void **state)
{
	const Steward__Op ops[] = {STEWARD__OP__OP_INSERT, STEWARD__OP__OP_UPDATE,
				   STEWARD__OP__OP_DELETE, STEWARD__OP__OP_TRUNCATE,
				   STEWARD__OP__OP_SNAPSHOT_READ, STEWARD__OP__OP_MESSAGE};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		assert_int_equal(record_op_from_name(record_op_name(ops[i])), ops[i]);
	assert_string_equal(record_op_name(STEWARD__OP__OP_SNAPSHOT_READ), "snapshot");
	assert_int_equal(record_op_from_name("nonsense"), STEWARD__OP__OP_UNSPECIFIED);
	assert_string_equal(record_source_kind_name(STEWARD__SOURCE_KIND__SOURCE_KIND_MYSQL), "mysql");
	assert_string_equal(record_source_kind_name(STEWARD__SOURCE_KIND__SOURCE_KIND_POSTGRESQL),
			    "postgresql");
}

static void
truncate_and_message_records_round_trip(void **state)
{
	Steward__Change c = STEWARD__CHANGE__INIT;
	char *tables[2] = {"public.a", "public.b"};
	c.source = "erp";
	c.has_op = true;
	c.op = STEWARD__OP__OP_TRUNCATE;
	c.n_truncated_tables = 2;
	c.truncated_tables = tables;
	char *json = to_json(&c);
	assert_non_null(strstr(json, "\"table\":null"));
	assert_non_null(strstr(json, "\"truncated_tables\":[\"public.a\",\"public.b\"]"));
	char err[256];
	Steward__Change *back = record_from_json(json, err, sizeof(err));
	assert_non_null(back);
	char *again = to_json(back);
	assert_string_equal(again, json);
	record_free(back);
	free(again);
	free(json);

	Steward__Change m = STEWARD__CHANGE__INIT;
	uint8_t content[3] = {0x00, 0xff, 0x41};
	m.has_op = true;
	m.op = STEWARD__OP__OP_MESSAGE;
	m.message_prefix = "audit";
	m.has_message_content = true;
	m.message_content.data = content;
	m.message_content.len = 3;
	json = to_json(&m);
	assert_non_null(strstr(json, "\"message_content_hex\":\"00ff41\""));
	back = record_from_json(json, err, sizeof(err));
	assert_non_null(back);
	assert_int_equal(back->message_content.len, 3);
	assert_memory_equal(back->message_content.data, content, 3);
	record_free(back);
	free(json);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(null_empty_and_unchanged_are_distinct_in_json),
		cmocka_unit_test(json_line_round_trips_through_record_from_json),
		cmocka_unit_test(delete_key_comes_from_before_image),
		cmocka_unit_test(update_key_falls_back_to_before_when_after_lacks_it),
		cmocka_unit_test(commit_ts_is_rfc3339_utc_with_microseconds),
		cmocka_unit_test(invalid_utf8_never_produces_invalid_json),
		cmocka_unit_test(escapes_and_non_scalar_sequences),
		cmocka_unit_test(bad_json_lines_give_clear_errors),
		cmocka_unit_test(minimal_line_without_optional_fields_parses),
		cmocka_unit_test(op_and_kind_names),
		cmocka_unit_test(truncate_and_message_records_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
