/*
 * test_mysql_resume.c — MariaDB GTID states and the resume file: what the
 * agent reads back after a restart is what it wrote; files of older builds
 * still load; damaged ones are an error naming the file, never a wrong
 * position.  Also the positions' epoch: a later epoch sorts after every
 * position of an earlier one.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mysql_resume.h"
#include "position.h"
#include "test_tmpdir.h"

static void
gtid_states_round_trip(void **state)
{
	(void) state;
	mysql_gtid_state_t st;
	char err[256], text[MYSQL_GTID_STATE_TEXT_MAX];
	assert_true(mysql_gtid_state_parse("1-2-7, 0-1-42,4294967295-4294967295-18446744073709551615",
					   &st, err, sizeof err));
	assert_int_equal(st.n, 3);
	mysql_gtid_state_format(&st, text, sizeof text);
	/* by domain, as the server prints it */
	assert_string_equal(text, "0-1-42,1-2-7,4294967295-4294967295-18446744073709551615");
	assert_true(mysql_gtid_state_parse("", &st, err, sizeof err));
	assert_int_equal(st.n, 0);
	assert_int_equal(mysql_gtid_state_format(&st, text, sizeof text), 0);
	assert_string_equal(text, "");
}

static void
a_domain_keeps_its_last_gtid(void **state)
{
	(void) state;
	mysql_gtid_state_t st = {0};
	char text[128];
	mysql_gtid_t a = {0, 1, 41}, b = {5, 1, 3}, c = {0, 2, 42};
	assert_true(mysql_gtid_state_put(&st, &a));
	assert_true(mysql_gtid_state_put(&st, &b));
	assert_true(mysql_gtid_state_put(&st, &c));  /* a failover: another server, same domain */
	mysql_gtid_state_format(&st, text, sizeof text);
	assert_string_equal(text, "0-2-42,5-1-3");
	/* truncated output still says how long the text is */
	assert_int_equal(mysql_gtid_state_format(&st, text, 4), strlen("0-2-42,5-1-3"));
	assert_string_equal(text, "");
	for (uint32_t d = 10; st.n < MYSQL_GTID_DOMAINS_MAX; d++)
		assert_true(mysql_gtid_state_put(&st, &(mysql_gtid_t) {d, 1, 1}));
	assert_false(mysql_gtid_state_put(&st, &(mysql_gtid_t) {9, 1, 1}));
	assert_true(mysql_gtid_state_put(&st, &(mysql_gtid_t) {5, 1, 4}));  /* known domain: still fits */
}

static void
malformed_gtid_states_are_refused(void **state)
{
	(void) state;
	static const char *const bad[] = {
		"0-1", "0-1-", "-1-2", "0--2", "a-1-2", "0-1-2x", "0-1-2,", "0-1-2,,1-1-1",
		"4294967296-1-1", "0-4294967296-1", "0-1-18446744073709551616", "0-1-2,0-3-4",
		"0-1-2 1-1-1",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		mysql_gtid_state_t st;
		char err[256] = "";
		if (mysql_gtid_state_parse(bad[i], &st, err, sizeof err))
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
	mysql_gtid_t g;
	assert_false(mysql_gtid_parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:23", 39, &g));  /* MySQL's */
	assert_true(mysql_gtid_parse("0-1-5trailing", 5, &g));
	assert_int_equal(g.seq, 5);
}

static void
write_file(const char *dir, const char *text)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/mysql-resume", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
resume_file_round_trips(void **state)
{
	(void) state;
	char *dir = test_make_tmpdir("resume");
	char err[256];
	mysql_resume_t in = {"mysql-bin.000003", 4177, true, {0}, 2}, out;
	assert_true(mysql_gtid_state_parse("0-1-42,1-2-7", &in.gtid, err, sizeof err));
	assert_false(mysql_resume_load(dir, &out, err, sizeof err));
	assert_string_equal(err, "");  /* none yet: not an error */
	assert_true(mysql_resume_save(dir, &in, err, sizeof err));
	assert_true(mysql_resume_load(dir, &out, err, sizeof err));
	assert_string_equal(out.file, "mysql-bin.000003");
	assert_int_equal(out.offset, 4177);
	assert_true(out.has_gtid);
	assert_memory_equal(&out.gtid, &in.gtid, sizeof in.gtid);
	assert_int_equal(out.epoch, 2);
	mysql_resume_clear(&out);

	/* an empty state is a state (nothing before this point) */
	in.gtid.n = 0;
	in.epoch = 0;
	assert_true(mysql_resume_save(dir, &in, err, sizeof err));
	assert_true(mysql_resume_load(dir, &out, err, sizeof err));
	assert_true(out.has_gtid);
	assert_int_equal(out.gtid.n, 0);
	assert_int_equal(out.epoch, 0);
	mysql_resume_clear(&out);

	/* written by an older build, or for MySQL: file and offset only */
	write_file(dir, "mysql-bin.000009 123\n");
	assert_true(mysql_resume_load(dir, &out, err, sizeof err));
	assert_string_equal(out.file, "mysql-bin.000009");
	assert_int_equal(out.offset, 123);
	assert_false(out.has_gtid);
	mysql_resume_clear(&out);
	test_remove_tree(dir);
}

static void
damaged_resume_files_are_errors(void **state)
{
	(void) state;
	static const char *const bad[] = {
		"", "mysql-bin.000001\n", "mysql-bin.000001 x\n", "mysql-bin.000001 4\ngtid 0-1\n",
		"mysql-bin.000001 4\nepoch 65536\n", "mysql-bin.000001 4\nepoch -1\n",
		"mysql-bin.000001 4\nsomething else\n",
	};
	char *dir = test_make_tmpdir("resume-bad");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		mysql_resume_t out;
		char err[512] = "";
		write_file(dir, bad[i]);
		if (mysql_resume_load(dir, &out, err, sizeof err))
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_non_null(strstr(err, "mysql-resume"));
		assert_non_null(strstr(err, "damaged"));
	}
	test_remove_tree(dir);
}

static void
a_later_epoch_sorts_after_every_earlier_position(void **state)
{
	(void) state;
	position_t old, new_;
	position_mysql(&old, position_mysql_file_key(0, 999999), UINT64_MAX, POSITION_PHASE_STREAM, 5);
	position_mysql(&new_, position_mysql_file_key(1, 1), 4, POSITION_PHASE_SNAPSHOT, 0);
	assert_true(position_cmp(&old, &new_) < 0);
	uint32_t epoch;
	uint64_t file_no, off, seq;
	int phase;
	assert_true(position_mysql_parse(&new_, &epoch, &file_no, &off, &phase, &seq));
	assert_int_equal(epoch, 1);
	assert_int_equal(file_no, 1);
	assert_int_equal(off, 4);
	/* epoch 0 is the layout of logs written before epochs existed */
	position_t plain;
	position_mysql(&plain, 7, 100, POSITION_PHASE_STREAM, 0);
	assert_true(position_mysql_parse(&plain, &epoch, &file_no, &off, &phase, &seq));
	assert_int_equal(epoch, 0);
	assert_int_equal(file_no, 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gtid_states_round_trip),
		cmocka_unit_test(a_domain_keeps_its_last_gtid),
		cmocka_unit_test(malformed_gtid_states_are_refused),
		cmocka_unit_test(resume_file_round_trips),
		cmocka_unit_test(damaged_resume_files_are_errors),
		cmocka_unit_test(a_later_epoch_sorts_after_every_earlier_position),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
