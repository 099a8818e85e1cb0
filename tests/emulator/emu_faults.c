/*
 * emu_faults.c — fault rules, token-bucket rate limits and request quotas.
 */
#include "emu_faults.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct rule {
	int id;
	int platform;        /* -1 = every platform */
	char *method;        /* NULL = any */
	char *match;         /* path prefix; NULL = any */
	emu_fault_action_t action;
	long remaining;      /* -1 = unlimited */
	double probability;  /* 0 = every matching request */
	int64_t deadline_ms; /* 0 = none (monotonic clock) */
	long hits;
	struct rule *next;
};

struct limits {
	double rps, burst;     /* rps 0 = no rate limit */
	long quota;            /* 0 = no quota */
	long quota_window_s;
};

struct bucket {
	double tokens;
	int64_t last_ms;
	long used;
	int64_t window_start_ms;
};

struct emu_faults {
	pthread_mutex_t mu;
	struct rule *rules;    /* in insertion order */
	int next_id;
	uint64_t rng;
	struct limits limits[EMU_NPLATFORMS], defaults[EMU_NPLATFORMS];
	struct bucket buckets[EMU_NPLATFORMS];
};

static const char *const mode_names[] = {"none", "error", "timeout", "slow", "down"};

emu_faults_t *
emu_faults_create(void)
{
	emu_faults_t *f = xcalloc(1, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	f->next_id = 1;
	f->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t) emu_now_ms();
	for (int i = 0; i < EMU_NPLATFORMS; i++)
		f->limits[i].quota_window_s = f->defaults[i].quota_window_s = 86400;
	return f;
}

static void
rule_free(struct rule *r)
{
	free(r->method);
	free(r->match);
	free(r);
}

void
emu_faults_clear(emu_faults_t *f)
{
	pthread_mutex_lock(&f->mu);
	struct rule *r = f->rules;
	f->rules = NULL;
	pthread_mutex_unlock(&f->mu);
	while (r) {
		struct rule *next = r->next;
		rule_free(r);
		r = next;
	}
}

void
emu_faults_destroy(emu_faults_t *f)
{
	if (f == NULL)
		return;
	emu_faults_clear(f);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static int
get_int(const json_t *spec, const char *key, long long def, long long min, long long max,
	long long *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(spec, key);
	if (v == NULL || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		snprintf(err, errlen, "\"%s\" must be an integer between %lld and %lld", key, min, max);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

static struct rule *
rule_from_json(const json_t *spec, char *err, size_t errlen)
{
	static const char *const known[] = {"platform", "mode", "status", "count", "probability",
		"delay_ms", "duration_ms", "phase", "close", "method", "match", "retry_after_s", NULL};
	if (!json_is_object(spec)) {
		snprintf(err, errlen, "a fault rule must be a JSON object");
		return NULL;
	}
	const char *key;
	json_t *val;
	json_object_foreach((json_t *) spec, key, val) {
		if (!emu_in_set(key, known)) {
			snprintf(err, errlen, "unknown fault field \"%s\"", key);
			return NULL;
		}
	}
	struct rule *r = xcalloc(1, sizeof(*r));
	const char *platform = json_string_value(json_object_get(spec, "platform"));
	emu_platform_t p;
	if (platform == NULL || strcmp(platform, "*") == 0) {
		r->platform = -1;
	} else if (emu_platform_from_name(platform, &p)) {
		r->platform = (int) p;
	} else {
		snprintf(err, errlen, "unknown platform \"%s\" (crm, billing, support, erp or *)", platform);
		goto fail;
	}
	const char *mode = json_string_value(json_object_get(spec, "mode"));
	for (int i = 1; mode && i < 5; i++)
		if (strcmp(mode, mode_names[i]) == 0)
			r->action.mode = (emu_fault_mode_t) i;
	if (r->action.mode == EMU_FAULT_NONE) {
		snprintf(err, errlen, "\"mode\" must be error, timeout, slow or down");
		goto fail;
	}
	long long status, count, delay, duration, retry_after;
	if (get_int(spec, "status", 503, 400, 599, &status, err, errlen) < 0 ||
	    get_int(spec, "count", -1, 1, 1000000000, &count, err, errlen) < 0 ||
	    get_int(spec, "delay_ms", r->action.mode == EMU_FAULT_TIMEOUT ? 30000 : 1000, 0,
		    600000, &delay, err, errlen) < 0 ||
	    get_int(spec, "duration_ms", 0, 1, 86400000, &duration, err, errlen) < 0 ||
	    get_int(spec, "retry_after_s", 0, 0, 86400, &retry_after, err, errlen) < 0)
		goto fail;
	if (r->action.mode == EMU_FAULT_DOWN)
		status = 503;
	r->action.status = (int) status;
	r->action.delay_ms = (int) delay;
	r->action.retry_after_s = (int) retry_after;
	const json_t *prob = json_object_get(spec, "probability");
	if (prob) {
		if (!json_is_number(prob) || json_number_value(prob) <= 0 || json_number_value(prob) > 1) {
			snprintf(err, errlen, "\"probability\" must be a number in (0, 1]");
			goto fail;
		}
		r->probability = json_number_value(prob);
	}
	const char *phase = json_string_value(json_object_get(spec, "phase"));
	if (phase && strcmp(phase, "after") == 0) {
		if (r->action.mode != EMU_FAULT_ERROR && r->action.mode != EMU_FAULT_TIMEOUT) {
			snprintf(err, errlen, "\"phase\": \"after\" applies to modes error and timeout only");
			goto fail;
		}
		r->action.after = true;
	} else if (phase && strcmp(phase, "before") != 0) {
		snprintf(err, errlen, "\"phase\" must be before or after");
		goto fail;
	}
	r->action.close = json_is_true(json_object_get(spec, "close"));
	const char *method = json_string_value(json_object_get(spec, "method"));
	const char *match = json_string_value(json_object_get(spec, "match"));
	r->method = method ? xstrdup(method) : NULL;
	r->match = match ? xstrdup(match) : NULL;
	/* Without a count, probability or duration a rule fires once. */
	if (count < 0 && prob == NULL && duration == 0)
		count = 1;
	r->remaining = (long) count;
	r->deadline_ms = duration ? emu_now_ms() + duration : 0;
	return r;
fail:
	rule_free(r);
	return NULL;
}

int
emu_faults_add_json(emu_faults_t *f, const json_t *spec, char *err, size_t errlen)
{
	const json_t *list = json_object_get(spec, "faults");
	size_t n = list ? json_array_size(list) : 1;
	if (list && !json_is_array(list)) {
		snprintf(err, errlen, "\"faults\" must be an array");
		return -1;
	}
	struct rule *head = NULL, **tail = &head;
	for (size_t i = 0; i < n; i++) {
		struct rule *r = rule_from_json(list ? json_array_get(list, i) : spec, err, errlen);
		if (r == NULL) {
			while (head) {
				struct rule *next = head->next;
				rule_free(head);
				head = next;
			}
			return -1;
		}
		*tail = r;
		tail = &r->next;
	}
	pthread_mutex_lock(&f->mu);
	for (struct rule *r = head; r; r = r->next)
		r->id = r->action.rule_id = f->next_id++;
	struct rule **end = &f->rules;
	while (*end)
		end = &(*end)->next;
	*end = head;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static bool
rule_expired(const struct rule *r, int64_t now)
{
	return r->remaining == 0 || (r->deadline_ms && now >= r->deadline_ms);
}

json_t *
emu_faults_json(emu_faults_t *f)
{
	json_t *arr = json_array();
	int64_t now = emu_now_ms();
	pthread_mutex_lock(&f->mu);
	for (struct rule *r = f->rules; r; r = r->next) {
		if (rule_expired(r, now))
			continue;
		json_t *o = json_pack("{s:i,s:s,s:s,s:i,s:i,s:I,s:s,s:b}", "id", r->id,
				      "platform", r->platform < 0 ? "*" : emu_platform_name(r->platform),
				      "mode", mode_names[r->action.mode], "status", r->action.status,
				      "delay_ms", r->action.delay_ms, "hits", (json_int_t) r->hits,
				      "phase", r->action.after ? "after" : "before", "close", r->action.close);
		if (r->remaining >= 0)
			json_object_set_new(o, "remaining", json_integer(r->remaining));
		if (r->probability > 0)
			json_object_set_new(o, "probability", json_real(r->probability));
		if (r->deadline_ms)
			json_object_set_new(o, "remaining_ms", json_integer(r->deadline_ms - now));
		if (r->method)
			json_object_set_new(o, "method", json_string(r->method));
		if (r->match)
			json_object_set_new(o, "match", json_string(r->match));
		json_array_append_new(arr, o);
	}
	pthread_mutex_unlock(&f->mu);
	return arr;
}

static double
next_random(emu_faults_t *f)
{
	/* xorshift64*: enough for fault probabilities */
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return (double) ((f->rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

emu_fault_action_t
emu_faults_pick(emu_faults_t *f, emu_platform_t p, const char *method, const char *path)
{
	emu_fault_action_t none = {0};
	int64_t now = emu_now_ms();
	pthread_mutex_lock(&f->mu);
	struct rule **link = &f->rules;
	while (*link) {
		struct rule *r = *link;
		if (rule_expired(r, now)) {
			*link = r->next;
			rule_free(r);
			continue;
		}
		link = &r->next;
		if (r->platform >= 0 && r->platform != (int) p)
			continue;
		if (r->method && strcasecmp(r->method, method) != 0)
			continue;
		if (r->match && strncmp(path, r->match, strlen(r->match)) != 0)
			continue;
		if (r->probability > 0 && next_random(f) >= r->probability)
			continue;
		if (r->remaining > 0)
			r->remaining--;
		r->hits++;
		emu_fault_action_t a = r->action;
		pthread_mutex_unlock(&f->mu);
		return a;
	}
	pthread_mutex_unlock(&f->mu);
	return none;
}

/* ---- rate limits and quotas ---- */

static void
bucket_refill(struct bucket *b, const struct limits *l)
{
	b->tokens = l->burst;
	b->last_ms = emu_now_ms();
	b->used = 0;
	b->window_start_ms = b->last_ms;
}

int
emu_limits_set_json(emu_faults_t *f, const json_t *spec, char *err, size_t errlen)
{
	static const char *const known[] = {"platform", "rps", "burst", "quota", "quota_window_s", NULL};
	const char *key;
	json_t *val;
	if (!json_is_object(spec)) {
		snprintf(err, errlen, "the body must be a JSON object");
		return -1;
	}
	json_object_foreach((json_t *) spec, key, val) {
		if (!emu_in_set(key, known)) {
			snprintf(err, errlen, "unknown rate limit field \"%s\"", key);
			return -1;
		}
	}
	emu_platform_t p;
	if (!emu_platform_from_name(json_string_value(json_object_get(spec, "platform")), &p)) {
		snprintf(err, errlen, "\"platform\" must be crm, billing, support or erp");
		return -1;
	}
	pthread_mutex_lock(&f->mu);
	struct limits l = f->limits[p];
	pthread_mutex_unlock(&f->mu);
	const json_t *rps = json_object_get(spec, "rps"), *burst = json_object_get(spec, "burst");
	if (rps) {
		if (!json_is_number(rps) || json_number_value(rps) < 0) {
			snprintf(err, errlen, "\"rps\" must be a number >= 0");
			return -1;
		}
		l.rps = json_number_value(rps);
		l.burst = l.rps < 1 ? 1 : l.rps;
	}
	if (burst) {
		if (!json_is_number(burst) || json_number_value(burst) < 1) {
			snprintf(err, errlen, "\"burst\" must be a number >= 1");
			return -1;
		}
		l.burst = json_number_value(burst);
	}
	long long quota, window;
	if (get_int(spec, "quota", l.quota, 0, 1000000000, &quota, err, errlen) < 0 ||
	    get_int(spec, "quota_window_s", l.quota_window_s, 1, 86400 * 31, &window, err, errlen) < 0)
		return -1;
	l.quota = (long) quota;
	l.quota_window_s = (long) window;
	pthread_mutex_lock(&f->mu);
	f->limits[p] = l;
	bucket_refill(&f->buckets[p], &l);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int
parse_platform_arg(const char *arg, emu_platform_t *p, const char **rest, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	char name[16];
	if (eq == NULL || (size_t) (eq - arg) >= sizeof(name)) {
		snprintf(err, errlen, "invalid limit \"%s\": expected PLATFORM=VALUE", arg);
		return -1;
	}
	memcpy(name, arg, (size_t) (eq - arg));
	name[eq - arg] = '\0';
	if (!emu_platform_from_name(name, p)) {
		snprintf(err, errlen, "invalid limit \"%s\": unknown platform \"%s\"", arg, name);
		return -1;
	}
	*rest = eq + 1;
	return 0;
}

int
emu_limits_set_rate_arg(emu_faults_t *f, const char *arg, char *err, size_t errlen)
{
	emu_platform_t p;
	const char *rest;
	if (parse_platform_arg(arg, &p, &rest, err, errlen) < 0)
		return -1;
	char *end;
	double rps = strtod(rest, &end), burst = rps < 1 ? 1 : rps;
	if (end == rest || rps < 0) {
		snprintf(err, errlen, "invalid rate limit \"%s\": expected PLATFORM=RPS[:BURST]", arg);
		return -1;
	}
	if (*end == ':') {
		const char *b = end + 1;
		burst = strtod(b, &end);
		if (end == b || burst < 1) {
			snprintf(err, errlen, "invalid rate limit \"%s\": burst must be >= 1", arg);
			return -1;
		}
	}
	if (*end != '\0') {
		snprintf(err, errlen, "invalid rate limit \"%s\": expected PLATFORM=RPS[:BURST]", arg);
		return -1;
	}
	pthread_mutex_lock(&f->mu);
	f->limits[p].rps = rps;
	f->limits[p].burst = burst;
	bucket_refill(&f->buckets[p], &f->limits[p]);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

int
emu_limits_set_quota_arg(emu_faults_t *f, const char *arg, char *err, size_t errlen)
{
	emu_platform_t p;
	const char *rest;
	if (parse_platform_arg(arg, &p, &rest, err, errlen) < 0)
		return -1;
	char *end;
	long quota = strtol(rest, &end, 10), window = 86400;
	if (end == rest || quota < 0) {
		snprintf(err, errlen, "invalid quota \"%s\": expected PLATFORM=REQUESTS[/WINDOW_SECONDS]", arg);
		return -1;
	}
	if (*end == '/') {
		const char *w = end + 1;
		window = strtol(w, &end, 10);
		if (end == w || window < 1) {
			snprintf(err, errlen, "invalid quota \"%s\": window must be >= 1 second", arg);
			return -1;
		}
	}
	if (*end != '\0') {
		snprintf(err, errlen, "invalid quota \"%s\": expected PLATFORM=REQUESTS[/WINDOW_SECONDS]", arg);
		return -1;
	}
	pthread_mutex_lock(&f->mu);
	f->limits[p].quota = quota;
	f->limits[p].quota_window_s = window;
	bucket_refill(&f->buckets[p], &f->limits[p]);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

void
emu_limits_commit_defaults(emu_faults_t *f)
{
	pthread_mutex_lock(&f->mu);
	memcpy(f->defaults, f->limits, sizeof(f->limits));
	pthread_mutex_unlock(&f->mu);
}

void
emu_limits_reset(emu_faults_t *f)
{
	pthread_mutex_lock(&f->mu);
	memcpy(f->limits, f->defaults, sizeof(f->limits));
	for (int i = 0; i < EMU_NPLATFORMS; i++)
		bucket_refill(&f->buckets[i], &f->limits[i]);
	pthread_mutex_unlock(&f->mu);
}

json_t *
emu_limits_json(emu_faults_t *f)
{
	json_t *o = json_object();
	pthread_mutex_lock(&f->mu);
	for (int i = 0; i < EMU_NPLATFORMS; i++) {
		const struct limits *l = &f->limits[i];
		json_object_set_new(o, emu_platform_name(i),
				    json_pack("{s:f,s:f,s:I,s:I,s:I}", "rps", l->rps, "burst", l->burst,
					      "quota", (json_int_t) l->quota,
					      "quota_window_s", (json_int_t) l->quota_window_s,
					      "quota_used", (json_int_t) f->buckets[i].used));
	}
	pthread_mutex_unlock(&f->mu);
	return o;
}

emu_limit_result_t
emu_limits_check(emu_faults_t *f, emu_platform_t p, int *retry_after_s, long *used, long *quota)
{
	emu_limit_result_t res = EMU_LIMIT_OK;
	int64_t now = emu_now_ms();
	pthread_mutex_lock(&f->mu);
	const struct limits *l = &f->limits[p];
	struct bucket *b = &f->buckets[p];
	*retry_after_s = 0;
	if (l->rps > 0) {
		b->tokens += (double) (now - b->last_ms) / 1000.0 * l->rps;
		if (b->tokens > l->burst)
			b->tokens = l->burst;
		b->last_ms = now;
		if (b->tokens < 1.0) {
			double wait = (1.0 - b->tokens) / l->rps;
			*retry_after_s = (int) ceil(wait) < 1 ? 1 : (int) ceil(wait);
			res = EMU_LIMIT_RATE;
			goto out;
		}
		b->tokens -= 1.0;
	}
	if (l->quota > 0) {
		int64_t window_ms = (int64_t) l->quota_window_s * 1000;
		if (now - b->window_start_ms >= window_ms) {
			b->window_start_ms = now;
			b->used = 0;
		}
		if (b->used >= l->quota) {
			int64_t left = b->window_start_ms + window_ms - now;
			*retry_after_s = (int) ((left + 999) / 1000);
			res = EMU_LIMIT_QUOTA;
			goto out;
		}
		b->used++;
	}
out:
	*used = b->used;
	*quota = l->quota;
	pthread_mutex_unlock(&f->mu);
	return res;
}
