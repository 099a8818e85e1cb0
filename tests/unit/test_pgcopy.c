/*
 * test_pgcopy.c — COPY text rows from a snapshot decode to the values the
 * server holds: escapes, \N versus an empty string, tabs and newlines
 * inside values, UTF-8, and malformed rows rejected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "pg_copy.h"

static void
test_null_is_distinct_from_empty_string(void **state)
{
	arena_t *a = arena_create(1024);
	pgcopy_field_t f[3];
	char err[128];
	const char row[] = "\\N\t\t\\\\N\n";
	assert_true(pgcopy_parse_row(row, strlen(row), a, f, 3, err, sizeof(err)));
	assert_true(f[0].is_null);
	assert_false(f[1].is_null);
	assert_string_equal(f[1].text, "");
	assert_false(f[2].is_null);
	assert_string_equal(f[2].text, "\\N");
	arena_destroy(a);
}

static void
test_escapes_decode_to_original_bytes(void **state)
{
	arena_t *a = arena_create(1024);
	pgcopy_field_t f[2];
	char err[128];
	const char row[] = "a\\tb\\nc\\\\d\\r\\b\\f\\v\\101\\x42\\q\tZo\xC3\xAB \xF0\x9F\x98\x80";
	assert_true(pgcopy_parse_row(row, strlen(row), a, f, 2, err, sizeof(err)));
	assert_string_equal(f[0].text, "a\tb\nc\\d\r\b\f\vABq");
	assert_string_equal(f[1].text, "Zo\xC3\xAB \xF0\x9F\x98\x80");
	arena_destroy(a);
}

static void
test_bytea_hex_text_passes_through(void **state)
{
	arena_t *a = arena_create(1024);
	pgcopy_field_t f[1];
	char err[128];
	const char row[] = "\\\\x00ff\n";
	assert_true(pgcopy_parse_row(row, strlen(row), a, f, 1, err, sizeof(err)));
	assert_string_equal(f[0].text, "\\x00ff");
	arena_destroy(a);
}

static void
test_wrong_field_count_and_lone_backslash_are_errors(void **state)
{
	arena_t *a = arena_create(1024);
	pgcopy_field_t f[3];
	char err[128];
	assert_false(pgcopy_parse_row("1\t2", 3, a, f, 3, err, sizeof(err)));
	assert_false(pgcopy_parse_row("1\t2\t3\t4", 7, a, f, 3, err, sizeof(err)));
	assert_false(pgcopy_parse_row("1\t2\t3\\", 6, a, f, 3, err, sizeof(err)));
	assert_true(pgcopy_parse_row("1\t2\t3", 5, a, f, 3, err, sizeof(err)));
	arena_destroy(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_null_is_distinct_from_empty_string),
		cmocka_unit_test(test_escapes_decode_to_original_bytes),
		cmocka_unit_test(test_bytea_hex_text_passes_through),
		cmocka_unit_test(test_wrong_field_count_and_lone_backslash_are_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
