/*
 * mysql_conn.c — MySQL/MariaDB DSNs and connections for the capture agent;
 * see mysql_capture.h.
 */
#include "mysql_capture.h"

#include <errmsg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "exitcodes.h"
#include "redact.h"
#include "xalloc.h"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n) into a new string; NULL on a bad escape. */
static char *
pct_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				free(out);
				return NULL;
			}
			out[o++] = (char) (hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* The host names and addresses that never leave this machine. */
static bool
is_loopback(const char *host)
{
	return !strcasecmp(host, "localhost") || !strcmp(host, "::1") ||
	       !strncmp(host, "127.", 4) || !strcmp(host, "0:0:0:0:0:0:0:1");
}

static bool
set_param(mysql_dsn_t *d, const char *key, const char *val, char *err, size_t errlen)
{
	if (strcmp(key, "ssl-mode") == 0 || strcmp(key, "sslmode") == 0 || strcmp(key, "ssl_mode") == 0) {
		if (!strcasecmp(val, "disabled") || !strcasecmp(val, "disable"))
			d->tls = 0;
		else if (!strcasecmp(val, "required") || !strcasecmp(val, "require") ||
			 !strcasecmp(val, "preferred") || !strcasecmp(val, "prefer"))
			d->tls = 1;
		else if (!strcasecmp(val, "verify-ca") || !strcasecmp(val, "verify_ca") ||
			 !strcasecmp(val, "verify-identity") || !strcasecmp(val, "verify_identity") ||
			 !strcasecmp(val, "verify-full"))
			d->tls = 2;
		else {
			snprintf(err, errlen, "invalid DSN: unknown ssl-mode \"%s\"", val);
			return false;
		}
	} else if (strcmp(key, "sslca") == 0 || strcmp(key, "ssl-ca") == 0 || strcmp(key, "sslrootcert") == 0) {
		free(d->tls_ca);
		d->tls_ca = xstrdup(val);
		if (d->tls < 0)
			d->tls = 2;
	} else {
		snprintf(err, errlen, "invalid DSN: unknown parameter \"%s\"", key);
		return false;
	}
	return true;
}

bool
mysql_dsn_parse(const char *dsn, mysql_dsn_t *d, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->port = 3306;
	d->tls = -1;  /* not given: decided from the host below */
	const char *p;
	if (strncasecmp(dsn, "mysql://", 8) == 0)
		p = dsn + 8;
	else if (strncasecmp(dsn, "mariadb://", 10) == 0)
		p = dsn + 10;
	else {
		snprintf(err, errlen, "invalid DSN: expected mysql:// or mariadb://");
		return false;
	}
	const char *at = strrchr(p, '@');
	const char *slash = strchr(at ? at : p, '/');
	const char *q = strchr(at ? at : p, '?');
	if (slash && q && q < slash)
		slash = NULL;
	const char *hostpart = at ? at + 1 : p;
	const char *hostend = slash ? slash : q ? q : p + strlen(p);
	if (at) {
		const char *colon = memchr(p, ':', (size_t) (at - p));
		d->user = pct_decode(p, (size_t) ((colon ? colon : at) - p));
		if (colon)
			d->password = pct_decode(colon + 1, (size_t) (at - colon - 1));
		if (!d->user || (colon && !d->password)) {
			snprintf(err, errlen, "invalid DSN: bad percent-escape in user or password");
			goto fail;
		}
	}
	/* host[:port], IPv6 in brackets */
	const char *portsep = NULL;
	if (*hostpart == '[') {
		const char *rb = memchr(hostpart, ']', (size_t) (hostend - hostpart));
		if (!rb) {
			snprintf(err, errlen, "invalid DSN: unterminated [ in host");
			goto fail;
		}
		d->host = xstrndup(hostpart + 1, (size_t) (rb - hostpart - 1));
		portsep = rb + 1 < hostend && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		portsep = memchr(hostpart, ':', (size_t) (hostend - hostpart));
		d->host = xstrndup(hostpart, (size_t) ((portsep ? portsep : hostend) - hostpart));
	}
	if (portsep) {
		char *end;
		long port = strtol(portsep + 1, &end, 10);
		if (end != hostend || port <= 0 || port > 65535) {
			snprintf(err, errlen, "invalid DSN: bad port \"%.*s\"",
				 (int) (hostend - portsep - 1), portsep + 1);
			goto fail;
		}
		d->port = (unsigned) port;
	}
	if (!*d->host) {
		free(d->host);
		d->host = xstrdup("localhost");
	}
	const char *dbend = q ? q : p + strlen(p);
	d->database = slash ? pct_decode(slash + 1, (size_t) (dbend - slash - 1)) : xstrdup("");
	if (!d->database) {
		snprintf(err, errlen, "invalid DSN: bad percent-escape in database");
		goto fail;
	}
	if (q) {
		char *params = xstrdup(q + 1), *save = NULL;
		for (char *kv = strtok_r(params, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(kv, '=');
			if (!eq) {
				snprintf(err, errlen, "invalid DSN: parameter \"%s\" has no value", kv);
				free(params);
				goto fail;
			}
			*eq = '\0';
			if (!set_param(d, kv, eq + 1, err, errlen)) {
				free(params);
				goto fail;
			}
		}
		free(params);
	}
	if (!d->user || !*d->user) {
		snprintf(err, errlen, "invalid DSN: no user name (mysql://USER:PASSWORD@HOST:PORT/DATABASE)");
		goto fail;
	}
	/*
	 * Secure by default: without ssl-mode, a remote server is reached over
	 * TLS with its certificate and host name verified (system CA store, or
	 * sslca=).  Loopback never leaves the host, so it needs no TLS unless
	 * asked for.
	 */
	if (d->tls < 0)
		d->tls = is_loopback(d->host) ? 0 : 2;
	return true;
fail:
	mysql_dsn_clear(d);
	return false;
}

void
mysql_dsn_clear(mysql_dsn_t *d)
{
	free(d->user);
	if (d->password)
		memset(d->password, 0, strlen(d->password));
	free(d->password);
	free(d->host);
	free(d->database);
	free(d->tls_ca);
	memset(d, 0, sizeof(*d));
}

MYSQL *
mysql_conn_open(const mysql_dsn_t *d, unsigned read_timeout_s, char *err, size_t errlen)
{
	/* the library only says "No such file or directory" */
	if (d->tls && d->tls_ca && access(d->tls_ca, R_OK) != 0) {
		snprintf(err, errlen, "could not read CA file \"%s\" (sslca): %s", d->tls_ca,
			 strerror(errno));
		return NULL;
	}
	MYSQL *m = mysql_init(NULL);
	unsigned connect_timeout = 10;
	mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
	if (read_timeout_s)
		mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &read_timeout_s);
	mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	/* the client library must not read ~/.my.cnf or /etc/mysql behind our back */
	mysql_optionsv(m, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
	if (d->tls) {
		my_bool on = 1, verify = d->tls >= 2;
		mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &on);
		mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
		if (d->tls_ca)
			mysql_optionsv(m, MYSQL_OPT_SSL_CA, d->tls_ca);
	} else {
		my_bool off = 0;
		mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &off);
	}
	if (!mysql_real_connect(m, d->host, d->user, d->password ? d->password : "",
				NULL, d->port, NULL, CLIENT_REMEMBER_OPTIONS)) {
		snprintf(err, errlen, "could not connect to MySQL server \"%s:%u\" as \"%s\": %s",
			 d->host, d->port, d->user, mysql_error(m));
		if (d->password)
			redact_secret_in_place(err, d->password);
		mysql_close(m);
		return NULL;
	}
	return m;
}

bool
mysql_conn_exec(MYSQL *m, const char *sql, char *err, size_t errlen)
{
	if (mysql_query(m, sql) != 0) {
		snprintf(err, errlen, "could not run \"%s\": %s", sql, mysql_error(m));
		return false;
	}
	MYSQL_RES *r = mysql_store_result(m);
	mysql_free_result(r);
	return true;
}

bool
mysql_conn_scalar(MYSQL *m, const char *sql, char **out, char *err, size_t errlen)
{
	*out = NULL;
	if (mysql_query(m, sql) != 0) {
		snprintf(err, errlen, "could not run \"%s\": %s", sql, mysql_error(m));
		return false;
	}
	MYSQL_RES *r = mysql_store_result(m);
	if (!r) {
		if (mysql_errno(m)) {
			snprintf(err, errlen, "could not read result of \"%s\": %s", sql, mysql_error(m));
			return false;
		}
		return true;
	}
	MYSQL_ROW row = mysql_fetch_row(r);
	if (row && mysql_num_fields(r) > 0 && row[0])
		*out = xstrdup(row[0]);
	mysql_free_result(r);
	return true;
}

bool
mysql_conn_error_is_lost(unsigned e)
{
	return e == CR_SERVER_LOST || e == CR_SERVER_GONE_ERROR || e == CR_CONN_HOST_ERROR ||
	       e == CR_CONNECTION_ERROR || e == CR_SERVER_LOST_EXTENDED || e == 1053 /* shutdown */ ||
	       e == 2026 /* TLS */ || e == 1927 /* connection killed */;
}

bool
mysql_conn_is_mariadb(MYSQL *m)
{
	const char *v = mysql_get_server_info(m);
	return v && strstr(v, "MariaDB") != NULL;
}

uint64_t
mysql_binlog_file_no(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot ? strtoull(dot + 1, NULL, 10) : 0;
}

bool
mysql_mentions_identifier(const char *s, const char *name)
{
	size_t n = strlen(name);
	if (!n)
		return false;
	for (const char *p = s; *p; p++) {
		if (strncasecmp(p, name, n) != 0)
			continue;
		unsigned char before = p > s ? (unsigned char) p[-1] : ' ';
		unsigned char after = (unsigned char) p[n];
#define IDENT_CHAR(c) ((c) == '_' || (c) == '$' || (c) >= 0x80 || \
		       ((c) >= '0' && (c) <= '9') || (((c) | 32) >= 'a' && ((c) | 32) <= 'z'))
		if (!IDENT_CHAR(before) && !IDENT_CHAR(after))
			return true;
#undef IDENT_CHAR
	}
	return false;
}

/* True for query events that cannot change a table's columns. */
static bool
query_is_not_ddl(const char *q)
{
	static const char *const words[] = {"BEGIN", "COMMIT", "ROLLBACK", "XA ", "SAVEPOINT",
					    "RELEASE SAVEPOINT"};
	while (*q == ' ' || *q == '\n' || *q == '\t')
		q++;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strncasecmp(q, words[i], strlen(words[i])) == 0)
			return true;
	return false;
}

int
mysql_conn_ddl_after(MYSQL *m, const char *file, uint64_t pos, const char *table,
		     char **ddl_at, char *err, size_t errlen)
{
	MYSQL_RES *logs = NULL, *ev = NULL;
	MYSQL_ROW row;
	char **files = NULL;
	size_t nfiles = 0;
	int rc = STEWARD_EXIT_FAILURE;
	uint64_t from_no = mysql_binlog_file_no(file);
	*ddl_at = NULL;
	if (mysql_query(m, "SHOW BINARY LOGS") != 0 || !(logs = mysql_store_result(m))) {
		snprintf(err, errlen, "could not list binary logs: %s", mysql_error(m));
		goto out;
	}
	while ((row = mysql_fetch_row(logs)) != NULL)
		if (row[0] && mysql_binlog_file_no(row[0]) >= from_no) {
			files = xrealloc(files, (nfiles + 1) * sizeof(char *));
			files[nfiles++] = xstrdup(row[0]);
		}
	for (size_t i = 0; i < nfiles && !*ddl_at; i++) {
		char name[520], sql[700];
		mysql_real_escape_string(m, name, files[i], (unsigned long) strnlen(files[i], 255));
		snprintf(sql, sizeof(sql), "SHOW BINLOG EVENTS IN '%s' FROM %llu", name,
			 mysql_binlog_file_no(files[i]) == from_no ? (unsigned long long) pos : 4ULL);
		if (mysql_query(m, sql) != 0 || !(ev = mysql_use_result(m))) {
			snprintf(err, errlen, "could not run \"%s\": %s", sql, mysql_error(m));
			goto out;
		}
		/* Log_name, Pos, Event_type, Server_id, End_log_pos, Info */
		while ((row = mysql_fetch_row(ev)) != NULL) {
			if (*ddl_at || mysql_num_fields(ev) < 6 || !row[2] || !row[5] ||
			    strcmp(row[2], "Query") != 0)
				continue;
			const char *q = row[5];
			if (strncasecmp(q, "use ", 4) == 0 && strstr(q, "; "))
				q = strstr(q, "; ") + 2;  /* Info is "use `db`; STATEMENT" */
			if (query_is_not_ddl(q) || !mysql_mentions_identifier(q, table))
				continue;
			size_t len = strlen(files[i]) + 24;
			*ddl_at = xmalloc(len);
			snprintf(*ddl_at, len, "%s:%s", files[i], row[1] ? row[1] : "?");
		}
		if (mysql_errno(m)) {
			snprintf(err, errlen, "could not read binlog events of %s: %s", files[i],
				 mysql_error(m));
			free(*ddl_at);
			*ddl_at = NULL;
			goto out;
		}
		mysql_free_result(ev);
		ev = NULL;
	}
	rc = STEWARD_EXIT_OK;
out:
	if (rc != STEWARD_EXIT_OK && mysql_conn_error_is_lost(mysql_errno(m)))
		rc = STEWARD_EXIT_UNAVAILABLE;
	mysql_free_result(ev);
	mysql_free_result(logs);
	for (size_t i = 0; i < nfiles; i++)
		free(files[i]);
	free(files);
	return rc;
}
