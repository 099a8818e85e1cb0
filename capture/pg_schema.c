/*
 * pg_schema.c — relation and type-name cache; see pg_schema.h.
 *
 * Both tables are small (tables and distinct column types of one
 * publication), so they are arrays searched linearly with a one-entry
 * memo for the last relation: the streaming hot path hits the memo.
 */
#include "pg_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct type_entry {
	uint32_t oid;
	int32_t typmod;
	char *name;
};

struct pgcap_schema {
	PGconn *conn;
	pgcap_relation_t **rels;
	size_t nrels, caprels;
	pgcap_relation_t *last;
	struct type_entry *types;
	size_t ntypes, captypes;
};

pgcap_schema_t *
pgcap_schema_create(PGconn *conn)
{
	pgcap_schema_t *s = xcalloc(1, sizeof(*s));
	s->conn = conn;
	return s;
}

void
pgcap_schema_set_conn(pgcap_schema_t *s, PGconn *conn)
{
	s->conn = conn;
}

static void
relation_free(pgcap_relation_t *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->ncols; i++)
		free(r->cols[i].name);
	free(r->cols);
	free(r->schema);
	free(r->table);
	free(r);
}

void
pgcap_schema_forget_relations(pgcap_schema_t *s)
{
	for (size_t i = 0; i < s->nrels; i++)
		relation_free(s->rels[i]);
	s->nrels = 0;
	s->last = NULL;
}

void
pgcap_schema_destroy(pgcap_schema_t *s)
{
	if (s == NULL)
		return;
	pgcap_schema_forget_relations(s);
	free(s->rels);
	for (size_t i = 0; i < s->ntypes; i++)
		free(s->types[i].name);
	free(s->types);
	free(s);
}

const char *
pgcap_schema_type_remember(pgcap_schema_t *s, uint32_t oid, int32_t typmod, const char *name)
{
	for (size_t i = 0; i < s->ntypes; i++)
		if (s->types[i].oid == oid && s->types[i].typmod == typmod)
			return s->types[i].name;
	if (s->ntypes == s->captypes) {
		s->captypes = s->captypes ? s->captypes * 2 : 32;
		s->types = xrealloc(s->types, s->captypes * sizeof(*s->types));
	}
	s->types[s->ntypes].oid = oid;
	s->types[s->ntypes].typmod = typmod;
	s->types[s->ntypes].name = xstrdup(name);
	return s->types[s->ntypes++].name;
}

const char *
pgcap_schema_type_name(pgcap_schema_t *s, uint32_t oid, int32_t typmod, char *err,
		       size_t errlen)
{
	for (size_t i = 0; i < s->ntypes; i++)
		if (s->types[i].oid == oid && s->types[i].typmod == typmod)
			return s->types[i].name;
	char oidtext[16], modtext[16];
	snprintf(oidtext, sizeof(oidtext), "%u", oid);
	snprintf(modtext, sizeof(modtext), "%d", typmod);
	const char *params[2] = {oidtext, modtext};
	const char *name = NULL;
	PGresult *res = PQexecParams(s->conn, "SELECT format_type($1::oid, $2::int4)", 2, NULL,
				     params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(s->conn));
		msg[strcspn(msg, "\n")] = '\0';
		snprintf(err, errlen, "could not look up the name of type %u: %s", oid, msg);
		goto out;
	}
	/* A type dropped since the change was written prints as "???": keep the OID visible. */
	name = pgcap_schema_type_remember(s, oid, typmod,
					  PQgetisnull(res, 0, 0) ? oidtext : PQgetvalue(res, 0, 0));
out:
	PQclear(res);
	return name;
}

bool
pgcap_schema_relation_update(pgcap_schema_t *s, const pgoutput_msg_t *m, char *err,
			     size_t errlen)
{
	pgcap_relation_t *r = xcalloc(1, sizeof(*r));
	r->relid = m->u.relation.relid;
	r->schema = xstrdup(m->u.relation.nspname[0] ? m->u.relation.nspname : "pg_catalog");
	r->table = xstrdup(m->u.relation.relname);
	r->replident = m->u.relation.replident;
	r->ncols = m->u.relation.ncols;
	r->cols = xcalloc(r->ncols + 1, sizeof(*r->cols));
	for (size_t i = 0; i < r->ncols; i++) {
		const pgoutput_column_t *c = &m->u.relation.cols[i];
		r->cols[i].name = xstrdup(c->name);
		r->cols[i].type_oid = c->type_oid;
		r->cols[i].typmod = c->typmod;
		r->cols[i].key = (c->flags & PGOUTPUT_COLUMN_KEY) != 0;
		r->cols[i].type_name = pgcap_schema_type_name(s, c->type_oid, c->typmod, err, errlen);
		if (r->cols[i].type_name == NULL) {
			relation_free(r);
			return false;
		}
	}
	for (size_t i = 0; i < s->nrels; i++) {
		if (s->rels[i]->relid == r->relid) {
			relation_free(s->rels[i]);
			s->rels[i] = r;
			s->last = r;
			return true;
		}
	}
	if (s->nrels == s->caprels) {
		s->caprels = s->caprels ? s->caprels * 2 : 16;
		s->rels = xrealloc(s->rels, s->caprels * sizeof(*s->rels));
	}
	s->rels[s->nrels++] = r;
	s->last = r;
	return true;
}

const pgcap_relation_t *
pgcap_schema_relation(pgcap_schema_t *s, uint32_t relid)
{
	if (s->last && s->last->relid == relid)
		return s->last;
	for (size_t i = 0; i < s->nrels; i++) {
		if (s->rels[i]->relid == relid) {
			s->last = s->rels[i];
			return s->last;
		}
	}
	return NULL;
}
