/*
 * test_apply_idem.c — SHA-256 test vectors and Idempotency-Key stability.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "idem.h"

static void
expect_digest(const void *data, size_t len, const char *hex)
{
	uint8_t d[IDEM_SHA256_LEN];
	char out[2 * IDEM_SHA256_LEN + 1];
	idem_sha256(data, len, d);
	idem_hex(d, sizeof d, out);
	assert_string_equal(out, hex);
}

static void
test_sha256_matches_fips_180_4_vectors(void **state)
{
	(void) state;
	expect_digest("abc", 3,
		      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	expect_digest("", 0,
		      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	expect_digest(m448, strlen(m448),
		      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
			   "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	expect_digest(m896, strlen(m896),
		      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void
test_sha256_million_a_incremental(void **state)
{
	(void) state;
	char chunk[1000];
	memset(chunk, 'a', sizeof chunk);
	idem_sha256_t ctx;
	uint8_t d[IDEM_SHA256_LEN];
	char out[65];
	idem_sha256_init(&ctx);
	for (int i = 0; i < 1000; i++)
		idem_sha256_update(&ctx, chunk, sizeof chunk);
	idem_sha256_final(&ctx, d);
	idem_hex(d, sizeof d, out);
	assert_string_equal(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void
test_sha256_block_boundaries_agree_with_one_shot(void **state)
{
	(void) state;
	uint8_t data[200];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t) (i * 7 + 3);
	for (size_t len = 50; len < 140; len++) {
		uint8_t a[32], b[32];
		idem_sha256(data, len, a);
		idem_sha256_t ctx;
		idem_sha256_init(&ctx);
		for (size_t i = 0; i < len; i++)
			idem_sha256_update(&ctx, data + i, 1);
		idem_sha256_final(&ctx, b);
		assert_memory_equal(a, b, 32);
	}
}

static void
test_key_is_stable_across_calls_and_restarts(void **state)
{
	(void) state;
	position_t pos;
	position_pg(&pos, 0x16B3748, POSITION_PHASE_STREAM, 3);
	idem_field_t f[] = {{"name", "Acme"}, {"email", "a@acme.test"}};
	char k1[IDEM_KEY_LEN + 1], k2[IDEM_KEY_LEN + 1];
	idem_key("customer", "C-1", "crm", &pos, f, 2, k1);
	idem_key("customer", "C-1", "crm", &pos, f, 2, k2);
	assert_string_equal(k1, k2);
	assert_int_equal(strlen(k1), IDEM_KEY_LEN);
	/* Pinned: a change in derivation would make targets re-apply writes
	 * after an upgrade, so it must be deliberate. */
	assert_string_equal(k1, "75f2840f2d7c2a4e544e5a5068def26048ab57181ac4e11d0dc5d4833ac068b3");
}

static void
test_key_does_not_depend_on_field_order(void **state)
{
	(void) state;
	position_t pos;
	position_pg(&pos, 42, POSITION_PHASE_STREAM, 0);
	idem_field_t a[] = {{"name", "Acme"}, {"email", NULL}, {"status", "active"}};
	idem_field_t b[] = {{"status", "active"}, {"name", "Acme"}, {"email", NULL}};
	char ka[IDEM_KEY_LEN + 1], kb[IDEM_KEY_LEN + 1];
	idem_key("customer", "C-1", "crm", &pos, a, 3, ka);
	idem_key("customer", "C-1", "crm", &pos, b, 3, kb);
	assert_string_equal(ka, kb);
}

static void
test_key_changes_with_every_input(void **state)
{
	(void) state;
	position_t p1, p2;
	position_pg(&p1, 42, POSITION_PHASE_STREAM, 0);
	position_pg(&p2, 42, POSITION_PHASE_STREAM, 1);
	idem_field_t f[] = {{"name", "Acme"}};
	idem_field_t fv[] = {{"name", "Acme2"}};
	idem_field_t fnull[] = {{"name", NULL}};
	idem_field_t fempty[] = {{"name", ""}};
	char base[65], k[65];
	idem_key("customer", "C-1", "crm", &p1, f, 1, base);
	idem_key("invoice", "C-1", "crm", &p1, f, 1, k);
	assert_string_not_equal(base, k);
	idem_key("customer", "C-2", "crm", &p1, f, 1, k);
	assert_string_not_equal(base, k);
	idem_key("customer", "C-1", "billing", &p1, f, 1, k);
	assert_string_not_equal(base, k);
	idem_key("customer", "C-1", "crm", &p2, f, 1, k);
	assert_string_not_equal(base, k);
	idem_key("customer", "C-1", "crm", &p1, fv, 1, k);
	assert_string_not_equal(base, k);
	char kn[65], ke[65];
	idem_key("customer", "C-1", "crm", &p1, fnull, 1, kn);
	idem_key("customer", "C-1", "crm", &p1, fempty, 1, ke);
	assert_string_not_equal(kn, ke);
	/* Length prefixes: moving a character across a boundary changes the key. */
	char k1[65], k2[65];
	idem_key("ab", "c", "crm", &p1, NULL, 0, k1);
	idem_key("a", "bc", "crm", &p1, NULL, 0, k2);
	assert_string_not_equal(k1, k2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_matches_fips_180_4_vectors),
		cmocka_unit_test(test_sha256_million_a_incremental),
		cmocka_unit_test(test_sha256_block_boundaries_agree_with_one_shot),
		cmocka_unit_test(test_key_is_stable_across_calls_and_restarts),
		cmocka_unit_test(test_key_does_not_depend_on_field_order),
		cmocka_unit_test(test_key_changes_with_every_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
