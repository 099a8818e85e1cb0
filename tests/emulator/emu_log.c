/*
 * emu_log.c — request log (a ring of JSON objects) and counters (a JSON
 * object updated in place), under one mutex.
 */
#include "emu_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct emu_log {
	pthread_mutex_t mu;
	json_t **ring;
	size_t capacity, start, count;
	long long next_seq;
	long long dropped;
	json_t *stats;
};

emu_log_t *
emu_log_create(size_t capacity)
{
	emu_log_t *log = xcalloc(1, sizeof(*log));
	pthread_mutex_init(&log->mu, NULL);
	log->capacity = capacity ? capacity : 100000;
	log->ring = xcalloc(log->capacity, sizeof(json_t *));
	log->next_seq = 1;
	log->stats = json_object();
	return log;
}

static void
clear_locked(emu_log_t *log)
{
	for (size_t i = 0; i < log->count; i++)
		json_decref(log->ring[(log->start + i) % log->capacity]);
	log->start = log->count = 0;
	log->dropped = 0;
	json_object_clear(log->stats);
}

void
emu_log_reset(emu_log_t *log)
{
	pthread_mutex_lock(&log->mu);
	clear_locked(log);
	pthread_mutex_unlock(&log->mu);
}

void
emu_log_destroy(emu_log_t *log)
{
	if (log == NULL)
		return;
	clear_locked(log);
	json_decref(log->stats);
	free(log->ring);
	pthread_mutex_destroy(&log->mu);
	free(log);
}

/* obj[key] += 1, creating the counter (and obj[key] parents) as needed. */
static void
bump(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (v)
		json_integer_set(v, json_integer_value(v) + 1);
	else
		json_object_set_new(obj, key, json_integer(1));
}

static json_t *
child(json_t *obj, const char *key)
{
	json_t *c = json_object_get(obj, key);
	if (c == NULL) {
		c = json_object();
		json_object_set_new(obj, key, c);
	}
	return c;
}

static json_t *
text_or_null(const char *s, size_t n)
{
	if (s == NULL)
		return json_null();
	json_t *v = json_stringn(s, n);
	return v ? v : json_string("(not UTF-8)");
}

void
emu_log_add(emu_log_t *log, const emu_log_entry_t *e)
{
	char digest[32], when[40];
	emu_digest(e->body ? e->body : "", e->body_len, digest, sizeof(digest));
	emu_utc_now(when, sizeof(when));
	size_t shown = e->body_len > EMU_LOG_BODY_MAX ? EMU_LOG_BODY_MAX : e->body_len;
	const char *pname = emu_platform_name(e->platform);
	json_t *o = json_object();
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "platform", json_string(pname));
	json_object_set_new(o, "method", json_string(e->method));
	json_object_set_new(o, "path", text_or_null(e->path, e->path ? strlen(e->path) : 0));
	json_object_set_new(o, "query", text_or_null(e->query, e->query ? strlen(e->query) : 0));
	json_object_set_new(o, "idempotency_key", text_or_null(e->idempotency_key,
		e->idempotency_key ? strlen(e->idempotency_key) : 0));
	json_object_set_new(o, "correlation_id", text_or_null(e->correlation_id,
		e->correlation_id ? strlen(e->correlation_id) : 0));
	json_object_set_new(o, "status", json_integer(e->status));
	json_object_set_new(o, "body_digest", json_string(digest));
	json_object_set_new(o, "body_bytes", json_integer((json_int_t) e->body_len));
	json_object_set_new(o, "body", e->body_len ? text_or_null(e->body, shown) : json_null());
	json_object_set_new(o, "response", e->response && *e->response
		? text_or_null(e->response, strlen(e->response) > EMU_LOG_BODY_MAX
			       ? EMU_LOG_BODY_MAX : strlen(e->response))
		: json_null());
	json_object_set_new(o, "duration_ms", json_integer(e->duration_ms));
	json_object_set_new(o, "fault", e->fault ? json_string(e->fault) : json_null());
	json_object_set_new(o, "refused", e->refused ? json_string(e->refused) : json_null());
	json_object_set_new(o, "replayed", json_boolean(e->replayed));
	const char *wname = emu_write_name(e->write);
	json_object_set_new(o, "write", wname ? json_string(wname) : json_null());

	char status[16], ms[48];
	snprintf(status, sizeof(status), "%d", e->status);
	snprintf(ms, sizeof(ms), "%s %d", e->method, e->status);

	pthread_mutex_lock(&log->mu);
	json_object_set_new(o, "seq", json_integer(log->next_seq++));
	if (log->count == log->capacity) {
		json_decref(log->ring[log->start]);
		log->start = (log->start + 1) % log->capacity;
		log->count--;
		log->dropped++;
	}
	log->ring[(log->start + log->count) % log->capacity] = o;
	log->count++;

	json_t *p = child(log->stats, pname);
	bump(p, "requests");
	bump(child(p, "by_method"), e->method);
	bump(child(p, "by_status"), status);
	bump(child(p, "by_method_status"), ms);
	json_t *writes = child(p, "writes");
	if (wname) {
		bump(writes, wname);
		bump(writes, "total");
	}
	if (e->replayed)
		bump(p, "idempotent_replays");
	if (e->fault)
		bump(child(p, "faults"), e->fault);
	if (e->refused)
		bump(p, e->refused);
	pthread_mutex_unlock(&log->mu);
}

json_t *
emu_log_requests_json(emu_log_t *log, long long since, const char *platform,
		      const char *method, int status, size_t limit)
{
	json_t *arr = json_array();
	pthread_mutex_lock(&log->mu);
	long long last = since;
	for (size_t i = 0; i < log->count; i++) {
		json_t *o = log->ring[(log->start + i) % log->capacity];
		long long seq = json_integer_value(json_object_get(o, "seq"));
		if (seq <= since)
			continue;
		if (platform && strcmp(platform, json_string_value(json_object_get(o, "platform"))) != 0)
			continue;
		if (method && strcasecmp(method, json_string_value(json_object_get(o, "method"))) != 0)
			continue;
		if (status && json_integer_value(json_object_get(o, "status")) != status)
			continue;
		if (limit && json_array_size(arr) >= limit)
			break;
		json_array_append(arr, o);
		last = seq;
	}
	json_t *res = json_pack("{s:o,s:I,s:I}", "requests", arr, "next_since", (json_int_t) last,
				"dropped", (json_int_t) log->dropped);
	pthread_mutex_unlock(&log->mu);
	return res;
}

json_t *
emu_log_stats_json(emu_log_t *log)
{
	pthread_mutex_lock(&log->mu);
	json_t *copy = json_deep_copy(log->stats);
	pthread_mutex_unlock(&log->mu);
	json_t *total = json_object();
	long long requests = 0, writes = 0, replays = 0;
	const char *key;
	json_t *p;
	json_object_foreach(copy, key, p) {
		requests += json_integer_value(json_object_get(p, "requests"));
		writes += json_integer_value(json_object_get(json_object_get(p, "writes"), "total"));
		replays += json_integer_value(json_object_get(p, "idempotent_replays"));
	}
	json_object_set_new(total, "requests", json_integer(requests));
	json_object_set_new(total, "writes", json_integer(writes));
	json_object_set_new(total, "idempotent_replays", json_integer(replays));
	return json_pack("{s:o,s:o}", "total", total, "platforms", copy);
}
