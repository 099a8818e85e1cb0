/*
 * apply_ui.c — the operations page; see apply_ui.h.  Rendered on the
 * server into one HTML document (every value HTML-escaped); the only
 * script refreshes the page and sends the Retry request with the token the
 * operator typed (kept in sessionStorage, never in the URL).
 */
#include "apply_ui.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>

#include "apply_dlq.h"
#include "idem.h"
#include "log.h"
#include "state.h"
#include "xalloc.h"

#define MINUTES 60
#define MAX_FLOWS 128
#define LIST_ROWS 20

static const char *const outcomes[] = {"applied", "echo", "conflict", "unauthorized",
				       "unmapped", "other"};
#define NOUTCOMES (sizeof(outcomes) / sizeof(outcomes[0]))

typedef struct flow {
	char *source, *entity;
	uint64_t counts[NOUTCOMES];
} flow_t;

struct apply_ui {
	char *state_path;
	char *token;
	pthread_mutex_t lock;
	int64_t minute[MINUTES];       /* minute number (unix time / 60) of each slot */
	uint64_t per_minute[MINUTES];  /* changes processed in that minute */
	flow_t flows[MAX_FLOWS];
	size_t nflows;
	sqlite3 *db;                   /* read-only, httpd thread only */
	apply_state_t *rw;             /* for retry, httpd thread only (opened lazily) */
};

static int64_t
now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

apply_ui_t *
apply_ui_create(const char *state_path, const char *token)
{
	apply_ui_t *ui = xcalloc(1, sizeof *ui);
	ui->state_path = xstrdup(state_path);
	ui->token = token && *token ? xstrdup(token) : NULL;
	pthread_mutex_init(&ui->lock, NULL);
	return ui;
}

void
apply_ui_destroy(apply_ui_t *ui)
{
	if (!ui)
		return;
	for (size_t i = 0; i < ui->nflows; i++) {
		free(ui->flows[i].source);
		free(ui->flows[i].entity);
	}
	if (ui->db)
		sqlite3_close(ui->db);
	apply_state_close(ui->rw);
	if (ui->token) {
		memset(ui->token, 0, strlen(ui->token));
		free(ui->token);
	}
	free(ui->state_path);
	pthread_mutex_destroy(&ui->lock);
	free(ui);
}

void
apply_ui_count_change(apply_ui_t *ui, const char *source, const char *entity,
		      const char *outcome)
{
	if (!ui)
		return;
	int64_t minute = now_ms() / 60000;
	size_t slot = (size_t) (minute % MINUTES), k = NOUTCOMES - 1;
	for (size_t i = 0; i < NOUTCOMES - 1; i++)
		if (strcmp(outcome, outcomes[i]) == 0)
			k = i;
	if (!source)
		source = "-";
	if (!entity)
		entity = "-";
	pthread_mutex_lock(&ui->lock);
	if (ui->minute[slot] != minute) {
		ui->minute[slot] = minute;
		ui->per_minute[slot] = 0;
	}
	ui->per_minute[slot]++;
	flow_t *f = NULL;
	for (size_t i = 0; i < ui->nflows && !f; i++)
		if (!strcmp(ui->flows[i].source, source) && !strcmp(ui->flows[i].entity, entity))
			f = &ui->flows[i];
	if (!f && ui->nflows < MAX_FLOWS) {
		f = &ui->flows[ui->nflows++];
		f->source = xstrdup(source);
		f->entity = xstrdup(entity);
	}
	if (f)
		f->counts[k]++;
	pthread_mutex_unlock(&ui->lock);
}

/* ---- HTML helpers ---- */

static void
esc(buf_t *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': buf_append_str(b, "&amp;"); break;
		case '<': buf_append_str(b, "&lt;"); break;
		case '>': buf_append_str(b, "&gt;"); break;
		case '"': buf_append_str(b, "&quot;"); break;
		case '\'': buf_append_str(b, "&#39;"); break;
		default: buf_append_char(b, *s);
		}
	}
}

static void
appendf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
appendf(buf_t *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	buf_append_str(b, tmp);
}

static void
fmt_time(int64_t ms, char *out, size_t outlen)
{
	time_t secs = (time_t) (ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	strftime(out, outlen, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static const char *
health_class(const char *state)
{
	if (!state)
		return "unknown";
	if (!strcmp(state, "healthy") || !strcmp(state, "streaming"))
		return "ok";
	if (!strcmp(state, "rate_limited"))
		return "warn";
	return "bad";
}

static const char page_head[] =
	"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	"<title>Steward operations</title><style>"
	"body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f5f6f8;color:#1d2430}"
	"header{background:#1d2430;color:#fff;padding:12px 24px;display:flex;align-items:center;gap:16px}"
	"header h1{font-size:18px;margin:0;font-weight:600}header .meta{opacity:.75;font-size:12px}"
	"main{padding:16px 24px;display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}"
	"section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:12px 16px;overflow-x:auto;min-width:0}"
	"section.wide{grid-column:1/-1}h2{font-size:15px;margin:4px 0 10px}"
	"table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceef2;vertical-align:top}"
	"th{font-weight:600;color:#5a6474;font-size:12px;text-transform:uppercase;letter-spacing:.03em}"
	"td.num{text-align:right;font-variant-numeric:tabular-nums}"
	".pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}"
	".ok{background:#dff5e3;color:#17692b}.warn{background:#fff1cc;color:#805b00}"
	".bad{background:#fde0df;color:#a1221b}.unknown{background:#eceef2;color:#5a6474}"
	".muted{color:#8a93a3}.err{color:#a1221b;font-size:12px}code{font-size:12px;word-break:break-all}"
	"button{font:inherit;padding:3px 10px;border-radius:5px;border:1px solid #2f6fde;background:#2f6fde;color:#fff;cursor:pointer}"
	"button:disabled{background:#c9cfd9;border-color:#c9cfd9;cursor:not-allowed}"
	"#token{font:inherit;padding:3px 6px;border:1px solid #c9cfd9;border-radius:5px;width:220px}"
	"#msg{font-size:12px;margin-left:8px}svg text{font-size:10px;fill:#5a6474}"
	"</style></head><body>";

static const char page_script[] =
	"<script>"
	"(function(){var t=document.getElementById('token');"
	"if(t){t.value=sessionStorage.getItem('stewardToken')||'';"
	"t.addEventListener('change',function(){sessionStorage.setItem('stewardToken',t.value);});}"
	"document.querySelectorAll('button[data-dlq]').forEach(function(b){b.addEventListener('click',function(){"
	"var m=document.getElementById('msg');var tok=t?t.value:'';sessionStorage.setItem('stewardToken',tok);"
	"b.disabled=true;fetch('/ui/dlq/retry?id='+encodeURIComponent(b.dataset.dlq),{method:'POST',"
	"headers:{'Authorization':'Bearer '+tok}}).then(function(r){return r.json().then(function(j){"
	"m.textContent=j.message;m.className=r.ok?'':'err';"
	"if(r.ok){var row=document.getElementById('dlq-'+b.dataset.dlq);if(row){row.dataset.state='retried';"
	"row.querySelector('.state').textContent='retried';}}else{b.disabled=false;}});})"
	".catch(function(e){m.textContent=String(e);m.className='err';b.disabled=false;});});});"
	"setTimeout(function(){if(!document.activeElement||document.activeElement.id!=='token')location.reload();},15000);"
	"})();</script></body></html>";

/* ---- sections ---- */

static void
render_health(buf_t *b, json_t *status)
{
	size_t i;
	json_t *s;
	buf_append_str(b, "<section id=\"sources\"><h2>Sources</h2><table><tr><th>source</th>"
			  "<th>health</th><th>apply lag</th><th>position</th></tr>");
	json_array_foreach(json_object_get(status, "sources"), i, s) {
		const char *name = json_string_value(json_object_get(s, "source"));
		bool caught = json_is_true(json_object_get(s, "caught_up"));
		double lag = json_number_value(json_object_get(s, "lag_seconds"));
		const char *h = caught ? "caught up" : lag > 300 ? "lagging" : "behind";
		const char *cls = caught ? "ok" : lag > 300 ? "bad" : "warn";
		buf_append_str(b, "<tr><td>");
		esc(b, name ? name : json_string_value(json_object_get(s, "log")));
		appendf(b, "</td><td><span class=\"pill %s\">%s</span></td><td class=\"num\">%.1f s"
			   "</td><td><code>", cls, h, lag);
		esc(b, json_string_value(json_object_get(s, "position")));
		buf_append_str(b, "</code></td></tr>");
	}
	buf_append_str(b, "</table></section>");
	buf_append_str(b, "<section id=\"targets\"><h2>Targets</h2><table><tr><th>target</th>"
			  "<th>health</th><th>delivered</th><th>retries</th><th>in flight</th>"
			  "<th>dead letters</th><th>last error</th></tr>");
	json_array_foreach(json_object_get(status, "targets"), i, s) {
		const char *state = json_string_value(json_object_get(s, "state"));
		buf_append_str(b, "<tr><td>");
		esc(b, json_string_value(json_object_get(s, "name")));
		appendf(b, "</td><td><span class=\"pill %s\">", health_class(state));
		esc(b, state ? state : "unknown");
		appendf(b, "</span></td><td class=\"num\">%lld</td><td class=\"num\">%lld</td>"
			   "<td class=\"num\">%lld</td><td class=\"num\">%lld</td><td class=\"err\">",
			(long long) json_integer_value(json_object_get(s, "delivered")),
			(long long) json_integer_value(json_object_get(s, "retries")),
			(long long) json_integer_value(json_object_get(s, "in_flight")),
			(long long) json_integer_value(json_object_get(s, "dead_letters")));
		esc(b, json_string_value(json_object_get(s, "last_error")));
		buf_append_str(b, "</td></tr>");
	}
	appendf(b, "</table><p class=\"muted\">outbox pending: %lld · changes processed: %lld</p>"
		   "</section>",
		(long long) json_integer_value(json_object_get(status, "outbox_pending")),
		(long long) json_integer_value(json_object_get(status, "changes_total")));
}

static void
render_chart(apply_ui_t *ui, buf_t *b)
{
	uint64_t counts[MINUTES], max = 0, total = 0;
	int64_t minute = now_ms() / 60000;
	pthread_mutex_lock(&ui->lock);
	for (int i = 0; i < MINUTES; i++) {  /* i = 0 is 59 minutes ago */
		int64_t m = minute - (MINUTES - 1) + i;
		size_t slot = (size_t) (m % MINUTES);
		counts[i] = ui->minute[slot] == m ? ui->per_minute[slot] : 0;
		max = counts[i] > max ? counts[i] : max;
		total += counts[i];
	}
	pthread_mutex_unlock(&ui->lock);
	const int w = 600, h = 140, left = 40, bottom = 20;
	double scale = max ? (double) (h - bottom - 10) / (double) max : 0;
	double bw = (double) (w - left) / MINUTES;
	appendf(b, "<section class=\"wide\" id=\"throughput\"><h2>Throughput, last hour "
		   "<span class=\"muted\">(%llu changes; changes per minute)</span></h2>"
		   "<svg viewBox=\"0 0 %d %d\" width=\"100%%\" height=\"%d\" role=\"img\" "
		   "aria-label=\"changes per minute\">", (unsigned long long) total, w, h, h);
	appendf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#c9cfd9\"/>", left,
		h - bottom, w, h - bottom);
	appendf(b, "<text x=\"%d\" y=\"14\" text-anchor=\"end\">%llu</text>", left - 4,
		(unsigned long long) max);
	appendf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>", left - 4, h - bottom);
	for (int i = 0; i < MINUTES; i++) {
		double bh = (double) counts[i] * scale;
		if (counts[i])
			appendf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
				   "fill=\"#2f6fde\"><title>%llu</title></rect>",
				left + i * bw + 1, h - bottom - bh, bw - 2, bh,
				(unsigned long long) counts[i]);
	}
	appendf(b, "<text x=\"%d\" y=\"%d\">-60 min</text><text x=\"%d\" y=\"%d\" "
		   "text-anchor=\"end\">now</text></svg></section>", left, h - 4, w, h - 4);
}

static void
render_flows(apply_ui_t *ui, buf_t *b)
{
	buf_append_str(b, "<section id=\"flows\"><h2>Flows per entity</h2><table><tr>"
			  "<th>source</th><th>entity</th>");
	for (size_t k = 0; k < NOUTCOMES; k++)
		appendf(b, "<th>%s</th>", outcomes[k]);
	buf_append_str(b, "</tr>");
	pthread_mutex_lock(&ui->lock);
	if (!ui->nflows)
		appendf(b, "<tr><td colspan=\"%zu\" class=\"muted\">no changes processed since the "
			   "service started</td></tr>", NOUTCOMES + 2);
	for (size_t i = 0; i < ui->nflows; i++) {
		flow_t *f = &ui->flows[i];
		buf_append_str(b, "<tr class=\"flow\"><td>");
		esc(b, f->source);
		buf_append_str(b, "</td><td>");
		esc(b, f->entity);
		buf_append_str(b, "</td>");
		for (size_t k = 0; k < NOUTCOMES; k++)
			appendf(b, "<td class=\"num\">%llu</td>", (unsigned long long) f->counts[k]);
		buf_append_str(b, "</tr>");
	}
	pthread_mutex_unlock(&ui->lock);
	buf_append_str(b, "</table></section>");
}

static bool
db_open(apply_ui_t *ui)
{
	if (ui->db)
		return true;
	if (sqlite3_open_v2(ui->state_path, &ui->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(ui->db);
		ui->db = NULL;
		return false;
	}
	sqlite3_busy_timeout(ui->db, 2000);
	return true;
}

static const char *
col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *) t : "";
}

static void
render_conflicts(apply_ui_t *ui, buf_t *b)
{
	sqlite3_stmt *st = NULL;
	char when[32];
	buf_append_str(b, "<section id=\"conflicts\"><h2>Latest ownership conflicts</h2>"
			  "<table><tr><th>time</th><th>system</th><th>tried to change</th>"
			  "<th>value</th><th>rule</th></tr>");
	if (db_open(ui) &&
	    sqlite3_prepare_v2(ui->db, "SELECT time_ms, system, entity, entity_id, field, value, "
				       "rule FROM conflict ORDER BY id DESC LIMIT 20",
			       -1, &st, NULL) == SQLITE_OK) {
		int n = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			n++;
			fmt_time(sqlite3_column_int64(st, 0), when, sizeof when);
			appendf(b, "<tr class=\"conflict\"><td>%s</td><td>", when);
			esc(b, col(st, 1));
			buf_append_str(b, "</td><td>");
			esc(b, col(st, 2));
			buf_append_str(b, " <code>");
			esc(b, col(st, 3));
			buf_append_str(b, "</code> field <b>");
			esc(b, col(st, 4));
			buf_append_str(b, "</b></td><td><code>");
			esc(b, col(st, 5));
			buf_append_str(b, "</code></td><td><code>");
			esc(b, col(st, 6));
			buf_append_str(b, "</code></td></tr>");
		}
		if (!n)
			buf_append_str(b, "<tr><td colspan=\"5\" class=\"muted\">no conflicts</td></tr>");
	} else {
		buf_append_str(b, "<tr><td colspan=\"5\" class=\"err\">state store unreadable</td></tr>");
	}
	sqlite3_finalize(st);
	buf_append_str(b, "</table></section>");
}

static void
render_dlq(apply_ui_t *ui, buf_t *b)
{
	sqlite3_stmt *st = NULL;
	char when[32];
	buf_append_str(b, "<section class=\"wide\" id=\"dlq\"><h2>Dead letters</h2>");
	if (ui->token)
		buf_append_str(b, "<p><label>Operator token <input id=\"token\" type=\"password\" "
				  "autocomplete=\"off\"></label><span id=\"msg\"></span></p>");
	else
		buf_append_str(b, "<p class=\"muted\">Read-only: start the service with "
				  "--ui-token-file (or STEWARD_UI_TOKEN) to retry from here; or use "
				  "<code>steward dlq retry ID</code>.<span id=\"msg\"></span></p>");
	buf_append_str(b, "<table><tr><th>id</th><th>time</th><th>target</th><th>entity</th>"
			  "<th>reason</th><th>source</th><th>state</th><th></th></tr>");
	if (db_open(ui) &&
	    sqlite3_prepare_v2(ui->db, "SELECT id, time_ms, target, entity, entity_id, reason, "
				       "source, state, request IS NOT NULL FROM dlq "
				       "ORDER BY (state = 'open') DESC, id DESC LIMIT 30",
			       -1, &st, NULL) == SQLITE_OK) {
		int n = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			long long id = (long long) sqlite3_column_int64(st, 0);
			const char *state = col(st, 7);
			bool retriable = !strcmp(state, "open") && sqlite3_column_int(st, 8) &&
					 *col(st, 2);
			n++;
			fmt_time(sqlite3_column_int64(st, 1), when, sizeof when);
			appendf(b, "<tr class=\"dlq\" id=\"dlq-%lld\" data-state=\"", id);
			esc(b, state);
			appendf(b, "\"><td>%lld</td><td>%s</td><td>", id, when);
			esc(b, *col(st, 2) ? col(st, 2) : "-");
			buf_append_str(b, "</td><td>");
			esc(b, col(st, 3));
			buf_append_str(b, " <code>");
			esc(b, col(st, 4));
			buf_append_str(b, "</code></td><td class=\"err\">");
			esc(b, col(st, 5));
			buf_append_str(b, "</td><td>");
			esc(b, col(st, 6));
			buf_append_str(b, "</td><td class=\"state\">");
			esc(b, state);
			buf_append_str(b, "</td><td>");
			if (retriable)
				appendf(b, "<button data-dlq=\"%lld\"%s>Retry</button>", id,
					ui->token ? "" : " disabled title=\"read-only\"");
			buf_append_str(b, "</td></tr>");
		}
		if (!n)
			buf_append_str(b, "<tr><td colspan=\"8\" class=\"muted\">no dead letters</td></tr>");
	} else {
		buf_append_str(b, "<tr><td colspan=\"8\" class=\"err\">state store unreadable</td></tr>");
	}
	sqlite3_finalize(st);
	buf_append_str(b, "</table></section>");
}

static void
render_page(apply_ui_t *ui, const char *status_json, buf_t *b)
{
	json_error_t jerr;
	json_t *status = json_loads(status_json ? status_json : "{}", 0, &jerr);
	char when[32];
	if (!status)
		status = json_object();
	fmt_time(now_ms(), when, sizeof when);
	buf_append_str(b, page_head);
	appendf(b, "<header><h1>Steward operations</h1><span class=\"meta\">%s · %s · refreshes "
		   "every 15 s · <a href=\"/metrics\" style=\"color:#9cc1ff\">metrics</a> · "
		   "<a href=\"/status\" style=\"color:#9cc1ff\">status</a></span></header><main>",
		when, ui->token ? "retry enabled with a token" : "read-only");
	render_health(b, status);
	render_chart(ui, b);
	render_flows(ui, b);
	render_conflicts(ui, b);
	render_dlq(ui, b);
	buf_append_str(b, "</main>");
	buf_append_str(b, page_script);
	json_decref(status);
}

/* ---- retry ---- */

static bool
token_ok(const apply_ui_t *ui, const char *authorization)
{
	if (!ui->token || !authorization || strncmp(authorization, "Bearer ", 7) != 0)
		return false;
	const char *given = authorization + 7;
	size_t a = strlen(given), b = strlen(ui->token);
	unsigned char diff = (unsigned char) (a != b);
	for (size_t i = 0; i < a && i < b; i++)
		diff |= (unsigned char) (given[i] ^ ui->token[i]);
	return diff == 0;
}

/*
 * Queue dead letter id again and mark it retried in one transaction, as
 * `steward dlq retry` does (apply_dlq_retry).  Returns an HTTP status with
 * a message.
 */
static int
dlq_retry(apply_ui_t *ui, int64_t id, char *msg, size_t msglen)
{
	char err[512];
	if (!ui->rw && apply_state_open(ui->state_path, &ui->rw, err, sizeof err) != APPLY_OK) {
		snprintf(msg, msglen, "state store unavailable: %s", err);
		return 503;
	}
	int64_t outbox_id = 0;
	apply_status_t st = apply_dlq_retry(ui->rw, id, now_ms(), &outbox_id, NULL, err, sizeof err);
	switch (st) {
	case APPLY_OK:
		snprintf(msg, msglen, "dead letter %lld queued again (outbox row %lld)",
			 (long long) id, (long long) outbox_id);
		log_info("apply", "dead letter %lld retried from the operations page (outbox row %lld)",
			 (long long) id, (long long) outbox_id);
		return 200;
	case APPLY_NOT_FOUND:
		snprintf(msg, msglen, "%s", err);
		return 404;
	case APPLY_CONFLICT:
		snprintf(msg, msglen, "%s", err);
		return 409;
	case APPLY_RETRIABLE:
		snprintf(msg, msglen, "state store busy: %s", err);
		return 503;
	default:
		snprintf(msg, msglen, "could not queue dead letter %lld: %s", (long long) id, err);
		return 500;
	}
}

static void
json_message(httpd_response_t *resp, int status, const char *msg)
{
	json_t *o = json_pack("{s:b,s:s}", "ok", status == 200, "message", msg);
	char *text = json_dumps(o, JSON_COMPACT);
	resp->status = status;
	resp->content_type = "application/json";
	buf_append_str(&resp->body, text);
	buf_append_char(&resp->body, '\n');
	free(text);
	json_decref(o);
}

int
apply_ui_handle(apply_ui_t *ui, const httpd_request_t *req, const char *status_json,
		httpd_response_t *resp)
{
	if (!ui)
		return 1;
	if (!strcmp(req->method, "GET") && (!strcmp(req->path, "/") || !strcmp(req->path, "/ui"))) {
		render_page(ui, status_json, &resp->body);
		resp->content_type = "text/html; charset=utf-8";
		return 0;
	}
	if (strcmp(req->path, "/ui/dlq/retry") != 0)
		return 1;
	if (strcmp(req->method, "POST") != 0) {
		json_message(resp, 405, "use POST");
		return 0;
	}
	if (!ui->token) {
		json_message(resp, 403, "the operations page is read-only: no token configured");
		return 0;
	}
	if (!token_ok(ui, req->authorization)) {
		json_message(resp, 401, "a valid operator token is required");
		return 0;
	}
	const char *id_text = httpd_query(req, "id");
	char *end = NULL;
	long long id = id_text ? strtoll(id_text, &end, 10) : 0;
	if (!id_text || !*id_text || *end || id <= 0) {
		json_message(resp, 400, "id must be a dead letter's number");
		return 0;
	}
	char msg[700];
	int status = dlq_retry(ui, (int64_t) id, msg, sizeof msg);
	json_message(resp, status, msg);
	return 0;
}
