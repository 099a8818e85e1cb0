/*
 * redact.c — password removal from connection strings.
 */
#include "redact.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"

static const char MASK[] = "********";

static void
copy_out(buf_t *b, char *out, size_t outlen)
{
	if (outlen == 0)
		return;
	size_t n = b->len < outlen - 1 ? b->len : outlen - 1;
	if (n)
		memcpy(out, b->data, n);
	out[n] = '\0';
}

/* URI form: mask userinfo password and any password= query parameter. */
static void
redact_uri(const char *dsn, buf_t *b)
{
	const char *scheme_end = strstr(dsn, "://");
	const char *p = scheme_end + 3;
	buf_append(b, dsn, (size_t) (p - dsn));
	const char *auth_end = strpbrk(p, "/?");
	const char *at = NULL;
	for (const char *q = p; *q && (!auth_end || q < auth_end); q++)
		if (*q == '@')
			at = q;  /* last '@' before the path ends userinfo */
	if (at) {
		const char *colon = memchr(p, ':', (size_t) (at - p));
		if (colon) {
			buf_append(b, p, (size_t) (colon - p + 1));
			buf_append_str(b, MASK);
		} else {
			buf_append(b, p, (size_t) (at - p));
		}
		p = at;
	}
	/* Rest: mask password=… in the query string. */
	while (*p) {
		if ((p[-1] == '?' || p[-1] == '&') && strncasecmp(p, "password=", 9) == 0) {
			buf_append(b, p, 9);
			buf_append_str(b, MASK);
			p += 9;
			while (*p && *p != '&')
				p++;
			continue;
		}
		buf_append_char(b, *p++);
	}
}

/* key=value form: mask the value of password. */
static void
redact_kv(const char *dsn, buf_t *b)
{
	const char *p = dsn;
	while (*p) {
		bool at_word = (p == dsn) || isspace((unsigned char) p[-1]);
		if (at_word && strncasecmp(p, "password", 8) == 0) {
			const char *q = p + 8;
			while (isspace((unsigned char) *q))
				q++;
			if (*q == '=') {
				q++;
				while (isspace((unsigned char) *q))
					q++;
				buf_append_str(b, "password=");
				buf_append_str(b, MASK);
				if (*q == '\'') {
					q++;
					while (*q && *q != '\'') {
						if (*q == '\\' && q[1])
							q++;
						q++;
					}
					if (*q == '\'')
						q++;
				} else {
					while (*q && !isspace((unsigned char) *q))
						q++;
				}
				p = q;
				continue;
			}
		}
		buf_append_char(b, *p++);
	}
}

void
redact_dsn(const char *dsn, char *out, size_t outlen)
{
	buf_t b = BUF_INIT;
	if (dsn == NULL)
		dsn = "";
	if (strstr(dsn, "://"))
		redact_uri(dsn, &b);
	else
		redact_kv(dsn, &b);
	buf_append_str(&b, "");
	copy_out(&b, out, outlen);
	buf_free(&b);
}

void
redact_secret_in_place(char *text, const char *secret)
{
	if (text == NULL || secret == NULL || *secret == '\0')
		return;
	size_t n = strlen(secret);
	for (char *p = strstr(text, secret); p; p = strstr(p + n, secret))
		memset(p, '*', n);
}

/* The copy redact_argv hands out; kept here so it stays reachable. */
static char **argv_copy;

char **
redact_argv(int argc, char **argv)
{
	char **copy = xmalloc(((size_t) argc + 1) * sizeof(char *));
	argv_copy = copy;
	for (int i = 0; i < argc; i++)
		copy[i] = xstrdup(argv[i]);
	copy[argc] = NULL;
	for (int i = 1; i < argc; i++) {
		char *arg = argv[i];
		size_t len = strlen(arg);
		char *masked = xmalloc(len + 64);
		redact_dsn(arg, masked, len + 64);
		if (strcmp(masked, arg) != 0) {
			/*
			 * The password is what differs between the argument and its
			 * redacted form: between their common prefix and suffix.  Masking
			 * in place keeps the length the kernel reports for argv.
			 */
			size_t mlen = strlen(masked), pre = 0, suf = 0;
			while (pre < len && pre < mlen && arg[pre] == masked[pre])
				pre++;
			while (suf < len - pre && suf < mlen - pre && arg[len - 1 - suf] == masked[mlen - 1 - suf])
				suf++;
			memset(arg + pre, '*', len - pre - suf);
		}
		free(masked);
	}
	return copy;
}
