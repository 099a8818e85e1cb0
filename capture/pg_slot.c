/*
 * pg_slot.c — replication slot and publication management; see pg_slot.h.
 */
#include "pg_slot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

bool
pgcap_slot_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 63)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

static pgcap_status_t
conn_status(PGconn *conn)
{
	return PQstatus(conn) == CONNECTION_OK ? PGCAP_FAILURE : PGCAP_RETRY;
}

pgcap_status_t
pgcap_slot_lookup(pgcap_agent_t *ag, pgcap_slot_info_t *info, char *err, size_t errlen)
{
	const char *params[1] = {ag->slot};
	pgcap_status_t st = PGCAP_OK;
	memset(info, 0, sizeof(*info));
	PGresult *res = PQexecParams(ag->query,
				     "SELECT slot_type, coalesce(plugin, ''), coalesce(database, ''), "
				     "active, coalesce(active_pid, 0), "
				     "coalesce(confirmed_flush_lsn, '0/0') "
				     "FROM pg_replication_slots WHERE slot_name = $1",
				     1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char what[160];
		snprintf(what, sizeof(what), "could not look up replication slot \"%s\"", ag->slot);
		pgcap_error(ag->dsn, what, PQerrorMessage(ag->query), err, errlen);
		st = conn_status(ag->query);
		goto out;
	}
	if (PQntuples(res) == 0)
		goto out;
	info->exists = true;
	info->logical = strcmp(PQgetvalue(res, 0, 0), "logical") == 0;
	snprintf(info->plugin, sizeof(info->plugin), "%s", PQgetvalue(res, 0, 1));
	snprintf(info->database, sizeof(info->database), "%s", PQgetvalue(res, 0, 2));
	info->active = PQgetvalue(res, 0, 3)[0] == 't';
	info->active_pid = atoi(PQgetvalue(res, 0, 4));
	pgcap_lsn_parse(PQgetvalue(res, 0, 5), &info->confirmed_flush);
out:
	PQclear(res);
	return st;
}

pgcap_status_t
pgcap_slot_create(pgcap_agent_t *ag, char *snapshot_name, uint64_t *consistent_lsn,
		  char *err, size_t errlen)
{
	pgcap_status_t st = PGCAP_OK;
	char *sql = xasprintf("CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput (SNAPSHOT '%s')",
			      ag->slot, snapshot_name ? "export" : "nothing");
	PGresult *res = PQexec(ag->repl, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 4) {
		char what[160];
		snprintf(what, sizeof(what), "could not create replication slot \"%s\"", ag->slot);
		pgcap_error(ag->dsn, what, PQerrorMessage(ag->repl), err, errlen);
		const char *state = pgcap_sqlstate(res);
		st = strcmp(state, "42501") == 0 || strcmp(state, "53400") == 0 ||
				     strcmp(state, "55000") == 0
			     ? PGCAP_CONFIG
			     : conn_status(ag->repl);
		goto out;
	}
	/* Columns: slot_name, consistent_point, snapshot_name, output_plugin. */
	if (!pgcap_lsn_parse(PQgetvalue(res, 0, 1), consistent_lsn)) {
		snprintf(err, errlen, "replication slot \"%s\": unexpected consistent point \"%s\"",
			 ag->slot, PQgetvalue(res, 0, 1));
		st = PGCAP_FAILURE;
		goto out;
	}
	if (snapshot_name)
		snprintf(snapshot_name, 64, "%s", PQgetvalue(res, 0, 2));
	log_info("capture", "created replication slot \"%s\" at consistent point %X/%X",
		 ag->slot, PGCAP_LSN_ARGS(*consistent_lsn));
out:
	PQclear(res);
	free(sql);
	return st;
}

pgcap_status_t
pgcap_slot_drop(pgcap_agent_t *ag, char *err, size_t errlen)
{
	pgcap_status_t st = PGCAP_OK;
	char *sql = xasprintf("DROP_REPLICATION_SLOT \"%s\" WAIT", ag->slot);
	PGresult *res = PQexec(ag->repl, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		char what[160];
		snprintf(what, sizeof(what), "could not drop replication slot \"%s\"", ag->slot);
		pgcap_error(ag->dsn, what, PQerrorMessage(ag->repl), err, errlen);
		st = conn_status(ag->repl);
		goto out;
	}
	log_info("capture", "dropped replication slot \"%s\"", ag->slot);
out:
	PQclear(res);
	free(sql);
	return st;
}

pgcap_status_t
pgcap_publication_ensure(pgcap_agent_t *ag, char *err, size_t errlen)
{
	const char *params[1] = {ag->publication};
	pgcap_status_t st = PGCAP_OK;
	char *ident = NULL, *sql = NULL;
	PGresult *cres = NULL;
	PGresult *res = PQexecParams(ag->query, "SELECT 1 FROM pg_publication WHERE pubname = $1",
				     1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char what[160];
		snprintf(what, sizeof(what), "could not look up publication \"%s\"", ag->publication);
		pgcap_error(ag->dsn, what, PQerrorMessage(ag->query), err, errlen);
		st = conn_status(ag->query);
		goto out;
	}
	if (PQntuples(res) == 1)
		goto out;
	if (!ag->default_publication) {
		snprintf(err, errlen,
			 "publication \"%s\" does not exist: create it (CREATE PUBLICATION %s FOR "
			 "TABLE …) or omit --publication to use \"steward\" FOR ALL TABLES",
			 ag->publication, ag->publication);
		st = PGCAP_CONFIG;
		goto out;
	}
	ident = PQescapeIdentifier(ag->query, ag->publication, strlen(ag->publication));
	sql = xasprintf("CREATE PUBLICATION %s FOR ALL TABLES", ident ? ident : "steward");
	cres = PQexec(ag->query, sql);
	if (PQresultStatus(cres) != PGRES_COMMAND_OK) {
		char what[200];
		snprintf(what, sizeof(what), "could not create publication \"%s\"", ag->publication);
		pgcap_error(ag->dsn, what, PQerrorMessage(ag->query), err, errlen);
		st = strcmp(pgcap_sqlstate(cres), "42501") == 0 ? PGCAP_CONFIG
								 : conn_status(ag->query);
		goto out;
	}
	log_info("capture", "created publication \"%s\" for all tables", ag->publication);
out:
	PQclear(cres);
	PQclear(res);
	free(sql);
	if (ident)
		PQfreemem(ident);
	return st;
}
