/*
 * httpd.h — a small embedded HTTP server (libmicrohttpd) for /metrics,
 * /status and the operations page.
 *
 * Binds 127.0.0.1 unless the caller names another address: an endpoint is
 * never exposed to the network by default.  Requests are handled on
 * libmicrohttpd's internal thread; the handler must be thread-safe.
 */
#ifndef STEWARD_COMMON_HTTPD_H
#define STEWARD_COMMON_HTTPD_H

#include <stddef.h>

#include "buf.h"
#include "metrics.h"

typedef struct httpd_request {
	const char *method;        /* "GET", "POST", … */
	const char *path;          /* without the query string */
	const char *authorization; /* Authorization header or NULL */
	const char *body;          /* NUL-terminated request body ("" if none) */
	size_t body_len;
	void *connection;          /* for httpd_query() */
} httpd_request_t;

typedef struct httpd_response {
	int status;                /* default 200 */
	const char *content_type;  /* static string; default text/plain */
	buf_t body;                /* filled by the handler, freed by httpd */
} httpd_response_t;

/* Return 0 if handled; non-zero lets httpd answer 404. */
typedef int (*httpd_handler_fn)(void *ctx, const httpd_request_t *req, httpd_response_t *resp);

typedef struct httpd httpd_t;

/*
 * Start serving.  listen is "PORT", "HOST:PORT" or NULL for 127.0.0.1:0
 * (an ephemeral port; see httpd_port).  metrics (may be NULL) is served at
 * GET /metrics before the handler is consulted.  On failure returns NULL
 * with a message in err.
 */
httpd_t *httpd_start(const char *listen, metrics_t *metrics, httpd_handler_fn handler,
		     void *ctx, char *err, size_t errlen);
int httpd_port(const httpd_t *h);
void httpd_stop(httpd_t *h);  /* accepts NULL */

/* A query-string argument of the request, or NULL.  Borrowed. */
const char *httpd_query(const httpd_request_t *req, const char *name);

#endif
