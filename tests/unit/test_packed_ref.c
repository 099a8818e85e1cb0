/*
 * test_packed_ref.c — previous-value coding of packed images: what a
 * reader decodes is exactly the plain image the writer coded, row after
 * row, for every codec, NULLs and wrapping deltas included; coded images
 * are smaller for rows that resemble each other; damaged coded bytes are
 * an error naming the column, never a read outside the image.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packed_ref.h"
#include "steward.pb-c.h"

enum { NCOLS = 9 };
static const uint8_t codecs[NCOLS] = {
	STEWARD__CODEC__CODEC_INT,      STEWARD__CODEC__CODEC_UINT,     STEWARD__CODEC__CODEC_DECIMAL,
	STEWARD__CODEC__CODEC_DATE,     STEWARD__CODEC__CODEC_DATETIME, STEWARD__CODEC__CODEC_TIMESTAMP,
	STEWARD__CODEC__CODEC_DOUBLE,   STEWARD__CODEC__CODEC_FLOAT,    STEWARD__CODEC__CODEC_TEXT,
};
static const uint8_t scales[NCOLS] = {0, 0, 2, 0, 6, 3, 0, 0, 0};

static uint8_t *
put_varint(uint8_t *o, uint64_t v)
{
	while (v >= 0x80) {
		*o++ = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	*o++ = (uint8_t) v;
	return o;
}

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A plain image of row n: close to row n-1's values, with some NULLs and some jumps. */
static size_t
plain_row(uint64_t n, uint64_t *seed, uint8_t *out)
{
	uint8_t *o = out + 2;  /* a bitmap of 2 bytes for 9 columns */
	uint16_t nulls = 0;
	for (int i = 0; i < NCOLS; i++) {
		if (rnd(seed) % 11 == 0) {
			nulls |= (uint16_t) (1u << i);
			continue;
		}
		bool jump = rnd(seed) % 17 == 0;
		uint64_t v = jump ? rnd(seed) : n * 3 + (uint64_t) i;
		switch (codecs[i]) {
		case STEWARD__CODEC__CODEC_INT:
		case STEWARD__CODEC__CODEC_DECIMAL:
			o = put_varint(o, jump ? v : (uint64_t) ((int64_t) n - 500) << 1 ^
						     (uint64_t) (((int64_t) n - 500) >> 63));
			break;
		case STEWARD__CODEC__CODEC_DATETIME:
		case STEWARD__CODEC__CODEC_TIMESTAMP:
			o = put_varint(o, v);
			o = put_varint(o, rnd(seed) % 1000000);
			break;
		case STEWARD__CODEC__CODEC_DOUBLE:
		case STEWARD__CODEC__CODEC_FLOAT: {
			double d = jump ? (double) v : (double) n / 7;
			uint64_t bits;
			memcpy(&bits, &d, 8);
			for (int k = 0; k < (codecs[i] == STEWARD__CODEC__CODEC_DOUBLE ? 8 : 4); k++)
				*o++ = (uint8_t) (bits >> (8 * k));
			break;
		}
		case STEWARD__CODEC__CODEC_TEXT: {
			char t[64];
			int len = jump ? (int) (rnd(seed) % 3) : snprintf(t, sizeof t, "customer %llu",
									   (unsigned long long) n);
			if (jump)
				memset(t, 'x', (size_t) len);
			o = put_varint(o, (uint64_t) len);
			memcpy(o, t, (size_t) len);
			o += len;
			break;
		}
		default:
			o = put_varint(o, v);
		}
	}
	out[0] = (uint8_t) nulls;
	out[1] = (uint8_t) (nulls >> 8);
	return (size_t) (o - out);
}

static void
decoded_rows_equal_the_coded_ones(void **state)
{
	(void) state;
	packed_refs_t w, r;
	packed_refs_init(&w, NCOLS, codecs, scales);
	packed_refs_init(&r, NCOLS, codecs, scales);
	buf_t coded = BUF_INIT, plain = BUF_INIT;
	uint64_t seed = 88172645463325252ull;
	size_t plain_bytes = 0, coded_bytes = 0;
	char why[256];
	for (uint64_t n = 0; n < 20000; n++) {
		uint8_t row[512];
		size_t len = plain_row(n, &seed, row);
		if (n % 5000 == 0) {  /* a new batch: both sides start over */
			packed_refs_reset(&w);
			packed_refs_reset(&r);
		}
		buf_reset(&coded);
		buf_reset(&plain);
		if (!packed_refs_encode(&w, row, len, &coded, why, sizeof why))
			fail_msg("row %llu: %s", (unsigned long long) n, why);
		if (!packed_refs_decode(&r, (const uint8_t *) coded.data, coded.len, &plain, why,
					sizeof why))
			fail_msg("row %llu: %s", (unsigned long long) n, why);
		assert_int_equal(plain.len, len);
		assert_memory_equal(plain.data, row, len);
		plain_bytes += len;
		coded_bytes += coded.len;
	}
	assert_true(coded_bytes < plain_bytes);  /* rows that resemble each other shrink */
	buf_free(&coded);
	buf_free(&plain);
	packed_refs_free(&w);
	packed_refs_free(&r);
}

static void
damaged_coded_images_are_refused(void **state)
{
	(void) state;
	packed_refs_t w, r;
	packed_refs_init(&w, NCOLS, codecs, scales);
	packed_refs_init(&r, NCOLS, codecs, scales);
	uint64_t seed = 42;
	uint8_t row[512];
	buf_t coded = BUF_INIT, plain = BUF_INIT;
	char why[256];
	size_t len = plain_row(7, &seed, row);
	assert_true(packed_refs_encode(&w, row, len, &coded, why, sizeof why));
	/* every truncation fails cleanly, as does a trailing byte */
	for (size_t cut = 0; cut < coded.len; cut++) {
		packed_refs_reset(&r);
		buf_reset(&plain);
		assert_false(packed_refs_decode(&r, (const uint8_t *) coded.data, cut, &plain, why,
						sizeof why));
		assert_true(why[0] != '\0');
	}
	uint8_t longer[600];
	memcpy(longer, coded.data, coded.len);
	longer[coded.len] = 0;
	packed_refs_reset(&r);
	assert_false(packed_refs_decode(&r, longer, coded.len + 1, &plain, why, sizeof why));
	/* a text that claims more shared bytes than its reference holds */
	static const uint8_t only_text[] = {0xff, 0x00, 5, 1, 'x'};  /* columns 0-7 NULL */
	packed_refs_reset(&r);
	assert_false(packed_refs_decode(&r, only_text, sizeof only_text, &plain, why, sizeof why));
	assert_non_null(strstr(why, "column 8"));
	/* random bytes: refused or decoded, never a crash (ASan watches the reads) */
	for (int k = 0; k < 5000; k++) {
		uint8_t junk[40];
		size_t jl = rnd(&seed) % sizeof junk;
		for (size_t i = 0; i < jl; i++)
			junk[i] = (uint8_t) rnd(&seed);
		buf_reset(&plain);
		(void) packed_refs_decode(&r, junk, jl, &plain, why, sizeof why);
	}
	buf_free(&coded);
	buf_free(&plain);
	packed_refs_free(&w);
	packed_refs_free(&r);
}

static void
shared_prefixes_match_a_byte_by_byte_count(void **state)
{
	(void) state;
	uint64_t seed = 7;
	for (int k = 0; k < 20000; k++) {
		uint8_t a[40], b[40];
		size_t n = rnd(&seed) % sizeof a, same = rnd(&seed) % (n + 1);
		for (size_t i = 0; i < n; i++)
			a[i] = b[i] = (uint8_t) rnd(&seed);
		if (same < n)
			b[same] ^= (uint8_t) (1u << (rnd(&seed) % 8));  /* one bit differs there */
		assert_int_equal(packed_shared_prefix(a, b, n), same);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decoded_rows_equal_the_coded_ones),
		cmocka_unit_test(damaged_coded_images_are_refused),
		cmocka_unit_test(shared_prefixes_match_a_byte_by_byte_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
