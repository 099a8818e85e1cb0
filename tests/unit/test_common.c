/*
 * test_common.c — the shared runtime: option tables, DSN redaction (URI
 * and key=value forms), the arena, the byte buffer, and position order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "opts.h"
#include "position.h"
#include "redact.h"

/* ---- opts ---- */

static const opt_spec_t specs[] = {
	{"data-dir", 'd', OPT_STRING, "DIR", NULL, 0, 0, "Data directory."},
	{"slot", 0, OPT_STRING, "NAME", "steward", 0, 0, "Slot name."},
	{"batch", 'b', OPT_INT, "N", "100", 1, 1000, "Batch size."},
	{"follow", 'f', OPT_FLAG, NULL, NULL, 0, 0, "Follow."},
	{"table", 't', OPT_MULTI, "T", NULL, 0, 0, "A table."},
	{NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

static opts_status_t
parse(int argc, char **argv, opts_t **o, char *err, size_t errlen)
{
	return opts_parse(specs, argc, argv, 1, o, err, errlen);
}

static void
options_parse_every_accepted_form(void **state)
{
	char *argv[] = {"cmd", "--data-dir", "/var/lib/x", "--batch=7", "-f", "-t", "a",
			"--table", "b", "pos1", "--", "--not-an-option"};
	opts_t *o = NULL;
	char err[256] = "";
	assert_int_equal(parse(12, argv, &o, err, sizeof(err)), OPTS_OK);
	assert_string_equal(opts_get(o, "data-dir"), "/var/lib/x");
	assert_int_equal(opts_get_int(o, "batch"), 7);
	assert_true(opts_flag(o, "follow"));
	assert_true(opts_given(o, "batch"));
	assert_false(opts_given(o, "slot"));
	assert_string_equal(opts_get(o, "slot"), "steward");  /* default */
	const char *const *tables;
	assert_int_equal(opts_get_multi(o, "table", &tables), 2);
	assert_string_equal(tables[0], "a");
	assert_string_equal(tables[1], "b");
	assert_int_equal(opts_npositional(o), 2);
	assert_string_equal(opts_positional(o, 0), "pos1");
	assert_string_equal(opts_positional(o, 1), "--not-an-option");
	assert_null(opts_positional(o, 2));
	opts_free(o);
	opts_free(NULL);
}

static void
options_defaults_apply_when_absent(void **state)
{
	char *argv[] = {"cmd"};
	opts_t *o = NULL;
	char err[256];
	assert_int_equal(parse(1, argv, &o, err, sizeof(err)), OPTS_OK);
	assert_int_equal(opts_get_int(o, "batch"), 100);
	assert_null(opts_get(o, "data-dir"));
	assert_false(opts_flag(o, "follow"));
	opts_free(o);
}

static void
options_reject_bad_input_with_clear_messages(void **state)
{
	static const struct {
		int argc;
		char *argv[4];
		const char *expect;
	} cases[] = {
		{2, {"cmd", "--nope"}, "unknown option \"--nope\""},
		{3, {"cmd", "--batch", "x"}, "expects an integer"},
		{3, {"cmd", "--batch", "0"}, "between 1 and 1000"},
		{2, {"cmd", "--batch=1001"}, "between 1 and 1000"},
		{2, {"cmd", "--data-dir"}, "needs a value (DIR)"},
		{2, {"cmd", "--follow=yes"}, "takes no value"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		opts_t *o = NULL;
		char err[256] = "";
		assert_int_equal(parse(cases[i].argc, (char **) cases[i].argv, &o, err, sizeof(err)),
				 OPTS_ERROR);
		if (strstr(err, cases[i].expect) == NULL)
			fail_msg("got \"%s\", want \"%s\"", err, cases[i].expect);
	}
	char *help[] = {"cmd", "--batch", "5", "--help"};
	opts_t *o = NULL;
	char err[256];
	assert_int_equal(parse(4, help, &o, err, sizeof(err)), OPTS_HELP);
}

static void
options_help_lists_every_option_with_defaults(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	opts_print_help(f, "steward x [OPTIONS]", "Does x.", specs);
	fclose(f);
	assert_non_null(strstr(text, "Usage: steward x [OPTIONS]"));
	assert_non_null(strstr(text, "-d, --data-dir DIR"));
	assert_non_null(strstr(text, "(default: steward)"));
	assert_non_null(strstr(text, "(repeatable)"));
	assert_non_null(strstr(text, "-h, --help"));
	free(text);
}

/* ---- redact_dsn ---- */

static void
assert_redacted(const char *dsn, const char *want, const char *secret)
{
	char out[512];
	redact_dsn(dsn, out, sizeof(out));
	if (strcmp(out, want) != 0)
		fail_msg("redact_dsn(\"%s\") = \"%s\", want \"%s\"", dsn, out, want);
	if (secret && strstr(out, secret))
		fail_msg("secret \"%s\" survived in \"%s\"", secret, out);
}

static void
passwords_never_survive_redaction(void **state)
{
	assert_redacted("postgresql://app:s3cret@db.example:5432/erp?sslmode=require",
			"postgresql://app:********@db.example:5432/erp?sslmode=require", "s3cret");
	assert_redacted("postgres://app@db/erp?password=s3cret&sslmode=disable",
			"postgres://app@db/erp?password=********&sslmode=disable", "s3cret");
	assert_redacted("mysql://u:p%40ss@h:3306/d", "mysql://u:********@h:3306/d", "p%40ss");
	/* The last '@' before the path ends the user info (an '@' inside the password). */
	assert_redacted("postgresql://u:pa@ss@host/db", "postgresql://u:********@host/db", "ss@");
	assert_redacted("postgresql://host/db", "postgresql://host/db", NULL);
	assert_redacted("host=db user=app password=s3cret dbname=erp",
			"host=db user=app password=******** dbname=erp", "s3cret");
	assert_redacted("host=db password = 's3 cr\\'et' dbname=erp",
			"host=db password=******** dbname=erp", "cr\\'et");
	assert_redacted("PASSWORD=s3cret", "password=********", "s3cret");
	assert_redacted("host=db passwordfile=/x", "host=db passwordfile=/x", NULL);
	assert_redacted("", "", NULL);

	char small[12];
	redact_dsn("host=db password=s3cret", small, sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);  /* truncated, terminated */

	char msg[] = "connection to app:s3cret@db failed: s3cret";
	redact_secret_in_place(msg, "s3cret");
	assert_string_equal(msg, "connection to app:******@db failed: ******");
}

/* The command line keeps its shape in ps; only the password bytes change. */
static void
argv_passwords_are_masked_in_place(void **state)
{
	(void) state;
	char a0[] = "steward", a1[] = "capture", a2[] = "--dsn";
	char a3[] = "postgresql://app:s3cret@db/erp";
	char a4[] = "--warehouse=host=db password='se cret' dbname=w";
	char a5[] = "mysql://u:x@h/d";
	char a6[] = "--data-dir";
	char a7[] = "/var/lib/steward";
	char *argv[] = {a0, a1, a2, a3, a4, a5, a6, a7, NULL};
	char **copy = redact_argv(8, argv);
	assert_string_equal(copy[3], "postgresql://app:s3cret@db/erp");
	assert_string_equal(copy[4], "--warehouse=host=db password='se cret' dbname=w");
	assert_string_equal(copy[7], "/var/lib/steward");
	assert_null(copy[8]);
	assert_string_equal(a3, "postgresql://app:******@db/erp");
	assert_string_equal(a5, "mysql://u:*@h/d");
	if (strstr(a4, "se cret") || strstr(a4, "cret"))
		fail_msg("password left in \"%s\"", a4);
	assert_int_equal(strncmp(a4, "--warehouse=host=db password=", 29), 0);
	assert_string_equal(a4 + strlen(a4) - 9, " dbname=w");
	assert_string_equal(a0, "steward");
	assert_string_equal(a2, "--dsn");
	assert_string_equal(a7, "/var/lib/steward");
	for (int i = 0; i < 8; i++)
		free(copy[i]);
	free(copy);
}

/* ---- arena ---- */

static void
arena_hands_out_aligned_independent_memory(void **state)
{
	arena_t *a = arena_create(256);
	char *s = arena_strdup(a, "hello");
	uint8_t *big = arena_alloc(a, 10000);  /* larger than a block */
	memset(big, 0xab, 10000);
	uint64_t *z = arena_calloc(a, 64);
	assert_string_equal(s, "hello");
	assert_int_equal((uintptr_t) big % 16, 0);
	assert_int_equal((uintptr_t) z % 16, 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(z[i], 0);
	assert_string_equal(arena_strndup(a, "abcdef", 3), "abc");
	assert_memory_equal(arena_memdup(a, "xyz", 3), "xyz", 3);
	assert_true(arena_used(a) >= 10000 + 64);
	arena_reset(a);
	assert_int_equal(arena_used(a), 0);
	for (int i = 0; i < 1000; i++)
		arena_alloc(a, 100);
	arena_destroy(a);
	arena_destroy(NULL);
}

/* ---- buf ---- */

static void
buffer_grows_and_stays_terminated(void **state)
{
	buf_t b = BUF_INIT;
	for (int i = 0; i < 1000; i++)
		buf_append_str(&b, "ab");
	assert_int_equal(b.len, 2000);
	assert_int_equal(b.data[2000], '\0');
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	buf_printf(&b, "%s=%d", "x", 42);
	buf_append_char(&b, ';');
	buf_append(&b, "\0z", 2);  /* binary-safe */
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "x=42;\0z", 7);
	char *s = buf_steal(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(s);
	buf_free(&b);
}

/* ---- positions ---- */

static void
positions_sort_in_commit_order(void **state)
{
	position_t snap, a, b, c, empty = {0};
	position_pg(&snap, 0x2000, POSITION_PHASE_SNAPSHOT, 999999);
	position_pg(&a, 0x1000, POSITION_PHASE_STREAM, 5);
	position_pg(&b, 0x1000, POSITION_PHASE_STREAM, 6);
	position_pg(&c, 0x100000000ULL, POSITION_PHASE_STREAM, 0);
	assert_true(position_cmp(&a, &b) < 0);
	assert_true(position_cmp(&b, &c) < 0);  /* big-endian: high LSN word counts first */
	assert_true(position_cmp(&a, &snap) < 0);
	assert_true(position_cmp(&empty, &a) < 0);
	assert_int_equal(position_cmp(&a, &a), 0);
	position_t snap_same;
	position_pg(&snap_same, 0x1000, POSITION_PHASE_SNAPSHOT, 999999);
	assert_true(position_cmp(&snap_same, &a) < 0);  /* snapshot before the stream at one LSN */

	position_t prefix;
	assert_true(position_set(&prefix, a.bytes, 9));
	assert_true(position_cmp(&prefix, &a) < 0);  /* shorter prefix first */
	uint8_t toolong[POSITION_MAX + 1] = {0};
	assert_false(position_set(&prefix, toolong, sizeof(toolong)));

	uint64_t lsn, seq;
	int phase;
	assert_true(position_pg_parse(&b, &lsn, &phase, &seq));
	assert_int_equal(lsn, 0x1000);
	assert_int_equal(phase, POSITION_PHASE_STREAM);
	assert_int_equal(seq, 6);

	position_t m1, m2;
	position_mysql(&m1, 3, 0xffffffff, POSITION_PHASE_STREAM, 1);
	position_mysql(&m2, 4, 4, POSITION_PHASE_STREAM, 0);
	assert_true(position_cmp(&m1, &m2) < 0);  /* next binlog file wins over offset */

	char hex[2 * POSITION_MAX + 1];
	position_hex(&b, hex, sizeof(hex));
	assert_string_equal(hex, "0000000000001000010000000000000006");
	position_t back;
	assert_true(position_from_hex(&back, hex));
	assert_int_equal(position_cmp(&back, &b), 0);
	assert_false(position_from_hex(&back, "abc"));
	assert_false(position_from_hex(&back, "zz"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(options_parse_every_accepted_form),
		cmocka_unit_test(options_defaults_apply_when_absent),
		cmocka_unit_test(options_reject_bad_input_with_clear_messages),
		cmocka_unit_test(options_help_lists_every_option_with_defaults),
		cmocka_unit_test(passwords_never_survive_redaction),
		cmocka_unit_test(argv_passwords_are_masked_in_place),
		cmocka_unit_test(arena_hands_out_aligned_independent_memory),
		cmocka_unit_test(buffer_grows_and_stays_terminated),
		cmocka_unit_test(positions_sort_in_commit_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
