/*
 * emu_db.c — per-platform connection pools over libpq and Connector/C.
 */
#include "emu_db.h"

#include <errmsg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "redact.h"
#include "xalloc.h"

struct pool {
	char *dsn;
	emu_dbconn_t *idle;
	int open;  /* connections handed out or idle */
};

struct emu_db {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int max;
	struct pool pools[EMU_NPLATFORMS];
};

static bool
is_pg(emu_platform_t p)
{
	return p == EMU_ERP || p == EMU_SUPPORT;
}

emu_db_t *
emu_db_create(const char *const dsn[EMU_NPLATFORMS], int max_per_platform)
{
	emu_db_t *db = xcalloc(1, sizeof(*db));
	pthread_mutex_init(&db->mu, NULL);
	pthread_cond_init(&db->cv, NULL);
	db->max = max_per_platform > 0 ? max_per_platform : 16;
	for (int i = 0; i < EMU_NPLATFORMS; i++)
		db->pools[i].dsn = dsn[i] ? xstrdup(dsn[i]) : NULL;
	return db;
}

static void
conn_close(emu_dbconn_t *c)
{
	if (c->pg)
		PQfinish(c->pg);
	if (c->my)
		mysql_close(c->my);
	free(c);
}

void
emu_db_destroy(emu_db_t *db)
{
	if (db == NULL)
		return;
	for (int i = 0; i < EMU_NPLATFORMS; i++) {
		emu_dbconn_t *c = db->pools[i].idle;
		while (c) {
			emu_dbconn_t *next = c->next;
			conn_close(c);
			c = next;
		}
		free(db->pools[i].dsn);
	}
	pthread_cond_destroy(&db->cv);
	pthread_mutex_destroy(&db->mu);
	free(db);
}

bool
emu_db_configured(emu_db_t *db, emu_platform_t p)
{
	return db->pools[p].dsn != NULL;
}

/* Split mysql://user:pass@host:port/db into its parts (percent-decoded
 * user and password).  Returns false on a malformed URI. */
static bool
mysql_uri_parse(const char *uri, char **user, char **pass, char **host,
		unsigned *port, char **dbname)
{
	static const char scheme[] = "mysql://";
	*user = *pass = *host = *dbname = NULL;
	*port = 3306;
	if (strncmp(uri, scheme, sizeof(scheme) - 1) != 0)
		return false;
	const char *p = uri + sizeof(scheme) - 1;
	const char *at = strrchr(p, '@');
	if (at) {
		const char *colon = memchr(p, ':', (size_t) (at - p));
		if (colon) {
			*user = xstrndup(p, (size_t) (colon - p));
			*pass = xstrndup(colon + 1, (size_t) (at - colon - 1));
		} else {
			*user = xstrndup(p, (size_t) (at - p));
		}
		p = at + 1;
	}
	const char *slash = strchr(p, '/');
	size_t hostlen = slash ? (size_t) (slash - p) : strlen(p);
	const char *colon = memchr(p, ':', hostlen);
	if (colon) {
		*host = xstrndup(p, (size_t) (colon - p));
		*port = (unsigned) strtoul(colon + 1, NULL, 10);
	} else {
		*host = xstrndup(p, hostlen);
	}
	if (slash && slash[1]) {
		const char *q = strchr(slash + 1, '?');
		*dbname = q ? xstrndup(slash + 1, (size_t) (q - slash - 1)) : xstrdup(slash + 1);
	}
	/* percent-decode user and password in place */
	char *fields[2] = {*user, *pass};
	for (int f = 0; f < 2; f++) {
		char *s = fields[f];
		if (s == NULL)
			continue;
		char *w = s;
		for (char *r = s; *r; r++) {
			unsigned v;
			if (r[0] == '%' && r[1] && r[2] && sscanf(r + 1, "%2x", &v) == 1) {
				*w++ = (char) v;
				r += 2;
			} else {
				*w++ = *r;
			}
		}
		*w = '\0';
	}
	return **host != '\0';
}

static emu_dbconn_t *
conn_open(emu_platform_t p, const char *dsn, char *err, size_t errlen)
{
	char safe[512];
	redact_dsn(dsn, safe, sizeof(safe));
	emu_dbconn_t *c = xcalloc(1, sizeof(*c));
	c->platform = p;
	if (is_pg(p)) {
		c->pg = PQconnectdb(dsn);
		if (PQstatus(c->pg) != CONNECTION_OK) {
			char msg[512];
			snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
			msg[strcspn(msg, "\n")] = '\0';
			snprintf(err, errlen, "could not connect to %s database \"%s\": %s",
				 emu_platform_name(p), safe, msg);
			goto fail;
		}
		PGresult *res = PQexec(c->pg, "SET TimeZone = 'UTC'");
		PQclear(res);
		return c;
	}
	char *user, *pass, *host, *dbname;
	unsigned port;
	if (!mysql_uri_parse(dsn, &user, &pass, &host, &port, &dbname)) {
		snprintf(err, errlen, "invalid MariaDB DSN \"%s\": expected mysql://user:password@host:port/db", safe);
		free(user); free(pass); free(host); free(dbname);
		goto fail;
	}
	c->my = mysql_init(NULL);
	unsigned timeout = 10;
	mysql_options(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(c->my, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
	MYSQL *ok = mysql_real_connect(c->my, host, user, pass, dbname, port, NULL, 0);
	free(user); free(pass); free(host); free(dbname);
	if (ok == NULL) {
		snprintf(err, errlen, "could not connect to %s database \"%s\": %s",
			 emu_platform_name(p), safe, mysql_error(c->my));
		goto fail;
	}
	return c;
fail:
	conn_close(c);
	return NULL;
}

int
emu_db_check(emu_db_t *db, char *err, size_t errlen)
{
	for (int i = 0; i < EMU_NPLATFORMS; i++) {
		if (db->pools[i].dsn == NULL)
			continue;
		emu_dbconn_t *c = emu_db_get(db, (emu_platform_t) i, err, errlen);
		if (c == NULL)
			return -1;
		emu_db_put(db, c);
	}
	return 0;
}

emu_dbconn_t *
emu_db_get(emu_db_t *db, emu_platform_t p, char *err, size_t errlen)
{
	struct pool *pool = &db->pools[p];
	if (pool->dsn == NULL) {
		snprintf(err, errlen, "platform %s has no database configured", emu_platform_name(p));
		return NULL;
	}
	pthread_mutex_lock(&db->mu);
	while (pool->idle == NULL && pool->open >= db->max)
		pthread_cond_wait(&db->cv, &db->mu);
	emu_dbconn_t *c = pool->idle;
	if (c) {
		pool->idle = c->next;
		c->next = NULL;
		pthread_mutex_unlock(&db->mu);
		return c;
	}
	pool->open++;  /* reserve the slot, connect outside the lock */
	pthread_mutex_unlock(&db->mu);
	c = conn_open(p, pool->dsn, err, errlen);
	if (c == NULL) {
		pthread_mutex_lock(&db->mu);
		pool->open--;
		pthread_cond_signal(&db->cv);
		pthread_mutex_unlock(&db->mu);
	}
	return c;
}

void
emu_db_put(emu_db_t *db, emu_dbconn_t *c)
{
	if (c == NULL)
		return;
	struct pool *pool = &db->pools[c->platform];
	if (c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		c->broken = true;  /* never pool a connection inside a transaction */
	pthread_mutex_lock(&db->mu);
	if (c->broken) {
		pool->open--;
		pthread_mutex_unlock(&db->mu);
		conn_close(c);
		pthread_mutex_lock(&db->mu);
	} else {
		c->next = pool->idle;
		pool->idle = c;
	}
	pthread_cond_signal(&db->cv);
	pthread_mutex_unlock(&db->mu);
}

PGresult *
emu_pg_exec(emu_dbconn_t *c, const char *sql, int nparams, const char *const *params)
{
	return PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
}

bool
emu_pg_ok(emu_dbconn_t *c, PGresult *res, char *err, size_t errlen)
{
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return true;
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	snprintf(err, errlen, "%s", msg ? msg : PQerrorMessage(c->pg));
	err[strcspn(err, "\n")] = '\0';
	if (PQstatus(c->pg) != CONNECTION_OK)
		c->broken = true;
	return false;
}

const char *
emu_pg_sqlstate(const PGresult *res)
{
	const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	return s ? s : "";
}

void
emu_my_quote(emu_dbconn_t *c, buf_t *sql, const char *s)
{
	if (s == NULL) {
		buf_append_str(sql, "NULL");
		return;
	}
	size_t n = strlen(s);
	buf_reserve(sql, 2 * n + 3);
	sql->data[sql->len++] = '\'';
	sql->len += mysql_real_escape_string(c->my, sql->data + sql->len, s, (unsigned long) n);
	sql->data[sql->len++] = '\'';
	sql->data[sql->len] = '\0';
}

unsigned
emu_my_exec(emu_dbconn_t *c, const char *sql, char *err, size_t errlen)
{
	if (mysql_real_query(c->my, sql, (unsigned long) strlen(sql)) == 0)
		return 0;
	unsigned code = mysql_errno(c->my);
	snprintf(err, errlen, "%s", mysql_error(c->my));
	if (code == CR_SERVER_GONE_ERROR || code == CR_SERVER_LOST || code == CR_CONNECTION_ERROR)
		c->broken = true;
	return code ? code : 1;
}
