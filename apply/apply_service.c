/*
 * apply_service.c — the apply loop: read change logs from their durable
 * cursors, resolve ownership, store golden records, crosswalk, conflicts,
 * dead letters, outbox rows and cursors in one transaction per batch, then
 * let the outbox worker deliver; metrics and /status on the side.
 */
#include "apply_service.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "apply_deliver.h"
#include "apply_identity.h"
#include "apply_replay.h"
#include "apply_targets.h"
#include "apply_ui.h"
#include "clog.h"
#include "exitcodes.h"
#include "httpd.h"
#include "idem.h"
#include "log.h"
#include "metrics.h"
#include "record.h"
#include "rules.h"
#include "state.h"
#include "xalloc.h"

typedef struct log_in {
	char *dir;
	char *cursor_name;         /* "log:<absolute dir>" */
	char *source;              /* source name from the records (for labels) */
	clog_reader_t *reader;
	position_t cursor;         /* last applied (committed or in this batch) */
	position_t committed;
	position_t replay_from;    /* len 0: no replay */
	bool caught_up;
	const Steward__Change *held;  /* read ahead for a replay's merge; owned by reader */
	int64_t last_commit_us;
	metrics_series_t *m_lag, *m_batch;
} log_in_t;

struct apply_service {
	apply_service_config_t cfg;
	rules_t *rules;
	apply_targets_t *targets;
	apply_state_t *state;
	metrics_t *metrics;
	httpd_t *httpd;
	apply_ui_t *ui;                /* the operations page (GET /) */
	apply_deliver_t *deliver;
	log_in_t *logs;
	size_t nlogs, next_log;
	rules_mapped_t *mapped;
	rules_decision_t *decision;
	uint64_t warned_unconfigured;  /* bits: system*8+entity, best effort */
	bool replaying;                /* the change being processed is in --replay-from's range */
	apply_replay_t *replay;        /* golden records of the range (apply_replay.h) */
	metrics_family_t *f_changes, *f_decisions, *f_dlq_total, *f_lag, *f_batch;
	pthread_mutex_t status_lock;
	char *status_json;             /* last snapshot for GET /status */
	int64_t changes_total;
};

static int64_t
wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void
count_change(apply_service_t *s, const log_in_t *l, const char *entity, const char *outcome)
{
	s->changes_total++;
	if (!s->f_changes)
		return;
	const char *lv[] = {l->source ? l->source : "-", entity, outcome};
	metrics_add(metrics_series(s->f_changes, lv), 1);
	apply_ui_count_change(s->ui, l->source, entity, outcome);
}

/* ---- one change ---- */

static apply_status_t
dlq_change(apply_service_t *s, const log_in_t *l, const rules_mapped_t *m, const char *entity,
	   const char *entity_id, const char *reason, const Steward__Change *c, char *err,
	   size_t errlen)
{
	buf_t rec = BUF_INIT;
	record_to_json(c, &rec);
	apply_dlq_entry_t e = {0};
	e.time_ms = wall_ms();
	e.entity = (char *) entity;
	e.entity_id = (char *) (entity_id ? entity_id : (m && m->key ? m->key : ""));
	e.reason = (char *) reason;
	e.request = rec.data;
	e.source = l->cursor_name;
	if (m)
		e.pos = m->position;
	else
		record_position(c, &e.pos);
	apply_status_t st = apply_state_dlq_add(s->state, &e, NULL, err, errlen);
	buf_free(&rec);
	if (s->f_dlq_total) {
		char cls[32];
		snprintf(cls, sizeof cls, "%.31s", reason);
		char *sp = strpbrk(cls, " :(");
		if (sp)
			*sp = '\0';
		const char *lv[] = {"-", cls};
		metrics_add(metrics_series(s->f_dlq_total, lv), 1);
	}
	return st;
}

/* Queue one target set of decision d as an outbox row. */
static apply_status_t
queue_target(apply_service_t *s, const log_in_t *l, const rules_mapped_t *m,
	     const rules_decision_t *d, const rules_target_set_t *ts, const char *canonical,
	     const char *corr, char *err, size_t errlen)
{
	const rules_t *r = s->rules;
	const apply_target_entity_t *te = apply_targets_entity(s->targets, ts->system, m->entity);
	if (!te) {
		uint64_t bit = 1ull << ((unsigned) (ts->system * 8 + m->entity) % 64);
		if (!(s->warned_unconfigured & bit)) {
			s->warned_unconfigured |= bit;
			log_warn("apply", "rules send %s to %s but the targets file does not configure "
				 "it: those writes are counted, not sent",
				 rules_entity_name(r, m->entity), rules_system_name(r, ts->system));
		}
		count_change(s, l, rules_entity_name(r, m->entity), "unconfigured_target");
		return APPLY_OK;
	}
	const char *op = ts->op == RULES_TARGET_CREATE ? "create"
			 : ts->op == RULES_TARGET_DELETE ? "delete" : "update";
	json_t *fields = json_object();
	idem_field_t *ifs = xcalloc(ts->count + 1, sizeof *ifs);
	size_t nif = 0;
	for (size_t i = ts->first; i < ts->first + ts->count; i++) {
		const rules_write_t *w = &d->writes[i];
		/* fill_if_empty: only a create is known to find the field empty. */
		if (w->mode == RULES_WRITE_FILL_IF_EMPTY && ts->op != RULES_TARGET_CREATE)
			continue;
		if (!apply_target_entity_field(te, w->field))
			continue;
		const char *name = rules_field_name(r, m->entity, w->field);
		json_object_set_new(fields, name, w->value ? json_string(w->value) : json_null());
		ifs[nif++] = (idem_field_t){name, w->value};
	}
	apply_status_t st = APPLY_OK;
	if (nif == 0 && ts->op == RULES_TARGET_UPDATE)
		goto out;  /* nothing this target is configured to receive */
	char key[IDEM_KEY_LEN + 1];
	const char *sysname = rules_system_name(r, ts->system);
	const char *entity = rules_entity_name(r, m->entity);
	idem_key(entity, canonical, sysname, &m->position, ifs, nif, key);
	json_t *intent = json_pack("{s:i,s:s,s:s,s:s,s:s,s:O,s:s}", "v", 1, "op", op, "system",
				   sysname, "entity", entity, "id", canonical, "fields", fields,
				   "corr", corr);
	if (ts->count && d->writes[ts->first].rule)
		json_object_set_new(intent, "rule", json_string(d->writes[ts->first].rule->id));
	char *text = json_dumps(intent, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(intent);
	apply_outbox_row_t row = {0};
	row.entity = (char *) entity;
	row.entity_id = (char *) canonical;
	row.target = (char *) sysname;
	row.idem_key = key;
	row.request = text;
	row.pos = m->position;
	row.source = l->cursor_name;
	row.created_ms = wall_ms();
	st = apply_state_outbox_add(s->state, &row, NULL, NULL, err, errlen);
	free(text);
out:
	json_decref(fields);
	free(ifs);
	return st;
}

static apply_status_t
process_mapped(apply_service_t *s, log_in_t *l, const Steward__Change *c, const char *corr,
	       char *err, size_t errlen)
{
	const rules_t *r = s->rules;
	rules_mapped_t *m = s->mapped;
	rules_decision_t *d = s->decision;
	const char *entity = rules_entity_name(r, m->entity);
	char *canonical = NULL, *gjson = NULL;
	rules_golden_t *g = NULL;
	bool is_new = false;
	buf_t out = BUF_INIT;
	char ierr[512];
	const char *kv[] = {"corr", corr, "entity", entity, NULL};
	apply_status_t st = apply_identity_translate_refs(s->state, r, m, err, errlen);
	if (st != APPLY_OK)
		goto out;
	st = apply_identity_resolve(s->state, r, m, &canonical, &is_new, ierr, sizeof ierr);
	if (st == APPLY_CONFLICT) {
		log_warn_kv("apply", kv, "%s", ierr);
		count_change(s, l, entity, "ambiguous");
		st = s->replaying ? APPLY_OK  /* dead-lettered the first time */
				  : dlq_change(s, l, m, entity, NULL, ierr, c, err, errlen);
		goto out;
	}
	if (st != APPLY_OK) {
		snprintf(err, errlen, "%s", ierr);
		goto out;
	}
	st = apply_state_golden_get(s->state, entity, canonical, &gjson, err, errlen);
	if (st == APPLY_OK) {
		g = rules_golden_from_json(r, gjson, err, errlen);
		if (!g) {
			st = APPLY_PERMANENT;
			goto out;
		}
	} else if (st == APPLY_NOT_FOUND) {
		g = rules_golden_new(r, m->entity);
	} else {
		goto out;
	}
	st = APPLY_OK;
	/* A replay resolves against the record as it was before this change. */
	rules_golden_t *use = g;
	if (s->replaying) {
		if (!s->replay)
			s->replay = apply_replay_new();
		use = apply_replay_golden(s->replay, r, entity, canonical, m, g);
		g = NULL;
	}
	rules_resolve(r, use, m, d);
	const char *outcome = rules_outcome_name(d->outcome);
	count_change(s, l, entity, outcome);
	for (size_t i = 0; s->f_decisions && i < d->nfields; i++) {
		const rules_field_decision_t *fd = &d->fields[i];
		const char *lv[] = {entity, fd->rule ? fd->rule->id : "-", rules_verdict_name(fd->verdict)};
		metrics_add(metrics_series(s->f_decisions, lv), 1);
	}
	/* Conflicts into the conflict log, with the rule that refused them. */
	for (size_t i = 0; !s->replaying && i < d->nfields; i++) {
		const rules_field_decision_t *fd = &d->fields[i];
		if (fd->verdict != RULES_CONFLICT)
			continue;
		st = apply_state_conflict_add(s->state, wall_ms(), entity, canonical,
					      rules_field_name(r, m->entity, fd->field),
					      rules_system_name(r, m->system),
					      fd->rule ? fd->rule->id : "-", fd->new_value, err, errlen);
		if (st != APPLY_OK)
			goto out;
	}
	if (d->outcome == RULES_OUTCOME_UNAUTHORIZED_CREATE ||
	    d->outcome == RULES_OUTCOME_UNAUTHORIZED_DELETE) {
		if (d->unauth_action == RULES_UNAUTH_DEAD_LETTER && !s->replaying) {
			char reason[300];
			snprintf(reason, sizeof reason, "unauthorized %s: %s may not %s %s (rule %s)",
				 d->outcome == RULES_OUTCOME_UNAUTHORIZED_CREATE ? "create" : "delete",
				 rules_system_name(r, m->system),
				 d->outcome == RULES_OUTCOME_UNAUTHORIZED_CREATE ? "create" : "delete",
				 entity, d->rule ? d->rule->id : "-");
			log_info_kv("apply", kv, "%s", reason);
			st = dlq_change(s, l, m, entity, canonical, reason, c, err, errlen);
		}
		goto out;
	}
	/* Outbox rows first: the writes borrow values the golden update replaces. */
	for (size_t i = 0; i < d->ntargets; i++) {
		st = queue_target(s, l, m, d, &d->targets[i], canonical, corr, err, errlen);
		if (st != APPLY_OK)
			goto out;
	}
	if (s->replaying) {
		/* The stored record and crosswalk already reflect the change. */
		rules_golden_apply(r, use, m, d);
		goto out;
	}
	if (d->outcome == RULES_OUTCOME_APPLIED && log_min_level >= LOG_LEVEL_INFO)
		log_info_kv("apply", kv, "%s %s %s: %zu accepted, %zu conflicts, %zu targets",
			    rules_system_name(r, m->system), entity, canonical, d->naccepted,
			    d->nconflicts, d->ntargets);
	rules_golden_apply(r, g, m, d);
	rules_golden_to_json(r, g, &out);
	st = apply_state_golden_put(s->state, entity, canonical, out.data, wall_ms(), err, errlen);
	if (st != APPLY_OK)
		goto out;
	st = apply_identity_record(s->state, r, m, g, canonical, ierr, sizeof ierr);
	if (st == APPLY_CONFLICT) {
		log_warn_kv("apply", kv, "%s", ierr);
		st = dlq_change(s, l, m, entity, canonical, ierr, c, err, errlen);
	} else if (st != APPLY_OK) {
		snprintf(err, errlen, "%s", ierr);
	}
out:
	(void) is_new;
	buf_free(&out);
	rules_golden_free(g);
	free(gjson);
	free(canonical);
	return st;
}

static apply_status_t
process_change(apply_service_t *s, log_in_t *l, const Steward__Change *c, char *err,
	       size_t errlen)
{
	char merr[512], corr[160];
	snprintf(corr, sizeof corr, "%s@%s", c->source ? c->source : "-",
		 c->position_text ? c->position_text : "-");
	rules_map_status_t ms;
	for (ms = rules_map(s->rules, c, s->mapped, merr, sizeof merr); ms != RULES_MAP_SKIP;
	     ms = rules_map_next(s->rules, c, s->mapped, merr, sizeof merr)) {
		if (ms == RULES_MAP_ERROR) {
			const char *kv[] = {"corr", corr, NULL};
			log_warn_kv("apply", kv, "cannot map change of %s.%s: %s",
				    c->schema ? c->schema : "", c->table ? c->table : "", merr);
			count_change(s, l, "-", "unmapped");
			if (s->replaying)
				continue;  /* dead-lettered the first time */
			char reason[600];
			snprintf(reason, sizeof reason, "unmappable change: %s", merr);
			apply_status_t st = dlq_change(s, l, NULL, c->table ? c->table : "-", NULL,
						       reason, c, err, errlen);
			if (st != APPLY_OK)
				return st;
			continue;
		}
		apply_status_t st = process_mapped(s, l, c, corr, err, errlen);
		if (st != APPLY_OK)
			return st;
	}
	return APPLY_OK;
}

/* ---- ingest ---- */

static clog_status_t
log_next(log_in_t *l, const Steward__Change **c, char *err, size_t errlen)
{
	if (l->held) {
		*c = l->held;
		l->held = NULL;
		return CLOG_OK;
	}
	return clog_reader_next(l->reader, c, err, errlen);
}

/*
 * While a --replay-from range is being read, take the logs' records in
 * commit-time order (as they arrived the first time, near enough), so a
 * change is resolved after the same changes of other systems as then.
 * Read errors are left for log_next to report.
 */
static void
replay_pick(apply_service_t *s)
{
	size_t best = s->nlogs;
	int64_t best_ts = 0;
	for (size_t i = 0; i < s->nlogs; i++) {
		log_in_t *l = &s->logs[i];
		char e[256];
		if (!l->held && clog_reader_next(l->reader, &l->held, e, sizeof e) != CLOG_OK) {
			l->held = NULL;
			continue;
		}
		int64_t ts = l->held->has_commit_ts_us ? l->held->commit_ts_us : 0;
		if (best == s->nlogs || ts < best_ts) {
			best = i;
			best_ts = ts;
		}
	}
	if (best < s->nlogs)
		s->next_log = best;
}

apply_status_t
apply_service_ingest(apply_service_t *s, size_t *records, char *err, size_t errlen)
{
	size_t n = 0, *per_log = xcalloc(s->nlogs, sizeof *per_log);
	apply_status_t st = apply_state_begin(s->state, err, errlen);
	bool txn = st == APPLY_OK;
	*records = 0;
	if (!txn)
		goto out;
	size_t idle = 0;
	bool merge = false;
	for (size_t i = 0; i < s->nlogs; i++)
		merge |= s->logs[i].replay_from.len > 0;
	while (n < s->cfg.batch && idle < s->nlogs) {
		if (merge)
			replay_pick(s);
		log_in_t *l = &s->logs[s->next_log];
		const Steward__Change *c = NULL;
		char cerr[512];
		clog_status_t cs = log_next(l, &c, cerr, sizeof cerr);
		if (cs == CLOG_END) {
			l->caught_up = true;
			idle++;
			s->next_log = (s->next_log + 1) % s->nlogs;
			continue;
		}
		if (cs != CLOG_OK) {
			snprintf(err, errlen, "change log %s: %s", l->dir, cerr);
			st = APPLY_PERMANENT;
			goto out;
		}
		idle = 0;
		l->caught_up = false;
		position_t pos;
		if (!record_position(c, &pos))
			continue;
		if (!l->source && c->source)
			l->source = xstrdup(c->source);
		bool replaying = l->replay_from.len && position_cmp(&pos, &l->committed) <= 0;
		if (replaying && position_cmp(&pos, &l->replay_from) < 0)
			continue;  /* before the replay range */
		if (!replaying && position_cmp(&pos, &l->cursor) <= 0)
			continue;  /* applied already: deduplicate by position */
		s->replaying = replaying;
		if ((st = process_change(s, l, c, err, errlen)) != APPLY_OK)
			goto out;
		if (position_cmp(&pos, &l->cursor) > 0)
			l->cursor = pos;
		if (c->has_commit_ts_us)
			l->last_commit_us = c->commit_ts_us;
		n++;
		per_log[s->next_log]++;
		if (per_log[s->next_log] % 64 == 0)
			s->next_log = (s->next_log + 1) % s->nlogs;  /* fairness between logs */
	}
	for (size_t i = 0; i < s->nlogs; i++) {
		log_in_t *l = &s->logs[i];
		if (position_cmp(&l->cursor, &l->committed) == 0)
			continue;
		/* The cursor moves in the same transaction as everything the
		 * batch produced: kill -9 keeps both or neither. */
		if ((st = apply_state_cursor_set(s->state, l->cursor_name, &l->cursor, err,
						 errlen)) != APPLY_OK)
			goto out;
	}
	st = apply_state_commit(s->state, err, errlen);
	txn = false;
	if (st != APPLY_OK)
		goto out;
	for (size_t i = 0; i < s->nlogs; i++) {
		log_in_t *l = &s->logs[i];
		if (position_cmp(&l->committed, &l->cursor) < 0 && l->replay_from.len &&
		    position_cmp(&l->cursor, &l->committed) >= 0)
			l->replay_from.len = 0;  /* replay range passed */
		l->committed = l->cursor;
		if (per_log[i] && l->m_batch)
			metrics_observe(l->m_batch, (double) per_log[i]);
	}
	bool replay_left = false;
	for (size_t i = 0; i < s->nlogs; i++)
		replay_left |= s->logs[i].replay_from.len > 0;
	if (!replay_left && s->replay) {
		apply_replay_free(s->replay);  /* range done: release its records */
		s->replay = NULL;
	}
	*records = n;
out:
	if (txn || st != APPLY_OK) {
		apply_state_rollback(s->state);
		if (st != APPLY_OK) {
			/* Re-read the batch after a failure: rewind readers to the committed cursors. */
			apply_replay_free(s->replay);
			s->replay = NULL;
			for (size_t i = 0; i < s->nlogs; i++) {
				log_in_t *l = &s->logs[i];
				char rerr[256];
				clog_reader_close(l->reader);
				l->reader = NULL;
				l->held = NULL;
				l->cursor = l->committed;
				/* Within a replay range: read it again from its start. */
				if (clog_reader_open(l->dir, l->replay_from.len ? NULL : &l->committed,
						     &l->reader, rerr, sizeof rerr) != CLOG_OK)
					log_error("apply", "could not reopen change log %s: %s", l->dir, rerr);
			}
		}
	}
	free(per_log);
	return st;
}

/* ---- status ---- */

static void
update_status(apply_service_t *s)
{
	json_t *root = json_object(), *sources = json_array(), *targets = json_array();
	int64_t now_us = wall_ms() * 1000;
	for (size_t i = 0; i < s->nlogs; i++) {
		log_in_t *l = &s->logs[i];
		char hex[2 * POSITION_MAX + 1] = "";
		position_hex(&l->committed, hex, sizeof hex);
		double lag = l->caught_up || !l->last_commit_us ? 0.0
				: (double) (now_us - l->last_commit_us) / 1e6;
		if (lag < 0)
			lag = 0;
		if (l->m_lag)
			metrics_set(l->m_lag, lag);
		json_t *o = json_pack("{s:s,s:s,s:f,s:b}", "log", l->dir, "position", hex,
				      "lag_seconds", lag, "caught_up", l->caught_up);
		json_object_set_new(o, "source", l->source ? json_string(l->source) : json_null());
		json_array_append_new(sources, o);
	}
	if (s->deliver)
		apply_deliver_status(s->deliver, targets);
	int64_t pending = 0;
	char err[256];
	apply_state_outbox_count(s->state, NULL, &pending, err, sizeof err);
	json_object_set_new(root, "sources", sources);
	json_object_set_new(root, "targets", targets);
	json_object_set_new(root, "outbox_pending", json_integer(pending));
	json_object_set_new(root, "changes_total", json_integer(s->changes_total));
	json_object_set_new(root, "time_ms", json_integer(wall_ms()));
	char *text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	pthread_mutex_lock(&s->status_lock);
	free(s->status_json);
	s->status_json = text;
	pthread_mutex_unlock(&s->status_lock);
}

static int
http_handler(void *ctx, const httpd_request_t *req, httpd_response_t *resp)
{
	apply_service_t *s = ctx;
	if (strcmp(req->method, "GET") != 0 || strcmp(req->path, "/status") != 0) {
		pthread_mutex_lock(&s->status_lock);
		char *status = xstrdup(s->status_json ? s->status_json : "{}");
		pthread_mutex_unlock(&s->status_lock);
		int rc = apply_ui_handle(s->ui, req, status, resp);
		free(status);
		return rc;
	}
	pthread_mutex_lock(&s->status_lock);
	buf_append_str(&resp->body, s->status_json ? s->status_json : "{}");
	pthread_mutex_unlock(&s->status_lock);
	buf_append_char(&resp->body, '\n');
	resp->content_type = "application/json";
	return 0;
}

/* ---- open / close ---- */

apply_status_t
apply_service_open(const apply_service_config_t *cfg, apply_service_t **out, char *err,
		   size_t errlen)
{
	apply_service_t *s = xcalloc(1, sizeof *s);
	apply_status_t st = APPLY_PERMANENT;
	rules_diags_t diags = RULES_DIAGS_INIT;
	*out = NULL;
	s->cfg = *cfg;
	if (!s->cfg.batch)
		s->cfg.batch = 500;
	if (s->cfg.poll_ms <= 0)
		s->cfg.poll_ms = 100;
	if (s->cfg.reference_timeout_s <= 0)
		s->cfg.reference_timeout_s = 300;
	pthread_mutex_init(&s->status_lock, NULL);
	if (rules_load(cfg->rules_path, &s->rules, &diags) != RULES_OK) {
		buf_t b = BUF_INIT;
		rules_diags_format(&diags, &b);
		snprintf(err, errlen, "invalid rules file:\n%s", b.data ? b.data : cfg->rules_path);
		buf_free(&b);
		goto fail;
	}
	if ((st = apply_targets_load(cfg->targets_path, s->rules, &s->targets, err, errlen)) != APPLY_OK)
		goto fail;
	if ((st = apply_state_open(cfg->state_path, &s->state, err, errlen)) != APPLY_OK)
		goto fail;
	s->metrics = metrics_create();
	s->f_changes = metrics_family(s->metrics, "steward_apply_changes_total", METRICS_COUNTER,
				      "Changes processed by outcome", "source,entity,outcome", NULL, 0);
	s->f_decisions = metrics_family(s->metrics, "steward_apply_decisions_total", METRICS_COUNTER,
					"Field decisions per rule", "entity,rule,decision", NULL, 0);
	s->f_dlq_total = metrics_family(s->metrics, "steward_apply_dead_letters_total",
					METRICS_COUNTER, "Dead letters created", "target,reason",
					NULL, 0);
	s->f_lag = metrics_family(s->metrics, "steward_apply_lag_seconds", METRICS_GAUGE,
				  "Now minus the commit time of the last applied change", "source",
				  NULL, 0);
	s->f_batch = metrics_family(s->metrics, "steward_apply_batch_changes", METRICS_HISTOGRAM,
				    "Changes per state-store transaction", "source",
				    METRICS_SIZE_BUCKETS, METRICS_SIZE_NBUCKETS);
	s->nlogs = cfg->nlogs;
	s->logs = xcalloc(s->nlogs ? s->nlogs : 1, sizeof *s->logs);
	for (size_t i = 0; i < s->nlogs; i++) {
		log_in_t *l = &s->logs[i];
		char abs[PATH_MAX], cerr[512];
		l->dir = xstrdup(cfg->log_dirs[i]);
		l->cursor_name = xasprintf("log:%s", realpath(l->dir, abs) ? abs : l->dir);
		if ((st = apply_state_cursor_get(s->state, l->cursor_name, &l->committed, err,
						 errlen)) != APPLY_OK)
			goto fail;
		l->cursor = l->committed;
		const position_t *after = &l->committed;
		if (cfg->replay_from) {
			if (!position_from_hex(&l->replay_from, cfg->replay_from)) {
				snprintf(err, errlen, "invalid --replay-from \"%s\": expected a hex "
					 "position (pos_hex of steward log dump)", cfg->replay_from);
				st = APPLY_PERMANENT;
				goto fail;
			}
			if (position_cmp(&l->replay_from, &l->committed) <= 0)
				after = NULL;  /* read from the start, skip what precedes the range */
			else
				l->replay_from.len = 0;
		}
		if (clog_reader_open(l->dir, after, &l->reader, cerr, sizeof cerr) != CLOG_OK) {
			snprintf(err, errlen, "could not open change log %s: %s", l->dir, cerr);
			st = APPLY_RETRIABLE;
			goto fail;
		}
		const char *lv[] = {l->dir};
		l->m_lag = metrics_series(s->f_lag, lv);
		l->m_batch = metrics_series(s->f_batch, lv);
	}
	s->mapped = rules_mapped_new();
	s->decision = rules_decision_new();
	if (!cfg->no_deliver) {
		apply_deliver_opts_t dopts = {
			.reference_timeout_ms = (int64_t) s->cfg.reference_timeout_s * 1000,
			.concurrency = cfg->concurrency,
		};
		if ((st = apply_deliver_create(s->rules, s->targets, s->state, s->metrics, &dopts,
					       &s->deliver, err, errlen)) != APPLY_OK)
			goto fail;
	}
	update_status(s);
	if (cfg->metrics_listen) {
		s->ui = apply_ui_create(cfg->state_path, cfg->ui_token);
		s->httpd = httpd_start(cfg->metrics_listen, s->metrics, http_handler, s, err, errlen);
		if (!s->httpd) {
			st = APPLY_PERMANENT;
			goto fail;
		}
	}
	rules_diags_free(&diags);
	*out = s;
	return APPLY_OK;
fail:
	rules_diags_free(&diags);
	apply_service_close(s);
	return st;
}

void
apply_service_close(apply_service_t *s)
{
	if (!s)
		return;
	httpd_stop(s->httpd);
	apply_ui_destroy(s->ui);
	apply_deliver_destroy(s->deliver);
	for (size_t i = 0; i < s->nlogs; i++) {
		clog_reader_close(s->logs[i].reader);
		free(s->logs[i].dir);
		free(s->logs[i].cursor_name);
		free(s->logs[i].source);
	}
	free(s->logs);
	apply_replay_free(s->replay);
	rules_mapped_free(s->mapped);
	rules_decision_free(s->decision);
	apply_state_close(s->state);
	apply_targets_free(s->targets);
	rules_free(s->rules);
	metrics_destroy(s->metrics);
	pthread_mutex_destroy(&s->status_lock);
	free(s->status_json);
	free(s);
}

/* ---- the loop ---- */

int
apply_service_run(const apply_service_config_t *cfg)
{
	char err[1024];
	apply_service_t *s = NULL;
	apply_status_t st = apply_service_open(cfg, &s, err, sizeof err);
	if (st != APPLY_OK) {
		log_error("apply", "%s", err);
		return st == APPLY_PERMANENT ? STEWARD_EXIT_CONFIG : STEWARD_EXIT_IOERR;
	}
	log_info("apply", "applying %zu change log(s) with rules %s and targets %s", s->nlogs,
		 cfg->rules_path, cfg->targets_path);
	int rc = STEWARD_EXIT_OK;
	int64_t last_status = 0;
	int busy_failures = 0;
	int64_t pending = 0, next_count_ms = 0, next_ingest_ms = 0;
	while (!(cfg->stop && *cfg->stop)) {
		size_t n = 0, delivered = 0;
		int64_t now0 = wall_ms();
		/* Backpressure: let the outbox drain before taking more changes.
		 * The count scans the outbox: not on every round. */
		if (s->deliver && now0 >= next_count_ms) {
			pending = apply_deliver_pending(s->deliver);
			if (pending < 0)  /* more than the worker holds: count them */
				apply_state_outbox_count(s->state, NULL, &pending, err, sizeof err);
			next_count_ms = now0 + 100;
		}
		if (pending < 20000 && now0 >= next_ingest_ms) {
			st = apply_service_ingest(s, &n, err, sizeof err);
			/* Caught up while writes are in flight: look again soon, not
			 * on every delivery round (each look takes the write lock). */
			next_ingest_ms = n == 0 && s->deliver && apply_deliver_in_flight(s->deliver)
					 ? now0 + 50 : 0;
			if (st == APPLY_PERMANENT) {
				log_error("apply", "%s", err);
				rc = STEWARD_EXIT_DATAERR;
				break;
			}
			if (st != APPLY_OK) {
				log_warn("apply", "ingest failed, retrying: %s", err);
				if (++busy_failures > 100) {
					rc = STEWARD_EXIT_IOERR;
					break;
				}
				usleep(100000);
				continue;
			}
			busy_failures = 0;
		}
		if (s->deliver) {
			st = apply_deliver_step(s->deliver, n ? 0 : cfg->poll_ms > 0 ? cfg->poll_ms : 100,
						&delivered, err, sizeof err);
			if (st != APPLY_OK)
				log_warn("apply", "recording deliveries failed, retrying: %s", err);
		} else if (n == 0) {
			usleep((useconds_t) (cfg->poll_ms > 0 ? cfg->poll_ms : 100) * 1000);
		}
		int64_t now = wall_ms();
		if (now - last_status >= 500) {
			update_status(s);
			last_status = now;
		}
		if (cfg->once && n == 0 && !(s->deliver && apply_deliver_in_flight(s->deliver))) {
			bool caught_up = true;
			for (size_t i = 0; i < s->nlogs; i++)
				caught_up &= s->logs[i].caught_up;
			/* The worker's queue took in every row this loop queued (no
			 * ingest since its step); count only beyond its capacity. */
			int64_t left = s->deliver ? apply_deliver_pending(s->deliver) : 0;
			if (left < 0)
				apply_state_outbox_count(s->state, NULL, &left, err, sizeof err);
			if (caught_up && (!s->deliver || (left == 0 && !apply_deliver_in_flight(s->deliver))))
				break;
		}
	}
	update_status(s);
	log_info("apply", "stopped after %lld changes", (long long) s->changes_total);
	apply_service_close(s);
	return rc;
}
