/*
 * arena.h — bump allocator for per-change and per-batch data.
 *
 * Decoders build a record's strings and protobuf-c submessages in an arena,
 * pack them, then reset the arena: no per-field free, and memory stays
 * bounded by the largest batch rather than growing with a transaction.
 * Everything returned is owned by the arena and valid until the next
 * arena_reset or arena_destroy.
 */
#ifndef STEWARD_COMMON_ARENA_H
#define STEWARD_COMMON_ARENA_H

#include <stddef.h>

typedef struct arena arena_t;

arena_t *arena_create(size_t block_size);
void arena_destroy(arena_t *a);          /* accepts NULL */
void arena_reset(arena_t *a);            /* keeps the first block */
void *arena_alloc(arena_t *a, size_t n); /* 16-byte aligned, never NULL */
void *arena_calloc(arena_t *a, size_t n);
char *arena_strdup(arena_t *a, const char *s);
char *arena_strndup(arena_t *a, const char *s, size_t n);
void *arena_memdup(arena_t *a, const void *p, size_t n);
/* Bytes currently handed out (for memory accounting in tests). */
size_t arena_used(const arena_t *a);

#endif
