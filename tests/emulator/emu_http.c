/*
 * emu_http.c — libmicrohttpd glue: body collection, routing, auth, limits,
 * faults and the request log around the platform handlers.
 */
#include "emu_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_db.h"
#include "emu_faults.h"
#include "emu_log.h"
#include "log.h"
#include "xalloc.h"

#define MAX_BODY (1024 * 1024)

struct emu_server {
	struct MHD_Daemon *daemon;
	emu_ctx_t *ctx;
	char *token;
};

/* Per-request state, from the first callback to the completion notice. */
struct request {
	buf_t body;
	bool too_large;
	int64_t start_ms;
};

static int
route_platform(const char *url, const char **sub)
{
	for (int p = 0; p < EMU_NPLATFORMS; p++) {
		const char *prefix = emu_platform_ops((emu_platform_t) p)->prefix;
		size_t n = strlen(prefix);
		if (strncmp(url, prefix, n) == 0 && (url[n] == '/' || url[n] == '\0')) {
			*sub = url + n;
			return p;
		}
	}
	*sub = url;
	return -1;
}

static enum MHD_Result
collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	json_t *obj = cls;
	json_t *v = json_string(value ? value : "");
	if (v)
		json_object_set_new(obj, key, v);
	return MHD_YES;
}

static enum MHD_Result
append_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	buf_t *q = cls;
	if (q->len)
		buf_append_char(q, '&');
	buf_append_str(q, key);
	if (value) {
		buf_append_char(q, '=');
		buf_append_str(q, value);
	}
	return MHD_YES;
}

/* Constant-time comparison of the bearer token. */
static bool
token_ok(const char *header, const char *token)
{
	static const char scheme[] = "Bearer ";
	if (header == NULL || strncasecmp(header, scheme, sizeof(scheme) - 1) != 0)
		return false;
	const char *given = header + sizeof(scheme) - 1;
	size_t n = strlen(token), m = strlen(given);
	unsigned char diff = (unsigned char) (n != m);
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char) (token[i] ^ (i < m ? given[i] : 0));
	return diff == 0;
}

static enum MHD_Result
send_response(struct MHD_Connection *conn, emu_resp_t *resp)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		resp->body.len, resp->body.data ? resp->body.data : (char *) "", MHD_RESPMEM_MUST_COPY);
	if (resp->body.len)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
	for (int i = 0; i < resp->nheaders; i++)
		MHD_add_response_header(r, resp->hname[i], resp->hvalue[i]);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned) resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void
platform_error(int platform, emu_resp_t *resp, emu_errkind_t kind, int status, const char *msg)
{
	if (platform >= 0) {
		emu_platform_ops((emu_platform_t) platform)->error(resp, kind, status, msg);
		return;
	}
	emu_resp_json(resp, status, json_pack("{s:s}", "error", msg));
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	emu_server_t *s = cls;
	struct request *rq = *con_cls;
	if (rq == NULL) {
		rq = xcalloc(1, sizeof(*rq));
		rq->start_ms = emu_now_ms();
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (rq->body.len + *upload_data_size > MAX_BODY)
			rq->too_large = true;
		else
			buf_append(&rq->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->body.data == NULL)
		buf_append(&rq->body, "", 0);

	const char *sub;
	int platform = route_platform(url, &sub);
	bool control = strncmp(url, "/_emulator", 10) == 0 && (url[10] == '/' || url[10] == '\0');
	emu_resp_t resp;
	emu_resp_init(&resp);
	json_t *query = json_object();
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, query);
	emu_req_t req = {
		.ctx = s->ctx,
		.platform = platform >= 0 ? (emu_platform_t) platform : EMU_CRM,
		.method = method,
		.path = url,
		.sub = control ? url + 10 : sub,
		.body = rq->body.data,
		.body_len = rq->body.len,
		.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"),
		.idempotency_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key"),
		.query = query,
	};
	emu_fault_action_t fault = {0};
	enum MHD_Result ret;
	const char *refused = NULL;
	bool close_conn = false;

	if (control) {
		/* control requests bypass faults and limits so tests cannot lock themselves out */
		if (s->token && !token_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								      "Authorization"), s->token))
			emu_resp_json(&resp, 401, json_pack("{s:s}", "error", "missing or invalid bearer token"));
		else
			emu_control_handle(&req, &resp);
		goto send_control;
	}

	if (platform >= 0) {
		fault = emu_faults_pick(s->ctx->faults, (emu_platform_t) platform, method, url);
		if (fault.mode == EMU_FAULT_SLOW || (fault.mode == EMU_FAULT_TIMEOUT && !fault.after))
			emu_sleep_ms(fault.delay_ms);
		if (fault.mode == EMU_FAULT_TIMEOUT && !fault.after) {
			close_conn = true;
			goto log;
		}
		if (fault.mode == EMU_FAULT_DOWN && fault.close) {
			close_conn = true;
			goto log;
		}
		if (fault.mode == EMU_FAULT_DOWN || (fault.mode == EMU_FAULT_ERROR && !fault.after)) {
			platform_error(platform, &resp, EMU_ERR_FAULT, fault.status,
				       fault.mode == EMU_FAULT_DOWN ? "service unavailable (platform down)"
								    : "injected server error");
			goto respond;
		}
	}
	if (s->token && !token_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
				  s->token)) {
		platform_error(platform, &resp, EMU_ERR_UNAUTHORIZED, 401, "missing or invalid bearer token");
		refused = "unauthorized";
		goto respond;
	}
	if (platform < 0) {
		platform_error(platform, &resp, EMU_ERR_NO_ROUTE, 404, "no such endpoint");
		goto respond;
	}
	if (rq->too_large) {
		platform_error(platform, &resp, EMU_ERR_TOO_LARGE, 413, "request body larger than 1 MiB");
		goto respond;
	}
	int retry_after;
	long used, quota;
	emu_limit_result_t lim = emu_limits_check(s->ctx->faults, (emu_platform_t) platform,
						  &retry_after, &used, &quota);
	if (lim != EMU_LIMIT_OK) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%d", retry_after);
		if (lim == EMU_LIMIT_RATE) {
			platform_error(platform, &resp, EMU_ERR_RATE_LIMITED, 429, "rate limit exceeded");
			refused = "rate_limited";
		} else {
			platform_error(platform, &resp, EMU_ERR_QUOTA, platform == EMU_CRM ? 403 : 429,
				       "TotalRequests Limit exceeded.");
			refused = "quota_exceeded";
		}
		emu_resp_header(&resp, "Retry-After", ra);
		goto respond;
	}
	if (platform == EMU_CRM && quota > 0) {
		char info[64];
		snprintf(info, sizeof(info), "api-usage=%ld/%ld", used, quota);
		emu_resp_header(&resp, "Sforce-Limit-Info", info);
	}
	if (!emu_db_configured(s->ctx->db, (emu_platform_t) platform)) {
		platform_error(platform, &resp, EMU_ERR_UNAVAILABLE, 503, "platform has no database configured");
		goto respond;
	}
	emu_platform_ops((emu_platform_t) platform)->handle(&req, &resp);
	if (resp.status == 0)
		platform_error(platform, &resp, EMU_ERR_NO_ROUTE, 404, "no such endpoint");
	if (fault.after) {
		/* the request was executed (and any write committed); its answer is lost */
		if (fault.mode == EMU_FAULT_TIMEOUT) {
			emu_sleep_ms(fault.delay_ms);
			close_conn = true;
			goto log;
		}
		emu_write_t w = resp.write;
		platform_error(platform, &resp, EMU_ERR_FAULT, fault.status, "injected server error");
		resp.write = w;
	}
respond:
	if (fault.retry_after_s > 0 && fault.mode != EMU_FAULT_NONE && fault.mode != EMU_FAULT_SLOW) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%d", fault.retry_after_s);
		emu_resp_header(&resp, "Retry-After", ra);
	}
log:;
	buf_t qs = BUF_INIT;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, append_query, &qs);
	static const char *const mode_names[] = {NULL, "error", "timeout", "slow", "down"};
	emu_log_entry_t entry = {
		.platform = platform,
		.method = method,
		.path = url,
		.query = qs.len ? qs.data : NULL,
		.idempotency_key = req.idempotency_key,
		.correlation_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Correlation-Id"),
		.body = rq->body.data,
		.body_len = rq->body.len,
		.status = close_conn ? 0 : resp.status,
		.response = close_conn ? NULL : resp.body.data,
		.duration_ms = emu_now_ms() - rq->start_ms,
		.fault = mode_names[fault.mode],
		.refused = refused,
		.replayed = resp.replayed,
		.write = resp.write,
	};
	emu_log_add(s->ctx->log, &entry);
	buf_free(&qs);
	if (log_debug_enabled("emulator"))
		log_emit(LOG_LEVEL_DEBUG, "emulator", NULL, "%s %s -> %d", method, url, entry.status);
	json_decref(query);
	if (close_conn) {
		emu_resp_free(&resp);
		return MHD_NO;  /* closes the connection without an answer */
	}
	ret = send_response(conn, &resp);
	emu_resp_free(&resp);
	return ret;
send_control:
	json_decref(query);
	ret = send_response(conn, &resp);
	emu_resp_free(&resp);
	return ret;
}

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *con_cls;
	if (rq) {
		buf_free(&rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

emu_server_t *
emu_server_start(const char *host, int port, const char *token, emu_ctx_t *ctx,
		 char *err, size_t errlen)
{
	struct sockaddr_in addr = {0};
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t) port);
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
		snprintf(err, errlen, "invalid listen address \"%s\": expected an IPv4 address", host);
		return NULL;
	}
	emu_server_t *s = xcalloc(1, sizeof(*s));
	s->ctx = ctx;
	s->token = token ? xstrdup(token) : NULL;
	s->daemon = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL,
		(uint16_t) port, NULL, NULL, handle, s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
		MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned) 2000,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 120,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned) 1024,
		MHD_OPTION_END);
	if (s->daemon == NULL) {
		snprintf(err, errlen, "could not listen on %s:%d (address in use?)", host, port);
		free(s->token);
		free(s);
		return NULL;
	}
	return s;
}

void
emu_server_stop(emu_server_t *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->daemon);
	if (s->token) {
		memset(s->token, 0, strlen(s->token));
		free(s->token);
	}
	free(s);
}
