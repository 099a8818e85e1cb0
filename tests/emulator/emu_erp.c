/*
 * emu_erp.c — the ERP's small REST API over erp.customers, erp.invoices and
 * erp.products (PostgreSQL).
 *
 *   PUT    /erp/api/{customers|invoices|products}/{key}   upsert → 201 created / 200 updated
 *   PATCH  /erp/api/{customers|invoices|products}/{key}   partial update → 200, 404
 *   GET    /erp/api/{customers|invoices|products}/{key}   → 200, 404
 *   DELETE /erp/api/{customers|invoices|products}/{key}   → 204, 404, 409
 *
 * Bodies are JSON objects; the answer is the row as JSON.  Errors:
 * {"error":{"code","message","field"}}; 409 on foreign-key violations,
 * 422 on invalid values.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "emu_db.h"
#include "log.h"
#include "xalloc.h"

enum etype { E_TEXT, E_EMAIL, E_DECIMAL, E_BOOL, E_ENUM, E_CURRENCY, E_DATE, E_TIMESTAMP };

struct efield {
	const char *name;  /* JSON attribute = column */
	enum etype type;
	bool required;     /* on create */
	bool nullable;
};

struct etable {
	const char *path;
	const char *key;   /* primary key column */
	const struct efield *fields;
	bool touch;        /* has updated_at */
};

static const char *const invoice_statuses[] = {"open", "paid", "void", NULL};

static const struct efield customer_fields[] = {
	{"name", E_TEXT, true, false},
	{"email", E_EMAIL, false, true},
	{"credit_limit", E_DECIMAL, false, true},
	{"crm_account_id", E_TEXT, false, true},
	{"billing_customer_id", E_TEXT, false, true},
	{"blocked", E_BOOL, false, false},
	{NULL, 0, false, false},
};
static const struct efield invoice_fields[] = {
	{"customer_no", E_TEXT, true, false},
	{"amount", E_DECIMAL, true, false},
	{"currency", E_CURRENCY, false, false},
	{"status", E_ENUM, true, false},
	{"issued_at", E_TIMESTAMP, false, false},
	{"due_date", E_DATE, false, true},
	{NULL, 0, false, false},
};
static const struct efield product_fields[] = {
	{"name", E_TEXT, true, false},
	{"list_price", E_DECIMAL, true, false},
	{"active", E_BOOL, false, false},
	{NULL, 0, false, false},
};

static const struct etable tables[] = {
	{"customers", "customer_no", customer_fields, true},
	{"invoices", "invoice_no", invoice_fields, false},
	{"products", "sku", product_fields, false},
};

static void
erp_fail(emu_resp_t *resp, int status, const char *code, const char *message, const char *field)
{
	json_t *e = json_pack("{s:s,s:s}", "code", code, "message", message);
	json_object_set_new(e, "field", field ? json_string(field) : json_null());
	emu_resp_json(resp, status, json_pack("{s:o}", "error", e));
}

static void
erp_error(emu_resp_t *resp, emu_errkind_t kind, int status, const char *message)
{
	static const char *const codes[] = {
		[EMU_ERR_UNAUTHORIZED] = "unauthorized", [EMU_ERR_RATE_LIMITED] = "rate_limited",
		[EMU_ERR_QUOTA] = "quota_exceeded", [EMU_ERR_FAULT] = "unavailable",
		[EMU_ERR_NO_ROUTE] = "not_found", [EMU_ERR_METHOD] = "method_not_allowed",
		[EMU_ERR_TOO_LARGE] = "too_large", [EMU_ERR_INTERNAL] = "internal",
		[EMU_ERR_UNAVAILABLE] = "unavailable",
	};
	const char *code = codes[kind];
	if (kind == EMU_ERR_FAULT && status < 503)
		code = "internal";
	erp_fail(resp, status, code, message, NULL);
}

struct assign {
	const char *col[8];
	const char *val[8];
	char buf[8][64];
	int n;
};

/* Validate the JSON body; false with a 422 (or 400) in resp. */
static bool
parse_body(const emu_req_t *req, emu_resp_t *resp, const struct etable *t,
	   json_t **body_out, struct assign *a)
{
	json_error_t jerr;
	char msg[256];
	memset(a, 0, sizeof(*a));
	json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
	*body_out = body;
	if (body == NULL || !json_is_object(body)) {
		snprintf(msg, sizeof(msg), "invalid JSON body: %s", body ? "expected an object" : jerr.text);
		erp_fail(resp, 400, "invalid_json", msg, NULL);
		return false;
	}
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		const struct efield *f = NULL;
		for (const struct efield *g = t->fields; g->name; g++)
			if (strcmp(g->name, key) == 0)
				f = g;
		if (f == NULL) {
			if (strcmp(key, t->key) == 0)
				continue;  /* the key is taken from the URL */
			snprintf(msg, sizeof(msg), "unknown field \"%.64s\"", key);
			erp_fail(resp, 422, "unknown_field", msg, key);
			return false;
		}
		int i = a->n;
		a->col[i] = f->name;
		a->val[i] = NULL;
		if (json_is_null(v)) {
			if (!f->nullable) {
				snprintf(msg, sizeof(msg), "%s must not be null", f->name);
				erp_fail(resp, 422, "invalid_value", msg, f->name);
				return false;
			}
			a->n++;
			continue;
		}
		bool ok = true;
		const char *s = json_string_value(v);
		switch (f->type) {
		case E_DECIMAL:
			ok = emu_decimal_from_json(v, true, a->buf[i], sizeof(a->buf[i]));
			a->val[i] = a->buf[i];
			break;
		case E_BOOL:
			ok = json_is_boolean(v);
			a->val[i] = json_is_true(v) ? "true" : "false";
			break;
		case E_TEXT:
			ok = s != NULL && (*s || !f->required);
			break;
		case E_EMAIL:
			ok = s != NULL && emu_email_valid(s);
			break;
		case E_ENUM:
			ok = s != NULL && emu_in_set(s, invoice_statuses);
			break;
		case E_CURRENCY:
			ok = s != NULL && strlen(s) == 3 && isupper((unsigned char) s[0]) &&
			     isupper((unsigned char) s[1]) && isupper((unsigned char) s[2]);
			break;
		case E_DATE:
			ok = s != NULL && strlen(s) == 10 && s[4] == '-' && s[7] == '-';
			break;
		case E_TIMESTAMP:
			ok = s != NULL && strlen(s) >= 10;
			break;
		}
		if (f->type != E_DECIMAL && f->type != E_BOOL)
			a->val[i] = s;
		if (!ok) {
			snprintf(msg, sizeof(msg), "invalid value for %s", f->name);
			erp_fail(resp, 422, "invalid_value", msg, f->name);
			return false;
		}
		a->n++;
	}
	return true;
}

/* Map a failed statement to 409 / 422 / 500. */
static void
write_failed(PGresult *res, emu_resp_t *resp, const char *err)
{
	const char *state = emu_pg_sqlstate(res);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	char msg[512];
	snprintf(msg, sizeof(msg), "%s%s%s", err, detail ? ": " : "", detail ? detail : "");
	if (strcmp(state, "23503") == 0)
		erp_fail(resp, 409, "foreign_key_violation", msg, PQresultErrorField(res, PG_DIAG_COLUMN_NAME));
	else if (strcmp(state, "23505") == 0)
		erp_fail(resp, 409, "conflict", msg, NULL);
	else if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
		erp_fail(resp, 422, "invalid_value", msg, PQresultErrorField(res, PG_DIAG_COLUMN_NAME));
	else {
		log_warn("emulator", "erp: %s", err);
		erp_fail(resp, 500, "internal", "database error", NULL);
	}
}

/* Answer status with the row (or 404). */
static void
send_row(emu_dbconn_t *c, const struct etable *t, const char *key, int status, emu_resp_t *resp)
{
	char err[256];
	char *sql = xasprintf("SELECT row_to_json(r) FROM %s r WHERE %s = $1", t->path, t->key);
	const char *params[1] = {key};
	PGresult *res = emu_pg_exec(c, sql, 1, params);
	if (!emu_pg_ok(c, res, err, sizeof(err))) {
		write_failed(res, resp, err);
	} else if (PQntuples(res) == 0) {
		erp_fail(resp, 404, "not_found", "no such record", NULL);
	} else {
		json_t *row = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, NULL);
		emu_resp_json(resp, status, row);
	}
	PQclear(res);
	free(sql);
}

static void
erp_write(emu_dbconn_t *c, const emu_req_t *req, const struct etable *t, const char *key,
	  bool put, emu_resp_t *resp)
{
	json_t *body = NULL;
	struct assign a;
	char err[256];
	buf_t sql = BUF_INIT;
	const char *params[9];
	PGresult *res = NULL;
	/* a PUT with every required field upserts; otherwise it updates and
	 * reports the missing field if the record does not exist */
	if (!parse_body(req, resp, t, &body, &a))
		goto out;
	const char *missing = NULL;  /* first required field absent from the body */
	for (const struct efield *g = t->fields; g->name && missing == NULL; g++) {
		bool given = false;
		for (int i = 0; i < a.n; i++)
			given = given || strcmp(a.col[i], g->name) == 0;
		if (g->required && !given)
			missing = g->name;
	}
	bool complete = missing == NULL;
	params[0] = key;
	for (int i = 0; i < a.n; i++)
		params[i + 1] = a.val[i];
	if (put && complete) {
		buf_printf(&sql, "INSERT INTO %s (%s", t->path, t->key);
		for (int i = 0; i < a.n; i++)
			buf_printf(&sql, ", %s", a.col[i]);
		buf_append_str(&sql, ") VALUES ($1");
		for (int i = 0; i < a.n; i++)
			buf_printf(&sql, ", $%d", i + 2);
		buf_printf(&sql, ") ON CONFLICT (%s) DO UPDATE SET %s = EXCLUDED.%s", t->key, t->key, t->key);
		for (int i = 0; i < a.n; i++)
			buf_printf(&sql, ", %s = EXCLUDED.%s", a.col[i], a.col[i]);
		if (t->touch)
			buf_append_str(&sql, ", updated_at = now()");
		buf_append_str(&sql, " RETURNING (xmax = 0)");
	} else {
		buf_printf(&sql, "UPDATE %s SET %s = $1", t->path, t->key);
		for (int i = 0; i < a.n; i++)
			buf_printf(&sql, ", %s = $%d", a.col[i], i + 2);
		if (t->touch)
			buf_append_str(&sql, ", updated_at = now()");
		buf_printf(&sql, " WHERE %s = $1 RETURNING false", t->key);
	}
	res = emu_pg_exec(c, sql.data, a.n + 1, params);
	if (!emu_pg_ok(c, res, err, sizeof(err))) {
		write_failed(res, resp, err);
	} else if (PQntuples(res) == 0) {
		if (put) {
			char msg[128];
			snprintf(msg, sizeof(msg), "%s is required to create a record", missing);
			erp_fail(resp, 422, "missing_field", msg, missing);
		} else {
			erp_fail(resp, 404, "not_found", "no such record", NULL);
		}
	} else {
		bool created = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		send_row(c, t, key, created ? 201 : 200, resp);
		resp->write = created ? EMU_WRITE_CREATE : EMU_WRITE_UPDATE;
	}
out:
	PQclear(res);
	buf_free(&sql);
	json_decref(body);
}

static void
erp_delete(emu_dbconn_t *c, const struct etable *t, const char *key, emu_resp_t *resp)
{
	char err[256];
	char *sql = xasprintf("DELETE FROM %s WHERE %s = $1", t->path, t->key);
	const char *params[1] = {key};
	PGresult *res = emu_pg_exec(c, sql, 1, params);
	if (!emu_pg_ok(c, res, err, sizeof(err))) {
		write_failed(res, resp, err);
	} else if (strcmp(PQcmdTuples(res), "0") == 0) {
		erp_fail(resp, 404, "not_found", "no such record", NULL);
	} else {
		emu_resp_json(resp, 204, NULL);
		resp->write = EMU_WRITE_DELETE;
	}
	PQclear(res);
	free(sql);
}

static void
erp_handle(const emu_req_t *req, emu_resp_t *resp)
{
	static const char base[] = "/api/";
	if (strncmp(req->sub, base, sizeof(base) - 1) != 0)
		return;
	const char *p = req->sub + sizeof(base) - 1;
	const struct etable *t = NULL;
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		size_t n = strlen(tables[i].path);
		if (strncmp(p, tables[i].path, n) == 0 && p[n] == '/' && p[n + 1] && !strchr(p + n + 1, '/')) {
			t = &tables[i];
			p += n + 1;
		}
	}
	if (t == NULL)
		return;
	const char *m = req->method;
	if (strcmp(m, "GET") && strcmp(m, "PUT") && strcmp(m, "PATCH") && strcmp(m, "DELETE")) {
		erp_fail(resp, 405, "method_not_allowed", "allowed: GET, PUT, PATCH, DELETE", NULL);
		emu_resp_header(resp, "Allow", "GET, PUT, PATCH, DELETE");
		return;
	}
	char err[256];
	emu_dbconn_t *c = emu_db_get(req->ctx->db, EMU_ERP, err, sizeof(err));
	if (c == NULL) {
		log_warn("emulator", "erp: %s", err);
		erp_fail(resp, 503, "unavailable", "the ERP database is unavailable", NULL);
		return;
	}
	if (strcmp(m, "GET") == 0)
		send_row(c, t, p, 200, resp);
	else if (strcmp(m, "DELETE") == 0)
		erp_delete(c, t, p, resp);
	else
		erp_write(c, req, t, p, strcmp(m, "PUT") == 0, resp);
	emu_db_put(req->ctx->db, c);
}

const emu_platform_ops_t emu_erp_ops = {"/erp", erp_handle, erp_error};
