/*
 * emu_support.c — the support desk, Zendesk style, over support.tickets
 * (PostgreSQL).
 *
 *   POST /support/api/v2/tickets.json                 create → 201 {"ticket":{…}}
 *   GET  /support/api/v2/tickets.json?external_id=X   list → {"tickets":[…],"count":n}
 *   GET|PUT|DELETE /support/api/v2/tickets/{id}.json
 *   POST /support/api/v2/tickets/create_or_update     upsert by external_id → 201 / 200
 *
 * Unknown ticket attributes are ignored, as Zendesk does.  Validation errors
 * are 422 {"error":"RecordInvalid","description":…,"details":{field:[…]}}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "emu_db.h"
#include "log.h"
#include "xalloc.h"

static const char *const statuses[] = {"new", "open", "pending", "solved", "closed", NULL};
static const char *const priorities[] = {"low", "normal", "high", "urgent", NULL};

/* Ticket attribute ↔ column; the same name on both sides. */
static const char *const attrs[] = {"subject", "status", "priority", "external_id",
				    "requester_email", "customer_no", NULL};

#define TICKET_SELECT \
	"SELECT id, external_id, requester_email, customer_no, subject, status, priority, " \
	"to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), " \
	"to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM tickets "

static void
zd_error(emu_resp_t *resp, int status, const char *error, const char *description)
{
	emu_resp_json(resp, status, json_pack("{s:s,s:s}", "error", error, "description", description));
}

static void
record_invalid(emu_resp_t *resp, const char *field, const char *error, const char *description)
{
	emu_resp_json(resp, 422, json_pack("{s:s,s:s,s:{s:[{s:s,s:s}]}}", "error", "RecordInvalid",
					   "description", "Record validation errors", "details", field,
					   "description", description, "error", error));
}

static void
support_error(emu_resp_t *resp, emu_errkind_t kind, int status, const char *message)
{
	switch (kind) {
	case EMU_ERR_UNAUTHORIZED:
		emu_resp_json(resp, 401, json_pack("{s:s}", "error", "Couldn't authenticate you"));
		break;
	case EMU_ERR_RATE_LIMITED:
	case EMU_ERR_QUOTA:
		zd_error(resp, status, "APIRateLimitExceeded", "Number of allowed API requests per minute exceeded");
		break;
	case EMU_ERR_NO_ROUTE:
		zd_error(resp, 404, "InvalidEndpoint", "Not found");
		break;
	case EMU_ERR_METHOD:
		zd_error(resp, 405, "MethodNotAllowed", message);
		break;
	default:
		zd_error(resp, status, status == 503 ? "ServiceUnavailable" : "InternalError", message);
		break;
	}
}

struct ticket_in {
	const char *col[8];
	const char *val[8];  /* borrowed from the body; NULL = SQL NULL */
	int n;
	bool has_subject;
	const char *external_id;
};

/* Validate {"ticket":{…}}; returns the body (caller decrefs, values are
 * borrowed from it) or NULL with the error in resp. */
static json_t *
parse_ticket(const emu_req_t *req, emu_resp_t *resp, struct ticket_in *t)
{
	json_error_t jerr;
	char msg[256];
	memset(t, 0, sizeof(*t));
	json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
	json_t *ticket = json_object_get(body, "ticket");
	if (body == NULL || !json_is_object(ticket)) {
		snprintf(msg, sizeof(msg), "%s", body ? "the body must be {\"ticket\":{…}}" : jerr.text);
		zd_error(resp, 400, "InvalidJSON", msg);
		json_decref(body);
		return NULL;
	}
	/* "requester": {"email": …} is Zendesk's way to name the requester on create */
	json_t *requester = json_object_get(ticket, "requester");
	if (json_is_object(requester) && json_object_get(ticket, "requester_email") == NULL)
		json_object_set(ticket, "requester_email", json_object_get(requester, "email"));
	for (int i = 0; attrs[i]; i++) {
		json_t *v = json_object_get(ticket, attrs[i]);
		if (v == NULL)
			continue;
		if (!json_is_string(v) && !json_is_null(v)) {
			snprintf(msg, sizeof(msg), "%s: is not a string", attrs[i]);
			record_invalid(resp, attrs[i], "InvalidValue", msg);
			goto fail;
		}
		const char *s = json_string_value(v);
		if (s && *s == '\0' && strcmp(attrs[i], "subject") != 0)
			s = NULL;  /* "" clears an optional attribute */
		if (strcmp(attrs[i], "subject") == 0) {
			if (s == NULL || *s == '\0') {
				record_invalid(resp, "subject", "BlankValue", "Subject: cannot be blank");
				goto fail;
			}
			t->has_subject = true;
		} else if (strcmp(attrs[i], "status") == 0) {
			if (s == NULL || !emu_in_set(s, statuses)) {
				snprintf(msg, sizeof(msg), "Status: %.64s is not valid", s ? s : "null");
				record_invalid(resp, "status", "InvalidValue", msg);
				goto fail;
			}
		} else if (strcmp(attrs[i], "priority") == 0) {
			if (s && !emu_in_set(s, priorities)) {
				snprintf(msg, sizeof(msg), "Priority: %.64s is not valid", s);
				record_invalid(resp, "priority", "InvalidValue", msg);
				goto fail;
			}
		} else if (strcmp(attrs[i], "requester_email") == 0 && s && !emu_email_valid(s)) {
			snprintf(msg, sizeof(msg), "Requester: Email %.100s is not properly formatted", s);
			record_invalid(resp, "requester", "InvalidValue", msg);
			goto fail;
		} else if (strcmp(attrs[i], "external_id") == 0) {
			t->external_id = s;
		}
		t->col[t->n] = attrs[i];
		t->val[t->n] = s;
		t->n++;
	}
	return body;
fail:
	json_decref(body);
	return NULL;
}

static void
db_failure(emu_resp_t *resp, const char *what, const char *err)
{
	log_warn("emulator", "support: %s: %s", what, err);
	zd_error(resp, 500, "InternalError", what);
}

static json_t *
row_ticket(const emu_req_t *req, PGresult *res, int row)
{
	char url[256];
	const char *id = PQgetvalue(res, row, 0);
	snprintf(url, sizeof(url), "%s/support/api/v2/tickets/%s.json", req->ctx->base_url, id);
	json_t *o = json_pack("{s:I,s:s}", "id", (json_int_t) atoll(id), "url", url);
	static const char *const names[] = {"external_id", "requester_email", "customer_no", "subject",
					    "status", "priority", "created_at", "updated_at"};
	for (int i = 0; i < 8; i++)
		json_object_set_new(o, names[i], PQgetisnull(res, row, i + 1) ? json_null()
				    : json_string(PQgetvalue(res, row, i + 1)));
	return o;
}

/* Answer status with {"ticket":…} for ticket id, or 404. */
static void
send_ticket(emu_dbconn_t *c, const emu_req_t *req, emu_resp_t *resp, const char *id, int status)
{
	char err[256];
	const char *params[1] = {id};
	PGresult *res = emu_pg_exec(c, TICKET_SELECT "WHERE id = $1", 1, params);
	if (!emu_pg_ok(c, res, err, sizeof(err)))
		db_failure(resp, "could not read the ticket", err);
	else if (PQntuples(res) == 0)
		zd_error(resp, 404, "RecordNotFound", "Not found");
	else
		emu_resp_json(resp, status, json_pack("{s:o}", "ticket", row_ticket(req, res, 0)));
	PQclear(res);
}

static void
write_failed(emu_dbconn_t *c, PGresult *res, emu_resp_t *resp, const char *err)
{
	const char *state = emu_pg_sqlstate(res);
	if (strcmp(state, "23505") == 0)
		record_invalid(resp, "external_id", "DuplicateValue", "External ID: has already been taken");
	else if (strcmp(state, "23502") == 0)
		record_invalid(resp, "subject", "BlankValue", "Subject: cannot be blank");
	else
		db_failure(resp, "could not write the ticket", err);
}

/* INSERT (optionally ON CONFLICT (external_id) DO UPDATE); 201, or 200 when an upsert updated. */
static void
ticket_insert(emu_dbconn_t *c, const emu_req_t *req, emu_resp_t *resp, const struct ticket_in *t,
	      bool upsert)
{
	char err[256];
	buf_t sql = BUF_INIT;
	buf_append_str(&sql, "INSERT INTO tickets (");
	for (int i = 0; i < t->n; i++)
		buf_printf(&sql, "%s%s", i ? ", " : "", t->col[i]);
	buf_append_str(&sql, ") VALUES (");
	for (int i = 0; i < t->n; i++)
		buf_printf(&sql, "%s$%d", i ? ", " : "", i + 1);
	buf_append_str(&sql, ")");
	if (upsert) {
		buf_append_str(&sql, " ON CONFLICT (external_id) DO UPDATE SET ");
		for (int i = 0; i < t->n; i++)
			buf_printf(&sql, "%s = EXCLUDED.%s, ", t->col[i], t->col[i]);
		buf_append_str(&sql, "updated_at = now() WHERE tickets.status <> 'closed'");
	}
	buf_append_str(&sql, " RETURNING id, (xmax = 0)");
	PGresult *res = emu_pg_exec(c, sql.data, t->n, t->val);
	if (!emu_pg_ok(c, res, err, sizeof(err))) {
		write_failed(c, res, resp, err);
	} else if (PQntuples(res) == 0) {
		record_invalid(resp, "status", "ClosedPreventsUpdate", "Status: closed prevents ticket update");
	} else {
		bool created = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
		send_ticket(c, req, resp, PQgetvalue(res, 0, 0), created ? 201 : 200);
		resp->write = created ? EMU_WRITE_CREATE : EMU_WRITE_UPDATE;
	}
	PQclear(res);
	buf_free(&sql);
}

/* UPDATE by id, or by external_id when by_external. */
static void
ticket_update(emu_dbconn_t *c, const emu_req_t *req, emu_resp_t *resp, const struct ticket_in *t,
	      const char *key, bool by_external)
{
	char err[256];
	buf_t sql = BUF_INIT;
	const char *params[9];
	buf_append_str(&sql, "UPDATE tickets SET ");
	for (int i = 0; i < t->n; i++) {
		buf_printf(&sql, "%s = $%d, ", t->col[i], i + 2);
		params[i + 1] = t->val[i];
	}
	params[0] = key;
	buf_printf(&sql, "updated_at = now() WHERE %s = $1 AND status <> 'closed' RETURNING id",
		   by_external ? "external_id" : "id");
	PGresult *res = emu_pg_exec(c, sql.data, t->n + 1, params);
	if (!emu_pg_ok(c, res, err, sizeof(err))) {
		write_failed(c, res, resp, err);
	} else if (PQntuples(res) == 0) {
		PQclear(res);
		res = emu_pg_exec(c, by_external ? "SELECT status FROM tickets WHERE external_id = $1"
					  : "SELECT status FROM tickets WHERE id = $1", 1, params);
		if (emu_pg_ok(c, res, err, sizeof(err)) && PQntuples(res) > 0)
			record_invalid(resp, "status", "ClosedPreventsUpdate", "Status: closed prevents ticket update");
		else if (by_external)
			record_invalid(resp, "subject", "BlankValue", "Subject: cannot be blank");
		else
			zd_error(resp, 404, "RecordNotFound", "Not found");
	} else {
		send_ticket(c, req, resp, PQgetvalue(res, 0, 0), 200);
		resp->write = EMU_WRITE_UPDATE;
	}
	PQclear(res);
	buf_free(&sql);
}

static void
ticket_list(emu_dbconn_t *c, const emu_req_t *req, emu_resp_t *resp)
{
	char err[256];
	const char *ext = json_string_value(json_object_get(req->query, "external_id"));
	const char *params[1] = {ext};
	PGresult *res = ext ? emu_pg_exec(c, TICKET_SELECT "WHERE external_id = $1 ORDER BY id", 1, params)
			    : emu_pg_exec(c, TICKET_SELECT "ORDER BY id LIMIT 100", 0, NULL);
	if (!emu_pg_ok(c, res, err, sizeof(err))) {
		db_failure(resp, "could not list tickets", err);
	} else {
		json_t *arr = json_array();
		for (int i = 0; i < PQntuples(res); i++)
			json_array_append_new(arr, row_ticket(req, res, i));
		emu_resp_json(resp, 200, json_pack("{s:o,s:i}", "tickets", arr, "count", PQntuples(res)));
	}
	PQclear(res);
}

static void
ticket_delete(emu_dbconn_t *c, emu_resp_t *resp, const char *id)
{
	char err[256];
	const char *params[1] = {id};
	PGresult *res = emu_pg_exec(c, "DELETE FROM tickets WHERE id = $1", 1, params);
	if (!emu_pg_ok(c, res, err, sizeof(err)))
		db_failure(resp, "could not delete the ticket", err);
	else if (strcmp(PQcmdTuples(res), "0") == 0)
		zd_error(resp, 404, "RecordNotFound", "Not found");
	else {
		emu_resp_json(resp, 204, NULL);
		resp->write = EMU_WRITE_DELETE;
	}
	PQclear(res);
}

static void
support_handle(const emu_req_t *req, emu_resp_t *resp)
{
	static const char base[] = "/api/v2/tickets";
	if (strncmp(req->sub, base, sizeof(base) - 1) != 0)
		return;
	const char *p = req->sub + sizeof(base) - 1;
	const char *m = req->method;
	enum { COLLECTION, ONE, UPSERT } kind;
	char id[32] = "";
	if (strcmp(p, ".json") == 0) {
		kind = COLLECTION;
	} else if (strcmp(p, "/create_or_update") == 0 || strcmp(p, "/create_or_update.json") == 0) {
		kind = UPSERT;
	} else {
		size_t n = p[0] == '/' ? strspn(p + 1, "0123456789") : 0;
		if (n == 0 || n > 18 || strcmp(p + 1 + n, ".json") != 0)
			return;
		memcpy(id, p + 1, n);
		id[n] = '\0';
		kind = ONE;
	}
	bool ok = (kind == COLLECTION && (strcmp(m, "POST") == 0 || strcmp(m, "GET") == 0)) ||
		  (kind == UPSERT && strcmp(m, "POST") == 0) ||
		  (kind == ONE && (strcmp(m, "GET") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0));
	if (!ok) {
		support_error(resp, EMU_ERR_METHOD, 405, "method not allowed on this endpoint");
		return;
	}
	char err[256];
	emu_dbconn_t *c = emu_db_get(req->ctx->db, EMU_SUPPORT, err, sizeof(err));
	if (c == NULL) {
		log_warn("emulator", "support: %s", err);
		zd_error(resp, 503, "ServiceUnavailable", "the support database is unavailable");
		return;
	}
	struct ticket_in t;
	json_t *body = NULL;
	if (strcmp(m, "GET") == 0) {
		if (kind == COLLECTION)
			ticket_list(c, req, resp);
		else
			send_ticket(c, req, resp, id, 200);
	} else if (strcmp(m, "DELETE") == 0) {
		ticket_delete(c, resp, id);
	} else if ((body = parse_ticket(req, resp, &t)) != NULL) {
		if (kind == ONE) {
			ticket_update(c, req, resp, &t, id, false);
		} else if (kind == COLLECTION) {
			if (!t.has_subject)
				record_invalid(resp, "subject", "BlankValue", "Subject: cannot be blank");
			else
				ticket_insert(c, req, resp, &t, false);
		} else if (t.external_id == NULL) {
			record_invalid(resp, "external_id", "BlankValue", "External ID: cannot be blank");
		} else if (t.has_subject) {
			ticket_insert(c, req, resp, &t, true);
		} else {
			ticket_update(c, req, resp, &t, t.external_id, true);
		}
	}
	json_decref(body);
	emu_db_put(req->ctx->db, c);
}

const emu_platform_ops_t emu_support_ops = {"/support", support_handle, support_error};
