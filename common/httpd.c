/*
 * httpd.c — libmicrohttpd wrapper; see httpd.h.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define HTTPD_MAX_BODY (1024 * 1024)

struct httpd {
	struct MHD_Daemon *daemon;
	metrics_t *metrics;
	httpd_handler_fn handler;
	void *ctx;
	int port;
};

struct request_state {
	buf_t body;
	int too_large;
};

static enum MHD_Result
send_response(struct MHD_Connection *conn, int status, const char *content_type,
	      const char *data, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *) data,
								 MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", content_type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned) status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_data_size,
	   void **con_cls)
{
	httpd_t *h = cls;
	struct request_state *st = *con_cls;
	if (st == NULL) {
		st = xcalloc(1, sizeof(*st));
		*con_cls = st;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (st->body.len + *upload_data_size > HTTPD_MAX_BODY)
			st->too_large = 1;
		else
			buf_append(&st->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (st->too_large) {
		static const char msg[] = "request body too large\n";
		return send_response(conn, 413, "text/plain", msg, sizeof(msg) - 1);
	}
	if (h->metrics && strcmp(method, "GET") == 0 && strcmp(url, "/metrics") == 0) {
		buf_t out = BUF_INIT;
		metrics_render(h->metrics, &out);
		enum MHD_Result r = send_response(conn, 200, "text/plain; version=0.0.4; charset=utf-8",
						  out.data ? out.data : "", out.len);
		buf_free(&out);
		return r;
	}
	httpd_request_t req = {
		.method = method,
		.path = url,
		.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
		.body = st->body.data ? st->body.data : "",
		.body_len = st->body.len,
		.connection = conn,
	};
	httpd_response_t resp = {.status = 200, .content_type = "text/plain; charset=utf-8"};
	int handled = h->handler ? h->handler(h->ctx, &req, &resp) : 1;
	enum MHD_Result r;
	if (handled != 0) {
		static const char msg[] = "not found\n";
		r = send_response(conn, 404, "text/plain", msg, sizeof(msg) - 1);
	} else {
		r = send_response(conn, resp.status, resp.content_type,
				  resp.body.data ? resp.body.data : "", resp.body.len);
	}
	buf_free(&resp.body);
	return r;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	struct request_state *st = *con_cls;
	if (st) {
		buf_free(&st->body);
		free(st);
		*con_cls = NULL;
	}
}

/* Parse "PORT" or "HOST:PORT" (IPv4 literal or "localhost"). */
static int
parse_listen(const char *listen, struct sockaddr_in *sa, char *err, size_t errlen)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (listen == NULL || *listen == '\0')
		return 0;
	const char *colon = strrchr(listen, ':');
	const char *port_str = colon ? colon + 1 : listen;
	char *end;
	long port = strtol(port_str, &end, 10);
	if (*port_str == '\0' || *end != '\0' || port < 0 || port > 65535) {
		snprintf(err, errlen, "invalid listen address \"%s\": expected HOST:PORT", listen);
		return -1;
	}
	sa->sin_port = htons((uint16_t) port);
	if (colon && colon != listen) {
		char host[64];
		size_t n = (size_t) (colon - listen);
		if (n >= sizeof(host)) {
			snprintf(err, errlen, "invalid listen address \"%s\"", listen);
			return -1;
		}
		memcpy(host, listen, n);
		host[n] = '\0';
		if (strcmp(host, "localhost") == 0)
			strcpy(host, "127.0.0.1");
		if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
			snprintf(err, errlen, "invalid listen address \"%s\": host must be an IPv4 address",
				 listen);
			return -1;
		}
	}
	return 0;
}

httpd_t *
httpd_start(const char *listen, metrics_t *metrics, httpd_handler_fn handler, void *ctx,
	    char *err, size_t errlen)
{
	struct sockaddr_in sa;
	if (parse_listen(listen, &sa, err, errlen) != 0)
		return NULL;
	httpd_t *h = xcalloc(1, sizeof(*h));
	h->metrics = metrics;
	h->handler = handler;
	h->ctx = ctx;
	h->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
				     NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &sa,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30, MHD_OPTION_END);
	if (h->daemon == NULL) {
		char addr[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof(addr));
		snprintf(err, errlen, "could not listen on %s:%d: address in use or not permitted", addr,
			 ntohs(sa.sin_port));
		free(h);
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : ntohs(sa.sin_port);
	return h;
}

int
httpd_port(const httpd_t *h)
{
	return h->port;
}

void
httpd_stop(httpd_t *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->daemon);
	free(h);
}

const char *
httpd_query(const httpd_request_t *req, const char *name)
{
	return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, name);
}
