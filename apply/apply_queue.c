/*
 * apply_queue.c — per-entity FIFOs of outbox rows and the ready list of
 * their heads (apply_queue.h); FIFOs are found by a string-keyed hash table
 * (open hashing, doubled at load factor 1).
 */
#include "apply_queue.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"

struct apply_qgroup {
	char *key;                /* target \x1f entity \x1f entity id */
	uint64_t hash;
	apply_qrow_t *head, *tail;
	struct apply_qgroup *next;  /* hash chain */
};

struct apply_queue {
	struct apply_qgroup **buckets;
	size_t nbuckets, ngroups, nrows;
	apply_qrow_t *rfirst, *rlast;   /* ready list */
	int64_t last_id;
};

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;  /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char) *s;
		h *= 1099511628211ull;
	}
	return h;
}

apply_queue_t *
apply_queue_new(void)
{
	apply_queue_t *q = xcalloc(1, sizeof *q);
	q->nbuckets = 256;
	q->buckets = xcalloc(q->nbuckets, sizeof *q->buckets);
	return q;
}

static void
row_clear(apply_outbox_row_t *r)
{
	free(r->entity);
	free(r->entity_id);
	free(r->target);
	free(r->idem_key);
	free(r->request);
	free(r->source);
	free(r->last_error);
}

void
apply_queue_free(apply_queue_t *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->nbuckets; i++)
		for (struct apply_qgroup *g = q->buckets[i], *gn; g; g = gn) {
			gn = g->next;
			for (apply_qrow_t *r = g->head, *rn; r; r = rn) {
				rn = r->next_same;
				row_clear(&r->row);
				free(r);
			}
			free(g->key);
			free(g);
		}
	free(q->buckets);
	free(q);
}

static void
grow(apply_queue_t *q)
{
	size_t n = q->nbuckets * 2;
	struct apply_qgroup **b = xcalloc(n, sizeof *b);
	for (size_t i = 0; i < q->nbuckets; i++)
		for (struct apply_qgroup *g = q->buckets[i], *gn; g; g = gn) {
			gn = g->next;
			g->next = b[g->hash & (n - 1)];
			b[g->hash & (n - 1)] = g;
		}
	free(q->buckets);
	q->buckets = b;
	q->nbuckets = n;
}

static void
ready_append(apply_queue_t *q, apply_qrow_t *r)
{
	r->rprev = q->rlast;
	r->rnext = NULL;
	if (q->rlast)
		q->rlast->rnext = r;
	else
		q->rfirst = r;
	q->rlast = r;
	r->ready = true;
}

static void
ready_unlink(apply_queue_t *q, apply_qrow_t *r)
{
	if (!r->ready)
		return;
	if (r->rprev)
		r->rprev->rnext = r->rnext;
	else
		q->rfirst = r->rnext;
	if (r->rnext)
		r->rnext->rprev = r->rprev;
	else
		q->rlast = r->rprev;
	r->rprev = r->rnext = NULL;
	r->ready = false;
}

void
apply_queue_push(apply_queue_t *q, apply_outbox_row_t *row)
{
	buf_t key = BUF_INIT;
	buf_append_str(&key, row->target);
	buf_append_char(&key, '\x1f');
	buf_append_str(&key, row->entity);
	buf_append_char(&key, '\x1f');
	buf_append_str(&key, row->entity_id);
	uint64_t h = hash_str(key.data);
	struct apply_qgroup *g = q->buckets[h & (q->nbuckets - 1)];
	while (g && (g->hash != h || strcmp(g->key, key.data) != 0))
		g = g->next;
	if (!g) {
		if (q->ngroups >= q->nbuckets)
			grow(q);
		g = xcalloc(1, sizeof *g);
		g->key = buf_steal(&key);
		g->hash = h;
		g->next = q->buckets[h & (q->nbuckets - 1)];
		q->buckets[h & (q->nbuckets - 1)] = g;
		q->ngroups++;
	}
	buf_free(&key);
	apply_qrow_t *r = xcalloc(1, sizeof *r);
	r->row = *row;
	memset(row, 0, sizeof *row);
	r->group = g;
	if (g->tail) {
		g->tail->next_same = r;
		g->tail = r;
	} else {
		g->head = g->tail = r;
		ready_append(q, r);
	}
	if (r->row.id > q->last_id)
		q->last_id = r->row.id;
	q->nrows++;
}

size_t
apply_queue_len(const apply_queue_t *q)
{
	return q->nrows;
}

int64_t
apply_queue_last_id(const apply_queue_t *q)
{
	return q->last_id;
}

apply_qrow_t *
apply_queue_first(apply_queue_t *q)
{
	return q->rfirst;
}

apply_qrow_t *
apply_queue_next(apply_qrow_t *r)
{
	return r->rnext;
}

void
apply_queue_hold(apply_queue_t *q, apply_qrow_t *r)
{
	ready_unlink(q, r);
}

void
apply_queue_release(apply_queue_t *q, apply_qrow_t *r)
{
	if (!r->ready)
		ready_append(q, r);
}

void
apply_queue_remove(apply_queue_t *q, apply_qrow_t *r)
{
	struct apply_qgroup *g = r->group;
	ready_unlink(q, r);
	if (g->head != r)
		abort();  /* only heads are handed out */
	g->head = r->next_same;
	if (g->head) {
		ready_append(q, g->head);
	} else {
		struct apply_qgroup **pp = &q->buckets[g->hash & (q->nbuckets - 1)];
		while (*pp != g)
			pp = &(*pp)->next;
		*pp = g->next;
		free(g->key);
		free(g);
		q->ngroups--;
	}
	row_clear(&r->row);
	free(r);
	q->nrows--;
}
