/*
 * buf.h — a growable byte buffer (Redis' sds without the header trick).
 *
 * The buffer owns its memory; buf_free releases it.  data is always NUL
 * terminated after any append so text users can treat it as a C string.
 */
#ifndef STEWARD_COMMON_BUF_H
#define STEWARD_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

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

#endif
