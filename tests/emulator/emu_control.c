/*
 * emu_control.c — the /_emulator/ endpoints tests use to inspect what a
 * client did (requests, stats) and to make the platforms misbehave (faults,
 * rate limits, quotas), and to start over (reset).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "emu_db.h"
#include "emu_faults.h"
#include "emu_idem.h"
#include "emu_log.h"
#include "log.h"

static void
control_error(emu_resp_t *resp, int status, const char *msg)
{
	emu_resp_json(resp, status, json_pack("{s:s}", "error", msg));
}

static json_t *
parse_body(const emu_req_t *req, emu_resp_t *resp)
{
	json_error_t jerr;
	if (req->body_len == 0)
		return json_object();
	json_t *v = json_loadb(req->body, req->body_len, 0, &jerr);
	if (v == NULL) {
		char msg[256];
		snprintf(msg, sizeof(msg), "invalid JSON body: %s", jerr.text);
		control_error(resp, 400, msg);
	}
	return v;
}

/* Delete every row of the demo tables (DELETE, not TRUNCATE, so capture
 * sees ordinary row changes).  0 or -1 with a message. */
static int
delete_all_data(emu_db_t *db, char *err, size_t errlen)
{
	static const char *const pg_sql[EMU_NPLATFORMS] = {
		[EMU_ERP] = "DELETE FROM invoices; DELETE FROM customers; DELETE FROM products",
		[EMU_SUPPORT] = "DELETE FROM tickets",
	};
	static const char *const my_sql[EMU_NPLATFORMS][3] = {
		[EMU_CRM] = {"DELETE FROM cases", "DELETE FROM accounts", NULL},
		[EMU_BILLING] = {"DELETE FROM payments", "DELETE FROM subscriptions", "DELETE FROM customers"},
	};
	for (int p = 0; p < EMU_NPLATFORMS; p++) {
		if (!emu_db_configured(db, (emu_platform_t) p))
			continue;
		emu_dbconn_t *c = emu_db_get(db, (emu_platform_t) p, err, errlen);
		if (c == NULL)
			return -1;
		int rc = 0;
		if (c->pg) {
			PGresult *res = PQexec(c->pg, pg_sql[p]);
			if (!emu_pg_ok(c, res, err, errlen))
				rc = -1;
			PQclear(res);
		} else {
			for (int i = 0; i < 3 && my_sql[p][i] && rc == 0; i++)
				if (emu_my_exec(c, my_sql[p][i], err, errlen) != 0)
					rc = -1;
		}
		emu_db_put(db, c);
		if (rc < 0)
			return -1;
	}
	return 0;
}

void
emu_control_handle(const emu_req_t *req, emu_resp_t *resp)
{
	emu_ctx_t *ctx = req->ctx;
	const char *sub = req->sub;
	bool get = strcmp(req->method, "GET") == 0;
	bool post = strcmp(req->method, "POST") == 0;
	char err[512];

	if (strcmp(sub, "/health") == 0 && get) {
		json_t *platforms = json_object();
		for (int p = 0; p < EMU_NPLATFORMS; p++)
			json_object_set_new(platforms, emu_platform_name(p),
					    json_boolean(emu_db_configured(ctx->db, (emu_platform_t) p)));
		emu_resp_json(resp, 200, json_pack("{s:b,s:o}", "ok", 1, "platforms", platforms));
	} else if (strcmp(sub, "/requests") == 0 && get) {
		const char *since = json_string_value(json_object_get(req->query, "since"));
		const char *limit = json_string_value(json_object_get(req->query, "limit"));
		const char *status = json_string_value(json_object_get(req->query, "status"));
		emu_resp_json(resp, 200, emu_log_requests_json(
			ctx->log, since ? atoll(since) : 0,
			json_string_value(json_object_get(req->query, "platform")),
			json_string_value(json_object_get(req->query, "method")),
			status ? atoi(status) : 0, limit ? (size_t) atoll(limit) : 0));
	} else if (strcmp(sub, "/stats") == 0 && get) {
		json_t *stats = emu_log_stats_json(ctx->log);
		json_object_set_new(stats, "idempotency_keys",
				    json_integer((json_int_t) emu_idem_count(ctx->idem)));
		json_object_set_new(stats, "faults", emu_faults_json(ctx->faults));
		json_object_set_new(stats, "limits", emu_limits_json(ctx->faults));
		emu_resp_json(resp, 200, stats);
	} else if (strcmp(sub, "/faults") == 0 && get) {
		emu_resp_json(resp, 200, json_pack("{s:o}", "faults", emu_faults_json(ctx->faults)));
	} else if (strcmp(sub, "/faults") == 0 && strcmp(req->method, "DELETE") == 0) {
		emu_faults_clear(ctx->faults);
		emu_resp_json(resp, 200, json_pack("{s:o}", "faults", json_array()));
	} else if (strcmp(sub, "/faults") == 0 && post) {
		json_t *spec = parse_body(req, resp);
		if (spec == NULL)
			return;
		if (json_is_true(json_object_get(spec, "clear"))) {
			emu_faults_clear(ctx->faults);
			json_object_del(spec, "clear");
			if (json_object_size(spec) == 0) {
				json_decref(spec);
				emu_resp_json(resp, 200, json_pack("{s:o}", "faults", json_array()));
				return;
			}
		}
		if (emu_faults_add_json(ctx->faults, spec, err, sizeof(err)) < 0)
			control_error(resp, 400, err);
		else
			emu_resp_json(resp, 201, json_pack("{s:o}", "faults", emu_faults_json(ctx->faults)));
		json_decref(spec);
	} else if (strcmp(sub, "/ratelimit") == 0 && get) {
		emu_resp_json(resp, 200, json_pack("{s:o}", "limits", emu_limits_json(ctx->faults)));
	} else if (strcmp(sub, "/ratelimit") == 0 && post) {
		json_t *spec = parse_body(req, resp);
		if (spec == NULL)
			return;
		if (emu_limits_set_json(ctx->faults, spec, err, sizeof(err)) < 0)
			control_error(resp, 400, err);
		else
			emu_resp_json(resp, 200, json_pack("{s:o}", "limits", emu_limits_json(ctx->faults)));
		json_decref(spec);
	} else if (strcmp(sub, "/reset") == 0 && post) {
		json_t *spec = parse_body(req, resp);
		if (spec == NULL)
			return;
		emu_faults_clear(ctx->faults);
		emu_limits_reset(ctx->faults);
		emu_idem_clear(ctx->idem);
		emu_log_reset(ctx->log);
		if (json_is_true(json_object_get(spec, "data")) &&
		    delete_all_data(ctx->db, err, sizeof(err)) < 0) {
			log_error("emulator", "reset: could not delete demo data: %s", err);
			control_error(resp, 500, err);
		} else {
			emu_resp_json(resp, 200, json_pack("{s:b}", "reset", 1));
		}
		json_decref(spec);
	} else {
		control_error(resp, 404, "no such control endpoint (see docs/emulator.md)");
	}
}
