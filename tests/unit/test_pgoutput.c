/*
 * test_pgoutput.c — the pgoutput v1 decoder on hand-built byte buffers:
 * every message type decodes to the fields that were encoded, and
 * truncated or garbage input is an error with a message, never a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "buf.h"
#include "pgoutput.h"

/* ---- wire builders ---- */

static void
put8(buf_t *b, uint8_t v)
{
	buf_append(b, &v, 1);
}

static void
put16(buf_t *b, uint16_t v)
{
	uint8_t p[2] = {(uint8_t) (v >> 8), (uint8_t) v};
	buf_append(b, p, 2);
}

static void
put32(buf_t *b, uint32_t v)
{
	uint8_t p[4] = {(uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v};
	buf_append(b, p, 4);
}

static void
put64(buf_t *b, uint64_t v)
{
	put32(b, (uint32_t) (v >> 32));
	put32(b, (uint32_t) v);
}

static void
putstr(buf_t *b, const char *s)
{
	buf_append(b, s, strlen(s) + 1);
}

static void
put_text_col(buf_t *b, const char *s)
{
	put8(b, 't');
	put32(b, (uint32_t) strlen(s));
	buf_append(b, s, strlen(s));
}

static void
build_begin(buf_t *b)
{
	put8(b, 'B');
	put64(b, UINT64_C(0x16B3748));
	put64(b, (uint64_t) INT64_C(757382400000000));
	put32(b, 4242);
}

static void
build_commit(buf_t *b)
{
	put8(b, 'C');
	put8(b, 0);
	put64(b, UINT64_C(0x16B3748));
	put64(b, UINT64_C(0x16B3780));
	put64(b, (uint64_t) INT64_C(757382400000001));
}

static void
build_origin(buf_t *b)
{
	put8(b, 'O');
	put64(b, UINT64_C(0x100000020));
	putstr(b, "upstream");
}

static void
build_relation(buf_t *b)
{
	put8(b, 'R');
	put32(b, 16384);
	putstr(b, "public");
	putstr(b, "customers");
	put8(b, 'd');
	put16(b, 3);
	put8(b, 1);
	putstr(b, "id");
	put32(b, 23);
	put32(b, (uint32_t) -1);
	put8(b, 0);
	putstr(b, "name");
	put32(b, 25);
	put32(b, (uint32_t) -1);
	put8(b, 0);
	putstr(b, "limit");
	put32(b, 1700);
	put32(b, (12 << 16 | 2) + 4);
}

static void
build_type(buf_t *b)
{
	put8(b, 'Y');
	put32(b, 90001);
	putstr(b, "public");
	putstr(b, "mood");
}

static void
build_insert(buf_t *b)
{
	put8(b, 'I');
	put32(b, 16384);
	put8(b, 'N');
	put16(b, 3);
	put_text_col(b, "42");
	put_text_col(b, "Zoë \xF0\x9F\x98\x80");
	put8(b, 'n');
}

static void
build_update_old(buf_t *b)
{
	put8(b, 'U');
	put32(b, 16384);
	put8(b, 'O');
	put16(b, 2);
	put_text_col(b, "42");
	put_text_col(b, "old");
	put8(b, 'N');
	put16(b, 3);
	put_text_col(b, "42");
	put8(b, 'u');
	put8(b, 'b');
	put32(b, 2);
	put8(b, 0);
	put8(b, 1);
}

static void
build_update_plain(buf_t *b)
{
	put8(b, 'U');
	put32(b, 16384);
	put8(b, 'N');
	put16(b, 1);
	put_text_col(b, "7");
}

static void
build_delete_key(buf_t *b)
{
	put8(b, 'D');
	put32(b, 16384);
	put8(b, 'K');
	put16(b, 1);
	put_text_col(b, "42");
}

static void
build_truncate(buf_t *b)
{
	put8(b, 'T');
	put32(b, 2);
	put8(b, PGOUTPUT_TRUNCATE_CASCADE | PGOUTPUT_TRUNCATE_RESTART_IDENTITY);
	put32(b, 16384);
	put32(b, 16390);
}

static void
build_message(buf_t *b)
{
	put8(b, 'M');
	put8(b, 1);
	put64(b, UINT64_C(0x2000028));
	putstr(b, "steward.test");
	put32(b, 5);
	buf_append(b, "he\0lo", 5);
}

typedef void (*builder_fn)(buf_t *);

static const builder_fn builders[] = {
	build_begin, build_commit, build_origin, build_relation, build_type,
	build_insert, build_update_old, build_update_plain, build_delete_key,
	build_truncate, build_message,
};
#define NBUILDERS (sizeof(builders) / sizeof(builders[0]))

static pgoutput_status_t
parse(buf_t *b, arena_t *a, pgoutput_msg_t *m, char *err, size_t errlen)
{
	return pgoutput_parse((const uint8_t *) b->data, b->len, a, m, err, errlen);
}

/* ---- decoding each type ---- */

static void
test_begin_and_commit_carry_lsns_timestamps_and_xid(void **state)
{
	arena_t *a = arena_create(4096);
	buf_t b = BUF_INIT;
	pgoutput_msg_t m;
	char err[256] = "";
	build_begin(&b);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_OK);
	assert_int_equal(m.type, 'B');
	assert_int_equal(m.u.begin.final_lsn, 0x16B3748);
	assert_int_equal(m.u.begin.commit_ts, 757382400000000);
	assert_int_equal(m.u.begin.xid, 4242);
	buf_reset(&b);
	build_commit(&b);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_OK);
	assert_int_equal(m.type, 'C');
	assert_int_equal(m.u.commit.commit_lsn, 0x16B3748);
	assert_int_equal(m.u.commit.end_lsn, 0x16B3780);
	assert_int_equal(m.u.commit.commit_ts, 757382400000001);
	buf_free(&b);
	arena_destroy(a);
}

static void
test_origin_and_type_decode_names(void **state)
{
	arena_t *a = arena_create(4096);
	buf_t b = BUF_INIT;
	pgoutput_msg_t m;
	char err[256] = "";
	build_origin(&b);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_OK);
	assert_int_equal(m.u.origin.commit_lsn, 0x100000020);
	assert_string_equal(m.u.origin.name, "upstream");
	buf_reset(&b);
	build_type(&b);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_OK);
	assert_int_equal(m.type, 'Y');
	assert_int_equal(m.u.type.type_oid, 90001);
	assert_string_equal(m.u.type.nspname, "public");
	assert_string_equal(m.u.type.typname, "mood");
	assert_string_equal(pgoutput_type_name(m.type), "type");
	buf_free(&b);
	arena_destroy(a);
}

static void
test_relation_lists_columns_with_key_flags_and_types(void **state)
{
	arena_t *a = arena_create(4096);
	buf_t b = BUF_INIT;
	pgoutput_msg_t m;
	char err[256] = "";
	build_relation(&b);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_OK);
	assert_int_equal(m.u.relation.relid, 16384);
	assert_string_equal(m.u.relation.nspname, "public");
	assert_string_equal(m.u.relation.relname, "customers");
	assert_int_equal(m.u.relation.replident, 'd');
	assert_int_equal(m.u.relation.ncols, 3);
	assert_int_equal(m.u.relation.cols[0].flags, PGOUTPUT_COLUMN_KEY);
	assert_string_equal(m.u.relation.cols[0].name, "id");
	assert_int_equal(m.u.relation.cols[0].type_oid, 23);
	assert_int_equal(m.u.relation.cols[0].typmod, -1);
	assert_int_equal(m.u.relation.cols[1].flags, 0);
	assert_string_equal(m.u.relation.cols[2].name, "limit");
	assert_int_equal(m.u.relation.cols[2].type_oid, 1700);
	assert_int_equal(m.u.relation.cols[2].typmod, (12 << 16 | 2) + 4);
	buf_free(&b);
	arena_destroy(a);
}

static void
test_insert_keeps_text_utf8_and_null_apart(void **state)
{
	arena_t *a = arena_create(4096);
	buf_t b = BUF_INIT;
	pgoutput_msg_t m;
	char err[256] = "";
	build_insert(&b);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_OK);
	assert_int_equal(m.type, 'I');
	assert_int_equal(m.u.change.relid, 16384);
	assert_int_equal(m.u.change.old_kind, 0);
	assert_int_equal(m.u.change.new_tuple.ncols, 3);
	pgoutput_value_t *v = m.u.change.new_tuple.values;
	assert_int_equal(v[0].kind, 't');
	assert_int_equal(v[0].len, 2);
	assert_memory_equal(v[0].data, "42", 2);
	assert_int_equal(v[1].len, strlen("Zoë \xF0\x9F\x98\x80"));
	assert_memory_equal(v[1].data, "Zoë \xF0\x9F\x98\x80", v[1].len);
	assert_int_equal(v[2].kind, 'n');
	buf_free(&b);
	arena_destroy(a);
}

static void
test_update_carries_old_tuple_unchanged_toast_and_binary(void **state)
{
	arena_t *a = arena_create(4096);
	buf_t b = BUF_INIT;
	pgoutput_msg_t m;
	char err[256] = "";
	build_update_old(&b);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_OK);
	assert_int_equal(m.u.change.old_kind, 'O');
	assert_int_equal(m.u.change.old_tuple.ncols, 2);
	assert_memory_equal(m.u.change.old_tuple.values[1].data, "old", 3);
	assert_int_equal(m.u.change.new_tuple.ncols, 3);
	assert_int_equal(m.u.change.new_tuple.values[1].kind, 'u');
	assert_int_equal(m.u.change.new_tuple.values[2].kind, 'b');
	assert_int_equal(m.u.change.new_tuple.values[2].len, 2);
	buf_reset(&b);
	build_update_plain(&b);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_OK);
	assert_int_equal(m.u.change.old_kind, 0);
	assert_int_equal(m.u.change.new_tuple.ncols, 1);
	buf_free(&b);
	arena_destroy(a);
}

static void
test_delete_carries_key_tuple(void **state)
{
	arena_t *a = arena_create(4096);
	buf_t b = BUF_INIT;
	pgoutput_msg_t m;
	char err[256] = "";
	build_delete_key(&b);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_OK);
	assert_int_equal(m.type, 'D');
	assert_int_equal(m.u.change.old_kind, 'K');
	assert_int_equal(m.u.change.old_tuple.ncols, 1);
	assert_int_equal(m.u.change.new_tuple.ncols, 0);
	buf_free(&b);
	arena_destroy(a);
}

static void
test_truncate_lists_every_relation_and_options(void **state)
{
	arena_t *a = arena_create(4096);
	buf_t b = BUF_INIT;
	pgoutput_msg_t m;
	char err[256] = "";
	build_truncate(&b);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_OK);
	assert_int_equal(m.u.truncate.nrelids, 2);
	assert_int_equal(m.u.truncate.relids[0], 16384);
	assert_int_equal(m.u.truncate.relids[1], 16390);
	assert_int_equal(m.u.truncate.options, 3);
	buf_free(&b);
	arena_destroy(a);
}

static void
test_message_keeps_prefix_and_binary_content(void **state)
{
	arena_t *a = arena_create(4096);
	buf_t b = BUF_INIT;
	pgoutput_msg_t m;
	char err[256] = "";
	build_message(&b);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_OK);
	assert_int_equal(m.u.message.flags, PGOUTPUT_MESSAGE_TRANSACTIONAL);
	assert_int_equal(m.u.message.lsn, 0x2000028);
	assert_string_equal(m.u.message.prefix, "steward.test");
	assert_int_equal(m.u.message.len, 5);
	assert_memory_equal(m.u.message.content, "he\0lo", 5);
	buf_free(&b);
	arena_destroy(a);
}

/* ---- malformed input ---- */

static void
test_every_truncation_of_every_message_is_an_error(void **state)
{
	arena_t *a = arena_create(4096);
	for (size_t i = 0; i < NBUILDERS; i++) {
		buf_t b = BUF_INIT;
		builders[i](&b);
		for (size_t n = 0; n < b.len; n++) {
			/* Copy into an exact-size heap block so ASan sees any overread. */
			uint8_t *copy = malloc(n ? n : 1);
			memcpy(copy, b.data, n);
			pgoutput_msg_t m;
			char err[256] = "";
			assert_int_equal(pgoutput_parse(copy, n, a, &m, err, sizeof(err)),
					 PGOUTPUT_ERROR);
			assert_true(err[0] != '\0');
			free(copy);
			arena_reset(a);
		}
		buf_free(&b);
	}
	arena_destroy(a);
}

static void
test_trailing_bytes_and_unknown_types_are_errors(void **state)
{
	arena_t *a = arena_create(4096);
	buf_t b = BUF_INIT;
	pgoutput_msg_t m;
	char err[256] = "";
	build_begin(&b);
	put8(&b, 0);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_ERROR);
	assert_non_null(strstr(err, "trailing"));
	buf_reset(&b);
	put8(&b, 'S');  /* stream start: protocol version 2 only */
	put32(&b, 1);
	put8(&b, 1);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_ERROR);
	assert_non_null(strstr(err, "unsupported"));
	buf_reset(&b);
	put8(&b, 'I');  /* bad tuple tag */
	put32(&b, 1);
	put8(&b, 'X');
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_ERROR);
	buf_reset(&b);
	put8(&b, 'I');  /* bad column kind */
	put32(&b, 1);
	put8(&b, 'N');
	put16(&b, 1);
	put8(&b, 'z');
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_ERROR);
	buf_reset(&b);
	put8(&b, 'T');  /* a relation count far beyond the bytes present */
	put32(&b, 0x7fffffff);
	put8(&b, 0);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_ERROR);
	buf_reset(&b);
	put8(&b, 'I');  /* a value length far beyond the bytes present */
	put32(&b, 1);
	put8(&b, 'N');
	put16(&b, 1);
	put8(&b, 't');
	put32(&b, 0xffffffffu);
	assert_int_equal(parse(&b, a, &m, err, sizeof(err)), PGOUTPUT_ERROR);
	assert_int_equal(pgoutput_parse(NULL, 0, a, &m, err, sizeof(err)), PGOUTPUT_ERROR);
	buf_free(&b);
	arena_destroy(a);
}

static void
test_random_garbage_never_crashes(void **state)
{
	arena_t *a = arena_create(4096);
	uint32_t seed = 12345;
	size_t ok = 0;
	for (int iter = 0; iter < 200000; iter++) {
		seed = seed * 1103515245u + 12345u;
		size_t n = (seed >> 16) % 64;
		uint8_t *p = malloc(n ? n : 1);
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			p[i] = (uint8_t) (seed >> 16);
		}
		/* Half the time, start with a valid type byte to get past the switch. */
		if (n && (iter & 1))
			p[0] = (uint8_t) "BCORYIUDTM"[(seed >> 8) % 10];
		pgoutput_msg_t m;
		char err[256];
		if (pgoutput_parse(p, n, a, &m, err, sizeof(err)) == PGOUTPUT_OK)
			ok++;
		free(p);
		arena_reset(a);
	}
	/* Some random fixed-size messages (begin, commit) legitimately parse. */
	assert_true(ok < 200000);
	arena_destroy(a);
}

static void
test_mutated_valid_messages_never_crash(void **state)
{
	arena_t *a = arena_create(4096);
	uint32_t seed = 777;
	for (size_t i = 0; i < NBUILDERS; i++) {
		buf_t b = BUF_INIT;
		builders[i](&b);
		for (int iter = 0; iter < 5000; iter++) {
			uint8_t *copy = malloc(b.len);
			memcpy(copy, b.data, b.len);
			for (int k = 0; k < 3; k++) {
				seed = seed * 1103515245u + 12345u;
				copy[(seed >> 8) % b.len] = (uint8_t) (seed >> 20);
			}
			pgoutput_msg_t m;
			char err[256];
			(void) pgoutput_parse(copy, b.len, a, &m, err, sizeof(err));
			free(copy);
			arena_reset(a);
		}
		buf_free(&b);
	}
	arena_destroy(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_begin_and_commit_carry_lsns_timestamps_and_xid),
		cmocka_unit_test(test_origin_and_type_decode_names),
		cmocka_unit_test(test_relation_lists_columns_with_key_flags_and_types),
		cmocka_unit_test(test_insert_keeps_text_utf8_and_null_apart),
		cmocka_unit_test(test_update_carries_old_tuple_unchanged_toast_and_binary),
		cmocka_unit_test(test_delete_carries_key_tuple),
		cmocka_unit_test(test_truncate_lists_every_relation_and_options),
		cmocka_unit_test(test_message_keeps_prefix_and_binary_content),
		cmocka_unit_test(test_every_truncation_of_every_message_is_an_error),
		cmocka_unit_test(test_trailing_bytes_and_unknown_types_are_errors),
		cmocka_unit_test(test_random_garbage_never_crashes),
		cmocka_unit_test(test_mutated_valid_messages_never_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
