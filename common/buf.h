/*
 * buf.h — a growable byte buffer (Redis' sds without the header trick).
 *
 * The buffer owns its memory; buf_free releases it.  data is always NUL
 * terminated after any append so text users can treat it as a C string.
 */
#ifndef STEWARD_COMMON_BUF_H
#define STEWARD_COMMON_BUF_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct buf {
	char *data;
	size_t len;
	size_t cap;
} buf_t;

#define BUF_INIT {NULL, 0, 0}

void buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_append_str(buf_t *b, const char *s);
void buf_append_char(buf_t *b, char c);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(buf_t *b);
void buf_free(buf_t *b);
/* Hand the data to the caller (who frees it) and reset the buffer. */
char *buf_steal(buf_t *b);

/*
 * buf_append for hot paths (a value's text, per row): the bytes usually
 * fit the room left in a reused buffer, so copy them inline and call out
 * only to grow.
 */
static inline void
buf_append_inline(buf_t *b, const void *p, size_t n)
{
	if (b->len + n < b->cap) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
	} else {
		buf_append(b, p, n);
	}
}

/* Unsigned integers of n <= 8 bytes, little- and big-endian (binary formats' fields). */
static inline uint64_t
buf_get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = n; i > 0; i--)
		v = (v << 8) | p[i - 1];
	return v;
}

static inline uint64_t
buf_get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/*
 * The same for 1 <= n <= 8 in one load, where the 8 bytes at p may be read
 * (the caller knows the buffer goes on): hot decoders' fixed-width fields.
 */
static inline uint64_t
buf_get_le_wide(const uint8_t *p, unsigned n)
{
	uint64_t v;
	memcpy(&v, p, 8);
	v = le64toh(v);
	return n >= 8 ? v : v & ((1ull << (8 * n)) - 1);
}

static inline uint64_t
buf_get_be_wide(const uint8_t *p, unsigned n)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return be64toh(v) >> (64 - 8 * n);
}

#endif
