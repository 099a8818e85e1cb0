/*
 * pg_check.c — preflight checks for PostgreSQL capture; see pg_check.h.
 *
 * Output: "ok: …" for a passing check, "problem: … fix: …" for each
 * problem, "note: …" for information, then a summary line.
 */
#include "pg_check.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

typedef struct check {
	pgcap_agent_t *ag;
	bool may_replicate;  /* the role check passed: a walsender failure is something else */
	FILE *out;
	int problems;
	char *err;
	size_t errlen;
	bool failed;
} check_t;

static void
problem(check_t *c, const char *what, const char *fix)
{
	fprintf(c->out, "problem: %s; fix: %s\n", what, fix);
	c->problems++;
}

/* Run a query returning rows; NULL (and failed) on error. */
static PGresult *
query(check_t *c, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(c->ag->query, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgcap_error(c->ag->dsn, "check query failed", PQerrorMessage(c->ag->query), c->err,
			    c->errlen);
		c->failed = true;
		PQclear(res);
		return NULL;
	}
	return res;
}

static void
check_settings(check_t *c)
{
	PGresult *res = query(c,
			      "SELECT current_setting('wal_level'), "
			      "current_setting('max_replication_slots')::int, "
			      "(SELECT count(*) FROM pg_replication_slots)::int, "
			      "current_setting('max_wal_senders')::int, "
			      "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int, "
			      "current_user, r.rolsuper, r.rolreplication "
			      "FROM pg_roles r WHERE r.rolname = current_user",
			      0, NULL);
	if (res == NULL || PQntuples(res) != 1)
		goto out;
	char buf[512], fix[512];
	const char *wal_level = PQgetvalue(res, 0, 0);
	if (strcmp(wal_level, "logical") != 0) {
		snprintf(buf, sizeof(buf), "wal_level is \"%s\", logical decoding needs \"logical\"",
			 wal_level);
		problem(c, buf, "ALTER SYSTEM SET wal_level = logical; then restart the server");
	} else {
		fprintf(c->out, "ok: wal_level is logical\n");
	}
	int max_slots = atoi(PQgetvalue(res, 0, 1));
	int used_slots = atoi(PQgetvalue(res, 0, 2));
	int max_senders = atoi(PQgetvalue(res, 0, 3));
	int used_senders = atoi(PQgetvalue(res, 0, 4));
	fprintf(c->out, "note: replication slots in use: %d of max_replication_slots %d\n",
		used_slots, max_slots);
	if (max_slots == 0 || used_slots >= max_slots) {
		snprintf(buf, sizeof(buf),
			 "no free replication slot (%d of max_replication_slots = %d in use)",
			 used_slots, max_slots);
		snprintf(fix, sizeof(fix),
			 "ALTER SYSTEM SET max_replication_slots = %d; then restart the server, or "
			 "drop an unused slot with SELECT pg_drop_replication_slot('name')",
			 used_slots + 4);
		problem(c, buf, fix);
	}
	if (max_senders == 0 || used_senders >= max_senders) {
		snprintf(buf, sizeof(buf),
			 "no free WAL sender (%d of max_wal_senders = %d in use)", used_senders,
			 max_senders);
		snprintf(fix, sizeof(fix),
			 "ALTER SYSTEM SET max_wal_senders = %d; then restart the server",
			 used_senders + 4);
		problem(c, buf, fix);
	} else {
		fprintf(c->out, "ok: WAL senders in use: %d of max_wal_senders %d\n", used_senders,
			max_senders);
	}
	const char *role = PQgetvalue(res, 0, 5);
	bool super = PQgetvalue(res, 0, 6)[0] == 't';
	bool repl = PQgetvalue(res, 0, 7)[0] == 't';
	if (!super && !repl) {
		char *ident = PQescapeIdentifier(c->ag->query, role, strlen(role));
		snprintf(buf, sizeof(buf), "role \"%s\" lacks the REPLICATION attribute", role);
		snprintf(fix, sizeof(fix), "ALTER ROLE %s WITH REPLICATION;", ident ? ident : role);
		if (ident)
			PQfreemem(ident);
		problem(c, buf, fix);
	} else {
		c->may_replicate = true;
		fprintf(c->out, "ok: role \"%s\" may replicate (%s)\n", role,
			super ? "superuser" : "REPLICATION");
	}
out:
	PQclear(res);
}

static void
check_replication_connection(check_t *c)
{
	char cerr[1024];
	PGconn *conn = pgcap_connect(c->ag->dsn, true, cerr, sizeof(cerr));
	if (conn == NULL) {
		char buf[1200];
		snprintf(buf, sizeof(buf), "%s", cerr);
		problem(c, buf,
			"allow it in pg_hba.conf (a line such as \"host replication ROLE ADDRESS "
			"scram-sha-256\", or \"host all ROLE …\" for a database connection), then "
			"SELECT pg_reload_conf();");
		return;
	}
	PGresult *res = PQexec(conn, "IDENTIFY_SYSTEM");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		fprintf(c->out, "ok: replication connection works (timeline %s, WAL at %s)\n",
			PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	else
		problem(c, "IDENTIFY_SYSTEM failed on the replication connection",
			"check the server log; the role needs REPLICATION");
	PQclear(res);
	PQfinish(conn);
}

static void
check_publication(check_t *c)
{
	const char *params[1] = {c->ag->publication};
	char buf[512], fix[512];
	PGresult *res = query(c,
			      "SELECT p.puballtables, (SELECT count(*) FROM pg_publication_tables t "
			      "WHERE t.pubname = p.pubname)::int, p.pubinsert AND p.pubupdate AND "
			      "p.pubdelete AND p.pubtruncate FROM pg_publication p WHERE p.pubname = $1",
			      1, params);
	if (res == NULL)
		return;
	if (PQntuples(res) == 0) {
		if (c->ag->default_publication) {
			fprintf(c->out, "note: publication \"%s\" does not exist; capture will create it "
				"FOR ALL TABLES (needs superuser), or create it yourself: "
				"CREATE PUBLICATION %s FOR ALL TABLES;\n",
				c->ag->publication, c->ag->publication);
		} else {
			snprintf(buf, sizeof(buf), "publication \"%s\" does not exist",
				 c->ag->publication);
			snprintf(fix, sizeof(fix), "CREATE PUBLICATION %s FOR TABLE schema.table, …; "
				 "(or FOR ALL TABLES)", c->ag->publication);
			problem(c, buf, fix);
		}
	} else {
		int ntables = atoi(PQgetvalue(res, 0, 1));
		if (ntables == 0) {
			snprintf(buf, sizeof(buf), "publication \"%s\" covers no table",
				 c->ag->publication);
			snprintf(fix, sizeof(fix), "ALTER PUBLICATION %s ADD TABLE schema.table;",
				 c->ag->publication);
			problem(c, buf, fix);
		} else {
			fprintf(c->out, "ok: publication \"%s\" covers %d tables%s\n",
				c->ag->publication, ntables,
				PQgetvalue(res, 0, 0)[0] == 't' ? " (all tables)" : "");
		}
		if (PQgetvalue(res, 0, 2)[0] != 't') {
			snprintf(buf, sizeof(buf),
				 "publication \"%s\" does not publish every operation", c->ag->publication);
			snprintf(fix, sizeof(fix),
				 "ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate');",
				 c->ag->publication);
			problem(c, buf, fix);
		}
	}
	PQclear(res);
}

static void
check_slot(check_t *c)
{
	const char *params[1] = {c->ag->slot};
	char buf[512], fix[512];
	PGresult *res = query(c,
			      "SELECT slot_type, coalesce(plugin, ''), coalesce(database, ''), active, "
			      "coalesce(active_pid, 0), coalesce(wal_status, ''), "
			      "coalesce(pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), '0'), "
			      "current_database() "
			      "FROM pg_replication_slots WHERE slot_name = $1",
			      1, params);
	if (res == NULL)
		return;
	if (PQntuples(res) == 0) {
		fprintf(c->out, "note: replication slot \"%s\" does not exist; capture will create "
			"it\n", c->ag->slot);
		goto out;
	}
	const char *plugin = PQgetvalue(res, 0, 1);
	const char *db = PQgetvalue(res, 0, 2);
	if (strcmp(PQgetvalue(res, 0, 0), "logical") != 0 || strcmp(plugin, "pgoutput") != 0 ||
	    strcmp(db, PQgetvalue(res, 0, 7)) != 0) {
		snprintf(buf, sizeof(buf),
			 "replication slot \"%s\" is not a pgoutput slot of this database (plugin "
			 "\"%s\", database \"%s\")", c->ag->slot, plugin, db);
		snprintf(fix, sizeof(fix), "SELECT pg_drop_replication_slot('%s'); or use --slot "
			 "with another name", c->ag->slot);
		problem(c, buf, fix);
	}
	if (PQgetvalue(res, 0, 3)[0] == 't') {
		snprintf(buf, sizeof(buf), "replication slot \"%s\" is in use by process %s",
			 c->ag->slot, PQgetvalue(res, 0, 4));
		snprintf(fix, sizeof(fix), "stop the other consumer, or SELECT "
			 "pg_terminate_backend(%s);", PQgetvalue(res, 0, 4));
		problem(c, buf, fix);
	}
	if (strcmp(PQgetvalue(res, 0, 5), "lost") == 0) {
		snprintf(buf, sizeof(buf), "replication slot \"%s\" has lost required WAL",
			 c->ag->slot);
		snprintf(fix, sizeof(fix), "SELECT pg_drop_replication_slot('%s'); and start "
			 "capture with a new data directory", c->ag->slot);
		problem(c, buf, fix);
	}
	fprintf(c->out, "note: replication slot \"%s\" retains %s of WAL (wal_status %s)\n",
		c->ag->slot, PQgetvalue(res, 0, 6),
		PQgetvalue(res, 0, 5)[0] ? PQgetvalue(res, 0, 5) : "unknown");
out:
	PQclear(res);
}

static void
check_identity(check_t *c)
{
	const char *params[1] = {c->ag->publication};
	/* Published tables, or every user table when the publication is not there yet. */
	PGresult *res = query(
		c,
		"SELECT n.nspname, c.relname, c.relreplident FROM pg_class c "
		"JOIN pg_namespace n ON n.oid = c.relnamespace "
		"WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
		"  AND n.nspname NOT LIKE 'pg_toast%' "
		"  AND (NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1) OR EXISTS ("
		"    SELECT 1 FROM pg_publication_tables t WHERE t.pubname = $1 "
		"    AND t.schemaname = n.nspname AND t.tablename = c.relname)) "
		"  AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS ("
		"    SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))) "
		"ORDER BY 1, 2",
		1, params);
	if (res == NULL)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		char buf[512], fix[512];
		snprintf(buf, sizeof(buf),
			 "table \"%s.%s\" has no primary key or replica identity: its UPDATEs and "
			 "DELETEs will fail once published", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
		char *nsp = PQescapeIdentifier(c->ag->query, PQgetvalue(res, i, 0),
					       strlen(PQgetvalue(res, i, 0)));
		char *rel = PQescapeIdentifier(c->ag->query, PQgetvalue(res, i, 1),
					       strlen(PQgetvalue(res, i, 1)));
		snprintf(fix, sizeof(fix), "ALTER TABLE %s.%s ADD PRIMARY KEY (…); or ALTER TABLE "
			 "%s.%s REPLICA IDENTITY FULL;", nsp, rel, nsp, rel);
		PQfreemem(nsp);
		PQfreemem(rel);
		problem(c, buf, fix);
	}
	if (PQntuples(res) == 0)
		fprintf(c->out, "ok: every published table has a replica identity\n");
	PQclear(res);
}

pgcap_status_t
pgcap_check_run(pgcap_agent_t *ag, FILE *out, char *err, size_t errlen)
{
	check_t c = {ag, false, out, 0, err, errlen, false};
	fprintf(out, "checking PostgreSQL %d.%d at %s for capture (slot \"%s\", publication "
		"\"%s\")\n", ag->server_version / 10000, ag->server_version % 10000,
		pgcap_dsn_display(ag->dsn), ag->slot, ag->publication);
	if (ag->server_version < 100000)
		problem(&c, "server version is older than 10: pgoutput is not available",
			"upgrade the server");
	check_settings(&c);
	if (!c.failed && c.may_replicate)
		check_replication_connection(&c);
	if (!c.failed)
		check_publication(&c);
	if (!c.failed)
		check_slot(&c);
	if (!c.failed)
		check_identity(&c);
	if (c.failed)
		return PGCAP_FAILURE;
	if (c.problems) {
		fprintf(out, "%d problem%s found\n", c.problems, c.problems == 1 ? "" : "s");
		fflush(out);
		return PGCAP_CHECK_PROBLEMS;
	}
	fprintf(out, "no problems found\n");
	return PGCAP_OK;
}
