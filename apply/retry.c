/*
 * retry.c — response classification, backoff, token bucket, circuit breaker.
 */
#include "retry.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

void
retry_policy_default(retry_policy_t *p)
{
	p->base_ms = 200;
	p->cap_ms = 60000;
	p->max_retry_after_ms = 3600000;
	/* Salesforce's daily limit is a rolling 24 h window and says nothing
	 * about when it frees up; probing every 15 minutes costs one request. */
	p->quota_pause_ms = 900000;
	p->auth_pause_ms = 300000;
}

const char *
retry_class_name(retry_class_t c)
{
	switch (c) {
	case RETRY_DONE: return "done";
	case RETRY_BACKOFF: return "backoff";
	case RETRY_THROTTLED: return "throttled";
	case RETRY_QUOTA_PAUSE: return "quota_pause";
	case RETRY_AUTH_PAUSE: return "auth_pause";
	case RETRY_DEAD_LETTER: return "dead_letter";
	}
	return "unknown";
}

/* Salesforce answers [{"message":…,"errorCode":"REQUEST_LIMIT_EXCEEDED"}]. */
static bool
json_has_error_code(json_t *j, const char *code)
{
	if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v) {
			if (json_has_error_code(v, code))
				return true;
		}
		return false;
	}
	if (!json_is_object(j))
		return false;
	const char *keys[] = {"errorCode", "error_code", "code"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		json_t *v = json_object_get(j, keys[i]);
		if (json_is_string(v) && strcmp(json_string_value(v), code) == 0)
			return true;
	}
	json_t *errors = json_object_get(j, "errors");
	return errors && json_has_error_code(errors, code);
}

static bool
body_is_quota_error(const char *body)
{
	static const char code[] = "REQUEST_LIMIT_EXCEEDED";
	if (!body || !strstr(body, code))
		return false;
	json_t *j = json_loads(body, JSON_DECODE_ANY, NULL);
	if (!j)
		return true;  /* not JSON but names the code: trust the text */
	bool found = json_has_error_code(j, code);
	json_decref(j);
	return found;
}

static int64_t
cap_delay(int64_t d, int64_t cap)
{
	if (d < 0)
		return 0;
	return d > cap ? cap : d;
}

retry_decision_t
retry_classify(const retry_policy_t *p, const retry_response_t *r, time_t now)
{
	retry_decision_t d = {RETRY_DEAD_LETTER, 0, false, "unexpected response"};
	int64_t after;

	if (r->transport_error) {
		d.cls = RETRY_BACKOFF;
		d.breaker_failure = true;
		d.reason = "network error or timeout";
		return d;
	}
	long s = r->status;
	if (s >= 200 && s < 300) {
		d.cls = RETRY_DONE;
		d.reason = "ok";
	} else if (s == 429) {
		d.cls = RETRY_THROTTLED;
		d.reason = "rate limited (429)";
		if (r->retry_after && retry_after_parse(r->retry_after, now, &after))
			d.delay_ms = cap_delay(after, p->max_retry_after_ms);
		else
			d.delay_ms = -1;  /* no usable Retry-After: caller backs off */
	} else if (s == 403 && body_is_quota_error(r->body)) {
		d.cls = RETRY_QUOTA_PAUSE;
		d.reason = "request quota exceeded (REQUEST_LIMIT_EXCEEDED)";
		if (r->retry_after && retry_after_parse(r->retry_after, now, &after))
			d.delay_ms = cap_delay(after, p->max_retry_after_ms);
		else
			d.delay_ms = p->quota_pause_ms;
	} else if (s == 401 || s == 403) {
		d.cls = RETRY_AUTH_PAUSE;
		d.delay_ms = p->auth_pause_ms;
		d.reason = s == 401 ? "authentication failed (401)" : "forbidden (403)";
	} else if (s == 408 || (s >= 500 && s < 600)) {
		d.cls = RETRY_BACKOFF;
		d.breaker_failure = true;
		d.reason = s == 408 ? "request timeout (408)" : "server error (5xx)";
	} else if (s >= 400 && s < 500) {
		d.cls = RETRY_DEAD_LETTER;
		d.reason = s == 404 ? "not found (404)" : s == 409 ? "conflict (409)"
			 : s == 422 ? "unprocessable (422)" : s == 400 ? "bad request (400)"
			 : "rejected (4xx)";
	}
	return d;
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int
month_index(const char *m)
{
	for (int i = 0; i < 12; i++)
		if (strncasecmp(m, months[i], 3) == 0 && m[3] == '\0')
			return i;
	return -1;
}

/* The three HTTP-date forms of RFC 9110 §5.6.7, always GMT. */
static bool
parse_http_date(const char *v, time_t *out)
{
	char wday[16], mon[4], zone[4];
	int day, year, hh, mm, ss, n = 0;
	struct tm tm;
	memset(&tm, 0, sizeof tm);

	if (sscanf(v, "%15[A-Za-z], %d %3s %d %d:%d:%d %3s%n", wday, &day, mon, &year,
		   &hh, &mm, &ss, zone, &n) == 8 && v[n] == '\0') {
		/* IMF-fixdate */
	} else if (sscanf(v, "%15[A-Za-z], %d-%3s-%d %d:%d:%d %3s%n", wday, &day, mon,
			  &year, &hh, &mm, &ss, zone, &n) == 8 && v[n] == '\0') {
		year += year < 70 ? 2000 : year < 100 ? 1900 : 0;  /* RFC 850 */
	} else if (sscanf(v, "%15[A-Za-z] %3s %d %d:%d:%d %d%n", wday, mon, &day, &hh,
			  &mm, &ss, &year, &n) == 7 && v[n] == '\0') {
		strcpy(zone, "GMT");  /* asctime */
	} else {
		return false;
	}
	int m = month_index(mon);
	if (m < 0 || strcmp(zone, "GMT") != 0 || day < 1 || day > 31 || hh > 23 ||
	    mm > 59 || ss > 60 || hh < 0 || mm < 0 || ss < 0)
		return false;
	tm.tm_year = year - 1900;
	tm.tm_mon = m;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*out = timegm(&tm);
	return *out != (time_t) -1;
}

bool
retry_after_parse(const char *value, time_t now, int64_t *delay_ms)
{
	if (!value)
		return false;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t len = strlen(value);
	while (len && (value[len - 1] == ' ' || value[len - 1] == '\t' ||
		       value[len - 1] == '\r' || value[len - 1] == '\n'))
		len--;
	if (len == 0 || len > 64)
		return false;
	char v[65];
	memcpy(v, value, len);
	v[len] = '\0';

	bool digits = true;
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char) v[i]))
			digits = false;
	if (digits) {
		if (len > 9)  /* > 31 years: nonsense, cap rather than overflow */
			*delay_ms = INT64_C(999999999) * 1000;
		else
			*delay_ms = (int64_t) strtol(v, NULL, 10) * 1000;
		return true;
	}
	time_t at;
	if (!parse_http_date(v, &at))
		return false;
	*delay_ms = at > now ? (int64_t) (at - now) * 1000 : 0;
	return true;
}

void
retry_rng_seed(uint64_t *rng, uint64_t seed)
{
	*rng = seed ? seed : UINT64_C(0x9E3779B97F4A7C15);
}

/* xorshift64*: fast, good enough for jitter, deterministic under a seed. */
static uint64_t
rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

int64_t
retry_rng_uniform(uint64_t *rng, int64_t bound)
{
	if (bound <= 0)
		return 0;
	return (int64_t) (rng_next(rng) % ((uint64_t) bound + 1));
}

int64_t
retry_backoff_ms(const retry_policy_t *p, unsigned attempt, uint64_t *rng)
{
	int64_t ceiling = p->base_ms;
	for (unsigned i = 0; i < attempt && ceiling < p->cap_ms; i++)
		ceiling *= 2;
	if (ceiling > p->cap_ms)
		ceiling = p->cap_ms;
	return retry_rng_uniform(rng, ceiling);
}

void
retry_bucket_init(retry_bucket_t *b, double rate_per_sec, double burst, int64_t now_ms)
{
	b->rate_per_ms = rate_per_sec > 0 ? rate_per_sec / 1000.0 : 0;
	b->burst = burst >= 1 ? burst : 1;
	b->tokens = b->burst;
	b->last_ms = now_ms;
}

static void
bucket_refill(retry_bucket_t *b, int64_t now_ms)
{
	if (now_ms > b->last_ms) {
		b->tokens += (double) (now_ms - b->last_ms) * b->rate_per_ms;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last_ms = now_ms;
	}
}

bool
retry_bucket_take(retry_bucket_t *b, int64_t now_ms)
{
	if (b->rate_per_ms <= 0)
		return true;
	bucket_refill(b, now_ms);
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

int64_t
retry_bucket_wait_ms(retry_bucket_t *b, int64_t now_ms)
{
	if (b->rate_per_ms <= 0)
		return 0;
	bucket_refill(b, now_ms);
	if (b->tokens >= 1.0)
		return 0;
	double ms = (1.0 - b->tokens) / b->rate_per_ms;
	int64_t w = (int64_t) ms;
	return (double) w < ms ? w + 1 : w;  /* round up: never wake early */
}

void
retry_breaker_init(retry_breaker_t *b)
{
	memset(b, 0, sizeof *b);
	b->failure_threshold = 5;
	b->open_ms = 5000;
	b->max_open_ms = 300000;
	b->max_probes = 1;
	b->successes_to_close = 1;
	b->state = BREAKER_CLOSED;
	b->current_open_ms = b->open_ms;
}

static void
breaker_open(retry_breaker_t *b, int64_t now_ms, int64_t for_ms)
{
	b->state = BREAKER_OPEN;
	b->open_until_ms = now_ms + for_ms;
	b->probes_in_flight = 0;
	b->probe_successes = 0;
}

bool
retry_breaker_allow(retry_breaker_t *b, int64_t now_ms)
{
	if (b->state == BREAKER_OPEN) {
		if (now_ms < b->open_until_ms)
			return false;
		b->state = BREAKER_HALF_OPEN;
		b->probes_in_flight = 0;
		b->probe_successes = 0;
	}
	if (b->state == BREAKER_HALF_OPEN) {
		if (b->probes_in_flight >= b->max_probes)
			return false;
		b->probes_in_flight++;
	}
	return true;
}

void
retry_breaker_success(retry_breaker_t *b, int64_t now_ms)
{
	(void) now_ms;
	b->failures = 0;
	if (b->state == BREAKER_HALF_OPEN) {
		if (b->probes_in_flight)
			b->probes_in_flight--;
		if (++b->probe_successes >= b->successes_to_close) {
			b->state = BREAKER_CLOSED;
			b->current_open_ms = b->open_ms;
		}
	}
}

void
retry_breaker_failure(retry_breaker_t *b, int64_t now_ms)
{
	if (b->state == BREAKER_HALF_OPEN) {
		/* A failed probe: stay away longer, up to max_open_ms. */
		b->current_open_ms *= 2;
		if (b->current_open_ms > b->max_open_ms)
			b->current_open_ms = b->max_open_ms;
		breaker_open(b, now_ms, b->current_open_ms);
		return;
	}
	if (b->state == BREAKER_OPEN)
		return;  /* a request started before it opened */
	if (++b->failures >= b->failure_threshold) {
		b->failures = 0;
		b->current_open_ms = b->open_ms;
		breaker_open(b, now_ms, b->current_open_ms);
	}
}

void
retry_breaker_neutral(retry_breaker_t *b)
{
	if (b->state == BREAKER_HALF_OPEN && b->probes_in_flight)
		b->probes_in_flight--;
}

void
retry_breaker_pause(retry_breaker_t *b, int64_t now_ms, int64_t pause_ms)
{
	int64_t until = now_ms + (pause_ms > 0 ? pause_ms : 0);
	if (b->state == BREAKER_OPEN && b->open_until_ms > until)
		return;  /* already paused for longer */
	breaker_open(b, now_ms, until - now_ms);
}

retry_breaker_state_t
retry_breaker_get_state(const retry_breaker_t *b)
{
	return b->state;
}

int64_t
retry_breaker_open_until(const retry_breaker_t *b)
{
	return b->open_until_ms;
}
