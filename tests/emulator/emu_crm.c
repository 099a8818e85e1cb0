/*
 * emu_crm.c — the CRM, Salesforce REST style, over MariaDB tables: the
 * Account object over crm.accounts and the Case object over crm.cases.
 *
 *   PATCH/GET/DELETE /crm/services/data/vXX.X/sobjects/{Account|Case}/ExternalId__c/{value}
 *   GET/PATCH/DELETE /crm/services/data/vXX.X/sobjects/{Account|Case}/{id}
 *   POST             /crm/services/data/vXX.X/sobjects/{Account|Case}
 *
 * Errors are Salesforce's: a JSON array of {"message","errorCode","fields"}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "emu_db.h"
#include "log.h"
#include "xalloc.h"

enum ftype { F_TEXT, F_EMAIL, F_PICKLIST, F_DECIMAL };

struct field {
	const char *api;  /* Salesforce field name */
	const char *col;  /* table column */
	enum ftype type;
	size_t maxlen;
	bool required;    /* may not be null or empty */
	const char *const *values;  /* F_PICKLIST: the allowed values */
};

#define MAX_FIELDS 8

/* One sObject type and the table it lives in. */
struct sobject {
	const char *name;        /* "Account" */
	const char *table;       /* "accounts" */
	const char *id_prefix;   /* Salesforce key prefix of its ids */
	const char *create_required;  /* API name a create needs (NULL: none) */
	const struct field *fields;
	size_t nfields;
};

static const char *const account_statuses[] = {"prospect", "active", "churned", NULL};
static const char *const case_statuses[] = {"new", "open", "pending", "solved", "closed", NULL};
static const char *const case_priorities[] = {"low", "normal", "high", "urgent", NULL};

static const struct field account_fields[] = {
	{"Name", "name", F_TEXT, 255, true, NULL},
	{"Email__c", "email", F_EMAIL, 255, false, NULL},
	{"Phone", "phone", F_TEXT, 64, false, NULL},
	{"Status__c", "status", F_PICKLIST, 16, true, account_statuses},
	{"Credit_Limit__c", "credit_limit", F_DECIMAL, 0, false, NULL},
	{"ExternalId__c", "external_id", F_TEXT, 64, false, NULL},
};

/* Case: the support desk's status vocabulary as its Status picklist. */
static const struct field case_fields[] = {
	{"Subject", "subject", F_TEXT, 255, false, NULL},
	{"Status", "status", F_PICKLIST, 16, true, case_statuses},
	{"Priority", "priority", F_PICKLIST, 16, false, case_priorities},
	{"SuppliedEmail", "supplied_email", F_EMAIL, 255, false, NULL},
	{"ExternalId__c", "external_id", F_TEXT, 64, false, NULL},
};

static const struct sobject sobjects[] = {
	{"Account", "accounts", "001", "Name", account_fields,
	 sizeof(account_fields) / sizeof(account_fields[0])},
	{"Case", "cases", "500", NULL, case_fields, sizeof(case_fields) / sizeof(case_fields[0])},
};
#define NSOBJECTS (sizeof(sobjects) / sizeof(sobjects[0]))

static void
sf_error(emu_resp_t *resp, int status, const char *code, const char *message, const char *field)
{
	json_t *fl = json_array();
	if (field)
		json_array_append_new(fl, json_string(field));
	emu_resp_json(resp, status, json_pack("[{s:s,s:s,s:o}]", "message", message,
					      "errorCode", code, "fields", fl));
}

static void
crm_error(emu_resp_t *resp, emu_errkind_t kind, int status, const char *message)
{
	switch (kind) {
	case EMU_ERR_UNAUTHORIZED:
		sf_error(resp, 401, "INVALID_SESSION_ID", "Session expired or invalid", NULL);
		break;
	case EMU_ERR_QUOTA:
		sf_error(resp, status, "REQUEST_LIMIT_EXCEEDED", message, NULL);
		break;
	case EMU_ERR_RATE_LIMITED:
		sf_error(resp, status, "TOO_MANY_REQUESTS", message, NULL);
		break;
	case EMU_ERR_NO_ROUTE:
		sf_error(resp, 404, "NOT_FOUND", "The requested resource does not exist", NULL);
		break;
	case EMU_ERR_METHOD:
		sf_error(resp, 405, "METHOD_NOT_ALLOWED", message, NULL);
		break;
	case EMU_ERR_TOO_LARGE:
		sf_error(resp, 413, "REQUEST_ENTITY_TOO_LARGE", message, NULL);
		break;
	case EMU_ERR_FAULT:
	case EMU_ERR_UNAVAILABLE:
		sf_error(resp, status, status == 503 ? "SERVER_UNAVAILABLE" : "UNKNOWN_EXCEPTION", message, NULL);
		break;
	default:
		sf_error(resp, status, "UNKNOWN_EXCEPTION", message, NULL);
		break;
	}
}

/* One validated assignment: column and SQL-ready text (NULL = SQL NULL). */
struct assign {
	const struct field *f;
	char *value;
};

struct changes {
	struct assign a[MAX_FIELDS];
	size_t n;
	bool has_required;  /* the object's create_required field is set */
};

static void
changes_free(struct changes *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->a[i].value);
	c->n = 0;
}

/*
 * Validate a JSON body into column assignments of object o.  allow_external:
 * whether ExternalId__c may appear.  false with the Salesforce error in resp.
 */
static bool
parse_changes(const struct sobject *o, const emu_req_t *req, emu_resp_t *resp,
	      bool allow_external, struct changes *out)
{
	json_error_t jerr;
	char msg[512];
	memset(out, 0, sizeof(*out));
	json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, &jerr) : json_object();
	if (body == NULL || !json_is_object(body)) {
		snprintf(msg, sizeof(msg), "Unexpected character in JSON body: %s",
			 body ? "expected an object" : jerr.text);
		sf_error(resp, 400, "JSON_PARSER_ERROR", msg, NULL);
		json_decref(body);
		return false;
	}
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		if (strcmp(key, "attributes") == 0)
			continue;
		const struct field *f = NULL;
		for (size_t i = 0; i < o->nfields; i++)
			if (strcmp(o->fields[i].api, key) == 0)
				f = &o->fields[i];
		if (f == NULL || (!allow_external && strcmp(f->col, "external_id") == 0)) {
			snprintf(msg, sizeof(msg), "No such column '%s' on sobject of type %s", key,
				 o->name);
			sf_error(resp, 400, "INVALID_FIELD", msg, key);
			goto fail;
		}
		char *value = NULL;
		if (json_is_null(v)) {
			if (f->required) {
				snprintf(msg, sizeof(msg), "Required fields are missing: [%s]", f->api);
				sf_error(resp, 400, f->type == F_PICKLIST ? "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
					 : "REQUIRED_FIELD_MISSING", msg, f->api);
				goto fail;
			}
		} else if (f->type == F_DECIMAL) {
			char num[64];
			if (!json_is_number(v)) {
				snprintf(msg, sizeof(msg), "Cannot deserialize instance of currency from %s value",
					 json_is_string(v) ? "VALUE_STRING" : "non-numeric");
				sf_error(resp, 400, "JSON_PARSER_ERROR", msg, f->api);
				goto fail;
			}
			if (!emu_decimal_from_json(v, false, num, sizeof(num))) {
				snprintf(msg, sizeof(msg), "%s: value outside of valid range on numeric field", f->api);
				sf_error(resp, 400, "NUMBER_OUTSIDE_VALID_RANGE", msg, f->api);
				goto fail;
			}
			value = xstrdup(num);
		} else {
			if (!json_is_string(v)) {
				snprintf(msg, sizeof(msg), "Cannot deserialize instance of string from non-string value for %s",
					 f->api);
				sf_error(resp, 400, "JSON_PARSER_ERROR", msg, f->api);
				goto fail;
			}
			const char *s = json_string_value(v);
			if (f->type == F_PICKLIST && !emu_in_set(s, f->values)) {
				snprintf(msg, sizeof(msg), "%s: bad value for restricted picklist field: %.100s", f->api, s);
				sf_error(resp, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", msg, f->api);
				goto fail;
			}
			if (f->maxlen && emu_utf8_len(s) > f->maxlen) {
				snprintf(msg, sizeof(msg), "%s: data value too large: %.40s... (max length=%zu)",
					 f->api, s, f->maxlen);
				sf_error(resp, 400, "STRING_TOO_LONG", msg, f->api);
				goto fail;
			}
			if (f->type == F_EMAIL && *s && !emu_email_valid(s)) {
				snprintf(msg, sizeof(msg), "%s: invalid email address: %.100s", f->api, s);
				sf_error(resp, 400, "INVALID_EMAIL_ADDRESS", msg, f->api);
				goto fail;
			}
			if (f->required && *s == '\0') {
				snprintf(msg, sizeof(msg), "Required fields are missing: [%s]", f->api);
				sf_error(resp, 400, "REQUIRED_FIELD_MISSING", msg, f->api);
				goto fail;
			}
			value = xstrdup(s);
		}
		out->a[out->n].f = f;
		out->a[out->n].value = value;
		out->n++;
		if (o->create_required && strcmp(f->api, o->create_required) == 0)
			out->has_required = true;
	}
	if (!o->create_required)
		out->has_required = true;
	json_decref(body);
	return true;
fail:
	json_decref(body);
	changes_free(out);
	return false;
}

static void
db_failure(emu_resp_t *resp, const char *what, const char *err)
{
	log_warn("emulator", "crm: %s: %s", what, err);
	char msg[600];
	snprintf(msg, sizeof(msg), "%s: %s", what, err);
	sf_error(resp, 500, "UNKNOWN_EXCEPTION", msg, NULL);
}

static void
missing_required(const struct sobject *o, emu_resp_t *resp)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "Required fields are missing: [%s]", o->create_required);
	sf_error(resp, 400, "REQUIRED_FIELD_MISSING", msg, o->create_required);
}

/* SELECT returning the first column of the first row, or NULL (caller frees).
 * *failed set on a database error (message in err). */
static char *
select_one(emu_dbconn_t *c, const char *sql, bool *failed, char *err, size_t errlen)
{
	*failed = false;
	if (emu_my_exec(c, sql, err, errlen) != 0) {
		*failed = true;
		return NULL;
	}
	MYSQL_RES *res = mysql_store_result(c->my);
	if (res == NULL)
		return NULL;
	MYSQL_ROW row = mysql_fetch_row(res);
	char *v = row && row[0] ? xstrdup(row[0]) : NULL;
	mysql_free_result(res);
	return v;
}

/* " WHERE external_id = '…'" or " WHERE id = '…'" */
static void
append_where(emu_dbconn_t *c, buf_t *sql, bool by_external, const char *key)
{
	buf_append_str(sql, by_external ? " WHERE external_id = " : " WHERE id = ");
	emu_my_quote(c, sql, key);
}

static void
object_get(const struct sobject *o, emu_dbconn_t *c, emu_resp_t *resp, bool by_external,
	   const char *key)
{
	char err[512];
	buf_t sql = BUF_INIT;
	buf_append_str(&sql, "SELECT id");
	for (size_t i = 0; i < o->nfields; i++)
		buf_printf(&sql, ", %s", o->fields[i].col);
	buf_printf(&sql, ", CONCAT(LEFT(DATE_FORMAT(updated_at, '%%Y-%%m-%%dT%%H:%%i:%%s.%%f'), 23), "
		   "'+0000') FROM %s", o->table);
	append_where(c, &sql, by_external, key);
	if (emu_my_exec(c, sql.data, err, sizeof(err)) != 0) {
		char what[64];
		snprintf(what, sizeof(what), "could not read %s", o->name);
		db_failure(resp, what, err);
		goto out;
	}
	MYSQL_RES *res = mysql_store_result(c->my);
	MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
	if (row == NULL) {
		crm_error(resp, EMU_ERR_NO_ROUTE, 404, NULL);
	} else {
		char url[128];
		snprintf(url, sizeof(url), "/services/data/v59.0/sobjects/%s/%s", o->name, row[0]);
		json_t *j = json_pack("{s:{s:s,s:s},s:s}", "attributes", "type", o->name, "url", url,
				      "Id", row[0]);
		for (size_t i = 0; i < o->nfields; i++) {
			const char *v = row[i + 1];
			json_object_set_new(j, o->fields[i].api,
					    v == NULL ? json_null()
					    : o->fields[i].type == F_DECIMAL ? json_real(strtod(v, NULL))
					    : json_string(v));
		}
		const char *mod = row[o->nfields + 1];
		json_object_set_new(j, "LastModifiedDate", mod ? json_string(mod) : json_null());
		emu_resp_json(resp, 200, j);
	}
	if (res)
		mysql_free_result(res);
out:
	buf_free(&sql);
}

static void
object_delete(const struct sobject *o, emu_dbconn_t *c, emu_resp_t *resp, bool by_external,
	      const char *key)
{
	char err[512];
	buf_t sql = BUF_INIT;
	buf_printf(&sql, "DELETE FROM %s", o->table);
	append_where(c, &sql, by_external, key);
	if (emu_my_exec(c, sql.data, err, sizeof(err)) != 0)
		db_failure(resp, "could not delete record", err);
	else if (mysql_affected_rows(c->my) == 0)
		crm_error(resp, EMU_ERR_NO_ROUTE, 404, NULL);
	else {
		emu_resp_json(resp, 204, NULL);
		resp->write = EMU_WRITE_DELETE;
	}
	buf_free(&sql);
}

/* " SET a = 'x', b = NULL, updated_at = NOW(6)" */
static void
append_set(emu_dbconn_t *c, buf_t *sql, const struct changes *ch)
{
	buf_append_str(sql, " SET ");
	for (size_t i = 0; i < ch->n; i++) {
		buf_printf(sql, "%s = ", ch->a[i].f->col);
		emu_my_quote(c, sql, ch->a[i].value);
		buf_append_str(sql, ", ");
	}
	buf_append_str(sql, "updated_at = NOW(6)");
}

static void
duplicate_error(const struct sobject *o, emu_dbconn_t *c, emu_resp_t *resp,
		const struct changes *ch)
{
	const char *ext = NULL;
	for (size_t i = 0; i < ch->n; i++)
		if (strcmp(ch->a[i].f->col, "external_id") == 0)
			ext = ch->a[i].value;
	char err[512], msg[256];
	bool failed;
	buf_t sql = BUF_INIT;
	buf_printf(&sql, "SELECT id FROM %s", o->table);
	append_where(c, &sql, true, ext ? ext : "");
	char *other = select_one(c, sql.data, &failed, err, sizeof(err));
	snprintf(msg, sizeof(msg), "duplicate value found: ExternalId__c duplicates value on record with id: %s",
		 other ? other : "unknown");
	sf_error(resp, 400, "DUPLICATE_VALUE", msg, "ExternalId__c");
	free(other);
	buf_free(&sql);
}

/* PATCH by id (204) or, for an upsert, by external id (201 created / 204). */
static void
object_update(const struct sobject *o, emu_dbconn_t *c, const emu_req_t *req, emu_resp_t *resp,
	      bool by_external, const char *key, bool upsert)
{
	struct changes ch;
	char err[512];
	buf_t sql = BUF_INIT;
	if (!parse_changes(o, req, resp, !upsert, &ch))
		return;
	if (upsert && ch.has_required) {
		/* INSERT … ON DUPLICATE KEY UPDATE is atomic under concurrent upserts of one key */
		char *id = emu_random_id(o->id_prefix, 15);
		buf_printf(&sql, "INSERT INTO %s (id, external_id", o->table);
		for (size_t i = 0; i < ch.n; i++)
			buf_printf(&sql, ", %s", ch.a[i].f->col);
		buf_append_str(&sql, ", updated_at) VALUES (");
		emu_my_quote(c, &sql, id);
		buf_append_str(&sql, ", ");
		emu_my_quote(c, &sql, key);
		for (size_t i = 0; i < ch.n; i++) {
			buf_append_str(&sql, ", ");
			emu_my_quote(c, &sql, ch.a[i].value);
		}
		buf_append_str(&sql, ", NOW(6)) ON DUPLICATE KEY UPDATE ");
		for (size_t i = 0; i < ch.n; i++)
			buf_printf(&sql, "%s = VALUES(%s), ", ch.a[i].f->col, ch.a[i].f->col);
		buf_append_str(&sql, "updated_at = VALUES(updated_at)");
		if (emu_my_exec(c, sql.data, err, sizeof(err)) != 0) {
			db_failure(resp, "could not upsert record", err);
		} else if (mysql_affected_rows(c->my) == 1) {
			emu_resp_json(resp, 201, json_pack("{s:s,s:b,s:[],s:b}", "id", id, "success", 1,
							   "errors", "created", 1));
			resp->write = EMU_WRITE_CREATE;
		} else {
			emu_resp_json(resp, 204, NULL);
			resp->write = EMU_WRITE_UPDATE;
		}
		free(id);
		goto out;
	}
	buf_printf(&sql, "UPDATE %s", o->table);
	append_set(c, &sql, &ch);
	append_where(c, &sql, by_external, key);
	unsigned code = emu_my_exec(c, sql.data, err, sizeof(err));
	if (code == 1062) {
		duplicate_error(o, c, resp, &ch);
	} else if (code != 0) {
		db_failure(resp, "could not update record", err);
	} else if (mysql_affected_rows(c->my) == 0) {
		if (upsert)
			missing_required(o, resp);
		else
			crm_error(resp, EMU_ERR_NO_ROUTE, 404, NULL);
	} else {
		emu_resp_json(resp, 204, NULL);
		resp->write = EMU_WRITE_UPDATE;
	}
out:
	buf_free(&sql);
	changes_free(&ch);
}

static void
object_create(const struct sobject *o, emu_dbconn_t *c, const emu_req_t *req, emu_resp_t *resp)
{
	struct changes ch;
	char err[512];
	if (!parse_changes(o, req, resp, true, &ch))
		return;
	if (!ch.has_required) {
		missing_required(o, resp);
		changes_free(&ch);
		return;
	}
	char *id = emu_random_id(o->id_prefix, 15);
	buf_t sql = BUF_INIT;
	buf_printf(&sql, "INSERT INTO %s", o->table);
	append_set(c, &sql, &ch);
	buf_append_str(&sql, ", id = ");
	emu_my_quote(c, &sql, id);
	unsigned code = emu_my_exec(c, sql.data, err, sizeof(err));
	if (code == 1062) {
		duplicate_error(o, c, resp, &ch);
	} else if (code != 0) {
		db_failure(resp, "could not create record", err);
	} else {
		emu_resp_json(resp, 201, json_pack("{s:s,s:b,s:[]}", "id", id, "success", 1, "errors"));
		resp->write = EMU_WRITE_CREATE;
	}
	free(id);
	buf_free(&sql);
	changes_free(&ch);
}

static void
method_not_allowed(emu_resp_t *resp, const char *method, const char *allowed)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "HTTP Method '%s' not allowed. Allowed are %s", method, allowed);
	crm_error(resp, EMU_ERR_METHOD, 405, msg);
	emu_resp_header(resp, "Allow", allowed);
}

static void
crm_handle(const emu_req_t *req, emu_resp_t *resp)
{
	/* "/services/data/v59.0/sobjects/{Account|Case}[/…]" */
	static const char base[] = "/services/data/v";
	const char *p = req->sub;
	if (strncmp(p, base, sizeof(base) - 1) != 0)
		return;
	p = strchr(p + sizeof(base) - 1, '/');
	static const char sobj[] = "/sobjects/";
	if (p == NULL || strncmp(p, sobj, sizeof(sobj) - 1) != 0)
		return;
	p += sizeof(sobj) - 1;
	size_t tlen = strcspn(p, "/");
	const struct sobject *o = NULL;
	for (size_t i = 0; i < NSOBJECTS; i++)
		if (strlen(sobjects[i].name) == tlen && strncmp(p, sobjects[i].name, tlen) == 0)
			o = &sobjects[i];
	if (o == NULL) {
		char msg[160];
		snprintf(msg, sizeof(msg), "sObject type '%.*s' is not supported.", (int) tlen, p);
		sf_error(resp, 404, "NOT_FOUND", msg, NULL);
		return;
	}
	p += tlen;
	const char *m = req->method;
	bool by_external = false;
	const char *key = NULL;
	if (*p == '/' && p[1]) {
		const char *rest = p + 1;
		const char *slash = strchr(rest, '/');
		if (slash) {
			if ((size_t) (slash - rest) != strlen("ExternalId__c") ||
			    strncmp(rest, "ExternalId__c", 13) != 0 || slash[1] == '\0') {
				char msg[200];
				snprintf(msg, sizeof(msg), "Provided external ID field does not exist or is not "
					 "accessible: %.*s", (int) (slash - rest), rest);
				sf_error(resp, 404, "NOT_FOUND", msg, NULL);
				return;
			}
			by_external = true;
			key = slash + 1;
		} else {
			key = rest;
		}
	}
	if (key == NULL && strcmp(m, "POST") != 0) {
		method_not_allowed(resp, m, "POST");
		return;
	}
	if (key && strcmp(m, "GET") != 0 && strcmp(m, "PATCH") != 0 && strcmp(m, "DELETE") != 0) {
		method_not_allowed(resp, m, "GET, PATCH, DELETE");
		return;
	}
	char err[512];
	emu_dbconn_t *c = emu_db_get(req->ctx->db, EMU_CRM, err, sizeof(err));
	if (c == NULL) {
		log_warn("emulator", "crm: %s", err);
		sf_error(resp, 503, "SERVER_UNAVAILABLE", "the CRM database is unavailable", NULL);
		return;
	}
	if (key == NULL)
		object_create(o, c, req, resp);
	else if (strcmp(m, "GET") == 0)
		object_get(o, c, resp, by_external, key);
	else if (strcmp(m, "DELETE") == 0)
		object_delete(o, c, resp, by_external, key);
	else
		object_update(o, c, req, resp, by_external, key, by_external);
	emu_db_put(req->ctx->db, c);
}

const emu_platform_ops_t emu_crm_ops = {"/crm", crm_handle, crm_error};
