/*
 * apply_deliver.c — the outbox worker: render intents, send them with the
 * HTTP client, classify answers, record outcomes (crosswalk ids, dead
 * letters, reschedules) in one transaction per poll.
 */
#include "apply_deliver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "apply_identity.h"
#include "apply_queue.h"
#include "http_target.h"
#include "idem.h"
#include "log.h"
#include "retry.h"
#include "template.h"
#include "xalloc.h"

#define REF_WAIT_MS 1000
/* New outbox rows are read into the in-memory queue this many at a time,
 * while it holds fewer than QUEUE_MAX (the rest wait in the state store). */
#define LOAD_BATCH 4096
#define QUEUE_MAX 100000
/* Answers are recorded in one transaction (one fsync) for up to this many
 * rows, or when the oldest unrecorded answer is this old. */
#define RECORD_BATCH 64
#define RECORD_WAIT_MS 5

typedef struct tstate {
	const apply_target_system_t *cfg;
	http_target_t *http;
	retry_bucket_t bucket;
	retry_breaker_t breaker;
	int64_t paused_until_ms;   /* wall clock; throttle/quota/auth pauses */
	char state[16];            /* healthy, rate_limited, paused, failing */
	char last_error[320];
	int64_t dead_letters, delivered, retries;
	metrics_series_t *m_retries, *m_dlq_gauge;
	metrics_series_t *m_state[4];
} tstate_t;

/* One request in flight. */
typedef struct flight {
	int64_t row_id;
	tstate_t *t;
	apply_outbox_row_t row;     /* owned copy */
	apply_op_kind_t op;
	char *method, *url, *body;  /* rendered */
	int64_t started_mono;
	bool done;
	http_response_t resp;       /* copy of the answer (owned strings) */
	apply_qrow_t *qrow;         /* the queue's row, held while in flight */
	bool resched;               /* recorded as a failed attempt (else removed) */
	int next_attempts;
	int64_t next_ms;
	char *next_error;
	struct flight *next;
} flight_t;

/* A change to the in-memory queue, applied once its transaction commits. */
typedef struct qmut {
	apply_qrow_t *qrow;
	bool remove;                /* else reschedule */
	int attempts;
	int64_t next_ms;
	char *last_error;
} qmut_t;

struct apply_deliver {
	const rules_t *rules;
	const apply_targets_t *targets;
	apply_state_t *state;
	metrics_t *metrics;
	apply_deliver_opts_t opts;
	retry_policy_t policy;
	uint64_t rng;
	http_client_t *http;
	tstate_t *ts;               /* [targets->nsystems] */
	size_t nts;
	flight_t *flights;          /* in flight or answered, not yet recorded */
	unsigned in_flight;
	apply_queue_t *queue;       /* committed pending rows (apply_queue.h) */
	bool txn;                   /* a step's transaction is open (starts only when a row needs a write) */
	qmut_t *muts;               /* queue changes of the open transaction */
	size_t nmuts, capmuts;
	unsigned answered;          /* flights done, not yet recorded */
	int64_t first_answer_ms;    /* mono time the oldest of those finished */
	metrics_family_t *f_writes, *f_latency, *f_dlq_total;
};

static const char *const state_names[4] = {"healthy", "rate_limited", "paused", "failing"};

static int64_t
wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
set_state(tstate_t *t, int idx)
{
	snprintf(t->state, sizeof t->state, "%s", state_names[idx]);
	for (int i = 0; i < 4; i++)
		if (t->m_state[i])
			metrics_set(t->m_state[i], i == idx ? 1 : 0);
}

apply_status_t
apply_deliver_create(const rules_t *rules, const apply_targets_t *targets, apply_state_t *state,
		     metrics_t *metrics, const apply_deliver_opts_t *opts, apply_deliver_t **out,
		     char *err, size_t errlen)
{
	apply_deliver_t *d = xcalloc(1, sizeof *d);
	apply_status_t st;
	d->rules = rules;
	d->targets = targets;
	d->state = state;
	d->metrics = metrics;
	if (opts)
		d->opts = *opts;
	if (d->opts.reference_timeout_ms <= 0)
		d->opts.reference_timeout_ms = 300000;
	retry_policy_default(&d->policy);
	retry_rng_seed(&d->rng, d->opts.seed ? d->opts.seed : (uint64_t) wall_ms());
	d->queue = apply_queue_new();
	*out = NULL;
	if ((st = http_client_create(&d->http, err, errlen)) != APPLY_OK)
		goto fail;
	if (metrics) {
		d->f_writes = metrics_family(metrics, "steward_apply_writes_total", METRICS_COUNTER,
					     "HTTP writes by response status code (0 = network error)",
					     "target,entity,code", NULL, 0);
		d->f_latency = metrics_family(metrics, "steward_apply_request_duration_seconds",
					      METRICS_HISTOGRAM, "HTTP request latency", "target",
					      METRICS_LATENCY_BUCKETS, METRICS_LATENCY_NBUCKETS);
		d->f_dlq_total = metrics_family(metrics, "steward_apply_dead_letters_total",
						METRICS_COUNTER, "Dead letters created",
						"target,reason", NULL, 0);
	}
	d->nts = targets->nsystems;
	d->ts = xcalloc(d->nts ? d->nts : 1, sizeof *d->ts);
	int64_t now = mono_ms();
	for (size_t i = 0; i < d->nts; i++) {
		tstate_t *t = &d->ts[i];
		t->cfg = &targets->systems[i];
		unsigned conc = t->cfg->concurrency;
		if (d->opts.concurrency && d->opts.concurrency < conc)
			conc = d->opts.concurrency;
		http_target_opts_t o = {
			.name = t->cfg->name,
			.max_in_flight = conc,
			.timeout_ms = t->cfg->timeout_ms,
			.connect_timeout_ms = t->cfg->timeout_ms < 5000 ? t->cfg->timeout_ms : 5000,
			.token_env = t->cfg->token_env,
			.token_file = t->cfg->token_file,
		};
		if ((st = http_target_add(d->http, &o, &t->http, err, errlen)) != APPLY_OK)
			goto fail;
		retry_bucket_init(&t->bucket, t->cfg->rate_limit, t->cfg->burst, now);
		retry_breaker_init(&t->breaker);
		if (metrics) {
			const char *lv[] = {t->cfg->name};
			t->m_retries = metrics_series(metrics_family(metrics, "steward_apply_retries_total",
								     METRICS_COUNTER, "Retried requests",
								     "target", NULL, 0), lv);
			t->m_dlq_gauge = metrics_series(metrics_family(metrics, "steward_apply_dead_letters",
								       METRICS_GAUGE, "Dead letters waiting",
								       "target", NULL, 0), lv);
			metrics_family_t *fs = metrics_family(metrics, "steward_apply_target_state",
							      METRICS_GAUGE, "1 for the target's current state",
							      "target,state", NULL, 0);
			for (int k = 0; k < 4; k++) {
				const char *sv[] = {t->cfg->name, state_names[k]};
				t->m_state[k] = metrics_series(fs, sv);
			}
		}
		set_state(t, 0);
	}
	/* Dead letters already waiting, per target, for /status and the gauge. */
	apply_dlq_entry_t *e = NULL;
	size_t n = 0;
	if (apply_state_dlq_list(state, "open", 1000000, &e, &n, err, errlen) == APPLY_OK) {
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < d->nts; k++)
				if (e[i].target && strcmp(e[i].target, d->ts[k].cfg->name) == 0)
					d->ts[k].dead_letters++;
		apply_state_dlq_free(e, n);
	}
	for (size_t k = 0; k < d->nts; k++)
		if (d->ts[k].m_dlq_gauge)
			metrics_set(d->ts[k].m_dlq_gauge, (double) d->ts[k].dead_letters);
	*out = d;
	return APPLY_OK;
fail:
	apply_deliver_destroy(d);
	return st;
}

static void
flight_free(flight_t *f)
{
	free(f->row.entity);
	free(f->row.entity_id);
	free(f->row.target);
	free(f->row.idem_key);
	free(f->row.request);
	free(f->row.source);
	free(f->row.last_error);
	free(f->method);
	free(f->url);
	free(f->body);
	free(f->resp.body);
	free(f->resp.retry_after);
	free(f->resp.location);
	free(f->next_error);
	free(f);
}

void
apply_deliver_destroy(apply_deliver_t *d)
{
	if (!d)
		return;
	http_client_destroy(d->http);
	for (flight_t *f = d->flights, *nx; f; f = nx) {
		nx = f->next;
		flight_free(f);
	}
	for (size_t i = 0; i < d->nmuts; i++)
		free(d->muts[i].last_error);
	free(d->muts);
	apply_queue_free(d->queue);
	free(d->ts);
	free(d);
}

unsigned
apply_deliver_in_flight(const apply_deliver_t *d)
{
	return d->in_flight;
}

int64_t
apply_deliver_pending(const apply_deliver_t *d)
{
	size_t n = apply_queue_len(d->queue);
	return n < QUEUE_MAX ? (int64_t) n : -1;
}

static tstate_t *
find_target(apply_deliver_t *d, const char *name)
{
	for (size_t i = 0; i < d->nts; i++)
		if (strcmp(d->ts[i].cfg->name, name) == 0)
			return &d->ts[i];
	return NULL;
}

/* ---- rendering ---- */

typedef struct render_ctx {
	apply_deliver_t *d;
	int system, entity;
	const char *system_name, *entity_name, *canonical;
	json_t *fields;             /* intent fields */
	rules_golden_t *golden;     /* may be NULL */
	char *owned[16];            /* strings handed to the template module */
	size_t nowned;
	char missing[256];
} render_ctx_t;

static const char *
keep(render_ctx_t *c, char *s)
{
	if (c->nowned < sizeof c->owned / sizeof c->owned[0]) {
		c->owned[c->nowned++] = s;
		return s;
	}
	free(s);  /* cannot happen with our templates; be safe */
	return NULL;
}

/* A field's value: the intent's, else the golden record's.  found=false if neither has it. */
static const char *
field_value(render_ctx_t *c, int field, bool *found)
{
	const char *name = rules_field_name(c->d->rules, c->entity, field);
	json_t *v = json_object_get(c->fields, name);
	*found = true;
	if (v)
		return json_is_string(v) ? json_string_value(v) : NULL;
	if (c->golden && (size_t) field < c->golden->nfields && c->golden->fields[field].owner >= 0)
		return c->golden->fields[field].value;
	*found = false;
	return NULL;
}

static template_status_t
resolve(void *ud, template_kind_t kind, const char *name, const char *system, const char **value)
{
	render_ctx_t *c = ud;
	char err[256];
	*value = NULL;
	if (kind == TEMPLATE_FIELD) {
		int f = rules_field_find(c->d->rules, c->entity, name);
		if (f < 0)
			return TEMPLATE_INVALID;
		bool found;
		const char *v = field_value(c, f, &found);
		if (v)
			v = rules_target_value(c->d->rules, c->system, c->entity, f, v);
		*value = v;
		return TEMPLATE_OK;
	}
	if (kind == TEMPLATE_ID) {
		char *key = NULL;
		apply_status_t st = apply_state_xwalk_key(c->d->state, c->entity_name, c->canonical,
							  system, &key, err, sizeof err);
		if (st != APPLY_OK) {
			snprintf(c->missing, sizeof c->missing, "id of %s %s in %s", c->entity_name,
				 c->canonical, system);
			return TEMPLATE_MISSING_ID;
		}
		*value = keep(c, key);
		return TEMPLATE_OK;
	}
	int f = rules_field_find(c->d->rules, c->entity, name);
	int ref_entity = f >= 0 ? rules_field_ref_entity(c->d->rules, c->entity, f) : -1;
	if (ref_entity < 0)
		return TEMPLATE_INVALID;
	bool found;
	const char *v = field_value(c, f, &found);
	if (!v)
		return TEMPLATE_OK;  /* a null reference is a null value */
	char *key = NULL;
	apply_status_t st = apply_identity_ref_key(c->d->state,
						   rules_entity_name(c->d->rules, ref_entity), v,
						   system, &key, err, sizeof err);
	if (st != APPLY_OK) {
		snprintf(c->missing, sizeof c->missing, "%s %s (field %s) in %s",
			 rules_entity_name(c->d->rules, ref_entity), v, name, system);
		return TEMPLATE_MISSING_REF;
	}
	*value = keep(c, key);
	return TEMPLATE_OK;
}

static void
render_ctx_free(render_ctx_t *c)
{
	for (size_t i = 0; i < c->nowned; i++)
		free(c->owned[i]);
	c->nowned = 0;
	rules_golden_free(c->golden);
}

/*
 * Render a row's intent.  TEMPLATE_OK with f->method/url/body set, or the
 * template status with a message in err.
 */
static template_status_t
render(apply_deliver_t *d, tstate_t *t, flight_t *f, json_t *intent, char *err, size_t errlen)
{
	template_status_t ts = TEMPLATE_INVALID;
	render_ctx_t c = {0};
	buf_t url = BUF_INIT;
	json_t *body = NULL;
	template_body_field_t *bf = NULL;
	c.d = d;
	c.system = t->cfg->system;
	c.system_name = t->cfg->name;
	c.entity_name = json_string_value(json_object_get(intent, "entity"));
	c.canonical = json_string_value(json_object_get(intent, "id"));
	c.fields = json_object_get(intent, "fields");
	const char *op = json_string_value(json_object_get(intent, "op"));
	c.entity = c.entity_name ? rules_entity_find(d->rules, c.entity_name) : -1;
	const apply_target_entity_t *te = apply_targets_entity(d->targets, c.system, c.entity);
	if (!te || !c.canonical || !op || !json_is_object(c.fields)) {
		snprintf(err, errlen, "malformed or unconfigured write for %s %s",
			 c.system_name, c.entity_name ? c.entity_name : "?");
		goto out;
	}
	char *gjson = NULL, gerr[256];
	if (apply_state_golden_get(d->state, c.entity_name, c.canonical, &gjson, gerr,
				   sizeof gerr) == APPLY_OK) {
		c.golden = rules_golden_from_json(d->rules, gjson, gerr, sizeof gerr);
		free(gjson);
	}
	char *have = NULL;
	bool key_known = apply_state_xwalk_key(d->state, c.entity_name, c.canonical, c.system_name,
					       &have, gerr, sizeof gerr) == APPLY_OK;
	free(have);
	/* Choose the operation with what the crosswalk knows now. */
	apply_op_kind_t kind;
	/* A create prefers the upsert (a key known only from another system's
	 * link may not exist in the target yet); an update prefers the id. */
	bool create = strcmp(op, "create") == 0;
	if (strcmp(op, "delete") == 0)
		kind = APPLY_OP_DELETE;
	else if (create && te->ops[APPLY_OP_UPSERT].present)
		kind = APPLY_OP_UPSERT;
	else if (key_known && te->ops[APPLY_OP_UPDATE].present)
		kind = APPLY_OP_UPDATE;
	else if (te->ops[APPLY_OP_UPSERT].present)
		kind = APPLY_OP_UPSERT;
	else if (!key_known && create && te->ops[APPLY_OP_CREATE].present)
		kind = APPLY_OP_CREATE;
	else {
		snprintf(err, errlen, "%s has no record of %s %s and no %s operation is configured",
			 c.system_name, c.entity_name, c.canonical,
			 strcmp(op, "create") == 0 ? "create or upsert" : "upsert");
		goto out;
	}
	const apply_target_op_t *top = &te->ops[kind];
	f->op = kind;
	buf_append_str(&url, t->cfg->base_url);
	ts = template_render_url(top->url, resolve, &c, &url, err, errlen);
	if (ts != TEMPLATE_OK) {
		if (ts == TEMPLATE_MISSING_REF && c.missing[0])
			snprintf(err, errlen, "missing reference: %s", c.missing);
		goto out;
	}
	if (kind != APPLY_OP_DELETE) {
		size_t nb = 0;
		bf = xcalloc(te->nfields + te->nextras + 1, sizeof *bf);
		for (size_t i = 0; i < te->nfields; i++) {
			const char *fname = rules_field_name(d->rules, c.entity, te->fields[i].field);
			if (!json_object_get(c.fields, fname))
				continue;  /* only what the change wrote */
			bf[nb++] = (template_body_field_t){te->fields[i].json_name, fname,
							   te->fields[i].type, false};
		}
		for (size_t i = 0; i < te->nextras; i++)
			bf[nb++] = (template_body_field_t){te->extras[i].json_name, te->extras[i].expr,
							   te->extras[i].type, true};
		ts = template_render_body(bf, nb, resolve, &c, &body, err, errlen);
		if (ts == TEMPLATE_MISSING_ID) {
			/* An extra naming an id not known yet (e.g. the ERP's CRM id
			 * before the CRM record exists): send without it. */
			for (size_t i = 0; i < nb; i++)
				if (strncmp(bf[i].expr, "id:", 3) == 0)
					bf[i].omit_null = true;
			ts = TEMPLATE_OK;
			nb = 0;
			for (size_t i = 0; i < te->nfields; i++) {
				const char *fname = rules_field_name(d->rules, c.entity, te->fields[i].field);
				if (json_object_get(c.fields, fname))
					bf[nb++] = (template_body_field_t){te->fields[i].json_name, fname,
									   te->fields[i].type, false};
			}
			ts = template_render_body(bf, nb, resolve, &c, &body, err, errlen);
		}
		if (ts != TEMPLATE_OK) {
			if (ts == TEMPLATE_MISSING_REF && c.missing[0])
				snprintf(err, errlen, "missing reference: %s", c.missing);
			goto out;
		}
		f->body = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	}
	f->method = xstrdup(top->method);
	f->url = buf_steal(&url);
	ts = TEMPLATE_OK;
out:
	free(bf);
	json_decref(body);
	buf_free(&url);
	render_ctx_free(&c);
	return ts;
}

/* ---- recording outcomes (inside the poll's transaction) ---- */

static char *
request_text(const flight_t *f)
{
	json_t *j = json_loads(f->row.request, 0, NULL);
	if (!j)
		j = json_object();
	json_t *h = json_object();
	if (f->method)
		json_object_set_new(h, "method", json_string(f->method));
	if (f->url)
		json_object_set_new(h, "url", json_string(f->url));
	if (f->body)
		json_object_set_new(h, "body", json_string(f->body));
	json_object_set_new(j, "http", h);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return s;
}

static apply_status_t
dead_letter(apply_deliver_t *d, tstate_t *t, flight_t *f, const char *reason,
	    const char *response, char *err, size_t errlen)
{
	char *req = request_text(f);
	apply_dlq_entry_t e = {0};
	e.time_ms = wall_ms();
	e.entity = f->row.entity;
	e.entity_id = f->row.entity_id;
	e.target = f->row.target;
	e.reason = (char *) reason;
	e.request = req;
	e.response = (char *) response;
	e.idem_key = f->row.idem_key;
	e.source = f->row.source;
	e.pos = f->row.pos;
	apply_status_t st = apply_state_dlq_add(d->state, &e, NULL, err, errlen);
	if (st == APPLY_OK)
		st = apply_state_outbox_done(d->state, f->row_id, err, errlen);
	free(req);
	if (st != APPLY_OK)
		return st;
	t->dead_letters++;
	if (t->m_dlq_gauge)
		metrics_set(t->m_dlq_gauge, (double) t->dead_letters);
	if (d->f_dlq_total) {
		char cls[32];
		snprintf(cls, sizeof cls, "%.31s", reason);
		char *sp = strpbrk(cls, " :(");
		if (sp)
			*sp = '\0';
		const char *lv[] = {t->cfg->name, cls};
		metrics_add(metrics_series(d->f_dlq_total, lv), 1);
	}
	json_t *intent = json_loads(f->row.request, 0, NULL);
	const char *corr = intent ? json_string_value(json_object_get(intent, "corr")) : NULL;
	const char *kv[] = {"corr", corr ? corr : "-", "target", t->cfg->name, NULL};
	log_warn_kv("apply", kv, "dead letter for %s %s: %s", f->row.entity, f->row.entity_id, reason);
	json_decref(intent);
	snprintf(t->last_error, sizeof t->last_error, "%s", reason);
	return APPLY_OK;
}

/* Resolve a JSON pointer ("/id", "/ticket/id") to text. */
static char *
json_pointer_text(const char *body, const char *ptr)
{
	json_t *root = json_loads(body, JSON_DECODE_ANY, NULL), *cur = root;
	char *out = NULL;
	const char *p = ptr;
	while (cur && *p == '/') {
		const char *end = strchr(p + 1, '/');
		size_t n = end ? (size_t) (end - p - 1) : strlen(p + 1);
		char *tok = xstrndup(p + 1, n);
		if (json_is_object(cur))
			cur = json_object_get(cur, tok);
		else if (json_is_array(cur))
			cur = json_array_get(cur, (size_t) strtoul(tok, NULL, 10));
		else
			cur = NULL;
		free(tok);
		p = end ? end : p + 1 + n;
	}
	if (cur && json_is_string(cur))
		out = xstrdup(json_string_value(cur));
	else if (cur && json_is_integer(cur))
		out = xasprintf("%lld", (long long) json_integer_value(cur));
	json_decref(root);
	return out;
}

/* The id a create/upsert returned goes into the crosswalk and the golden record. */
static apply_status_t
record_id(apply_deliver_t *d, tstate_t *t, flight_t *f, char *err, size_t errlen)
{
	const apply_target_entity_t *te =
		apply_targets_entity(d->targets, t->cfg->system,
				     rules_entity_find(d->rules, f->row.entity));
	if (!te || (f->op != APPLY_OP_CREATE && f->op != APPLY_OP_UPSERT))
		return APPLY_OK;
	char *id = NULL;
	if (te->id_json && f->resp.body[0])
		id = json_pointer_text(f->resp.body, te->id_json);
	if (!id && te->id_location && f->resp.location) {
		const char *slash = strrchr(f->resp.location, '/');
		id = xstrdup(slash ? slash + 1 : f->resp.location);
	}
	if (!id)
		return APPLY_OK;  /* an upsert that answered 204: the key is already known */
	/* Known already (the golden record's keys and the crosswalk are written
	 * together): nothing to record. */
	char *have = NULL, kerr[256];
	if (apply_state_xwalk_key(d->state, f->row.entity, f->row.entity_id, t->cfg->name, &have,
				  kerr, sizeof kerr) == APPLY_OK && strcmp(have, id) == 0) {
		free(have);
		free(id);
		return APPLY_OK;
	}
	free(have);
	apply_status_t st = apply_state_xwalk_put(d->state, f->row.entity, f->row.entity_id,
						  t->cfg->name, id, err, errlen);
	if (st == APPLY_CONFLICT) {
		char reason[600];
		snprintf(reason, sizeof reason, "%s", err);
		free(id);
		return dead_letter(d, t, f, reason, f->resp.body, err, errlen) == APPLY_OK
			       ? APPLY_CONFLICT : APPLY_RETRIABLE;
	}
	if (st != APPLY_OK) {
		free(id);
		return st;
	}
	char *gjson = NULL;
	if (apply_state_golden_get(d->state, f->row.entity, f->row.entity_id, &gjson, err,
				   errlen) == APPLY_OK) {
		rules_golden_t *g = rules_golden_from_json(d->rules, gjson, err, errlen);
		if (g) {
			rules_golden_set_key(g, t->cfg->system, id);
			buf_t out = BUF_INIT;
			rules_golden_to_json(d->rules, g, &out);
			st = apply_state_golden_put(d->state, f->row.entity, f->row.entity_id,
						    out.data, wall_ms(), err, errlen);
			buf_free(&out);
			rules_golden_free(g);
		}
		free(gjson);
	}
	free(id);
	return st;
}

static apply_status_t
record_answer(apply_deliver_t *d, flight_t *f, char *err, size_t errlen)
{
	tstate_t *t = f->t;
	int64_t now = mono_ms();
	retry_response_t rr = {f->resp.transport_error, f->resp.status, f->resp.retry_after,
			       f->resp.body};
	retry_decision_t dec = retry_classify(&d->policy, &rr, time(NULL));
	if (d->f_writes) {
		char code[16];
		snprintf(code, sizeof code, "%ld", f->resp.transport_error ? 0L : f->resp.status);
		const char *lv[] = {t->cfg->name, f->row.entity, code};
		metrics_add(metrics_series(d->f_writes, lv), 1);
		const char *tl[] = {t->cfg->name};
		metrics_observe(metrics_series(d->f_latency, tl), f->resp.total_ms / 1000.0);
	}
	if (dec.breaker_failure)
		retry_breaker_failure(&t->breaker, now);
	else if (dec.cls == RETRY_DONE)
		retry_breaker_success(&t->breaker, now);
	else
		retry_breaker_neutral(&t->breaker);
	apply_status_t st = APPLY_OK;
	switch (dec.cls) {
	case RETRY_DONE:
		st = record_id(d, t, f, err, errlen);
		if (st == APPLY_CONFLICT)
			return APPLY_OK;  /* dead-lettered (and removed) by record_id */
		if (st == APPLY_OK)
			st = apply_state_outbox_done(d->state, f->row_id, err, errlen);
		if (st == APPLY_OK)
			st = apply_state_checkpoint_set(d->state, t->cfg->name, &f->row.pos, err, errlen);
		t->delivered++;
		if (retry_breaker_get_state(&t->breaker) == BREAKER_CLOSED &&
		    wall_ms() >= t->paused_until_ms)
			set_state(t, 0);
		return st;
	case RETRY_DEAD_LETTER: {
		char reason[300];
		snprintf(reason, sizeof reason, "%s", dec.reason);
		return dead_letter(d, t, f, reason, f->resp.body, err, errlen);
	}
	default:
		break;
	}
	/* Retriable: reschedule; pauses stop the whole target. */
	int64_t delay = dec.delay_ms;
	if (dec.cls == RETRY_BACKOFF)
		delay = retry_backoff_ms(&d->policy, (unsigned) f->row.attempts, &d->rng);
	else {
		retry_breaker_pause(&t->breaker, now, delay);
		t->paused_until_ms = wall_ms() + delay;
		set_state(t, dec.cls == RETRY_THROTTLED ? 1 : 2);
	}
	if (retry_breaker_get_state(&t->breaker) == BREAKER_OPEN && dec.cls == RETRY_BACKOFF)
		set_state(t, 3);
	char msg[300];
	if (f->resp.transport_error)
		snprintf(msg, sizeof msg, "%s: %s", dec.reason, f->resp.error);
	else
		snprintf(msg, sizeof msg, "%s", dec.reason);
	snprintf(t->last_error, sizeof t->last_error, "%s", msg);
	t->retries++;
	if (t->m_retries)
		metrics_add(t->m_retries, 1);
	json_t *intent = json_loads(f->row.request, 0, NULL);
	const char *corr = intent ? json_string_value(json_object_get(intent, "corr")) : NULL;
	const char *kv[] = {"corr", corr ? corr : "-", "target", t->cfg->name, NULL};
	log_info_kv("apply", kv, "retry %s %s in %lld ms: %s", f->row.entity, f->row.entity_id,
		    (long long) delay, msg);
	json_decref(intent);
	f->resched = true;
	f->next_attempts = f->row.attempts + 1;
	f->next_ms = wall_ms() + delay;
	free(f->next_error);
	f->next_error = xstrdup(msg);
	return apply_state_outbox_reschedule(d->state, f->row_id, f->next_attempts, f->next_ms,
					     msg, err, errlen);
}

/* ---- submitting ---- */

static void
on_done(void *ud, const http_response_t *resp)
{
	apply_deliver_t *d = ud;
	flight_t *f = resp->tag;
	if (d->answered++ == 0)
		d->first_answer_ms = mono_ms();
	f->done = true;
	f->resp = *resp;
	f->resp.body = xstrdup(resp->body);
	f->resp.retry_after = resp->retry_after ? xstrdup(resp->retry_after) : NULL;
	f->resp.location = resp->location ? xstrdup(resp->location) : NULL;
}

static void
copy_row(apply_outbox_row_t *dst, const apply_outbox_row_t *src)
{
	*dst = *src;
	dst->entity = xstrdup(src->entity);
	dst->entity_id = xstrdup(src->entity_id);
	dst->target = xstrdup(src->target);
	dst->idem_key = xstrdup(src->idem_key);
	dst->request = xstrdup(src->request);
	dst->source = src->source ? xstrdup(src->source) : NULL;
	dst->last_error = NULL;
}

/* Queue a change to the in-memory queue for when the transaction commits. */
static void
mut_add(apply_deliver_t *d, apply_qrow_t *qr, bool remove, int attempts, int64_t next_ms,
	const char *last_error)
{
	if (d->nmuts == d->capmuts) {
		d->capmuts = d->capmuts ? d->capmuts * 2 : 16;
		d->muts = xrealloc(d->muts, d->capmuts * sizeof *d->muts);
	}
	d->muts[d->nmuts++] = (qmut_t){qr, remove, attempts, next_ms,
				       last_error ? xstrdup(last_error) : NULL};
}

/* The transaction committed (apply) or rolled back (forget). */
static void
muts_finish(apply_deliver_t *d, bool apply)
{
	for (size_t i = 0; i < d->nmuts; i++) {
		qmut_t *m = &d->muts[i];
		if (apply && m->remove) {
			apply_queue_remove(d->queue, m->qrow);
		} else if (apply) {
			m->qrow->row.attempts = m->attempts;
			m->qrow->row.next_attempt_ms = m->next_ms;
			free(m->qrow->row.last_error);
			m->qrow->row.last_error = m->last_error;
			m->last_error = NULL;
		}
		free(m->last_error);
	}
	d->nmuts = 0;
}

/* The step's transaction, begun on the first write it needs. */
static apply_status_t
step_txn(apply_deliver_t *d, char *err, size_t errlen)
{
	if (d->txn)
		return APPLY_OK;
	apply_status_t st = apply_state_begin_lazy(d->state, err, errlen);
	d->txn = st == APPLY_OK;
	return st;
}

/*
 * Start one ready row whose target has room (checked by the caller), or
 * reschedule or dead-letter it in the open transaction (the queue follows
 * on commit).  A started row is held off the ready list.
 */
static apply_status_t
start_row(apply_deliver_t *d, apply_qrow_t *qr, int64_t now_wall, int64_t now_mono,
	  char *err, size_t errlen)
{
	const apply_outbox_row_t *row = &qr->row;
	tstate_t *t = find_target(d, row->target);
	flight_t *f = xcalloc(1, sizeof *f);
	apply_status_t st = APPLY_OK;
	copy_row(&f->row, row);
	f->row_id = row->id;
	f->t = t;
	f->qrow = qr;
	if (!t) {
		/* Queued for a target no longer configured: keep it, visibly. */
		if ((st = step_txn(d, err, errlen)) != APPLY_OK)
			goto drop;
		st = apply_state_outbox_reschedule(d->state, row->id, row->attempts,
						   now_wall + 60000, "target not configured", err,
						   errlen);
		if (st == APPLY_OK)
			mut_add(d, qr, false, row->attempts, now_wall + 60000, "target not configured");
		goto drop;
	}
	json_t *intent = json_loads(row->request, 0, NULL);
	char rerr[512];
	template_status_t ts = intent ? render(d, t, f, intent, rerr, sizeof rerr) : TEMPLATE_INVALID;
	const char *corr = intent ? json_string_value(json_object_get(intent, "corr")) : NULL;
	char corr_buf[160];
	snprintf(corr_buf, sizeof corr_buf, "%s", corr ? corr : "-");
	json_decref(intent);
	if (!intent)
		snprintf(rerr, sizeof rerr, "queued request is not JSON");
	if (ts != TEMPLATE_OK) {
		retry_breaker_neutral(&t->breaker);
		if ((st = step_txn(d, err, errlen)) != APPLY_OK)
			goto drop;
		if (ts == TEMPLATE_MISSING_REF &&
		    now_wall - row->created_ms < d->opts.reference_timeout_ms) {
			/* Wait, in order: this row stays its entity's oldest. */
			st = apply_state_outbox_reschedule(d->state, row->id, row->attempts,
							   now_wall + REF_WAIT_MS, rerr, err, errlen);
			if (st == APPLY_OK)
				mut_add(d, qr, false, row->attempts, now_wall + REF_WAIT_MS, rerr);
			goto drop;
		}
		st = dead_letter(d, t, f, rerr, NULL, err, errlen);
		if (st == APPLY_OK)
			mut_add(d, qr, true, 0, 0, NULL);
		goto drop;
	}
	retry_bucket_take(&t->bucket, now_mono);
	const char *hdrs[32];
	size_t nh = 0;
	for (char **h = t->cfg->headers; h && *h && nh < 31; h++)
		hdrs[nh++] = *h;
	hdrs[nh] = NULL;
	http_request_t req = {
		.method = f->method,
		.url = f->url,
		.headers = hdrs,
		.body = f->body,
		.idem_key = row->idem_key,
		.correlation_id = corr_buf,
		.tag = f,
	};
	if (http_target_submit(t->http, &req, rerr, sizeof rerr) != APPLY_OK) {
		retry_breaker_neutral(&t->breaker);
		if ((st = step_txn(d, err, errlen)) != APPLY_OK)
			goto drop;
		st = dead_letter(d, t, f, rerr, NULL, err, errlen);
		if (st == APPLY_OK)
			mut_add(d, qr, true, 0, 0, NULL);
		goto drop;
	}
	const char *kv[] = {"corr", corr_buf, "target", t->cfg->name, NULL};
	if (log_debug_enabled("apply"))
		log_emit(LOG_LEVEL_DEBUG, "apply", kv, "%s %s", f->method, f->url);
	f->started_mono = now_mono;
	f->next = d->flights;
	d->flights = f;
	d->in_flight++;
	apply_queue_hold(d->queue, qr);
	return APPLY_OK;
drop:
	flight_free(f);
	return st;
}

/*
 * Record every answered flight in one transaction; then the queue follows:
 * a delivered or dead-lettered row leaves it, a failed attempt waits for its
 * next time.  When the transaction fails nothing is recorded and the rows
 * are sent again under the same keys (the targets replay them).
 */
static apply_status_t
record_answers(apply_deliver_t *d, size_t *done, char *err, size_t errlen)
{
	apply_status_t st = apply_state_begin_lazy(d->state, err, errlen);
	if (st == APPLY_OK) {
		for (flight_t *f = d->flights; f && st == APPLY_OK; f = f->next)
			if (f->done)
				st = record_answer(d, f, err, errlen);
		/* Lazy: a power loss may forget these answers (and only these, with
		 * what followed them), and their rows are then sent again under
		 * their keys, as after a kill -9 between an answer and its record. */
		if (st == APPLY_OK)
			st = apply_state_commit(d->state, err, errlen);
		else
			apply_state_rollback(d->state);
	}
	if (st != APPLY_OK)
		log_warn("apply", "could not record %u answers: %s", d->answered, err);
	for (flight_t **pp = &d->flights; *pp;) {
		flight_t *f = *pp;
		if (!f->done) {
			pp = &f->next;
			continue;
		}
		if (st != APPLY_OK) {
			apply_queue_release(d->queue, f->qrow);
		} else if (f->resched) {
			apply_qrow_t *qr = f->qrow;
			qr->row.attempts = f->next_attempts;
			qr->row.next_attempt_ms = f->next_ms;
			free(qr->row.last_error);
			qr->row.last_error = f->next_error;
			f->next_error = NULL;
			apply_queue_release(d->queue, qr);
		} else {
			apply_queue_remove(d->queue, f->qrow);
			(*done)++;
		}
		*pp = f->next;
		d->in_flight--;
		flight_free(f);
	}
	d->answered = 0;
	return st;
}

/* Does any flight still wait for its answer? */
static bool
waiting_answers(const apply_deliver_t *d)
{
	return d->in_flight > d->answered;
}

/* Read the rows queued since the last read into the queue. */
static apply_status_t
load_new_rows(apply_deliver_t *d, char *err, size_t errlen)
{
	while (apply_queue_len(d->queue) < QUEUE_MAX) {
		apply_outbox_row_t *rows = NULL;
		size_t n = 0;
		apply_status_t st = apply_state_outbox_after(d->state, apply_queue_last_id(d->queue),
							     LOAD_BATCH, &rows, &n, err, errlen);
		if (st != APPLY_OK)
			return st;
		for (size_t i = 0; i < n; i++)
			apply_queue_push(d->queue, &rows[i]);
		apply_state_outbox_rows_free(rows, n);  /* emptied by the pushes */
		if (n < LOAD_BATCH)
			break;
	}
	return APPLY_OK;
}

/*
 * One round: take in newly queued rows, start the ready rows the targets
 * have room for, poll, and record the answers in one transaction once
 * enough have arrived (group commit; the HTTP slots are free as soon as the
 * answer is in, so new requests do not wait for the commit).
 */
apply_status_t
apply_deliver_step(apply_deliver_t *d, int timeout_ms, size_t *finished, char *err, size_t errlen)
{
	size_t done = 0;
	apply_status_t st = APPLY_OK;
	int64_t now_wall = wall_ms(), now_mono = mono_ms();
	if (finished)
		*finished = 0;
	if ((st = load_new_rows(d, err, errlen)) != APPLY_OK)
		return st;
	/* Targets that can take a request now; the walk ends when none can. */
	bool room[64] = {0};
	size_t nroom = 0;
	for (size_t k = 0; k < d->nts && k < 64; k++) {
		tstate_t *t = &d->ts[k];
		room[k] = t->paused_until_ms <= now_wall && http_target_has_slot(t->http) &&
			  retry_bucket_wait_ms(&t->bucket, now_mono) == 0;
		nroom += room[k];
	}
	for (apply_qrow_t *qr = apply_queue_first(d->queue), *nx; qr && nroom; qr = nx) {
		nx = apply_queue_next(qr);
		if (qr->row.next_attempt_ms > now_wall)
			continue;
		tstate_t *t = find_target(d, qr->row.target);
		size_t k = t ? (size_t) (t - d->ts) : 0;
		if (t && (k >= 64 || !room[k]))
			continue;
		if (t && !retry_breaker_allow(&t->breaker, now_mono)) {
			set_state(t, 3);
			room[k] = false;
			nroom--;
			continue;
		}
		if ((st = start_row(d, qr, now_wall, now_mono, err, errlen)) != APPLY_OK)
			goto out;
		if (t && (!http_target_has_slot(t->http) ||
			  retry_bucket_wait_ms(&t->bucket, now_mono) > 0)) {
			room[k] = false;
			nroom--;
		}
	}
	if (d->txn) {
		d->txn = false;
		st = apply_state_commit(d->state, err, errlen);
		muts_finish(d, st == APPLY_OK);
		if (st != APPLY_OK)
			goto out;
	}
	int wait = waiting_answers(d) ? timeout_ms : 0;
	if (d->answered && wait > RECORD_WAIT_MS)
		wait = RECORD_WAIT_MS;
	http_client_poll(d->http, wait, on_done, d);
	if (!d->answered)
		goto out;
	if (d->answered < RECORD_BATCH && waiting_answers(d) &&
	    mono_ms() - d->first_answer_ms < RECORD_WAIT_MS)
		goto out;  /* more answers are coming; record them together */
	st = record_answers(d, &done, err, errlen);
out:
	if (d->txn) {
		d->txn = false;
		apply_state_rollback(d->state);
		muts_finish(d, false);
	}
	if (finished)
		*finished = done;
	return st;
}

void
apply_deliver_status(const apply_deliver_t *d, json_t *targets)
{
	for (size_t i = 0; i < d->nts; i++) {
		const tstate_t *t = &d->ts[i];
		json_t *o = json_pack("{s:s,s:s,s:i,s:I,s:I,s:I}", "name", t->cfg->name, "state",
				      t->state, "in_flight", (int) http_target_in_flight(t->http),
				      "dead_letters", (json_int_t) t->dead_letters, "delivered",
				      (json_int_t) t->delivered, "retries", (json_int_t) t->retries);
		json_object_set_new(o, "last_error",
				    t->last_error[0] ? json_string(t->last_error) : json_null());
		json_array_append_new(targets, o);
	}
}
