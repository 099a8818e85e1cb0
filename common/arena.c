/*
 * arena.c — bump allocator; see arena.h.
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct block {
	struct block *next;
	size_t size;
	size_t used;
	/* payload follows, 16-byte aligned */
	max_align_t data[];
};

struct arena {
	struct block *head;  /* current block */
	size_t block_size;
	size_t used_total;
};

static struct block *
block_new(size_t size)
{
	struct block *b = xmalloc(sizeof(*b) + size);
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

arena_t *
arena_create(size_t block_size)
{
	arena_t *a = xcalloc(1, sizeof(*a));
	a->block_size = block_size ? block_size : 64 * 1024;
	a->head = block_new(a->block_size);
	return a;
}

void
arena_destroy(arena_t *a)
{
	if (a == NULL)
		return;
	struct block *b = a->head;
	while (b) {
		struct block *n = b->next;
		free(b);
		b = n;
	}
	free(a);
}

void
arena_reset(arena_t *a)
{
	/* Keep only the oldest block (the tail of the list) so a steady state
	 * allocates nothing; oversized blocks from a large change are freed. */
	struct block *b = a->head;
	while (b->next) {
		struct block *n = b->next;
		free(b);
		b = n;
	}
	if (b->size > a->block_size) {
		free(b);
		b = block_new(a->block_size);
	}
	b->used = 0;
	a->head = b;
	a->used_total = 0;
}

void *
arena_alloc(arena_t *a, size_t n)
{
	n = (n + 15) & ~(size_t) 15;
	if (n == 0)
		n = 16;
	struct block *b = a->head;
	if (b->size - b->used < n) {
		size_t size = n > a->block_size ? n : a->block_size;
		struct block *nb = block_new(size);
		nb->next = b;
		a->head = nb;
		b = nb;
	}
	void *p = (char *) b->data + b->used;
	b->used += n;
	a->used_total += n;
	return p;
}

void *
arena_calloc(arena_t *a, size_t n)
{
	void *p = arena_alloc(a, n);
	memset(p, 0, n);
	return p;
}

char *
arena_strndup(arena_t *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
arena_strdup(arena_t *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

void *
arena_memdup(arena_t *a, const void *src, size_t n)
{
	void *p = arena_alloc(a, n);
	if (n)
		memcpy(p, src, n);
	return p;
}

size_t
arena_used(const arena_t *a)
{
	return a->used_total;
}
