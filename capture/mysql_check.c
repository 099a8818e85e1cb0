/*
 * mysql_check.c — `steward capture --check` for MySQL/MariaDB: everything
 * the agent needs from the server, one line per problem with the
 * statement that fixes it.  Changes nothing.
 */
#include "mysql_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exitcodes.h"
#include "xalloc.h"

typedef struct check {
	MYSQL *m;
	int problems;
} check_t;

static void
problem(check_t *c, const char *fmt, const char *a, const char *fix)
{
	printf("problem: ");
	printf(fmt, a ? a : "(unset)");
	printf("; fix: %s\n", fix);
	c->problems++;
}

/* Value of a server variable, NULL if the server has no such variable. */
static char *
variable(MYSQL *m, const char *name)
{
	char sql[200];
	MYSQL_RES *r;
	MYSQL_ROW row;
	char *v = NULL;
	snprintf(sql, sizeof(sql), "SHOW GLOBAL VARIABLES LIKE '%s'", name);
	if (mysql_query(m, sql) != 0 || !(r = mysql_store_result(m)))
		return NULL;
	if ((row = mysql_fetch_row(r)) != NULL && row[1])
		v = xstrdup(row[1]);
	mysql_free_result(r);
	return v;
}

static void
expect_var(check_t *c, const char *name, const char *want, const char *fmt, const char *fix)
{
	char *v = variable(c->m, name);
	if (!v || strcasecmp(v, want) != 0)
		problem(c, fmt, v, fix);
	free(v);
}

/* The grants of the current user, upper-cased and joined. */
static char *
grants(MYSQL *m)
{
	MYSQL_RES *r;
	MYSQL_ROW row;
	buf_t b = BUF_INIT;
	if (mysql_query(m, "SHOW GRANTS") != 0 || !(r = mysql_store_result(m)))
		return NULL;
	while ((row = mysql_fetch_row(r)) != NULL)
		if (row[0]) {
			buf_append_str(&b, row[0]);
			buf_append_char(&b, '\n');
		}
	mysql_free_result(r);
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] >= 'a' && b.data[i] <= 'z')
			b.data[i] = (char) (b.data[i] - 32);
	return buf_steal(&b);
}

static bool
has_global(const char *g, const char *priv)
{
	/* a privilege in a grant ON *.* line, or ALL PRIVILEGES ON *.* */
	for (const char *line = g; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t) (nl - line) : strlen(line);
		char *l = xstrndup(line, n);
		bool global = strstr(l, " ON *.* ") != NULL;
		bool hit = global && (strstr(l, "ALL PRIVILEGES") || strstr(l, priv));
		free(l);
		if (hit)
			return true;
		line = nl ? nl + 1 : NULL;
	}
	return false;
}

static bool
has_select_on(const char *g, const char *db)
{
	if (has_global(g, "SELECT"))
		return true;
	char want[300];
	snprintf(want, sizeof(want), " ON `%s`.* ", db);
	for (char *p = want; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char) (*p - 32);
	for (const char *line = g; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t) (nl - line) : strlen(line);
		char *l = xstrndup(line, n);
		bool hit = strstr(l, want) && (strstr(l, "SELECT") || strstr(l, "ALL PRIVILEGES"));
		free(l);
		if (hit)
			return true;
		line = nl ? nl + 1 : NULL;
	}
	return false;
}

int
mysql_check_run(const mysql_dsn_t *d, uint32_t server_id)
{
	char err[512];
	check_t c = {0};
	if (!(c.m = mysql_conn_open(d, 30, err, sizeof(err)))) {
		printf("problem: %s; fix: check host, port, user and password in --dsn\n", err);
		return STEWARD_EXIT_CHECK_FAILED;
	}
	bool mariadb = mysql_conn_is_mariadb(c.m);
	expect_var(&c, "log_bin", "ON", "binary logging is off (log_bin = %s)",
		   "start the server with log_bin=mysql-bin (my.cnf [mariadbd]/[mysqld]) and restart");
	expect_var(&c, "binlog_format", "ROW", "binlog_format is %s, must be ROW",
		   "SET GLOBAL binlog_format = 'ROW'; and binlog_format=ROW in my.cnf");
	expect_var(&c, "binlog_row_image", "FULL", "binlog_row_image is %s, must be FULL",
		   "SET GLOBAL binlog_row_image = 'FULL'; and binlog_row_image=FULL in my.cnf");
	char *meta = variable(c.m, "binlog_row_metadata");
	if (meta && strcasecmp(meta, "FULL") != 0)
		problem(&c, "binlog_row_metadata is %s: column names are then read from "
			    "information_schema, which is wrong for changes logged before an ALTER TABLE",
			meta, "SET GLOBAL binlog_row_metadata = 'FULL'; and binlog_row_metadata=FULL in my.cnf");
	free(meta);
	char *sid = variable(c.m, "server_id");
	char ours[32];
	snprintf(ours, sizeof(ours), "%u", server_id);
	if (sid && strcmp(sid, ours) == 0)
		problem(&c, "replica server id %s equals the server's own server_id",
			ours, "pass another --server-id");
	free(sid);
	if (mysql_query(c.m, mariadb ? "SHOW SLAVE HOSTS" : "SHOW REPLICAS") == 0) {
		MYSQL_RES *r = mysql_store_result(c.m);
		MYSQL_ROW row;
		while (r && (row = mysql_fetch_row(r)) != NULL)
			if (row[0] && strcmp(row[0], ours) == 0)
				problem(&c, "replica server id %s is already used by a connected replica",
					ours, "pass another --server-id");
		mysql_free_result(r);
	}
	char *g = grants(c.m);
	char fix[600];
	if (g) {
		if (!has_global(g, "REPLICATION SLAVE") && !has_global(g, "REPLICATION REPLICA")) {
			snprintf(fix, sizeof(fix), "GRANT REPLICATION SLAVE ON *.* TO '%s'@'%%';", d->user);
			problem(&c, "user lacks %s ON *.*", "REPLICATION SLAVE", fix);
		}
		if (!has_global(g, "REPLICATION CLIENT") && !has_global(g, "BINLOG MONITOR") &&
		    !has_global(g, "SUPER")) {
			snprintf(fix, sizeof(fix), "GRANT %s ON *.* TO '%s'@'%%';",
				 mariadb ? "BINLOG MONITOR" : "REPLICATION CLIENT", d->user);
			problem(&c, "user lacks %s ON *.*", mariadb ? "BINLOG MONITOR (REPLICATION CLIENT)"
								 : "REPLICATION CLIENT", fix);
		}
		if (!has_select_on(g, d->database && *d->database ? d->database : "*")) {
			snprintf(fix, sizeof(fix), "GRANT SELECT ON %s%s%s.* TO '%s'@'%%';",
				 *d->database ? "`" : "", *d->database ? d->database : "*",
				 *d->database ? "`" : "", d->user);
			problem(&c, "user lacks SELECT on %s (needed for the snapshot)",
				*d->database ? d->database : "*.*", fix);
		}
		if (!mariadb && !has_global(g, "RELOAD")) {
			snprintf(fix, sizeof(fix), "GRANT RELOAD ON *.* TO '%s'@'%%';", d->user);
			problem(&c, "user lacks %s ON *.* (the MySQL snapshot takes FLUSH TABLES WITH READ LOCK)",
				"RELOAD", fix);
		}
	}
	free(g);
	mysql_close(c.m);
	if (c.problems == 0)
		printf("ok: %s server at %s:%u is ready for capture (replica server id %u)\n",
		       mariadb ? "MariaDB" : "MySQL", d->host, d->port, server_id);
	return c.problems ? STEWARD_EXIT_CHECK_FAILED : STEWARD_EXIT_OK;
}
