/*
 * pg_conn.c — DSN parsing, connections and redaction; see pg_conn.h.
 */
#include "pg_conn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redact.h"
#include "xalloc.h"

struct pgcap_dsn {
	size_t n;
	char **keywords;   /* NULL-terminated after n entries */
	char **values;
	char *password;    /* NULL when the DSN has none */
	char *display;     /* redacted DSN */
};

pgcap_dsn_t *
pgcap_dsn_parse(const char *dsn, char *err, size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
	pgcap_dsn_t *d = NULL;
	char shown[1024];

	redact_dsn(dsn, shown, sizeof(shown));
	if (opts == NULL) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", perr ? perr : "out of memory");
		/* libpq may echo the offending fragment: mask anything secret-looking. */
		char *pw = strstr(dsn, "password=");
		if (pw) {
			char secret[256];
			size_t k = strcspn(pw + 9, " &'");
			if (k >= sizeof(secret))
				k = sizeof(secret) - 1;
			memcpy(secret, pw + 9, k);
			secret[k] = '\0';
			redact_secret_in_place(msg, secret);
		}
		size_t l = strlen(msg);
		while (l && (msg[l - 1] == '\n' || msg[l - 1] == '.'))
			msg[--l] = '\0';
		snprintf(err, errlen, "invalid connection string \"%s\": %s", shown, msg);
		goto out;
	}
	d = xcalloc(1, sizeof(*d));
	size_t count = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		count++;
	d->keywords = xcalloc(count + 4, sizeof(char *));
	d->values = xcalloc(count + 4, sizeof(char *));
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (o->val == NULL || strcmp(o->keyword, "replication") == 0)
			continue;
		if (strcmp(o->keyword, "password") == 0 && o->val[0])
			d->password = xstrdup(o->val);
		d->keywords[d->n] = xstrdup(o->keyword);
		d->values[d->n] = xstrdup(o->val);
		d->n++;
	}
	d->display = xstrdup(shown);
out:
	if (perr)
		PQfreemem(perr);
	if (opts)
		PQconninfoFree(opts);
	return d;
}

void
pgcap_dsn_free(pgcap_dsn_t *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->keywords[i]);
		free(d->values[i]);
	}
	free(d->keywords);
	free(d->values);
	free(d->password);
	free(d->display);
	free(d);
}

const char *
pgcap_dsn_display(const pgcap_dsn_t *d)
{
	return d->display;
}

static bool
has_keyword(const pgcap_dsn_t *d, const char *kw)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->keywords[i], kw) == 0)
			return true;
	return false;
}

PGconn *
pgcap_connect(const pgcap_dsn_t *d, bool replication, char *err, size_t errlen)
{
	const char **kw = xcalloc(d->n + 4, sizeof(char *));
	const char **val = xcalloc(d->n + 4, sizeof(char *));
	size_t k = 0;
	PGconn *conn = NULL;

	for (size_t i = 0; i < d->n; i++) {
		/* Our text is UTF-8 on the wire whatever the DSN says. */
		if (strcmp(d->keywords[i], "client_encoding") == 0)
			continue;
		kw[k] = d->keywords[i];
		val[k++] = d->values[i];
	}
	kw[k] = "client_encoding";
	val[k++] = "UTF8";
	if (!has_keyword(d, "application_name")) {
		kw[k] = "application_name";
		val[k++] = "steward";
	}
	if (replication) {
		kw[k] = "replication";
		val[k++] = "database";
	}
	kw[k] = NULL;
	val[k] = NULL;
	conn = PQconnectdbParams(kw, val, 0);
	if (conn == NULL) {
		snprintf(err, errlen, "could not connect to \"%s\": out of memory", d->display);
		goto out;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		char what[1200];
		snprintf(what, sizeof(what), "could not connect to \"%s\"%s", d->display,
			 replication ? " for replication" : "");
		pgcap_error(d, what, PQerrorMessage(conn), err, errlen);
		PQfinish(conn);
		conn = NULL;
	}
out:
	free(kw);
	free(val);
	return conn;
}

void
pgcap_error(const pgcap_dsn_t *d, const char *what, const char *text, char *err,
	    size_t errlen)
{
	char msg[2048];
	snprintf(msg, sizeof(msg), "%s", text ? text : "");
	size_t l = strlen(msg);
	while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
		msg[--l] = '\0';
	/* Multi-line libpq messages read better on one line. */
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (d && d->password)
		redact_secret_in_place(msg, d->password);
	if (what && *what)
		snprintf(err, errlen, "%s: %s", what, msg);
	else
		snprintf(err, errlen, "%s", msg);
	if (d && d->password)
		redact_secret_in_place(err, d->password);
}

const char *
pgcap_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

bool
pgcap_lsn_parse(const char *text, uint64_t *lsn)
{
	unsigned hi, lo;
	char tail;
	if (text == NULL || sscanf(text, "%X/%X%c", &hi, &lo, &tail) != 2)
		return false;
	*lsn = (uint64_t) hi << 32 | lo;
	return true;
}

void
pgcap_lsn_format(uint64_t lsn, char *out, size_t outlen)
{
	snprintf(out, outlen, "%X/%X", PGCAP_LSN_ARGS(lsn));
}

int64_t
pgcap_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
pgcap_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
