/*
 * emu_faults.h — what makes the emulator misbehave on purpose: injected
 * faults (errors, timeouts, slowness, outages), per-platform rate limits
 * (token bucket → 429 + Retry-After) and request quotas (Salesforce's
 * daily API limit → 403 REQUEST_LIMIT_EXCEEDED).  Thread-safe.
 *
 * JSON specs are documented in docs/emulator.md ("Control API").
 */
#ifndef STEWARD_TESTS_EMULATOR_EMU_FAULTS_H
#define STEWARD_TESTS_EMULATOR_EMU_FAULTS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "emu.h"

typedef enum emu_fault_mode {
	EMU_FAULT_NONE = 0,
	EMU_FAULT_ERROR,    /* answer status (500/502/503…) with the platform's error shape */
	EMU_FAULT_TIMEOUT,  /* wait delay_ms, then close the connection without answering */
	EMU_FAULT_SLOW,     /* wait delay_ms, then serve normally */
	EMU_FAULT_DOWN,     /* answer 503, or close at once when close is set */
} emu_fault_mode_t;

/* The fault chosen for one request. */
typedef struct emu_fault_action {
	emu_fault_mode_t mode;
	int status;         /* EMU_FAULT_ERROR / DOWN */
	int delay_ms;       /* TIMEOUT / SLOW */
	int retry_after_s;  /* > 0: send Retry-After with the error */
	bool after;         /* ERROR/TIMEOUT after the request was executed (write done, answer lost) */
	bool close;         /* DOWN: close the connection instead of answering */
	int rule_id;
} emu_fault_action_t;

emu_faults_t *emu_faults_create(void);
void emu_faults_destroy(emu_faults_t *f);  /* accepts NULL */

/* Add one rule ({"platform":…,"mode":…}) or several ({"faults":[…]}).
 * 0, or -1 with a message (nothing added). */
int emu_faults_add_json(emu_faults_t *f, const json_t *spec, char *err, size_t errlen);
void emu_faults_clear(emu_faults_t *f);
/* Active rules as a JSON array (new reference). */
json_t *emu_faults_json(emu_faults_t *f);

/* Pick the fault for a request (consuming one from a counted rule);
 * mode EMU_FAULT_NONE when none applies. */
emu_fault_action_t emu_faults_pick(emu_faults_t *f, emu_platform_t p,
				   const char *method, const char *path);

/* Set rate limit and/or quota of one platform from
 * {"platform":"crm","rps":5,"burst":10,"quota":100,"quota_window_s":86400};
 * rps 0 or quota 0 switches that limit off. */
int emu_limits_set_json(emu_faults_t *f, const json_t *spec, char *err, size_t errlen);
/* Same from a command-line value "crm=5" or "crm=5:10" (rps[:burst]). */
int emu_limits_set_rate_arg(emu_faults_t *f, const char *arg, char *err, size_t errlen);
/* "crm=1000" or "crm=1000/86400" (requests[/window seconds]). */
int emu_limits_set_quota_arg(emu_faults_t *f, const char *arg, char *err, size_t errlen);
/* Restore the limits given at start-up and refill buckets and quotas. */
void emu_limits_reset(emu_faults_t *f);
/* Make the current limits the ones emu_limits_reset restores. */
void emu_limits_commit_defaults(emu_faults_t *f);
json_t *emu_limits_json(emu_faults_t *f);

typedef enum emu_limit_result {
	EMU_LIMIT_OK = 0,
	EMU_LIMIT_RATE,   /* over the rate limit: 429, *retry_after_s set */
	EMU_LIMIT_QUOTA,  /* quota spent: *retry_after_s = seconds until the window resets */
} emu_limit_result_t;

/*
 * Account one request to platform p.  A request refused by the rate limit
 * does not consume quota.  *used and *quota report the quota usage after
 * this request (quota 0 = none), for Sforce-Limit-Info.
 */
emu_limit_result_t emu_limits_check(emu_faults_t *f, emu_platform_t p, int *retry_after_s,
				    long *used, long *quota);

#endif
