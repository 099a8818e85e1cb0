/*
 * http_target.h — asynchronous HTTP writes to the platforms' APIs over
 * libcurl multi.
 *
 * One http_client_t drives every transfer (one curl multi handle: one
 * connection cache, so connections are kept alive and reused across
 * requests).  Each target system gets an http_target_t with its own
 * concurrency bound, timeouts, bearer token and TLS settings, so a slow
 * target can use up only its own slots.
 *
 * Secrets: the bearer token is read from an environment variable or a file
 * at creation and only ever placed in the Authorization header; it is
 * replaced by '*' in every error text and response body this module hands
 * out, and never logged.  TLS peer and host verification are on unless the
 * target explicitly turns them off.  Only http and https URLs are allowed
 * and redirects are not followed.
 *
 * Not thread-safe: one thread owns a client and its targets.  Owner: apply
 * service.
 */
#ifndef STEWARD_APPLY_HTTP_TARGET_H
#define STEWARD_APPLY_HTTP_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#include "apply_status.h"

typedef struct http_client http_client_t;
typedef struct http_target http_target_t;

typedef struct http_target_opts {
	const char *name;         /* system name, for messages (required) */
	unsigned max_in_flight;   /* concurrent requests (default 4) */
	long connect_timeout_ms;  /* default 5000 */
	long timeout_ms;          /* whole request (default 30000) */
	const char *token_env;    /* env var holding the bearer token, or NULL */
	const char *token_file;   /* file holding it (first line), or NULL */
	const char *ca_file;      /* CA bundle (CURLOPT_CAINFO), or NULL for the system's */
	const char *ca_path;      /* CA directory (CURLOPT_CAPATH), or NULL */
	bool tls_insecure;        /* disable peer/host verification (tests only) */
} http_target_opts_t;

typedef struct http_request {
	const char *method;          /* "GET", "POST", "PATCH", "PUT", "DELETE" */
	const char *url;
	const char *const *headers;  /* extra "Name: value" lines, NULL-terminated, or NULL */
	const char *body;            /* JSON text or NULL; sent as application/json */
	const char *idem_key;        /* Idempotency-Key header, or NULL */
	const char *correlation_id;  /* X-Correlation-Id header ("source@position"), or NULL */
	void *tag;                   /* returned in the response, untouched */
} http_request_t;

typedef struct http_response {
	void *tag;               /* the request's tag */
	http_target_t *target;
	bool transport_error;    /* no HTTP status: connect/DNS/TLS/reset/timeout */
	bool timed_out;
	long status;             /* HTTP status, 0 on transport error */
	char *body;              /* NUL-terminated, token redacted, capped at 1 MiB; never NULL */
	size_t body_len;
	char *retry_after;       /* Retry-After header value or NULL */
	char *location;          /* Location header value or NULL */
	char error[256];         /* transport error text (redacted), "" otherwise */
	long new_connections;    /* connections opened for this request (0 = reused) */
	double total_ms;
} http_response_t;

/* Called once per finished request; resp is borrowed for the call. */
typedef void (*http_done_fn)(void *ud, const http_response_t *resp);

/* On APPLY_OK *out is the caller's (http_client_destroy). */
apply_status_t http_client_create(http_client_t **out, char *err, size_t errlen);
/* Aborts transfers in flight (their callbacks are not called).  Accepts NULL. */
void http_client_destroy(http_client_t *c);

/*
 * Add a target.  Reads the token now: APPLY_PERMANENT if token_env names
 * an unset/empty variable or token_file cannot be read.  The target is
 * owned by the client (freed by http_client_destroy); opts strings are
 * copied.
 */
apply_status_t http_target_add(http_client_t *c, const http_target_opts_t *opts,
			       http_target_t **out, char *err, size_t errlen);
const char *http_target_name(const http_target_t *t);
/* Requests of this target in flight. */
unsigned http_target_in_flight(const http_target_t *t);
/* True when another request may be submitted now. */
bool http_target_has_slot(const http_target_t *t);

/*
 * Start a request.  Everything in req is copied.  APPLY_RETRIABLE (and
 * nothing started) when the target has no free slot; APPLY_PERMANENT for
 * a bad request (unknown method, CR/LF in a header value).
 */
apply_status_t http_target_submit(http_target_t *t, const http_request_t *req,
				  char *err, size_t errlen);

/*
 * Drive transfers for up to timeout_ms (0 = do what is ready and return),
 * calling done for each finished request.  Returns the number finished.
 */
int http_client_poll(http_client_t *c, int timeout_ms, http_done_fn done, void *ud);
/* Requests in flight over all targets. */
unsigned http_client_in_flight(const http_client_t *c);

#endif
