/*
 * test_apply_retry.c — classification table, backoff bounds and jitter,
 * Retry-After forms, token bucket, circuit breaker transitions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "retry.h"

static retry_decision_t
classify(long status, const char *retry_after, const char *body)
{
	retry_policy_t p;
	retry_policy_default(&p);
	retry_response_t r = {false, status, retry_after, body};
	return retry_classify(&p, &r, 1000000000);
}

static void
test_classification_follows_platform_semantics(void **state)
{
	(void) state;
	static const struct { long status; retry_class_t cls; bool breaker; } table[] = {
		{200, RETRY_DONE, false}, {201, RETRY_DONE, false}, {204, RETRY_DONE, false},
		{400, RETRY_DEAD_LETTER, false}, {404, RETRY_DEAD_LETTER, false},
		{409, RETRY_DEAD_LETTER, false}, {422, RETRY_DEAD_LETTER, false},
		{401, RETRY_AUTH_PAUSE, false}, {403, RETRY_AUTH_PAUSE, false},
		{408, RETRY_BACKOFF, true}, {500, RETRY_BACKOFF, true},
		{502, RETRY_BACKOFF, true}, {503, RETRY_BACKOFF, true}, {504, RETRY_BACKOFF, true},
		{429, RETRY_THROTTLED, false}, {302, RETRY_DEAD_LETTER, false},
	};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		retry_decision_t d = classify(table[i].status, NULL, NULL);
		if (d.cls != table[i].cls || d.breaker_failure != table[i].breaker)
			fail_msg("status %ld: got %s", table[i].status, retry_class_name(d.cls));
	}
	retry_policy_t p;
	retry_policy_default(&p);
	retry_response_t net = {true, 0, NULL, NULL};
	retry_decision_t d = retry_classify(&p, &net, 0);
	assert_int_equal(d.cls, RETRY_BACKOFF);
	assert_true(d.breaker_failure);
}

static void
test_salesforce_quota_403_pauses_target_not_auth(void **state)
{
	(void) state;
	const char *sf = "[{\"message\":\"TotalRequests Limit exceeded.\","
			 "\"errorCode\":\"REQUEST_LIMIT_EXCEEDED\"}]";
	retry_decision_t d = classify(403, NULL, sf);
	assert_int_equal(d.cls, RETRY_QUOTA_PAUSE);
	assert_int_equal(d.delay_ms, 900000);
	assert_false(d.breaker_failure);
	d = classify(403, "60", sf);
	assert_int_equal(d.cls, RETRY_QUOTA_PAUSE);
	assert_int_equal(d.delay_ms, 60000);
	/* The code mentioned inside a message is not the error code. */
	d = classify(403, NULL, "[{\"message\":\"see REQUEST_LIMIT_EXCEEDED docs\","
				"\"errorCode\":\"INSUFFICIENT_ACCESS\"}]");
	assert_int_equal(d.cls, RETRY_AUTH_PAUSE);
	d = classify(403, NULL, "{\"errorCode\":\"FORBIDDEN\"}");
	assert_int_equal(d.cls, RETRY_AUTH_PAUSE);
}

static void
test_429_honours_retry_after_in_both_forms(void **state)
{
	(void) state;
	retry_decision_t d = classify(429, "7", NULL);
	assert_int_equal(d.cls, RETRY_THROTTLED);
	assert_int_equal(d.delay_ms, 7000);
	d = classify(429, NULL, NULL);
	assert_int_equal(d.delay_ms, -1);
	d = classify(429, "999999", NULL);
	assert_int_equal(d.delay_ms, 3600000);  /* capped */
}

static void
test_retry_after_parses_seconds_and_http_dates(void **state)
{
	(void) state;
	int64_t ms;
	time_t now = 784111777;  /* Sun, 06 Nov 1994 08:49:37 GMT */
	assert_true(retry_after_parse("120", now, &ms));
	assert_int_equal(ms, 120000);
	assert_true(retry_after_parse(" 0 ", now, &ms));
	assert_int_equal(ms, 0);
	assert_true(retry_after_parse("Sun, 06 Nov 1994 08:50:07 GMT", now, &ms));
	assert_int_equal(ms, 30000);
	assert_true(retry_after_parse("Sunday, 06-Nov-94 08:49:47 GMT", now, &ms));
	assert_int_equal(ms, 10000);
	assert_true(retry_after_parse("Sun Nov  6 08:49:42 1994", now, &ms));
	assert_int_equal(ms, 5000);
	assert_true(retry_after_parse("Sat, 05 Nov 1994 08:49:37 GMT", now, &ms));
	assert_int_equal(ms, 0);  /* in the past */
	assert_false(retry_after_parse("soon", now, &ms));
	assert_false(retry_after_parse("-5", now, &ms));
	assert_false(retry_after_parse("", now, &ms));
	assert_false(retry_after_parse("Sun, 06 Nov 1994 08:50:07 CET", now, &ms));
	assert_false(retry_after_parse("Sun, 06 Foo 1994 08:50:07 GMT", now, &ms));
}

static void
test_backoff_stays_within_exponential_ceiling_and_cap(void **state)
{
	(void) state;
	retry_policy_t p;
	retry_policy_default(&p);
	uint64_t rng;
	retry_rng_seed(&rng, 42);
	for (unsigned attempt = 0; attempt < 40; attempt++) {
		int64_t ceiling = p.base_ms << (attempt < 20 ? attempt : 20);
		if (ceiling > p.cap_ms)
			ceiling = p.cap_ms;
		int64_t max_seen = 0;
		for (int i = 0; i < 500; i++) {
			int64_t d = retry_backoff_ms(&p, attempt, &rng);
			assert_true(d >= 0 && d <= ceiling);
			if (d > max_seen)
				max_seen = d;
		}
		/* Full jitter spreads over the whole range, not just near zero. */
		assert_true(max_seen > ceiling / 2);
	}
}

static void
test_backoff_jitter_spreads_retries(void **state)
{
	(void) state;
	retry_policy_t p;
	retry_policy_default(&p);
	uint64_t rng;
	retry_rng_seed(&rng, 7);
	int buckets[10] = {0};
	for (int i = 0; i < 10000; i++) {
		int64_t d = retry_backoff_ms(&p, 3, &rng);  /* ceiling 1600 */
		buckets[d * 10 / 1601]++;
	}
	for (int i = 0; i < 10; i++)
		assert_true(buckets[i] > 700 && buckets[i] < 1300);
	/* Same seed, same sequence: tests and replays are reproducible. */
	uint64_t a, b;
	retry_rng_seed(&a, 99);
	retry_rng_seed(&b, 99);
	for (int i = 0; i < 100; i++)
		assert_int_equal(retry_backoff_ms(&p, 5, &a), retry_backoff_ms(&p, 5, &b));
}

static void
test_token_bucket_allows_burst_then_refills_at_rate(void **state)
{
	(void) state;
	retry_bucket_t b;
	retry_bucket_init(&b, 10.0, 5, 0);  /* 10/s, burst 5 */
	for (int i = 0; i < 5; i++)
		assert_true(retry_bucket_take(&b, 0));
	assert_false(retry_bucket_take(&b, 0));
	assert_int_equal(retry_bucket_wait_ms(&b, 0), 100);
	assert_false(retry_bucket_take(&b, 99));
	assert_true(retry_bucket_take(&b, 100));
	assert_false(retry_bucket_take(&b, 100));
	/* A long idle period refills only up to the burst. */
	int n = 0;
	while (retry_bucket_take(&b, 100000))
		n++;
	assert_int_equal(n, 5);
	/* Over one second at most rate + burst requests pass. */
	retry_bucket_init(&b, 10.0, 5, 0);
	n = 0;
	for (int64_t t = 0; t <= 1000; t++)
		while (retry_bucket_take(&b, t))
			n++;
	assert_int_equal(n, 15);
	retry_bucket_t unlimited;
	retry_bucket_init(&unlimited, 0, 1, 0);
	for (int i = 0; i < 1000; i++)
		assert_true(retry_bucket_take(&unlimited, 0));
}

static void
test_breaker_opens_after_threshold_and_probes_to_close(void **state)
{
	(void) state;
	retry_breaker_t b;
	retry_breaker_init(&b);
	b.failure_threshold = 3;
	b.open_ms = 1000;
	b.current_open_ms = 1000;
	for (int i = 0; i < 2; i++) {
		assert_true(retry_breaker_allow(&b, 0));
		retry_breaker_failure(&b, 0);
	}
	assert_int_equal(retry_breaker_get_state(&b), BREAKER_CLOSED);
	retry_breaker_success(&b, 0);  /* a success resets the count */
	for (int i = 0; i < 3; i++)
		retry_breaker_failure(&b, 10);
	assert_int_equal(retry_breaker_get_state(&b), BREAKER_OPEN);
	assert_false(retry_breaker_allow(&b, 500));
	/* Cool-down over: exactly one probe. */
	assert_true(retry_breaker_allow(&b, 1010));
	assert_int_equal(retry_breaker_get_state(&b), BREAKER_HALF_OPEN);
	assert_false(retry_breaker_allow(&b, 1010));
	/* Failed probe: open again, for twice as long. */
	retry_breaker_failure(&b, 1020);
	assert_int_equal(retry_breaker_get_state(&b), BREAKER_OPEN);
	assert_false(retry_breaker_allow(&b, 2500));
	assert_true(retry_breaker_allow(&b, 3020));
	retry_breaker_success(&b, 3030);
	assert_int_equal(retry_breaker_get_state(&b), BREAKER_CLOSED);
	assert_true(retry_breaker_allow(&b, 3030));
	assert_true(retry_breaker_allow(&b, 3030));
}

static void
test_breaker_neutral_outcome_releases_probe(void **state)
{
	(void) state;
	retry_breaker_t b;
	retry_breaker_init(&b);
	retry_breaker_pause(&b, 0, 100);
	assert_true(retry_breaker_allow(&b, 100));
	assert_false(retry_breaker_allow(&b, 100));
	retry_breaker_neutral(&b);
	assert_int_equal(retry_breaker_get_state(&b), BREAKER_HALF_OPEN);
	assert_true(retry_breaker_allow(&b, 100));
}

static void
test_pause_keeps_one_target_off_while_others_go_on(void **state)
{
	(void) state;
	retry_breaker_t crm, billing;
	retry_breaker_init(&crm);
	retry_breaker_init(&billing);
	retry_breaker_pause(&crm, 0, 60000);  /* quota exhausted */
	assert_false(retry_breaker_allow(&crm, 30000));
	assert_true(retry_breaker_allow(&billing, 30000));
	/* A shorter pause does not shorten a longer one. */
	retry_breaker_pause(&crm, 30000, 1000);
	assert_int_equal(retry_breaker_open_until(&crm), 60000);
	assert_true(retry_breaker_allow(&crm, 60000));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classification_follows_platform_semantics),
		cmocka_unit_test(test_salesforce_quota_403_pauses_target_not_auth),
		cmocka_unit_test(test_429_honours_retry_after_in_both_forms),
		cmocka_unit_test(test_retry_after_parses_seconds_and_http_dates),
		cmocka_unit_test(test_backoff_stays_within_exponential_ceiling_and_cap),
		cmocka_unit_test(test_backoff_jitter_spreads_retries),
		cmocka_unit_test(test_token_bucket_allows_burst_then_refills_at_rate),
		cmocka_unit_test(test_breaker_opens_after_threshold_and_probes_to_close),
		cmocka_unit_test(test_breaker_neutral_outcome_releases_probe),
		cmocka_unit_test(test_pause_keeps_one_target_off_while_others_go_on),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
