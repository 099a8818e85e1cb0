/*
 * retry.h — what to do after a target answered (or did not): response
 * classification per platform semantics, exponential backoff with full
 * jitter, Retry-After parsing, a per-target token bucket and a per-target
 * circuit breaker.
 *
 * Pure functions over explicit inputs: the caller passes the clock
 * (monotonic milliseconds; wall-clock seconds only for HTTP dates) and the
 * random state, so every behaviour here is unit-testable and nothing keeps
 * hidden globals.  The bucket and breaker are small value types embedded in
 * the caller's per-target state; their fields are private to this module.
 * Not thread-safe: one owner per target.  Owner: apply service.
 */
#ifndef STEWARD_APPLY_RETRY_H
#define STEWARD_APPLY_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- classification ---- */

typedef enum retry_class {
	RETRY_DONE = 0,         /* 2xx: the write took effect */
	RETRY_BACKOFF = 1,      /* network error, timeout, 408, 5xx: retry later */
	RETRY_THROTTLED = 2,    /* 429: wait delay_ms (Retry-After) then retry */
	RETRY_QUOTA_PAUSE = 3,  /* quota exhausted (403 REQUEST_LIMIT_EXCEEDED): pause target */
	RETRY_AUTH_PAUSE = 4,   /* 401 / other 403: pause target and alert */
	RETRY_DEAD_LETTER = 5,  /* business error (400/404/409/422, other 4xx): DLQ */
} retry_class_t;

typedef struct retry_policy {
	int64_t base_ms;         /* first backoff ceiling (default 200) */
	int64_t cap_ms;          /* backoff ceiling cap (default 60000) */
	int64_t max_retry_after_ms; /* Retry-After larger than this is capped (default 3600000) */
	int64_t quota_pause_ms;  /* pause on quota error without Retry-After (default 900000) */
	int64_t auth_pause_ms;   /* pause on auth error before probing again (default 300000) */
} retry_policy_t;

/* Defaults above. */
void retry_policy_default(retry_policy_t *p);

/* What happened on the wire, borrowed for the call. */
typedef struct retry_response {
	bool transport_error;     /* no HTTP status: connect/DNS/TLS/reset/timeout */
	long status;              /* HTTP status when !transport_error */
	const char *retry_after;  /* Retry-After header value or NULL */
	const char *body;         /* response body or NULL (NUL-terminated) */
} retry_response_t;

typedef struct retry_decision {
	retry_class_t cls;
	int64_t delay_ms;      /* THROTTLED/QUOTA/AUTH: pause; BACKOFF: use retry_backoff_ms */
	bool breaker_failure;  /* counts against the target's circuit breaker */
	const char *reason;    /* static text for logs/DLQ, e.g. "rate limited (429)" */
} retry_decision_t;

/*
 * Classify one response.  now is wall-clock seconds (for Retry-After HTTP
 * dates).  Only transport errors, 408 and 5xx count as breaker failures: a
 * throttled or rejecting target is healthy, and business errors are the
 * change's fault, not the target's.
 */
retry_decision_t retry_classify(const retry_policy_t *p, const retry_response_t *r,
				time_t now);

/* Name of a class for logs: "done", "backoff", "throttled", … */
const char *retry_class_name(retry_class_t c);

/*
 * Parse a Retry-After value: delta-seconds ("120") or an HTTP-date
 * (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850, asctime).  A date
 * in the past gives 0.  Returns false on anything else.
 */
bool retry_after_parse(const char *value, time_t now, int64_t *delay_ms);

/* ---- backoff ---- */

/* Seed for retry_backoff_ms's generator (any value; 0 is remapped). */
void retry_rng_seed(uint64_t *rng, uint64_t seed);
/* Uniform in [0, bound] inclusive (bound >= 0), advancing *rng. */
int64_t retry_rng_uniform(uint64_t *rng, int64_t bound);

/*
 * Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)]
 * for attempt = 0, 1, 2, … (the number of failures so far minus one).
 */
int64_t retry_backoff_ms(const retry_policy_t *p, unsigned attempt, uint64_t *rng);

/* ---- token bucket: at most `rate` requests per second, bursts of `burst` ---- */

typedef struct retry_bucket {
	double rate_per_ms;  /* private */
	double burst;
	double tokens;
	int64_t last_ms;
} retry_bucket_t;

/* rate <= 0 means unlimited.  Starts full. */
void retry_bucket_init(retry_bucket_t *b, double rate_per_sec, double burst, int64_t now_ms);
/* Take one token if available. */
bool retry_bucket_take(retry_bucket_t *b, int64_t now_ms);
/* Milliseconds until a token is available (0 if one is now). */
int64_t retry_bucket_wait_ms(retry_bucket_t *b, int64_t now_ms);

/* ---- circuit breaker ---- */

typedef enum retry_breaker_state {
	BREAKER_CLOSED = 0,     /* normal operation */
	BREAKER_OPEN = 1,       /* failing or paused: no requests until open_until */
	BREAKER_HALF_OPEN = 2,  /* probing: a few requests allowed */
} retry_breaker_state_t;

typedef struct retry_breaker {
	unsigned failure_threshold;  /* consecutive failures that open it (default 5) */
	int64_t open_ms;             /* first cool-down before probing (default 5000) */
	int64_t max_open_ms;         /* cool-down doubles per failed probe up to this (default 300000) */
	unsigned max_probes;         /* concurrent probes in half-open (default 1) */
	unsigned successes_to_close; /* probe successes that close it (default 1) */
	/* private */
	retry_breaker_state_t state;
	unsigned failures;
	unsigned probes_in_flight;
	unsigned probe_successes;
	int64_t open_until_ms;
	int64_t current_open_ms;
} retry_breaker_t;

/* Defaults above, closed. */
void retry_breaker_init(retry_breaker_t *b);
/*
 * May a request start now?  Moves OPEN to HALF_OPEN when the cool-down has
 * passed.  In HALF_OPEN a true answer reserves a probe slot that the next
 * retry_breaker_success/failure releases.
 */
bool retry_breaker_allow(retry_breaker_t *b, int64_t now_ms);
void retry_breaker_success(retry_breaker_t *b, int64_t now_ms);
void retry_breaker_failure(retry_breaker_t *b, int64_t now_ms);
/*
 * Release a probe slot without a verdict (the request ended in a way that
 * says nothing about the target's health, e.g. a business 4xx).
 */
void retry_breaker_neutral(retry_breaker_t *b);
/* Open the breaker until now + pause_ms (quota, auth, Retry-After). */
void retry_breaker_pause(retry_breaker_t *b, int64_t now_ms, int64_t pause_ms);
retry_breaker_state_t retry_breaker_get_state(const retry_breaker_t *b);
/* When an OPEN breaker will next allow a probe (meaningless otherwise). */
int64_t retry_breaker_open_until(const retry_breaker_t *b);

#endif
