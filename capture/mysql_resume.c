/*
 * mysql_resume.c — the resume file and MariaDB GTID states (mysql_resume.h).
 */
#include "mysql_resume.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

/* A decimal number of at most `max`, all of [p, end); false otherwise. */
static bool
parse_number(const char *p, const char *end, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (p == end)
		return false;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		unsigned d = (unsigned) (*p - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

bool
mysql_gtid_parse(const char *text, size_t len, mysql_gtid_t *out)
{
	const char *end = text + len;
	const char *d1 = memchr(text, '-', len);
	const char *d2 = d1 ? memchr(d1 + 1, '-', (size_t) (end - d1 - 1)) : NULL;
	uint64_t domain, server, seq;
	if (!d2 || !parse_number(text, d1, UINT32_MAX, &domain) ||
	    !parse_number(d1 + 1, d2, UINT32_MAX, &server) ||
	    !parse_number(d2 + 1, end, UINT64_MAX, &seq))
		return false;
	out->domain = (uint32_t) domain;
	out->server = (uint32_t) server;
	out->seq = seq;
	return true;
}

bool
mysql_gtid_state_put(mysql_gtid_state_t *st, const mysql_gtid_t *g)
{
	size_t i = 0;
	while (i < st->n && st->g[i].domain < g->domain)
		i++;
	if (i < st->n && st->g[i].domain == g->domain) {
		st->g[i] = *g;
		return true;
	}
	if (st->n == MYSQL_GTID_DOMAINS_MAX)
		return false;
	memmove(&st->g[i + 1], &st->g[i], (st->n - i) * sizeof(st->g[0]));
	st->g[i] = *g;
	st->n++;
	return true;
}

bool
mysql_gtid_state_parse(const char *text, mysql_gtid_state_t *out, char *err, size_t errlen)
{
	out->n = 0;
	const char *p = text;
	while (*p == ' ')
		p++;
	if (!*p)
		return true;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t) (comma - p) : strlen(p);
		while (len && p[len - 1] == ' ')
			len--;
		mysql_gtid_t g;
		if (!mysql_gtid_parse(p, len, &g)) {
			snprintf(err, errlen, "invalid GTID \"%.*s\" (expected DOMAIN-SERVER-SEQUENCE)",
				 (int) (len > 60 ? 60 : len), p);
			return false;
		}
		for (size_t i = 0; i < out->n; i++)
			if (out->g[i].domain == g.domain) {
				snprintf(err, errlen, "GTID state names domain %" PRIu32 " twice", g.domain);
				return false;
			}
		if (!mysql_gtid_state_put(out, &g)) {
			snprintf(err, errlen, "GTID state has more than %d domains", MYSQL_GTID_DOMAINS_MAX);
			return false;
		}
		if (!comma)
			return true;
		p = comma + 1;
		while (*p == ' ')
			p++;
	}
}

size_t
mysql_gtid_state_format(const mysql_gtid_state_t *st, char *out, size_t outlen)
{
	size_t n = 0;
	if (outlen)
		out[0] = '\0';
	for (size_t i = 0; i < st->n; i++) {
		char one[64];
		int k = snprintf(one, sizeof one, "%s%" PRIu32 "-%" PRIu32 "-%" PRIu64, i ? "," : "",
				 st->g[i].domain, st->g[i].server, st->g[i].seq);
		if (n + (size_t) k < outlen)
			memcpy(out + n, one, (size_t) k + 1);
		else if (n < outlen)
			out[n] = '\0';
		n += (size_t) k;
	}
	return n;
}

/* ---- the resume file ---- */

bool
mysql_resume_load(const char *dir, mysql_resume_t *out, char *err, size_t errlen)
{
	char path[4096], line[MYSQL_GTID_STATE_TEXT_MAX + 64], name[512];
	unsigned long long off;
	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	snprintf(path, sizeof(path), "%s/mysql-resume", dir);
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno != ENOENT)
			snprintf(err, errlen, "could not open file \"%s\": %s", path, strerror(errno));
		return false;
	}
	bool ok = fgets(line, sizeof line, f) && sscanf(line, "%511s %llu", name, &off) == 2;
	while (ok && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char lerr[256];
		if (!strncmp(line, "gtid ", 5)) {
			ok = mysql_gtid_state_parse(line + 5, &out->gtid, lerr, sizeof lerr);
			out->has_gtid = ok;
		} else if (!strncmp(line, "epoch ", 6)) {
			uint64_t e = 0;
			ok = parse_number(line + 6, line + strlen(line), UINT16_MAX, &e);
			out->epoch = (uint32_t) e;
			snprintf(lerr, sizeof lerr, "invalid epoch \"%.20s\"", line + 6);
		} else {
			ok = false;
			snprintf(lerr, sizeof lerr, "unknown line \"%.40s\"", line);
		}
		if (!ok)
			snprintf(err, errlen, "resume file \"%s\" is damaged: %s", path, lerr);
	}
	fclose(f);
	if (!ok) {
		if (!err[0])
			snprintf(err, errlen, "resume file \"%s\" is damaged: expected \"FILE OFFSET\" "
				 "on its first line", path);
		return false;
	}
	out->file = xstrdup(name);
	out->offset = off;
	return true;
}

bool
mysql_resume_save(const char *dir, const mysql_resume_t *r, char *err, size_t errlen)
{
	char path[4096], tmp[4096];
	snprintf(path, sizeof(path), "%s/mysql-resume", dir);
	snprintf(tmp, sizeof(tmp), "%s/mysql-resume.tmp", dir);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		snprintf(err, errlen, "could not create file \"%s\": %s", tmp, strerror(errno));
		return false;
	}
	fprintf(f, "%s %llu\n", r->file, (unsigned long long) r->offset);
	if (r->has_gtid) {
		char text[MYSQL_GTID_STATE_TEXT_MAX];
		mysql_gtid_state_format(&r->gtid, text, sizeof text);
		fprintf(f, "gtid %s\n", text);
	}
	if (r->epoch)
		fprintf(f, "epoch %" PRIu32 "\n", r->epoch);
	bool ok = fflush(f) == 0 && fdatasync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		snprintf(err, errlen, "could not write file \"%s\": %s", path, strerror(errno));
		return false;
	}
	return true;
}

void
mysql_resume_clear(mysql_resume_t *r)
{
	if (!r)
		return;
	free(r->file);
	r->file = NULL;
}
