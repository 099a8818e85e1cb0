/*
 * apply_replay.c — per-entity golden records for a --replay-from range,
 * rebuilt from the stored ones and advanced in memory (apply_replay.h).
 */
#include "apply_replay.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define REPLAY_BUCKETS 4096

typedef struct replay_entry {
	char *key;                 /* entity '\x1f' canonical id */
	rules_golden_t *golden;
	struct replay_entry *next;
} replay_entry_t;

struct apply_replay {
	replay_entry_t *buckets[REPLAY_BUCKETS];
};

apply_replay_t *
apply_replay_new(void)
{
	return xcalloc(1, sizeof(apply_replay_t));
}

void
apply_replay_free(apply_replay_t *rp)
{
	if (!rp)
		return;
	for (size_t i = 0; i < REPLAY_BUCKETS; i++) {
		for (replay_entry_t *e = rp->buckets[i], *nx; e; e = nx) {
			nx = e->next;
			rules_golden_free(e->golden);
			free(e->key);
			free(e);
		}
	}
	free(rp);
}

static size_t
hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ull;  /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 1099511628211ull;
	return (size_t) (h % REPLAY_BUCKETS);
}

/* Did change m create the entity?  The canonical id names the system and
 * key that first reported it. */
static bool
created_by(const rules_t *r, const rules_mapped_t *m, const char *canonical)
{
	const char *sys = rules_system_name(r, m->system);
	size_t n = strlen(sys);
	return m->is_insert && m->key && strncmp(canonical, sys, n) == 0 && canonical[n] == ':' &&
	       strcmp(canonical + n + 1, m->key) == 0;
}

/* The stored record with what m's source set at or after m taken back. */
static rules_golden_t *
rewind_golden(const rules_t *r, rules_golden_t *g, const rules_mapped_t *m,
	      const char *canonical)
{
	if (created_by(r, m, canonical)) {
		rules_golden_free(g);
		return rules_golden_new(r, m->entity);
	}
	for (size_t i = 0; i < g->nfields; i++) {
		rules_golden_field_t *f = &g->fields[i];
		/* Positions compare within one source only: m's system's. */
		if (f->owner == m->system && f->position.len &&
		    position_cmp(&f->position, &m->position) >= 0) {
			free(f->value);
			f->value = NULL;
			f->owner = -1;
			f->position.len = 0;
		}
	}
	if ((size_t) m->system < g->nsystems)
		g->seen[m->system].len = 0;
	return g;
}

rules_golden_t *
apply_replay_golden(apply_replay_t *rp, const rules_t *r, const char *entity,
		    const char *canonical, const rules_mapped_t *m, rules_golden_t *stored)
{
	char *key = xasprintf("%s\x1f%s", entity, canonical);
	size_t b = hash_key(key);
	for (replay_entry_t *e = rp->buckets[b]; e; e = e->next) {
		if (strcmp(e->key, key) == 0) {
			free(key);
			rules_golden_free(stored);
			return e->golden;
		}
	}
	replay_entry_t *e = xcalloc(1, sizeof *e);
	e->key = key;
	e->golden = rewind_golden(r, stored, m, canonical);
	e->next = rp->buckets[b];
	rp->buckets[b] = e;
	return e->golden;
}
