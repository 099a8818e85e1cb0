/*
 * http_target.c — libcurl multi transfers for target writes.
 */
#include "http_target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "buf.h"
#include "log.h"
#include "redact.h"
#include "xalloc.h"

#define BODY_CAP (1024 * 1024)

struct http_target {
	http_client_t *client;
	char *name;
	unsigned max_in_flight;
	unsigned in_flight;
	long connect_timeout_ms;
	long timeout_ms;
	char *token;      /* NULL when the target needs none */
	char *ca_file;
	char *ca_path;
	bool tls_insecure;
	struct http_target *next;
};

/* One transfer; reachable from its easy handle's CURLOPT_PRIVATE. */
typedef struct transfer {
	CURL *easy;
	struct transfer *prev, *next;  /* the client's list of active transfers */
	http_target_t *target;
	void *tag;
	struct curl_slist *headers;
	buf_t body;
	char *retry_after;
	char *location;
	char errbuf[CURL_ERROR_SIZE];
} transfer_t;

struct http_client {
	CURLM *multi;
	http_target_t *targets;
	transfer_t *active;
	unsigned in_flight;
};

apply_status_t
http_client_create(http_client_t **out, char *err, size_t errlen)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "could not initialise libcurl");
		return APPLY_PERMANENT;
	}
	http_client_t *c = xcalloc(1, sizeof *c);
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		snprintf(err, errlen, "could not create libcurl multi handle");
		return APPLY_PERMANENT;
	}
	*out = c;
	return APPLY_OK;
}

static void
transfer_free(transfer_t *x)
{
	if (!x)
		return;
	curl_slist_free_all(x->headers);
	buf_free(&x->body);
	free(x->retry_after);
	free(x->location);
	free(x);
}

void
http_client_destroy(http_client_t *c)
{
	if (!c)
		return;
	for (transfer_t *x = c->active, *next; x; x = next) {
		next = x->next;
		curl_multi_remove_handle(c->multi, x->easy);
		curl_easy_cleanup(x->easy);
		transfer_free(x);
	}
	curl_multi_cleanup(c->multi);
	for (http_target_t *t = c->targets, *next; t; t = next) {
		next = t->next;
		if (t->token) {
			memset(t->token, 0, strlen(t->token));  /* don't leave it in freed memory */
			free(t->token);
		}
		free(t->name);
		free(t->ca_file);
		free(t->ca_path);
		free(t);
	}
	free(c);
}

/* First line of a file, trailing whitespace removed. */
static char *
read_token_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char line[8192];
	char *tok = NULL;
	if (fgets(line, sizeof line, f)) {
		size_t n = strlen(line);
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
			     line[n - 1] == '\t'))
			line[--n] = '\0';
		if (n)
			tok = xstrdup(line);
		memset(line, 0, sizeof line);
	}
	fclose(f);
	return tok;
}

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

apply_status_t
http_target_add(http_client_t *c, const http_target_opts_t *opts, http_target_t **out,
		char *err, size_t errlen)
{
	char *token = NULL;
	if (opts->token_env && *opts->token_env) {
		const char *v = getenv(opts->token_env);
		if (!v || !*v) {
			snprintf(err, errlen, "token for target \"%s\": environment variable %s "
				 "is not set", opts->name, opts->token_env);
			return APPLY_PERMANENT;
		}
		token = xstrdup(v);
	} else if (opts->token_file && *opts->token_file) {
		token = read_token_file(opts->token_file);
		if (!token) {
			snprintf(err, errlen, "token for target \"%s\": could not read \"%s\" "
				 "(missing or empty)", opts->name, opts->token_file);
			return APPLY_PERMANENT;
		}
	}
	if (token && strpbrk(token, "\r\n")) {
		free(token);
		snprintf(err, errlen, "token for target \"%s\" contains a line break", opts->name);
		return APPLY_PERMANENT;
	}
	http_target_t *t = xcalloc(1, sizeof *t);
	t->client = c;
	t->name = xstrdup(opts->name ? opts->name : "?");
	t->max_in_flight = opts->max_in_flight ? opts->max_in_flight : 4;
	t->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
	t->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
	t->token = token;
	t->ca_file = dup_or_null(opts->ca_file);
	t->ca_path = dup_or_null(opts->ca_path);
	t->tls_insecure = opts->tls_insecure;
	t->next = c->targets;
	c->targets = t;
	*out = t;
	return APPLY_OK;
}

const char *
http_target_name(const http_target_t *t)
{
	return t->name;
}

unsigned
http_target_in_flight(const http_target_t *t)
{
	return t->in_flight;
}

bool
http_target_has_slot(const http_target_t *t)
{
	return t->in_flight < t->max_in_flight;
}

unsigned
http_client_in_flight(const http_client_t *c)
{
	return c->in_flight;
}

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	transfer_t *x = ud;
	size_t len = size * n;
	if (x->body.len < BODY_CAP) {
		size_t take = len < BODY_CAP - x->body.len ? len : BODY_CAP - x->body.len;
		buf_append(&x->body, p, take);
	}
	return len;  /* keep reading past the cap: the status still matters */
}

/* Keep the value of a header named name (case-insensitive), trimmed. */
static void
keep_header(const char *line, size_t len, const char *name, char **slot)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	const char *v = line + nl + 1;
	const char *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	free(*slot);
	*slot = xstrndup(v, (size_t) (end - v));
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
	transfer_t *x = ud;
	size_t len = size * n;
	keep_header(p, len, "Retry-After", &x->retry_after);
	keep_header(p, len, "Location", &x->location);
	return len;
}

static bool
has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

apply_status_t
http_target_submit(http_target_t *t, const http_request_t *req, char *err, size_t errlen)
{
	static const char *const methods[] = {"GET", "POST", "PATCH", "PUT", "DELETE"};
	bool known = false;
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		known |= strcmp(req->method, methods[i]) == 0;
	if (!known) {
		snprintf(err, errlen, "target \"%s\": unsupported method \"%s\"", t->name,
			 req->method);
		return APPLY_PERMANENT;
	}
	if (has_crlf(req->idem_key) || has_crlf(req->correlation_id) || has_crlf(req->url)) {
		snprintf(err, errlen, "target \"%s\": line break in URL or header value", t->name);
		return APPLY_PERMANENT;
	}
	for (const char *const *h = req->headers; h && *h; h++) {
		if (has_crlf(*h) || !strchr(*h, ':')) {
			snprintf(err, errlen, "target \"%s\": bad header line", t->name);
			return APPLY_PERMANENT;
		}
	}
	if (!http_target_has_slot(t)) {
		snprintf(err, errlen, "target \"%s\": %u requests in flight", t->name,
			 t->in_flight);
		return APPLY_RETRIABLE;
	}

	CURL *e = curl_easy_init();
	if (!e) {
		snprintf(err, errlen, "target \"%s\": could not create transfer", t->name);
		return APPLY_RETRIABLE;
	}
	transfer_t *x = xcalloc(1, sizeof *x);
	x->target = t;
	x->tag = req->tag;

	buf_t line = BUF_INIT;
	x->headers = curl_slist_append(x->headers, "Accept: application/json");
	x->headers = curl_slist_append(x->headers, "Expect:");  /* no 100-continue round trip */
	if (req->body)
		x->headers = curl_slist_append(x->headers, "Content-Type: application/json");
	if (req->idem_key) {
		buf_printf(&line, "Idempotency-Key: %s", req->idem_key);
		x->headers = curl_slist_append(x->headers, line.data);
		buf_reset(&line);
	}
	if (req->correlation_id) {
		buf_printf(&line, "X-Correlation-Id: %s", req->correlation_id);
		x->headers = curl_slist_append(x->headers, line.data);
		buf_reset(&line);
	}
	if (t->token) {
		buf_printf(&line, "Authorization: Bearer %s", t->token);
		x->headers = curl_slist_append(x->headers, line.data);
		memset(line.data, 0, line.len);
		buf_reset(&line);
	}
	buf_free(&line);
	for (const char *const *h = req->headers; h && *h; h++)
		x->headers = curl_slist_append(x->headers, *h);

	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, t->timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, t->tls_insecure ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, t->tls_insecure ? 0L : 2L);
	if (t->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
	if (t->ca_path)
		curl_easy_setopt(e, CURLOPT_CAPATH, t->ca_path);
	if (strcmp(req->method, "GET") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	if (req->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(req->body));
		curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body);
	}

	CURLMcode mc = curl_multi_add_handle(t->client->multi, e);
	if (mc != CURLM_OK) {
		snprintf(err, errlen, "target \"%s\": could not start transfer: %s", t->name,
			 curl_multi_strerror(mc));
		curl_easy_cleanup(e);
		transfer_free(x);
		return APPLY_RETRIABLE;
	}
	x->easy = e;
	x->next = t->client->active;
	if (x->next)
		x->next->prev = x;
	t->client->active = x;
	t->in_flight++;
	t->client->in_flight++;
	return APPLY_OK;
}

static void
finish(http_client_t *c, CURL *e, CURLcode result, http_done_fn done, void *ud)
{
	transfer_t *x = NULL;
	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &x);
	http_target_t *t = x->target;
	http_response_t r;
	memset(&r, 0, sizeof r);
	r.tag = x->tag;
	r.target = t;
	if (result != CURLE_OK) {
		r.transport_error = true;
		r.timed_out = result == CURLE_OPERATION_TIMEDOUT;
		snprintf(r.error, sizeof r.error, "%s", x->errbuf[0] ? x->errbuf
			 : curl_easy_strerror(result));
	} else {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
	}
	long connects = 0;
	curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
	r.new_connections = connects;
	double secs = 0;
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &secs);
	r.total_ms = secs * 1000.0;
	buf_append(&x->body, "", 0);  /* allocated and NUL-terminated even when empty */
	r.body = x->body.data;
	r.body_len = x->body.len;
	r.retry_after = x->retry_after;
	r.location = x->location;
	if (t->token) {
		/* A target may echo the request (with our token) back to us. */
		redact_secret_in_place(r.error, t->token);
		redact_secret_in_place(r.body, t->token);
		if (r.location)
			redact_secret_in_place(r.location, t->token);
	}
	if (r.transport_error)
		log_debug("http", "target %s: transport error: %s", t->name, r.error);
	else
		log_debug("http", "target %s: status %ld in %.1f ms", t->name, r.status,
			  r.total_ms);

	curl_multi_remove_handle(c->multi, e);
	curl_easy_cleanup(e);
	if (x->prev)
		x->prev->next = x->next;
	else
		c->active = x->next;
	if (x->next)
		x->next->prev = x->prev;
	t->in_flight--;
	c->in_flight--;
	if (done)
		done(ud, &r);
	transfer_free(x);
}

int
http_client_poll(http_client_t *c, int timeout_ms, http_done_fn done, void *ud)
{
	int running = 0, finished = 0;
	curl_multi_perform(c->multi, &running);
	if (timeout_ms > 0 && c->in_flight > 0) {
		curl_multi_poll(c->multi, NULL, 0, timeout_ms, NULL);
		curl_multi_perform(c->multi, &running);
	}
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		finish(c, m->easy_handle, m->data.result, done, ud);
		finished++;
	}
	return finished;
}
