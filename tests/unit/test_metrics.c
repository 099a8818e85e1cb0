/*
 * test_metrics.c — Prometheus rendering and the embedded HTTP server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <string.h>

#include "buf.h"
#include "httpd.h"
#include "metrics.h"

static void
counter_and_gauge_render_with_escaped_labels(void **state)
{
	metrics_t *m = metrics_create();
	metrics_family_t *f = metrics_family(m, "steward_changes_captured_total", METRICS_COUNTER,
					     "Changes appended to the change log.", "source,table",
					     NULL, 0);
	const char *lv[] = {"erp", "public.\"odd\"\ntable"};
	metrics_series_t *s = metrics_series(f, lv);
	metrics_add(s, 3);
	metrics_add(metrics_series(f, lv), 2); /* same series */
	metrics_family_t *g = metrics_family(m, "steward_lag_seconds", METRICS_GAUGE, "Lag.", "", NULL, 0);
	metrics_set(metrics_series(g, NULL), 1.5);

	buf_t out = BUF_INIT;
	metrics_render(m, &out);
	assert_non_null(strstr(out.data, "# TYPE steward_changes_captured_total counter\n"));
	assert_non_null(strstr(out.data,
			       "steward_changes_captured_total{source=\"erp\",table=\"public.\\\"odd\\\"\\ntable\"} 5\n"));
	assert_non_null(strstr(out.data, "steward_lag_seconds 1.5\n"));
	assert_true(metrics_value(s) == 5);
	buf_free(&out);
	metrics_destroy(m);
}

static void
histogram_buckets_are_cumulative(void **state)
{
	metrics_t *m = metrics_create();
	const double b[] = {0.1, 1, 10};
	metrics_family_t *f = metrics_family(m, "steward_batch_seconds", METRICS_HISTOGRAM, "Batch time.",
					     "target", b, 3);
	const char *lv[] = {"crm"};
	metrics_series_t *s = metrics_series(f, lv);
	metrics_observe(s, 0.05);
	metrics_observe(s, 0.5);
	metrics_observe(s, 5);
	metrics_observe(s, 50);
	buf_t out = BUF_INIT;
	metrics_render(m, &out);
	assert_non_null(strstr(out.data, "steward_batch_seconds_bucket{target=\"crm\",le=\"0.1\"} 1\n"));
	assert_non_null(strstr(out.data, "steward_batch_seconds_bucket{target=\"crm\",le=\"1\"} 2\n"));
	assert_non_null(strstr(out.data, "steward_batch_seconds_bucket{target=\"crm\",le=\"10\"} 3\n"));
	assert_non_null(strstr(out.data, "steward_batch_seconds_bucket{target=\"crm\",le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(out.data, "steward_batch_seconds_count{target=\"crm\"} 4\n"));
	assert_non_null(strstr(out.data, "steward_batch_seconds_sum{target=\"crm\"} 55.55"));
	buf_free(&out);
	metrics_destroy(m);
}

static size_t
collect(char *p, size_t size, size_t n, void *ud)
{
	buf_append(ud, p, size * n);
	return size * n;
}

static int
hello_handler(void *ctx, const httpd_request_t *req, httpd_response_t *resp)
{
	if (strcmp(req->path, "/status") != 0)
		return 1;
	buf_printf(&resp->body, "%s %s", req->method, req->body);
	return 0;
}

static long
http_call(const char *url, const char *post, buf_t *out)
{
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	if (post)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
	long code = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	return code;
}

static void
httpd_serves_metrics_and_handler_on_loopback(void **state)
{
	metrics_t *m = metrics_create();
	metrics_family_t *f = metrics_family(m, "steward_up", METRICS_GAUGE, "Up.", "", NULL, 0);
	metrics_set(metrics_series(f, NULL), 1);
	char err[256];
	httpd_t *h = httpd_start(NULL, m, hello_handler, NULL, err, sizeof(err));
	assert_non_null(h);
	assert_true(httpd_port(h) > 0);

	char url[128];
	buf_t out = BUF_INIT;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", httpd_port(h));
	assert_int_equal(http_call(url, NULL, &out), 200);
	assert_non_null(strstr(out.data, "steward_up 1\n"));

	buf_reset(&out);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/status", httpd_port(h));
	assert_int_equal(http_call(url, "retry=7", &out), 200);
	assert_string_equal(out.data, "POST retry=7");

	buf_reset(&out);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nope", httpd_port(h));
	assert_int_equal(http_call(url, NULL, &out), 404);
	buf_free(&out);
	httpd_stop(h);
	metrics_destroy(m);
}

static void
httpd_rejects_bad_listen_address(void **state)
{
	char err[256];
	assert_null(httpd_start("nohost:abc", NULL, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "invalid listen address"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counter_and_gauge_render_with_escaped_labels),
		cmocka_unit_test(histogram_buckets_are_cumulative),
		cmocka_unit_test(httpd_serves_metrics_and_handler_on_loopback),
		cmocka_unit_test(httpd_rejects_bad_listen_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
