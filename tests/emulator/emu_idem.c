/*
 * emu_idem.c — idempotency-key store: a chained hash table under one mutex.
 */
#include "emu_idem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define NBUCKETS 4096

struct entry {
	char *key;
	char *fingerprint;
	int64_t created_ms;
	int status;          /* 0 while in progress */
	char *body;
	struct entry *next;
};

struct emu_idem {
	pthread_mutex_t mu;
	struct entry *buckets[NBUCKETS];
	size_t count;
};

static size_t
hash(const char *s)
{
	size_t h = 5381;
	for (; *s; s++)
		h = h * 33 + (unsigned char) *s;
	return h % NBUCKETS;
}

emu_idem_t *
emu_idem_create(void)
{
	emu_idem_t *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

static void
entry_free(struct entry *e)
{
	free(e->key);
	free(e->fingerprint);
	free(e->body);
	free(e);
}

void
emu_idem_clear(emu_idem_t *s)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < NBUCKETS; i++) {
		struct entry *e = s->buckets[i];
		while (e) {
			struct entry *next = e->next;
			entry_free(e);
			e = next;
		}
		s->buckets[i] = NULL;
	}
	s->count = 0;
	pthread_mutex_unlock(&s->mu);
}

void
emu_idem_destroy(emu_idem_t *s)
{
	if (s == NULL)
		return;
	emu_idem_clear(s);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Find key in its bucket, dropping expired entries on the way. */
static struct entry **
find(emu_idem_t *s, const char *key)
{
	int64_t now = emu_now_ms();
	struct entry **link = &s->buckets[hash(key)];
	while (*link) {
		struct entry *e = *link;
		if (e->status != 0 && now - e->created_ms > EMU_IDEM_TTL_MS) {
			*link = e->next;
			entry_free(e);
			s->count--;
			continue;
		}
		if (strcmp(e->key, key) == 0)
			return link;
		link = &e->next;
	}
	return link;
}

emu_idem_status_t
emu_idem_begin(emu_idem_t *s, const char *key, const char *fingerprint, emu_resp_t *resp)
{
	emu_idem_status_t st;
	pthread_mutex_lock(&s->mu);
	struct entry **link = find(s, key);
	struct entry *e = *link;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->key = xstrdup(key);
		e->fingerprint = xstrdup(fingerprint);
		e->created_ms = emu_now_ms();
		*link = e;
		s->count++;
		st = EMU_IDEM_NEW;
	} else if (strcmp(e->fingerprint, fingerprint) != 0) {
		st = EMU_IDEM_MISMATCH;
	} else if (e->status == 0) {
		st = EMU_IDEM_IN_PROGRESS;
	} else {
		resp->status = e->status;
		buf_reset(&resp->body);
		buf_append_str(&resp->body, e->body);
		st = EMU_IDEM_REPLAY;
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}

void
emu_idem_finish(emu_idem_t *s, const char *key, const emu_resp_t *resp)
{
	pthread_mutex_lock(&s->mu);
	struct entry *e = *find(s, key);
	if (e) {
		e->status = resp->status;
		e->body = xstrdup(resp->body.data ? resp->body.data : "");
	}
	pthread_mutex_unlock(&s->mu);
}

void
emu_idem_abort(emu_idem_t *s, const char *key)
{
	pthread_mutex_lock(&s->mu);
	struct entry **link = find(s, key);
	if (*link && (*link)->status == 0) {
		struct entry *e = *link;
		*link = e->next;
		entry_free(e);
		s->count--;
	}
	pthread_mutex_unlock(&s->mu);
}

size_t
emu_idem_count(emu_idem_t *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = s->count;
	pthread_mutex_unlock(&s->mu);
	return n;
}
