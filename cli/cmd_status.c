/*
 * cmd_status.c — `steward status`: sources and targets at a glance.
 *
 *   steward status --capture URL [--capture URL …] [--apply URL] [--state FILE] [--json]
 *
 * Asks each running process for its GET /status (capture agents: one
 * source each; the apply service: per-source apply lag and the targets),
 * and, with --state, counts open dead letters per target in the apply
 * state store (works while the service is down).  Prints a table, or one
 * JSON document with --json.  Exit codes: 0 all healthy, 3 something is
 * failing (an agent unreachable or reconnecting, a target failing or
 * paused), 69 no endpoint answered, 2 usage, 74 state store unreadable.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "buf.h"
#include "commands.h"
#include "exitcodes.h"
#include "opts.h"
#include "state.h"
#include "xalloc.h"

static const opt_spec_t status_opts[] = {
	{"capture", 'c', OPT_MULTI, "URL", NULL, 0, 0,
	 "A capture agent's --metrics-listen address (http://HOST:PORT; /status is added)."},
	{"apply", 'a', OPT_STRING, "URL", NULL, 0, 0, "The apply service's --metrics-listen address."},
	{"state", 's', OPT_STRING, "FILE", NULL, 0, 0,
	 "The apply state store: dead letters per target, even when apply is down."},
	{"json", 0, OPT_FLAG, NULL, NULL, 0, 0, "Print one JSON document instead of a table."},
	{"timeout", 0, OPT_INT, "MS", "2000", 100, 60000, "Per-endpoint timeout."},
	{NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

static const char usage_line[] =
	"steward status [--capture URL]… [--apply URL] [--state FILE] [--json]";
static const char description[] =
	"Show every source (capture state and lag, apply lag) and every target (state,\n"
	"dead letters, last error).  Exit codes: 0 healthy, 3 something is failing,\n"
	"69 no endpoint answered, 2 usage, 74 state store unreadable.  See\n"
	"docs/operations.md.";

static size_t
on_body(char *data, size_t size, size_t n, void *userdata)
{
	buf_append((buf_t *) userdata, data, size * n);
	return size * n;
}

/* GET base + "/status" as JSON; NULL with a message in err. */
static json_t *
fetch_status(const char *base, long timeout_ms, char *err, size_t errlen)
{
	buf_t body = BUF_INIT;
	json_t *doc = NULL;
	size_t blen = strlen(base);
	bool has_path = blen >= 7 && strcmp(base + blen - 7, "/status") == 0;
	bool has_scheme = strncmp(base, "http://", 7) == 0 || strncmp(base, "https://", 8) == 0;
	char *url = xasprintf("%s%s%s", has_scheme ? "" : "http://", base,
			      has_path ? "" : (blen && base[blen - 1] == '/' ? "status" : "/status"));
	CURL *c = curl_easy_init();
	long code = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "could not reach %s: %s", url, curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200) {
		snprintf(err, errlen, "%s answered %ld", url, code);
		goto out;
	}
	json_error_t jerr;
	doc = json_loadb(body.data ? body.data : "", body.len, 0, &jerr);
	if (!doc || !json_is_object(doc)) {
		snprintf(err, errlen, "%s: not a status document: %s", url, jerr.text);
		json_decref(doc);
		doc = NULL;
	}
out:
	curl_easy_cleanup(c);
	buf_free(&body);
	free(url);
	return doc;
}

/* The source row named name in rows (created when missing).  Borrowed. */
static json_t *
source_row(json_t *rows, const char *name)
{
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
		if (strcmp(json_string_value(json_object_get(r, "name")), name) == 0)
			return r;
	r = json_pack("{s:s,s:s,s:n,s:n,s:n,s:n}", "name", name, "state", "unknown",
		      "capture_lag_seconds", "apply_lag_seconds", "last_error", "position");
	json_array_append_new(rows, r);
	return r;
}

static bool
state_failing(const char *state)
{
	return !strcmp(state, "failing") || !strcmp(state, "paused") ||
	       !strcmp(state, "reconnecting") || !strcmp(state, "stopped") ||
	       !strcmp(state, "unreachable");
}

static void
add_capture(json_t *sources, const char *url, long timeout_ms, int *answered)
{
	char err[512];
	json_t *st = fetch_status(url, timeout_ms, err, sizeof err);
	if (!st) {
		json_t *r = source_row(sources, url);
		json_object_set_new(r, "state", json_string("unreachable"));
		json_object_set_new(r, "last_error", json_string(err));
		return;
	}
	(*answered)++;
	const char *name = json_string_value(json_object_get(st, "source"));
	json_t *r = source_row(sources, name ? name : url);
	json_object_set_new(r, "endpoint", json_string(url));
	json_object_set(r, "state", json_object_get(st, "state"));
	json_object_set(r, "kind", json_object_get(st, "kind"));
	json_object_set(r, "capture_lag_seconds", json_object_get(st, "lag_seconds"));
	json_object_set(r, "last_error", json_object_get(st, "last_error"));
	json_object_set(r, "position", json_object_get(st, "position"));
	json_object_set(r, "changes_total", json_object_get(st, "changes_total"));
	if (json_object_get(st, "slot"))
		json_object_set(r, "slot", json_object_get(st, "slot"));
	if (json_object_get(st, "binlog_behind_bytes"))
		json_object_set(r, "binlog_behind_bytes", json_object_get(st, "binlog_behind_bytes"));
	json_decref(st);
}

static void
add_apply(json_t *sources, json_t *targets, const char *url, long timeout_ms, int *answered,
	  json_t *apply_row)
{
	char err[512];
	json_t *st = fetch_status(url, timeout_ms, err, sizeof err);
	if (!st) {
		json_object_set_new(apply_row, "state", json_string("unreachable"));
		json_object_set_new(apply_row, "last_error", json_string(err));
		return;
	}
	(*answered)++;
	json_object_set_new(apply_row, "state", json_string("running"));
	json_object_set(apply_row, "outbox_pending", json_object_get(st, "outbox_pending"));
	json_object_set(apply_row, "changes_total", json_object_get(st, "changes_total"));
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(st, "sources"), i, s) {
		const char *name = json_string_value(json_object_get(s, "source"));
		if (!name)
			name = json_string_value(json_object_get(s, "log"));
		if (!name)
			continue;
		json_t *r = source_row(sources, name);
		json_object_set(r, "apply_lag_seconds", json_object_get(s, "lag_seconds"));
		json_object_set(r, "applied_position", json_object_get(s, "position"));
	}
	json_array_foreach(json_object_get(st, "targets"), i, s)
		json_array_append(targets, s);
	json_decref(st);
}

/* Open dead letters per target from the state store, merged into targets. */
static int
add_state(json_t *targets, const char *path)
{
	char err[512];
	apply_state_t *s = NULL;
	apply_dlq_entry_t *e = NULL;
	size_t n = 0;
	if (apply_state_open(path, &s, err, sizeof err) != APPLY_OK ||
	    apply_state_dlq_list(s, "open", 1000000, &e, &n, err, sizeof err) != APPLY_OK) {
		fprintf(stderr, "steward status: %s\n", err);
		apply_state_close(s);
		return STEWARD_EXIT_IOERR;
	}
	size_t i;
	json_t *t;
	json_array_foreach(targets, i, t)
		json_object_set_new(t, "dead_letters", json_integer(0));
	for (size_t k = 0; k < n; k++) {
		const char *name = e[k].target ? e[k].target : "(none)";
		json_t *row = NULL;
		json_array_foreach(targets, i, t)
			if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
				row = t;
		if (!row) {
			row = json_pack("{s:s,s:s,s:i,s:n}", "name", name, "state", "unknown",
					"dead_letters", 0, "last_error");
			json_array_append_new(targets, row);
		}
		json_object_set_new(row, "dead_letters",
				    json_integer(json_integer_value(json_object_get(row, "dead_letters")) + 1));
	}
	apply_state_dlq_free(e, n);
	apply_state_close(s);
	return STEWARD_EXIT_OK;
}

static void
fmt_lag(json_t *v, char *out, size_t outlen)
{
	if (!json_is_number(v)) {
		snprintf(out, outlen, "-");
		return;
	}
	double s = json_number_value(v);
	if (s < 60)
		snprintf(out, outlen, "%.1fs", s);
	else if (s < 3600)
		snprintf(out, outlen, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
	else
		snprintf(out, outlen, "%.1fh", s / 3600);
}

static const char *
str_or_dash(json_t *v)
{
	const char *s = json_string_value(v);
	return s && *s ? s : "-";
}

static void
print_table(json_t *sources, json_t *targets, json_t *apply_row)
{
	size_t i;
	json_t *r;
	char lag1[32], lag2[32], dead[32];
	printf("%-7s %-16s %-13s %-11s %-11s %-6s %s\n", "KIND", "NAME", "STATE", "CAPTURE LAG",
	       "APPLY LAG", "DEAD", "LAST ERROR");
	json_array_foreach(sources, i, r) {
		fmt_lag(json_object_get(r, "capture_lag_seconds"), lag1, sizeof lag1);
		fmt_lag(json_object_get(r, "apply_lag_seconds"), lag2, sizeof lag2);
		printf("%-7s %-16s %-13s %-11s %-11s %-6s %s\n", "source",
		       str_or_dash(json_object_get(r, "name")), str_or_dash(json_object_get(r, "state")),
		       lag1, lag2, "-", str_or_dash(json_object_get(r, "last_error")));
	}
	if (apply_row && json_object_get(apply_row, "endpoint")) {
		snprintf(dead, sizeof dead, "-");
		printf("%-7s %-16s %-13s %-11s %-11s %-6s %s\n", "apply", "apply",
		       str_or_dash(json_object_get(apply_row, "state")), "-", "-", dead,
		       str_or_dash(json_object_get(apply_row, "last_error")));
	}
	json_array_foreach(targets, i, r) {
		json_t *d = json_object_get(r, "dead_letters");
		if (json_is_integer(d))
			snprintf(dead, sizeof dead, "%lld", (long long) json_integer_value(d));
		else
			snprintf(dead, sizeof dead, "-");
		printf("%-7s %-16s %-13s %-11s %-11s %-6s %s\n", "target",
		       str_or_dash(json_object_get(r, "name")), str_or_dash(json_object_get(r, "state")),
		       "-", "-", dead, str_or_dash(json_object_get(r, "last_error")));
	}
}

int
cmd_status(int argc, char **argv)
{
	char err[512];
	opts_t *o = NULL;
	int rc = STEWARD_EXIT_OK;
	json_t *sources = json_array(), *targets = json_array(), *apply_row = json_object();

	switch (opts_parse(status_opts, argc, argv, 1, &o, err, sizeof(err))) {
	case OPTS_HELP:
		opts_print_help(stdout, usage_line, description, status_opts);
		goto out;
	case OPTS_ERROR:
		fprintf(stderr, "steward status: %s\n", err);
		rc = STEWARD_EXIT_USAGE;
		goto out;
	case OPTS_OK:
		break;
	}
	const char *const *captures = NULL;
	size_t ncaptures = opts_get_multi(o, "capture", &captures);
	const char *apply = opts_get(o, "apply"), *state = opts_get(o, "state");
	long timeout_ms = (long) opts_get_int(o, "timeout");
	if (opts_npositional(o) > 0 || (!ncaptures && !apply && !state)) {
		fprintf(stderr, "steward status: give at least one of --capture URL, --apply URL, "
				"--state FILE (see --help)\n");
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int answered = 0;
	for (size_t i = 0; i < ncaptures; i++)
		add_capture(sources, captures[i], timeout_ms, &answered);
	if (apply) {
		json_object_set_new(apply_row, "endpoint", json_string(apply));
		add_apply(sources, targets, apply, timeout_ms, &answered, apply_row);
	}
	if (state && (rc = add_state(targets, state)) != STEWARD_EXIT_OK)
		goto out;
	bool failing = false;
	size_t i;
	json_t *r;
	json_array_foreach(sources, i, r)
		failing |= state_failing(str_or_dash(json_object_get(r, "state")));
	json_array_foreach(targets, i, r)
		failing |= state_failing(str_or_dash(json_object_get(r, "state")));
	if (apply)
		failing |= state_failing(str_or_dash(json_object_get(apply_row, "state")));
	if (opts_flag(o, "json")) {
		json_t *doc = json_pack("{s:O,s:O,s:b}", "sources", sources, "targets", targets,
					"healthy", !failing);
		if (apply)
			json_object_set(doc, "apply", apply_row);
		char *text = json_dumps(doc, JSON_INDENT(2));
		printf("%s\n", text);
		free(text);
		json_decref(doc);
	} else {
		print_table(sources, targets, apply_row);
	}
	if (!answered && (ncaptures || apply) && !state)
		rc = STEWARD_EXIT_UNAVAILABLE;
	else if (failing)
		rc = STEWARD_EXIT_CHECK_FAILED;
	curl_global_cleanup();
out:
	json_decref(sources);
	json_decref(targets);
	json_decref(apply_row);
	opts_free(o);
	return rc;
}
