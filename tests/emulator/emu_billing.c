/*
 * emu_billing.c — the billing platform, Stripe style, over billing.customers,
 * billing.subscriptions and billing.payments (MariaDB).
 *
 *   POST /billing/v1/{customers|subscriptions|payments}        create
 *   POST /billing/v1/{customers|subscriptions|payments}/{id}   update
 *   GET  /billing/v1/{customers|subscriptions|payments}/{id}   retrieve
 *   DELETE /billing/v1/customers/{id}                          delete
 *   DELETE /billing/v1/subscriptions/{id}                      cancel
 *
 * Bodies are application/x-www-form-urlencoded (as Stripe) or
 * application/json.  Amounts are integers in minor units (cents), as in
 * Stripe; the tables hold decimal(12,2).  Idempotency-Key works as Stripe's.
 * Errors: {"error":{"type","code","message","param"}}.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "emu_db.h"
#include "emu_idem.h"
#include "log.h"
#include "xalloc.h"

enum btype { B_TEXT, B_EMAIL, B_ENUM, B_CENTS, B_TIMESTAMP, B_CURRENCY, B_CUSTOMER };

struct bfield {
	const char *param;   /* "email", or the key inside metadata[…] */
	const char *col;
	enum btype type;
	size_t maxlen;
	bool metadata;       /* given as metadata[param] */
	bool required;       /* on create */
	const char *const *values;  /* B_ENUM */
};

static const char *const sub_statuses[] = {"trialing", "active", "past_due", "canceled", NULL};
static const char *const pay_statuses[] = {"succeeded", "failed", "refunded", NULL};

static const struct bfield customer_fields[] = {
	{"email", "email", B_EMAIL, 255, false, false, NULL},
	{"name", "name", B_TEXT, 255, false, false, NULL},
	{"erp_customer_no", "erp_customer_no", B_TEXT, 64, true, false, NULL},
	{NULL, NULL, 0, 0, false, false, NULL},
};
static const struct bfield subscription_fields[] = {
	{"customer", "customer_id", B_CUSTOMER, 32, false, true, NULL},
	{"plan", "plan", B_TEXT, 64, false, true, NULL},
	{"status", "status", B_ENUM, 16, false, false, sub_statuses},
	{"amount", "amount", B_CENTS, 0, false, true, NULL},
	{"current_period_end", "current_period_end", B_TIMESTAMP, 0, false, false, NULL},
	{NULL, NULL, 0, 0, false, false, NULL},
};
static const struct bfield payment_fields[] = {
	{"customer", "customer_id", B_CUSTOMER, 32, false, true, NULL},
	{"amount", "amount", B_CENTS, 0, false, true, NULL},
	{"currency", "currency", B_CURRENCY, 3, false, true, NULL},
	{"status", "status", B_ENUM, 16, false, false, pay_statuses},
	{"invoice_no", "invoice_no", B_TEXT, 64, true, false, NULL},
	{NULL, NULL, 0, 0, false, false, NULL},
};

struct resource {
	const char *path;     /* "customers" */
	const char *table;
	const char *prefix;   /* id prefix */
	const char *object;   /* Stripe "object" */
	const struct bfield *fields;
	const char *select;   /* column list read back, id first */
};

static const struct resource resources[] = {
	{"customers", "customers", "cus_", "customer", customer_fields,
	 "id, email, name, erp_customer_no, FLOOR(UNIX_TIMESTAMP(created_at))"},
	{"subscriptions", "subscriptions", "sub_", "subscription", subscription_fields,
	 "id, customer_id, plan, status, amount, FLOOR(UNIX_TIMESTAMP(current_period_end)), "
	 "FLOOR(UNIX_TIMESTAMP(updated_at))"},
	{"payments", "payments", "pay_", "payment", payment_fields,
	 "id, customer_id, amount, currency, status, invoice_no, FLOOR(UNIX_TIMESTAMP(paid_at))"},
};

static void
stripe_error(emu_resp_t *resp, int status, const char *type, const char *code,
	     const char *message, const char *param)
{
	json_t *e = json_pack("{s:s,s:s}", "type", type, "message", message);
	if (code)
		json_object_set_new(e, "code", json_string(code));
	if (param)
		json_object_set_new(e, "param", json_string(param));
	emu_resp_json(resp, status, json_pack("{s:o}", "error", e));
}

static void
invalid(emu_resp_t *resp, const char *code, const char *param, const char *fmt, const char *arg)
{
	char msg[512];
	snprintf(msg, sizeof(msg), fmt, arg);
	stripe_error(resp, 400, "invalid_request_error", code, msg, param);
}

static void
billing_error(emu_resp_t *resp, emu_errkind_t kind, int status, const char *message)
{
	switch (kind) {
	case EMU_ERR_UNAUTHORIZED:
		stripe_error(resp, 401, "invalid_request_error", NULL,
			     "Invalid API Key provided (or none given).", NULL);
		break;
	case EMU_ERR_RATE_LIMITED:
	case EMU_ERR_QUOTA:
		stripe_error(resp, status, "invalid_request_error", "rate_limit",
			     "Too many requests hit the API too quickly.", NULL);
		break;
	case EMU_ERR_NO_ROUTE:
	case EMU_ERR_METHOD:
		stripe_error(resp, 404, "invalid_request_error", NULL, "Unrecognized request URL.", NULL);
		break;
	case EMU_ERR_TOO_LARGE:
		stripe_error(resp, 413, "invalid_request_error", NULL, message, NULL);
		break;
	default:
		stripe_error(resp, status, "api_error", NULL, message, NULL);
		break;
	}
}

/* Parse the body (form or JSON) into an object of string values (NULL
 * values for "" / null), metadata as a nested object.  NULL with the error
 * in resp. */
static json_t *
parse_params(const emu_req_t *req, emu_resp_t *resp)
{
	char err[256];
	json_t *raw;
	bool json = req->content_type && strncasecmp(req->content_type, "application/json", 16) == 0;
	if (req->body_len == 0) {
		raw = json_object();
	} else if (json) {
		json_error_t jerr;
		raw = json_loadb(req->body, req->body_len, 0, &jerr);
		if (raw == NULL || !json_is_object(raw)) {
			invalid(resp, NULL, NULL, "Invalid JSON body: %s", raw ? "expected an object" : jerr.text);
			json_decref(raw);
			return NULL;
		}
	} else {
		raw = emu_form_parse(req->body, req->body_len, err, sizeof(err));
		if (raw == NULL) {
			invalid(resp, NULL, NULL, "%s", err);
			return NULL;
		}
	}
	/* normalise: every leaf a string or null */
	json_t *out = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(raw, key, v) {
		json_t *target = out;
		json_t *src = v;
		const char *k = key;
		json_t *pairs = NULL;
		if (json_is_object(v)) {
			target = json_object();
			json_object_set_new(out, key, target);
			pairs = v;
		}
		const char *ik;
		json_t *iv;
		void *iter = pairs ? json_object_iter(pairs) : NULL;
		do {
			if (pairs) {
				if (iter == NULL)
					break;
				ik = json_object_iter_key(iter);
				iv = json_object_iter_value(iter);
				k = ik;
				src = iv;
				iter = json_object_iter_next(pairs, iter);
			}
			json_t *norm;
			char num[64];
			if (json_is_string(src) && json_string_length(src) > 0)
				norm = json_string(json_string_value(src));
			else if (json_is_integer(src)) {
				snprintf(num, sizeof(num), "%lld", (long long) json_integer_value(src));
				norm = json_string(num);
			} else if (json_is_real(src)) {
				snprintf(num, sizeof(num), "%.17g", json_real_value(src));
				norm = json_string(num);
			} else if (json_is_boolean(src)) {
				norm = json_string(json_is_true(src) ? "true" : "false");
			} else if (json_is_null(src) || json_is_string(src)) {
				norm = json_null();
			} else {
				invalid(resp, NULL, k, "Invalid value for %s: arrays and nested hashes are not supported", k);
				json_decref(raw);
				json_decref(out);
				return NULL;
			}
			json_object_set_new(target, k, norm);
		} while (pairs);
	}
	json_decref(raw);
	return out;
}

struct assign {
	const struct bfield *f;
	const char *value;  /* borrowed from params; NULL = SQL NULL */
	char buf[64];       /* converted value (cents → decimal, upper-case currency) */
};

/* Validate params against the resource.  Returns the number of assignments
 * or -1 with the error in resp. */
static int
validate(emu_dbconn_t *c, const struct resource *r, json_t *params, bool create,
	 struct assign *out, emu_resp_t *resp)
{
	const char *key;
	json_t *v;
	char param[96];
	int n = 0;
	json_object_foreach(params, key, v) {
		bool meta = strcmp(key, "metadata") == 0 && json_is_object(v);
		const char *mk;
		json_t *mv;
		void *iter = meta ? json_object_iter(v) : NULL;
		do {
			const char *name = key;
			json_t *val = v;
			if (meta) {
				if (iter == NULL)
					break;
				mk = json_object_iter_key(iter);
				mv = json_object_iter_value(iter);
				name = mk;
				val = mv;
				iter = json_object_iter_next(v, iter);
				snprintf(param, sizeof(param), "metadata[%s]", mk);
			} else {
				snprintf(param, sizeof(param), "%s", key);
			}
			const struct bfield *f = NULL;
			for (const struct bfield *g = r->fields; g->param; g++)
				if (strcmp(g->param, name) == 0 && g->metadata == meta)
					f = g;
			if (f == NULL) {
				invalid(resp, "parameter_unknown", param, "Received unknown parameter: %s", param);
				return -1;
			}
			struct assign *a = &out[n++];
			a->f = f;
			a->value = json_string_value(val);
			const char *s = a->value;
			if (s == NULL) {
				if (f->required || f->type == B_ENUM) {
					invalid(resp, "parameter_missing", param, "Missing required param: %s.", param);
					return -1;
				}
				continue;
			}
			if (f->maxlen && emu_utf8_len(s) > f->maxlen) {
				char fmt[128];
				snprintf(fmt, sizeof(fmt), "Invalid %%s: must be at most %zu characters", f->maxlen);
				invalid(resp, "parameter_invalid_string_too_long", param, fmt, param);
				return -1;
			}
			switch (f->type) {
			case B_EMAIL:
				if (!emu_email_valid(s)) {
					invalid(resp, "email_invalid", param, "Invalid email address: %s", s);
					return -1;
				}
				break;
			case B_ENUM:
				if (!emu_in_set(s, f->values)) {
					invalid(resp, NULL, param, f->values == sub_statuses
						? "Invalid %s: must be one of trialing, active, past_due, or canceled"
						: "Invalid %s: must be one of succeeded, failed, or refunded", param);
					return -1;
				}
				break;
			case B_CENTS:
			case B_TIMESTAMP: {
				size_t len = strlen(s);
				bool digits = len > 0 && len <= (f->type == B_CENTS ? 12 : 11);
				for (size_t i = 0; i < len; i++)
					digits = digits && isdigit((unsigned char) s[i]);
				if (!digits) {
					invalid(resp, "parameter_invalid_integer", param, "Invalid integer: %s", s);
					return -1;
				}
				long long x = atoll(s);
				if (f->type == B_CENTS)
					snprintf(a->buf, sizeof(a->buf), "%lld.%02lld", x / 100, x % 100);
				else
					snprintf(a->buf, sizeof(a->buf), "%lld", x);
				a->value = a->buf;
				break;
			}
			case B_CURRENCY:
				if (strlen(s) != 3 || !isalpha((unsigned char) s[0]) || !isalpha((unsigned char) s[1]) ||
				    !isalpha((unsigned char) s[2])) {
					invalid(resp, "parameter_invalid", param, "Invalid currency: %s", s);
					return -1;
				}
				for (int i = 0; i < 3; i++)
					a->buf[i] = (char) toupper((unsigned char) s[i]);
				a->buf[3] = '\0';
				a->value = a->buf;
				break;
			case B_CUSTOMER: {
				char err[256];
				buf_t sql = BUF_INIT;
				buf_append_str(&sql, "SELECT 1 FROM customers WHERE id = ");
				emu_my_quote(c, &sql, s);
				unsigned code = emu_my_exec(c, sql.data, err, sizeof(err));
				buf_free(&sql);
				MYSQL_RES *res = code ? NULL : mysql_store_result(c->my);
				bool found = res && mysql_num_rows(res) > 0;
				if (res)
					mysql_free_result(res);
				if (code) {
					stripe_error(resp, 500, "api_error", NULL, "could not read customers", NULL);
					return -1;
				}
				if (!found) {
					char msg[160];
					snprintf(msg, sizeof(msg), "No such customer: '%.100s'", s);
					stripe_error(resp, 400, "invalid_request_error", "resource_missing", msg, param);
					return -1;
				}
				break;
			}
			default:
				break;
			}
		} while (meta);
	}
	if (create) {
		for (const struct bfield *g = r->fields; g->param; g++) {
			bool given = false;
			for (int i = 0; i < n; i++)
				given = given || out[i].f == g;
			if (g->required && !given) {
				invalid(resp, "parameter_missing", g->param, "Missing required param: %s.", g->param);
				return -1;
			}
		}
	}
	return n;
}

static json_t *
json_int_or_null(const char *s)
{
	return s ? json_integer(atoll(s)) : json_null();
}

static json_t *
cents(const char *s)
{
	return s ? json_integer((json_int_t) llround(strtod(s, NULL) * 100.0)) : json_null();
}

static json_t *
text(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* The Stripe object for row (columns of r->select). */
static json_t *
row_json(const struct resource *r, MYSQL_ROW row)
{
	json_t *o = json_pack("{s:s,s:s}", "id", row[0], "object", r->object);
	json_t *meta = json_object();
	if (r->fields == customer_fields) {
		json_object_set_new(o, "email", text(row[1]));
		json_object_set_new(o, "name", text(row[2]));
		if (row[3])
			json_object_set_new(meta, "erp_customer_no", json_string(row[3]));
		json_object_set_new(o, "metadata", meta);
		json_object_set_new(o, "created", json_int_or_null(row[4]));
	} else if (r->fields == subscription_fields) {
		json_decref(meta);
		json_object_set_new(o, "customer", text(row[1]));
		json_object_set_new(o, "plan", text(row[2]));
		json_object_set_new(o, "status", text(row[3]));
		json_object_set_new(o, "amount", cents(row[4]));
		json_object_set_new(o, "current_period_end", json_int_or_null(row[5]));
		json_object_set_new(o, "updated", json_int_or_null(row[6]));
	} else {
		char cur[4] = "";
		for (int i = 0; row[3] && i < 3 && row[3][i]; i++)
			cur[i] = (char) tolower((unsigned char) row[3][i]), cur[i + 1] = '\0';
		json_object_set_new(o, "customer", text(row[1]));
		json_object_set_new(o, "amount", cents(row[2]));
		json_object_set_new(o, "currency", json_string(cur));
		json_object_set_new(o, "status", text(row[4]));
		if (row[5])
			json_object_set_new(meta, "invoice_no", json_string(row[5]));
		json_object_set_new(o, "metadata", meta);
		json_object_set_new(o, "paid_at", json_int_or_null(row[6]));
	}
	return o;
}

/* Read one object; 200 with it, 404 resource_missing, or 500. */
static void
read_object(emu_dbconn_t *c, const struct resource *r, const char *id, int status, emu_resp_t *resp)
{
	char err[256];
	buf_t sql = BUF_INIT;
	buf_printf(&sql, "SELECT %s FROM %s WHERE id = ", r->select, r->table);
	emu_my_quote(c, &sql, id);
	MYSQL_RES *res = NULL;
	if (emu_my_exec(c, sql.data, err, sizeof(err)) != 0) {
		log_warn("emulator", "billing: could not read %s: %s", r->object, err);
		stripe_error(resp, 500, "api_error", NULL, "could not read the object", NULL);
		goto out;
	}
	res = mysql_store_result(c->my);
	MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
	if (row == NULL) {
		char msg[160];
		snprintf(msg, sizeof(msg), "No such %s: '%.100s'", r->object, id);
		stripe_error(resp, 404, "invalid_request_error", "resource_missing", msg, "id");
	} else {
		emu_resp_json(resp, status, row_json(r, row));
	}
out:
	if (res)
		mysql_free_result(res);
	buf_free(&sql);
}

static void
append_assignments(emu_dbconn_t *c, buf_t *sql, const struct assign *a, int n)
{
	for (int i = 0; i < n; i++) {
		buf_printf(sql, "%s%s = ", i ? ", " : "", a[i].f->col);
		if (a[i].f->type == B_TIMESTAMP && a[i].value) {
			buf_append_str(sql, "FROM_UNIXTIME(");
			emu_my_quote(c, sql, a[i].value);
			buf_append_str(sql, ")");
		} else {
			emu_my_quote(c, sql, a[i].value);
		}
	}
}

/* Execute a validated create or update; fills resp. */
static void
execute_write(emu_dbconn_t *c, const struct resource *r, const char *id, const struct assign *a,
	      int n, emu_resp_t *resp)
{
	char err[256];
	buf_t sql = BUF_INIT;
	char *new_id = NULL;
	bool has_status = false;
	for (int i = 0; i < n; i++)
		has_status = has_status || strcmp(a[i].f->col, "status") == 0;
	if (id == NULL) {
		new_id = emu_random_id(r->prefix, 14);
		buf_printf(&sql, "INSERT INTO %s SET id = ", r->table);
		emu_my_quote(c, &sql, new_id);
		if (n)
			buf_append_str(&sql, ", ");
		append_assignments(c, &sql, a, n);
		if (r->fields == customer_fields)
			buf_append_str(&sql, ", created_at = NOW(6)");
		else if (r->fields == subscription_fields)
			buf_printf(&sql, "%s, updated_at = NOW(6)", has_status ? "" : ", status = 'active'");
		else
			buf_printf(&sql, "%s, paid_at = IF(status = 'succeeded', NOW(6), NULL)",
				   has_status ? "" : ", status = 'succeeded'");
	} else {
		buf_printf(&sql, "UPDATE %s SET ", r->table);
		append_assignments(c, &sql, a, n);
		if (r->fields == subscription_fields)
			buf_printf(&sql, "%supdated_at = NOW(6)", n ? ", " : "");
		else if (r->fields == payment_fields)
			buf_printf(&sql, "%spaid_at = IF(status = 'succeeded' AND paid_at IS NULL, NOW(6), paid_at)",
				   n ? ", " : "");
		else if (n == 0)
			buf_append_str(&sql, "id = id");
		buf_append_str(&sql, " WHERE id = ");
		emu_my_quote(c, &sql, id);
	}
	unsigned code = emu_my_exec(c, sql.data, err, sizeof(err));
	if (code == 1062) {
		invalid(resp, "resource_already_exists", "metadata[erp_customer_no]",
			"A customer with this metadata[erp_customer_no] already exists%s", "");
	} else if (code != 0) {
		log_warn("emulator", "billing: could not write %s: %s", r->object, err);
		stripe_error(resp, 500, "api_error", NULL, "could not write the object", NULL);
	} else if (id && mysql_affected_rows(c->my) == 0 && n == 0) {
		read_object(c, r, id, 200, resp);  /* nothing to change: 200 or 404 */
	} else {
		read_object(c, r, id ? id : new_id, 200, resp);
		if (resp->status == 200)
			resp->write = id ? EMU_WRITE_UPDATE : EMU_WRITE_CREATE;
	}
	free(new_id);
	buf_free(&sql);
}

static void
post_object(emu_dbconn_t *c, const emu_req_t *req, const struct resource *r, const char *id,
	    emu_resp_t *resp)
{
	emu_idem_t *idem = req->ctx->idem;
	const char *key = req->idempotency_key;
	struct assign assigns[8];
	json_t *params = parse_params(req, resp);
	if (params == NULL)
		return;
	if (key && (strlen(key) > 255 || *key == '\0')) {
		invalid(resp, NULL, NULL, "Idempotency-Key must be 1 to 255 characters%s", "");
		goto out;
	}
	if (key) {
		char *canon = json_dumps(params, JSON_SORT_KEYS | JSON_COMPACT);
		char *fp = xasprintf("%s %s %s", req->method, req->path, canon);
		free(canon);
		emu_idem_status_t st = emu_idem_begin(idem, key, fp, resp);
		free(fp);
		if (st == EMU_IDEM_REPLAY) {
			emu_resp_header(resp, "Idempotent-Replayed", "true");
			resp->replayed = true;
			goto out;
		}
		if (st == EMU_IDEM_MISMATCH) {
			char msg[512];
			snprintf(msg, sizeof(msg), "Keys for idempotent requests can only be used with the same "
				 "parameters they were first used with. Try using a key other than '%.255s' if you "
				 "meant to execute a different request.", key);
			stripe_error(resp, 400, "idempotency_error", NULL, msg, NULL);
			goto out;
		}
		if (st == EMU_IDEM_IN_PROGRESS) {
			stripe_error(resp, 409, "idempotency_error", "idempotency_key_in_use",
				     "There is currently another in-progress request using this Idempotent Key "
				     "(that probably means you submitted twice, and the other request is still "
				     "going through). Please try again later.", NULL);
			goto out;
		}
	}
	int n = validate(c, r, params, id == NULL, assigns, resp);
	if (n < 0) {
		if (key)
			emu_idem_abort(idem, key);  /* validation failures are not remembered */
		goto out;
	}
	execute_write(c, r, id, assigns, n, resp);
	if (key) {
		if (resp->status < 500)
			emu_idem_finish(idem, key, resp);
		else
			emu_idem_abort(idem, key);
	}
out:
	json_decref(params);
}

static void
delete_object(emu_dbconn_t *c, const struct resource *r, const char *id, emu_resp_t *resp)
{
	char err[256];
	buf_t sql = BUF_INIT;
	if (r->fields == customer_fields)
		buf_append_str(&sql, "DELETE FROM customers WHERE id = ");
	else
		buf_append_str(&sql, "UPDATE subscriptions SET status = 'canceled', updated_at = NOW(6) WHERE id = ");
	emu_my_quote(c, &sql, id);
	if (emu_my_exec(c, sql.data, err, sizeof(err)) != 0) {
		log_warn("emulator", "billing: could not delete %s: %s", r->object, err);
		stripe_error(resp, 500, "api_error", NULL, "could not delete the object", NULL);
	} else if (mysql_affected_rows(c->my) == 0 && r->fields == customer_fields) {
		char msg[160];
		snprintf(msg, sizeof(msg), "No such customer: '%.100s'", id);
		stripe_error(resp, 404, "invalid_request_error", "resource_missing", msg, "id");
	} else if (r->fields == customer_fields) {
		emu_resp_json(resp, 200, json_pack("{s:s,s:s,s:b}", "id", id, "object", "customer", "deleted", 1));
		resp->write = EMU_WRITE_DELETE;
	} else {
		read_object(c, r, id, 200, resp);
		if (resp->status == 200)
			resp->write = EMU_WRITE_UPDATE;
	}
	buf_free(&sql);
}

static void
billing_handle(const emu_req_t *req, emu_resp_t *resp)
{
	char *request_id = emu_random_id("req_", 14);
	emu_resp_header(resp, "Request-Id", request_id);
	free(request_id);
	if (strncmp(req->sub, "/v1/", 4) != 0)
		return;
	const char *p = req->sub + 4;
	const struct resource *r = NULL;
	for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
		size_t n = strlen(resources[i].path);
		if (strncmp(p, resources[i].path, n) == 0 && (p[n] == '\0' || p[n] == '/')) {
			r = &resources[i];
			p += n;
		}
	}
	if (r == NULL)
		return;
	const char *id = (*p == '/' && p[1]) ? p + 1 : NULL;
	if (id && strchr(id, '/'))
		return;
	const char *m = req->method;
	bool post = strcmp(m, "POST") == 0, get = strcmp(m, "GET") == 0, del = strcmp(m, "DELETE") == 0;
	if (!(post || (id && get) || (id && del && r->fields != payment_fields)))
		return;  /* unrecognized request URL */
	char err[256];
	emu_dbconn_t *c = emu_db_get(req->ctx->db, EMU_BILLING, err, sizeof(err));
	if (c == NULL) {
		log_warn("emulator", "billing: %s", err);
		stripe_error(resp, 503, "api_error", NULL, "the billing database is unavailable", NULL);
		return;
	}
	if (post)
		post_object(c, req, r, id, resp);
	else if (get)
		read_object(c, r, id, 200, resp);
	else
		delete_object(c, r, id, resp);
	emu_db_put(req->ctx->db, c);
}

const emu_platform_ops_t emu_billing_ops = {"/billing", billing_handle, billing_error};
