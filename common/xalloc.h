/*
 * xalloc.h — the project's one out-of-memory policy.
 *
 * Every allocation in Steward goes through these wrappers.  On failure they
 * print a message naming the size and abort: a CDC agent that cannot
 * allocate cannot make progress safely, and scattered NULL checks that are
 * never exercised are worse than one tested policy.  Callers therefore never
 * check the result for NULL.
 */
#ifndef STEWARD_COMMON_XALLOC_H
#define STEWARD_COMMON_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
/* printf into a newly allocated string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
