/*
 * test_warehouse_types.c — source type → warehouse type mapping, schema
 * evolution compatibility, value conversion, table names, and the COPY
 * text and JSON string escaping the warehouse target relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "warehouse_types.h"

#define PGK STEWARD__SOURCE_KIND__SOURCE_KIND_POSTGRESQL
#define MYK STEWARD__SOURCE_KIND__SOURCE_KIND_MYSQL

static void
expect_map(Steward__SourceKind kind, const char *src, const char *want, wh_conv_t conv)
{
	wh_type_t t;
	wh_type_map(kind, src, &t);
	if (strcmp(t.name, want) != 0)
		fail_msg("%s → %s, want %s", src, t.name, want);
	assert_int_equal(t.conv, conv);
}

static void
pg_types_keep_their_meaning(void **state)
{
	(void) state;
	expect_map(PGK, "integer", "integer", WH_CONV_NONE);
	expect_map(PGK, "numeric(12,2)", "numeric(12,2)", WH_CONV_NONE);
	expect_map(PGK, "numeric", "numeric", WH_CONV_NONE);
	expect_map(PGK, "timestamp with time zone", "timestamp with time zone", WH_CONV_NONE);
	expect_map(PGK, "timestamp(3) with time zone", "timestamp(3) with time zone", WH_CONV_NONE);
	expect_map(PGK, "json", "jsonb", WH_CONV_NONE);
	expect_map(PGK, "json[]", "jsonb[]", WH_CONV_NONE);
	expect_map(PGK, "text[]", "text[]", WH_CONV_NONE);
	expect_map(PGK, "integer[]", "integer[]", WH_CONV_NONE);
	expect_map(PGK, "bytea", "bytea", WH_CONV_NONE);
	expect_map(PGK, "uuid", "uuid", WH_CONV_NONE);
	expect_map(PGK, "interval", "interval", WH_CONV_NONE);
	expect_map(PGK, "character varying(255)", "character varying(255)", WH_CONV_NONE);
	expect_map(PGK, "double precision", "double precision", WH_CONV_NONE);
	expect_map(PGK, "mood", "text", WH_CONV_NONE);          /* enum */
	expect_map(PGK, "public.mood[]", "text[]", WH_CONV_NONE);
	expect_map(PGK, "money", "text", WH_CONV_NONE);
	expect_map(PGK, "", "text", WH_CONV_NONE);
	expect_map(PGK, "numeric(1); DROP TABLE x", "text", WH_CONV_NONE);
}

static void
mysql_types_map_to_warehouse_types(void **state)
{
	(void) state;
	expect_map(MYK, "int(11) unsigned", "bigint", WH_CONV_NONE);
	expect_map(MYK, "int(11)", "integer", WH_CONV_NONE);
	expect_map(MYK, "bigint(20) unsigned", "numeric(20,0)", WH_CONV_NONE);
	expect_map(MYK, "tinyint(1)", "smallint", WH_CONV_NONE);
	expect_map(MYK, "decimal(12,2)", "numeric(12,2)", WH_CONV_NONE);
	expect_map(MYK, "datetime(6)", "timestamp(6) without time zone", WH_CONV_ZERO_DATE);
	expect_map(MYK, "timestamp(3)", "timestamp(3) with time zone", WH_CONV_ZERO_DATE);
	expect_map(MYK, "date", "date", WH_CONV_ZERO_DATE);
	expect_map(MYK, "time(6)", "interval", WH_CONV_NONE);
	expect_map(MYK, "json", "jsonb", WH_CONV_NONE);
	expect_map(MYK, "enum('a','b,c')", "text", WH_CONV_NONE);
	expect_map(MYK, "set('x','y')", "text", WH_CONV_NONE);
	expect_map(MYK, "blob", "bytea", WH_CONV_BYTES);
	expect_map(MYK, "varbinary(16)", "bytea", WH_CONV_BYTES);
	expect_map(MYK, "geometry", "bytea", WH_CONV_HEX_BYTES);
	expect_map(MYK, "bit(5)", "bit varying(5)", WH_CONV_BITS);
	expect_map(MYK, "double", "double precision", WH_CONV_NONE);
	expect_map(MYK, "float", "real", WH_CONV_NONE);
	expect_map(MYK, "varchar(64)", "text", WH_CONV_NONE);
	expect_map(MYK, "year(4)", "smallint", WH_CONV_NONE);
	expect_map(MYK, "mediumint(8) unsigned", "integer", WH_CONV_NONE);
	expect_map(MYK, "whatever", "text", WH_CONV_NONE);
}

static void
evolution_accepts_only_lossless_changes(void **state)
{
	(void) state;
	assert_true(wh_type_accepts("bigint", "integer"));
	assert_false(wh_type_accepts("integer", "bigint"));
	assert_true(wh_type_accepts("text", "boolean"));
	assert_false(wh_type_accepts("bigint", "boolean"));
	assert_true(wh_type_accepts("numeric", "bigint"));
	assert_true(wh_type_accepts("numeric(14,2)", "numeric(12,2)"));
	assert_false(wh_type_accepts("numeric(12,2)", "numeric(12,4)"));
	assert_false(wh_type_accepts("numeric(12,2)", "numeric"));
	assert_true(wh_type_accepts("numeric(20,0)", "bigint"));
	assert_true(wh_type_accepts("character varying(20)", "character varying(10)"));
	assert_false(wh_type_accepts("character varying(10)", "character varying(20)"));
	assert_true(wh_type_accepts("jsonb", "json"));
	assert_true(wh_type_accepts("timestamp with time zone", "timestamp(3) with time zone"));
	assert_false(wh_type_accepts("timestamp(3) with time zone", "timestamp with time zone"));
	assert_false(wh_type_accepts("timestamp with time zone", "timestamp without time zone"));
	assert_true(wh_type_accepts("text[]", "integer[]"));
	assert_false(wh_type_accepts("integer[]", "integer"));
	assert_true(wh_type_accepts("double precision", "real"));
}

static void
conv(wh_conv_t c, const char *in, size_t inlen, const char *want, bool want_null)
{
	buf_t out = BUF_INIT;
	const char *res;
	size_t reslen;
	bool is_null;
	wh_value_convert(c, in, inlen, &out, &res, &reslen, &is_null);
	assert_int_equal(is_null, want_null);
	if (!want_null) {
		assert_int_equal(reslen, strlen(want));
		assert_memory_equal(res, want, reslen);
	}
	buf_free(&out);
}

static void
values_become_valid_input(void **state)
{
	(void) state;
	conv(WH_CONV_ZERO_DATE, "0000-00-00 00:00:00", 19, NULL, true);
	conv(WH_CONV_ZERO_DATE, "2020-00-10", 10, NULL, true);
	conv(WH_CONV_ZERO_DATE, "2020-01-10 10:00:00.5", 21, "2020-01-10 10:00:00.5", false);
	conv(WH_CONV_BYTES, "\\x00ff", 6, "\\x00ff", false);
	conv(WH_CONV_BYTES, "a\0b", 3, "\\x610062", false);
	conv(WH_CONV_HEX_BYTES, "0101000000", 10, "\\x0101000000", false);
	conv(WH_CONV_HEX_BYTES, "0x01ff", 6, "\\x01ff", false);
	conv(WH_CONV_BITS, "b'101'", 6, "101", false);
	conv(WH_CONV_BITS, "0x5", 3, "0101", false);
	conv(WH_CONV_BITS, "1100", 4, "1100", false);
	conv(WH_CONV_NONE, "NaN", 3, "NaN", false);
}

static void
copy_escape_round_trips_every_special_byte(void **state)
{
	(void) state;
	buf_t b = BUF_INIT;
	const char in[] = "a\\b\tc\nd\re\bf\fg\vh\\N'\"é";
	wh_copy_escape(&b, in, sizeof(in) - 1);
	assert_string_equal(b.data, "a\\\\b\\tc\\nd\\re\\bf\\fg\\vh\\\\N'\"é");
	/* No raw tab, newline or CR may remain: they would split the field. */
	assert_null(memchr(b.data, '\t', b.len));
	assert_null(memchr(b.data, '\n', b.len));
	assert_null(memchr(b.data, '\r', b.len));
	buf_reset(&b);
	wh_copy_escape(&b, "", 0);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* Undo COPY text escaping (what the server does) for the round trip. */
static size_t
copy_unescape(const char *s, size_t n, char *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			out[k++] = s[i];
			continue;
		}
		char c = s[++i];
		out[k++] = c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c == 'b' ? '\b'
			 : c == 'f' ? '\f' : c == 'v' ? '\v' : c;
	}
	return k;
}

static void
copy_escape_round_trips_every_byte_in_any_run(void **state)
{
	(void) state;
	/* Every byte value, alone and inside runs of plain bytes of every
	 * length around it (the escaper copies plain runs at once). */
	buf_t b = BUF_INIT;
	char in[80], back[160];
	for (int c = 1; c < 256; c++) {
		for (size_t pre = 0; pre < 20; pre += 3) {
			size_t n = 0;
			for (size_t i = 0; i < pre; i++)
				in[n++] = (char) ('a' + i % 26);
			in[n++] = (char) c;
			in[n++] = (char) c;
			for (size_t i = 0; i < 5; i++)
				in[n++] = 'z';
			buf_reset(&b);
			buf_append(&b, "x\t", 2);  /* appends after what the buffer holds */
			wh_copy_escape(&b, in, n);
			assert_memory_equal(b.data, "x\t", 2);
			assert_null(memchr(b.data + 2, '\t', b.len - 2));
			assert_null(memchr(b.data + 2, '\n', b.len - 2));
			assert_null(memchr(b.data + 2, '\r', b.len - 2));
			size_t k = copy_unescape(b.data + 2, b.len - 2, back);
			assert_int_equal(k, n);
			assert_memory_equal(back, in, n);
			assert_int_equal(b.data[b.len], '\0');
		}
	}
	buf_free(&b);
}

static void
json_strings_are_escaped(void **state)
{
	(void) state;
	buf_t b = BUF_INIT;
	const char in[] = "q\"b\\n\nt\tc\x01 ü";
	wh_json_string(&b, in, sizeof(in) - 1);
	assert_string_equal(b.data, "\"q\\\"b\\\\n\\nt\\tc\\u0001 ü\"");
	buf_free(&b);
}

static void
timestamps_are_utc_input_forms(void **state)
{
	(void) state;
	buf_t b = BUF_INIT;
	wh_append_ts(&b, 1700000000123456LL);
	assert_string_equal(b.data, "2023-11-14 22:13:20.123456+00");
	buf_reset(&b);
	wh_append_ts(&b, 0);
	assert_string_equal(b.data, "1970-01-01 00:00:00.000000+00");
	buf_reset(&b);
	wh_append_ts(&b, -1);  /* before the epoch: the fraction stays positive */
	assert_string_equal(b.data, "1969-12-31 23:59:59.999999+00");
	buf_reset(&b);
	wh_append_ts(&b, 253402300799999999LL);
	assert_string_equal(b.data, "9999-12-31 23:59:59.999999+00");
	buf_free(&b);
}

static void
timestamps_agree_with_gmtime_across_the_calendar(void **state)
{
	(void) state;
	/* Leap days, century rules (1900 no, 2000 yes, 2100 no), year ends,
	 * both sides of the epoch, and a pseudo-random sweep. */
	static const int64_t secs[] = {951782400, 951868799, 951868800, -2203891200LL,
				       -2208988800LL, 4107542400LL, 4107628799LL, -62135596800LL,
				       946684799, -86400, -86401, 1700000000};
	buf_t b = BUF_INIT;
	char want[64];
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]) + 2000; i++) {
		int64_t s;
		if (i < sizeof(secs) / sizeof(secs[0])) {
			s = secs[i];
		} else {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			s = (int64_t) (x % 315537897600ull) - 62135596800LL;  /* 0001..9999 */
		}
		int64_t us = s * 1000000 + (int64_t) (x % 1000000);
		time_t tt = (time_t) s;
		struct tm tm;
		gmtime_r(&tt, &tm);
		snprintf(want, sizeof(want), "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int) (x % 1000000));
		buf_reset(&b);
		wh_append_ts(&b, us);
		assert_string_equal(b.data, want);
	}
	buf_free(&b);
}

static void
table_names_are_predictable_and_fit(void **state)
{
	(void) state;
	char out[WH_NAME_MAX + 1];
	wh_table_name("erp", "public", "erp", "customers", "", out);
	assert_string_equal(out, "erp__customers");
	wh_table_name("erp", "public", "erp", "customers", "__history", out);
	assert_string_equal(out, "erp__customers__history");
	wh_table_name("crm", "crm", "crm", "accounts", "", out);   /* MySQL: schema = database */
	assert_string_equal(out, "crm__accounts");
	wh_table_name("erp", "sales", "erp", "orders", "", out);
	assert_string_equal(out, "erp__sales__orders");
	char a[WH_NAME_MAX + 1], b2[WH_NAME_MAX + 1];
	const char *longa = "a_very_long_table_name_that_goes_on_and_on_and_on_and_on_forever_1";
	const char *longb = "a_very_long_table_name_that_goes_on_and_on_and_on_and_on_forever_2";
	wh_table_name("src", "public", "db", longa, "__history", a);
	wh_table_name("src", "public", "db", longb, "__history", b2);
	assert_true(strlen(a) <= WH_NAME_MAX);
	assert_string_not_equal(a, b2);
	assert_true(strstr(a, "__history") != NULL);
	/* Cut on a UTF-8 boundary. */
	wh_name_fit("ééééééééééééééééééééééééééééééééééééééééééééééééé", "", out);
	assert_true(strlen(out) <= WH_NAME_MAX);
	for (size_t i = 0; out[i]; i++)
		if (out[i] == '_')
			assert_true(i % 2 == 0);
}

/* ---- COPY BINARY encoders ---- */

/* Encode text with bin and compare the field with want (hex of the bytes,
 * length word included); want NULL: the encoder must refuse, writing nothing. */
static void
expect_bin(wh_bin_t bin, const char *text, const char *want)
{
	buf_t b = BUF_INIT;
	buf_append(&b, "x", 1);  /* a field is appended, never replaces */
	bool ok = wh_bin_field(bin, text, strlen(text), &b);
	if (!want) {
		if (ok || b.len != 1)
			fail_msg("%s: encoded, want a refusal", text);
		buf_free(&b);
		return;
	}
	if (!ok)
		fail_msg("%s: refused, want %s", text, want);
	char hex[512] = "";
	for (size_t i = 1; i < b.len && 2 * i < sizeof(hex); i++)
		snprintf(hex + 2 * (i - 1), 3, "%02x", (unsigned char) b.data[i]);
	if (strcmp(hex, want) != 0)
		fail_msg("%s: %s, want %s", text, hex, want);
	buf_free(&b);
}

static void
binary_encoders_follow_the_send_formats(void **state)
{
	(void) state;
	assert_int_equal(wh_bin_for_type("integer"), WH_BIN_INT4);
	assert_int_equal(wh_bin_for_type("numeric(12,2)"), WH_BIN_NUMERIC_MOD);
	assert_int_equal(wh_bin_for_type("numeric"), WH_BIN_NUMERIC);
	assert_int_equal(wh_bin_for_type("timestamp(3) with time zone"), WH_BIN_TIMESTAMPTZ);
	assert_int_equal(wh_bin_for_type("timestamp(6) without time zone"), WH_BIN_TIMESTAMP);
	assert_int_equal(wh_bin_for_type("character varying(5)"), WH_BIN_RAW);
	assert_int_equal(wh_bin_for_type("jsonb"), WH_BIN_JSONB);
	assert_int_equal(wh_bin_for_type("text[]"), WH_BIN_NONE);
	assert_int_equal(wh_bin_for_type("double precision"), WH_BIN_NONE);
	assert_int_equal(wh_bin_for_type("interval"), WH_BIN_NONE);
	assert_int_equal(wh_bin_for_type("bit varying(8)"), WH_BIN_NONE);

	expect_bin(WH_BIN_INT2, "-32768", "000000028000");
	expect_bin(WH_BIN_INT2, "32768", NULL);
	expect_bin(WH_BIN_INT4, "-2", "00000004fffffffe");
	expect_bin(WH_BIN_INT4, "+7", "0000000400000007");
	expect_bin(WH_BIN_INT4, "2147483648", NULL);
	expect_bin(WH_BIN_INT4, " 1", NULL);
	expect_bin(WH_BIN_INT4, "", NULL);
	expect_bin(WH_BIN_INT8, "-9223372036854775808", "000000088000000000000000");
	expect_bin(WH_BIN_INT8, "9223372036854775807", "000000087fffffffffffffff");
	expect_bin(WH_BIN_INT8, "9223372036854775808", NULL);
	expect_bin(WH_BIN_INT8, "12345678901234567890", NULL);
	expect_bin(WH_BIN_BOOL, "t", "0000000101");
	expect_bin(WH_BIN_BOOL, "false", "0000000100");
	expect_bin(WH_BIN_BOOL, "yes", NULL);
	expect_bin(WH_BIN_RAW, "héllo", "00000006" "68c3a96c6c6f");
	expect_bin(WH_BIN_JSONB, "{}", "00000003" "017b7d");
	/* numeric: ndigits, weight, sign, dscale, base-10000 digits */
	expect_bin(WH_BIN_NUMERIC, "12.50", "0000000c" "0002" "0000" "0000" "0002" "000c" "1388");
	expect_bin(WH_BIN_NUMERIC, "-0.00001", "0000000a" "0001" "fffe" "4000" "0005" "03e8");
	expect_bin(WH_BIN_NUMERIC, "10000", "0000000a" "0001" "0001" "0000" "0000" "0001");
	expect_bin(WH_BIN_NUMERIC, "-0.00", "00000008" "0000" "0000" "0000" "0002");
	expect_bin(WH_BIN_NUMERIC, "123456789.0123",
		   "00000010" "0004" "0002" "0000" "0004" "0001" "0929" "1a85" "007b");
	expect_bin(WH_BIN_NUMERIC, ".5", "0000000a" "0001" "ffff" "0000" "0001" "1388");
	expect_bin(WH_BIN_NUMERIC, "NaN", "00000008" "0000" "0000" "c000" "0000");
	expect_bin(WH_BIN_NUMERIC, "-Infinity", "00000008" "0000" "0000" "f000" "0000");
	expect_bin(WH_BIN_NUMERIC_MOD, "Infinity", NULL);  /* the server's overflow error */
	expect_bin(WH_BIN_NUMERIC_MOD, "NaN", "00000008" "0000" "0000" "c000" "0000");
	expect_bin(WH_BIN_NUMERIC, "1e3", NULL);
	expect_bin(WH_BIN_NUMERIC, ".", NULL);
	expect_bin(WH_BIN_NUMERIC, "1.2.3", NULL);
	/* timestamps: microseconds since 2000-01-01 00:00 UTC */
	expect_bin(WH_BIN_TIMESTAMPTZ, "2000-01-01 00:00:00+00", "000000080000000000000000");
	expect_bin(WH_BIN_TIMESTAMPTZ, "2000-01-01 05:30:00+05:30", "000000080000000000000000");
	expect_bin(WH_BIN_TIMESTAMPTZ, "1999-12-31 23:59:59.999999", "00000008ffffffffffffffff");
	expect_bin(WH_BIN_TIMESTAMPTZ, "2000-01-01 00:00:00.5-00:00:01", "00000008000000000016e360");
	expect_bin(WH_BIN_TIMESTAMPTZ, "2024-02-30 00:00:00+00", NULL);
	expect_bin(WH_BIN_TIMESTAMPTZ, "infinity", NULL);
	expect_bin(WH_BIN_TIMESTAMPTZ, "2000-01-01 00:00:00.1234567+00", NULL);
	expect_bin(WH_BIN_TIMESTAMPTZ, "2000-01-01 24:00:00+00", NULL);
	expect_bin(WH_BIN_TIMESTAMPTZ, "2000-01-01 00:00:00+0530", NULL);
	expect_bin(WH_BIN_TIMESTAMP, "2000-01-01 00:00:01", "0000000800000000000f4240");
	expect_bin(WH_BIN_TIMESTAMP, "2000-01-01 00:00:01+02", NULL);
	expect_bin(WH_BIN_DATE, "2000-01-02", "0000000400000001");
	expect_bin(WH_BIN_DATE, "1970-01-01", "00000004ffffd533");
	expect_bin(WH_BIN_DATE, "2023-02-29", NULL);
	expect_bin(WH_BIN_DATE, "2000-01-01 BC", NULL);
	expect_bin(WH_BIN_BYTEA, "\\x00fF", "00000002" "00ff");
	expect_bin(WH_BIN_BYTEA, "\\x", "00000000");
	expect_bin(WH_BIN_BYTEA, "\\x0", NULL);
	expect_bin(WH_BIN_BYTEA, "abc", NULL);
	expect_bin(WH_BIN_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		   "00000010" "a0eebc999c0b4ef8bb6d6bb9bd380a11");
	expect_bin(WH_BIN_UUID, "a0eebc999c0b4ef8bb6d6bb9bd380a11", NULL);
}

/* Every timestamp the text path writes (wh_append_ts) encodes to its instant. */
static void
binary_timestamps_agree_with_the_text_forms(void **state)
{
	(void) state;
	uint64_t x = 88172645463325252u;
	const int64_t lo = INT64_C(-62135596800000000), hi = INT64_C(253402300799999999);
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int64_t us = lo + (int64_t) (x % (uint64_t) (hi - lo));
		buf_t t = BUF_INIT, b = BUF_INIT;
		wh_append_ts(&t, us);
		assert_true(wh_bin_field(WH_BIN_TIMESTAMPTZ, t.data, t.len, &b));
		assert_int_equal(b.len, 12);
		uint64_t v = 0;
		for (int k = 4; k < 12; k++)
			v = v << 8 | (unsigned char) b.data[k];
		if ((int64_t) v != us - INT64_C(946684800000000))
			fail_msg("%s: %lld", t.data, (long long) (int64_t) v);
		buf_free(&t);
		buf_free(&b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pg_types_keep_their_meaning),
		cmocka_unit_test(mysql_types_map_to_warehouse_types),
		cmocka_unit_test(evolution_accepts_only_lossless_changes),
		cmocka_unit_test(values_become_valid_input),
		cmocka_unit_test(copy_escape_round_trips_every_special_byte),
		cmocka_unit_test(copy_escape_round_trips_every_byte_in_any_run),
		cmocka_unit_test(json_strings_are_escaped),
		cmocka_unit_test(timestamps_are_utc_input_forms),
		cmocka_unit_test(timestamps_agree_with_gmtime_across_the_calendar),
		cmocka_unit_test(table_names_are_predictable_and_fit),
		cmocka_unit_test(binary_encoders_follow_the_send_formats),
		cmocka_unit_test(binary_timestamps_agree_with_the_text_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
