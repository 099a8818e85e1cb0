/*
 * emu_log.h — the request log and counters behind /_emulator/requests and
 * /_emulator/stats.  Thread-safe.  Control requests are not logged.
 */
#ifndef STEWARD_TESTS_EMULATOR_EMU_LOG_H
#define STEWARD_TESTS_EMULATOR_EMU_LOG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "emu.h"

/* Bodies longer than this are kept truncated in the log (the digest is of
 * the whole body). */
#define EMU_LOG_BODY_MAX 4096

typedef struct emu_log_entry {
	int platform;                /* emu_platform_t, or -1 for an unknown prefix */
	const char *method;
	const char *path;
	const char *query;           /* raw query string or NULL */
	const char *idempotency_key; /* or NULL */
	const char *correlation_id;  /* X-Correlation-Id or NULL */
	const char *body;            /* request body */
	size_t body_len;
	int status;                  /* 0 = connection closed without an answer */
	const char *response;        /* response body or NULL */
	int64_t duration_ms;
	const char *fault;           /* injected fault mode or NULL */
	const char *refused;         /* "unauthorized", "rate_limited", "quota_exceeded" or NULL */
	bool replayed;
	emu_write_t write;
} emu_log_entry_t;

/* capacity: entries kept; older ones are dropped (and counted). */
emu_log_t *emu_log_create(size_t capacity);
void emu_log_destroy(emu_log_t *log);  /* accepts NULL */
void emu_log_reset(emu_log_t *log);    /* clears entries and counters */

/* Record one request (everything is copied). */
void emu_log_add(emu_log_t *log, const emu_log_entry_t *e);

/*
 * {"requests":[…],"next_since":N,"dropped":D}: entries with seq > since,
 * optionally only one platform / method / status, at most limit (0 = all).
 */
json_t *emu_log_requests_json(emu_log_t *log, long long since, const char *platform,
			      const char *method, int status, size_t limit);
json_t *emu_log_stats_json(emu_log_t *log);

#endif
