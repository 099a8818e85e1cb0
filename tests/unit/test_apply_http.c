/*
 * test_apply_http.c — real HTTP over loopback against a small
 * libmicrohttpd server started inside the test: headers sent, keep-alive
 * reuse, timeouts, 429 Retry-After, 503 retried to success, bounded
 * concurrency, and the bearer token never showing in what we hand out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>

#include "http_target.h"
#include "retry.h"

#define TOKEN "s3cr3t-T0KEN-value"

static struct MHD_Daemon *server;
static int port;
static int connections;  /* TCP connections the server accepted */
static int flaky_calls;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct upload {
	char *data;
	size_t len;
} upload_t;

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
	      enum MHD_ConnectionNotificationCode code)
{
	(void) cls;
	(void) c;
	(void) socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		pthread_mutex_lock(&mu);
		connections++;
		pthread_mutex_unlock(&mu);
	}
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, const char *body, const char *retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *) body,
								 MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (retry_after)
		MHD_add_response_header(r, "Retry-After", retry_after);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static const char *
hdr(struct MHD_Connection *c, const char *name)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
	return v ? v : "";
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void) cls;
	(void) version;
	upload_t *up = *con_cls;
	if (!up) {
		*con_cls = calloc(1, sizeof *up);
		return MHD_YES;
	}
	if (*upload_data_size) {
		up->data = realloc(up->data, up->len + *upload_data_size + 1);
		memcpy(up->data + up->len, upload_data, *upload_data_size);
		up->len += *upload_data_size;
		up->data[up->len] = '\0';
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/echo") == 0) {
		json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "method", method,
				      "idem", hdr(c, "Idempotency-Key"),
				      "corr", hdr(c, "X-Correlation-Id"),
				      "auth", hdr(c, "Authorization"),
				      "type", hdr(c, "Content-Type"),
				      "body", up->data ? up->data : "");
		char *text = json_dumps(j, JSON_COMPACT);
		enum MHD_Result r = reply(c, 200, text, NULL);
		free(text);
		json_decref(j);
		return r;
	}
	if (strcmp(url, "/slow") == 0) {
		usleep(1500 * 1000);
		return reply(c, 200, "{}", NULL);
	}
	if (strcmp(url, "/throttle") == 0)
		return reply(c, 429, "{\"error\":\"too many requests\"}", "2");
	if (strcmp(url, "/flaky") == 0) {
		pthread_mutex_lock(&mu);
		int n = ++flaky_calls;
		pthread_mutex_unlock(&mu);
		return n <= 2 ? reply(c, 503, "{\"error\":\"unavailable\"}", NULL)
			      : reply(c, 201, "{\"id\":\"001A\"}", NULL);
	}
	if (strcmp(url, "/leak") == 0) {
		/* A careless API that echoes the credentials it rejected. */
		char body[512];
		snprintf(body, sizeof body, "{\"error\":\"invalid token\",\"got\":\"%s\"}",
			 hdr(c, "Authorization"));
		return reply(c, 401, body, NULL);
	}
	return reply(c, 404, "{\"error\":\"not found\"}", NULL);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	(void) cls;
	(void) c;
	(void) toe;
	upload_t *up = *con_cls;
	if (up) {
		free(up->data);
		free(up);
	}
	*con_cls = NULL;
}

static int
start_server(void **state)
{
	(void) state;
	struct sockaddr_in loopback = {.sin_family = AF_INET, .sin_port = 0,
				       .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	server = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				  MHD_USE_ERROR_LOG, 0, NULL, NULL, handler, NULL,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
				  MHD_OPTION_SOCK_ADDR, &loopback, MHD_OPTION_END);
	if (!server)
		return -1;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(server, MHD_DAEMON_INFO_BIND_PORT);
	port = info->port;
	return 0;
}

static int
stop_server(void **state)
{
	(void) state;
	MHD_stop_daemon(server);
	return 0;
}

/* Collect finished responses into a small array for assertions. */
typedef struct collected {
	int n;
	http_response_t r[16];
	char *bodies[16];
} collected_t;

static void
collect(void *ud, const http_response_t *resp)
{
	collected_t *c = ud;
	c->r[c->n] = *resp;
	c->bodies[c->n] = strdup(resp->body);
	c->r[c->n].body = c->bodies[c->n];
	c->r[c->n].retry_after = resp->retry_after ? strdup(resp->retry_after) : NULL;
	c->r[c->n].location = NULL;
	c->n++;
}

static void
collected_free(collected_t *c)
{
	for (int i = 0; i < c->n; i++) {
		free(c->bodies[i]);
		free(c->r[i].retry_after);
	}
	memset(c, 0, sizeof *c);
}

static void
wait_all(http_client_t *cl, collected_t *got)
{
	for (int i = 0; i < 200 && http_client_in_flight(cl) > 0; i++)
		http_client_poll(cl, 50, collect, got);
	assert_int_equal(http_client_in_flight(cl), 0);
}

static http_client_t *
client_with_target(http_target_t **t, long timeout_ms, unsigned max_in_flight)
{
	char err[256];
	http_client_t *cl;
	assert_int_equal(http_client_create(&cl, err, sizeof err), APPLY_OK);
	setenv("STEWARD_TEST_TOKEN", TOKEN, 1);
	http_target_opts_t o = {.name = "crm", .max_in_flight = max_in_flight,
				.timeout_ms = timeout_ms, .token_env = "STEWARD_TEST_TOKEN"};
	assert_int_equal(http_target_add(cl, &o, t, err, sizeof err), APPLY_OK);
	return cl;
}

static void
url(char *out, size_t n, const char *path)
{
	snprintf(out, n, "http://127.0.0.1:%d%s", port, path);
}

static void
test_request_carries_headers_and_reuses_connection(void **state)
{
	(void) state;
	http_target_t *t;
	http_client_t *cl = client_with_target(&t, 5000, 4);
	char err[256], u[128];
	url(u, sizeof u, "/echo");
	int before = connections;
	collected_t got = {0};
	for (int i = 0; i < 5; i++) {
		http_request_t req = {.method = "PATCH", .url = u, .body = "{\"Name\":\"Acme\"}",
				      .idem_key = "abc123", .correlation_id = "erp@0/16B3748:3",
				      .tag = (void *) (intptr_t) (i + 1)};
		assert_int_equal(http_target_submit(t, &req, err, sizeof err), APPLY_OK);
		wait_all(cl, &got);
	}
	assert_int_equal(got.n, 5);
	json_t *j = json_loads(got.r[0].body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "PATCH");
	assert_string_equal(json_string_value(json_object_get(j, "idem")), "abc123");
	assert_string_equal(json_string_value(json_object_get(j, "corr")), "erp@0/16B3748:3");
	assert_string_equal(json_string_value(json_object_get(j, "type")), "application/json");
	assert_string_equal(json_string_value(json_object_get(j, "body")), "{\"Name\":\"Acme\"}");
	/* The server saw the token; what we hand back has it masked. */
	assert_null(strstr(got.r[0].body, TOKEN));
	assert_non_null(strstr(json_string_value(json_object_get(j, "auth")), "Bearer ***"));
	json_decref(j);
	assert_int_equal((intptr_t) got.r[0].tag, 1);
	assert_int_equal(got.r[0].status, 200);
	/* Keep-alive: one TCP connection for all five requests. */
	assert_int_equal(got.r[0].new_connections, 1);
	for (int i = 1; i < 5; i++)
		assert_int_equal(got.r[i].new_connections, 0);
	assert_int_equal(connections - before, 1);
	collected_free(&got);
	http_client_destroy(cl);
}

static void
test_slow_target_times_out_as_transport_error(void **state)
{
	(void) state;
	http_target_t *t;
	http_client_t *cl = client_with_target(&t, 300, 4);
	char err[256], u[128];
	url(u, sizeof u, "/slow");
	http_request_t req = {.method = "POST", .url = u, .body = "{}"};
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(http_target_submit(t, &req, err, sizeof err), APPLY_OK);
	collected_t got = {0};
	wait_all(cl, &got);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ms = (double) (b.tv_sec - a.tv_sec) * 1000 + (double) (b.tv_nsec - a.tv_nsec) / 1e6;
	assert_int_equal(got.n, 1);
	assert_true(got.r[0].transport_error);
	assert_true(got.r[0].timed_out);
	assert_true(ms < 1200);
	retry_policy_t p;
	retry_policy_default(&p);
	retry_response_t rr = {true, 0, NULL, NULL};
	assert_int_equal(retry_classify(&p, &rr, time(NULL)).cls, RETRY_BACKOFF);
	collected_free(&got);
	http_client_destroy(cl);
}

static void
test_429_exposes_retry_after_for_classification(void **state)
{
	(void) state;
	http_target_t *t;
	http_client_t *cl = client_with_target(&t, 5000, 4);
	char err[256], u[128];
	url(u, sizeof u, "/throttle");
	http_request_t req = {.method = "POST", .url = u, .body = "{}"};
	assert_int_equal(http_target_submit(t, &req, err, sizeof err), APPLY_OK);
	collected_t got = {0};
	wait_all(cl, &got);
	assert_int_equal(got.r[0].status, 429);
	assert_string_equal(got.r[0].retry_after, "2");
	retry_policy_t p;
	retry_policy_default(&p);
	retry_response_t rr = {false, got.r[0].status, got.r[0].retry_after, got.r[0].body};
	retry_decision_t d = retry_classify(&p, &rr, time(NULL));
	assert_int_equal(d.cls, RETRY_THROTTLED);
	assert_int_equal(d.delay_ms, 2000);
	collected_free(&got);
	http_client_destroy(cl);
}

static void
test_503_is_retried_with_backoff_until_created(void **state)
{
	(void) state;
	http_target_t *t;
	http_client_t *cl = client_with_target(&t, 5000, 4);
	char err[256], u[128];
	url(u, sizeof u, "/flaky");
	flaky_calls = 0;
	retry_policy_t p;
	retry_policy_default(&p);
	p.base_ms = 10;
	uint64_t rng;
	retry_rng_seed(&rng, 1);
	long status = 0;
	unsigned attempt;
	for (attempt = 0; attempt < 5; attempt++) {
		http_request_t req = {.method = "POST", .url = u, .body = "{}", .idem_key = "k"};
		assert_int_equal(http_target_submit(t, &req, err, sizeof err), APPLY_OK);
		collected_t got = {0};
		wait_all(cl, &got);
		retry_response_t rr = {got.r[0].transport_error, got.r[0].status, NULL, NULL};
		retry_decision_t d = retry_classify(&p, &rr, time(NULL));
		status = got.r[0].status;
		collected_free(&got);
		if (d.cls == RETRY_DONE)
			break;
		assert_int_equal(d.cls, RETRY_BACKOFF);
		usleep((useconds_t) retry_backoff_ms(&p, attempt, &rng) * 1000);
	}
	assert_int_equal(status, 201);
	assert_int_equal(attempt, 2);
	http_client_destroy(cl);
}

static void
test_concurrency_is_bounded_per_target(void **state)
{
	(void) state;
	http_target_t *t;
	http_client_t *cl = client_with_target(&t, 5000, 2);
	char err[256], u[128];
	url(u, sizeof u, "/echo");
	http_request_t req = {.method = "GET", .url = u};
	assert_int_equal(http_target_submit(t, &req, err, sizeof err), APPLY_OK);
	assert_int_equal(http_target_submit(t, &req, err, sizeof err), APPLY_OK);
	assert_false(http_target_has_slot(t));
	assert_int_equal(http_target_submit(t, &req, err, sizeof err), APPLY_RETRIABLE);
	collected_t got = {0};
	wait_all(cl, &got);
	assert_int_equal(got.n, 2);
	assert_true(http_target_has_slot(t));
	http_request_t bad = {.method = "TRACE", .url = u};
	assert_int_equal(http_target_submit(t, &bad, err, sizeof err), APPLY_PERMANENT);
	http_request_t inject = {.method = "GET", .url = u, .idem_key = "a\r\nX-Evil: 1"};
	assert_int_equal(http_target_submit(t, &inject, err, sizeof err), APPLY_PERMANENT);
	collected_free(&got);
	http_client_destroy(cl);
}

static void
test_token_never_appears_in_errors_or_bodies(void **state)
{
	(void) state;
	http_target_t *t;
	http_client_t *cl = client_with_target(&t, 2000, 4);
	char err[256], u[128];
	url(u, sizeof u, "/leak");
	collected_t got = {0};
	http_request_t req = {.method = "POST", .url = u, .body = "{}"};
	assert_int_equal(http_target_submit(t, &req, err, sizeof err), APPLY_OK);
	/* Misconfigured URL carrying the token, to a closed port. */
	char bad[256];
	snprintf(bad, sizeof bad, "http://127.0.0.1:1/x?access_token=%s", TOKEN);
	http_request_t req2 = {.method = "POST", .url = bad, .body = "{}"};
	assert_int_equal(http_target_submit(t, &req2, err, sizeof err), APPLY_OK);
	wait_all(cl, &got);
	assert_int_equal(got.n, 2);
	for (int i = 0; i < 2; i++) {
		assert_null(strstr(got.r[i].body, TOKEN));
		assert_null(strstr(got.r[i].error, TOKEN));
	}
	int transport = got.r[0].transport_error ? 0 : 1;
	assert_true(got.r[transport].transport_error);
	assert_true(got.r[transport].error[0] != '\0');
	assert_int_equal(got.r[1 - transport].status, 401);
	collected_free(&got);

	/* A missing token is a configuration error that names the variable only. */
	http_target_t *t2;
	http_target_opts_t o = {.name = "billing", .token_env = "STEWARD_TEST_NO_SUCH_VAR"};
	assert_int_equal(http_target_add(cl, &o, &t2, err, sizeof err), APPLY_PERMANENT);
	assert_non_null(strstr(err, "STEWARD_TEST_NO_SUCH_VAR"));
	http_client_destroy(cl);
}

static void
test_token_file_is_read(void **state)
{
	(void) state;
	char path[] = "/tmp/test_apply_http_tokenXXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "file-token\n", 11), 11);
	close(fd);
	char err[256], u[128];
	http_client_t *cl;
	http_target_t *t;
	assert_int_equal(http_client_create(&cl, err, sizeof err), APPLY_OK);
	http_target_opts_t o = {.name = "support", .token_file = path};
	assert_int_equal(http_target_add(cl, &o, &t, err, sizeof err), APPLY_OK);
	url(u, sizeof u, "/echo");
	http_request_t req = {.method = "GET", .url = u};
	assert_int_equal(http_target_submit(t, &req, err, sizeof err), APPLY_OK);
	collected_t got = {0};
	wait_all(cl, &got);
	assert_non_null(strstr(got.r[0].body, "Bearer **********"));
	collected_free(&got);
	http_client_destroy(cl);
	unlink(path);
	http_target_opts_t missing = {.name = "support", .token_file = path};
	assert_int_equal(http_client_create(&cl, err, sizeof err), APPLY_OK);
	assert_int_equal(http_target_add(cl, &missing, &t, err, sizeof err), APPLY_PERMANENT);
	http_client_destroy(cl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_carries_headers_and_reuses_connection),
		cmocka_unit_test(test_slow_target_times_out_as_transport_error),
		cmocka_unit_test(test_429_exposes_retry_after_for_classification),
		cmocka_unit_test(test_503_is_retried_with_backoff_until_created),
		cmocka_unit_test(test_concurrency_is_bounded_per_target),
		cmocka_unit_test(test_token_never_appears_in_errors_or_bodies),
		cmocka_unit_test(test_token_file_is_read),
	};
	return cmocka_run_group_tests(tests, start_server, stop_server);
}
