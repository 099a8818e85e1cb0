/*
 * test_rules_property.c — the rules engine in a simulated estate.
 *
 * Each seed builds a world of 3–5 systems holding copies of a few entity
 * instances, random rules that pass rules check (single, conditional and
 * fallback owners, random targets and write modes), and random local edits
 * arriving in random interleavings with Steward's writes.  Every write a
 * system receives comes back as a captured change, as it does in
 * production.  Asserted per seed:
 *   - every change ends in exactly one of applied / echo / conflict /
 *     unauthorized, and an echo produces no writes;
 *   - no ping-pong: the world goes quiet, propagated writes are bounded by
 *     accepted owner changes and repairs by conflicts;
 *   - convergence: every system holds the golden value of every field it
 *     receives (overwrite mode) unless it owns the field;
 *   - idempotence: replaying any prefix of the processed changes changes
 *     nothing and writes nothing.
 * STEWARD_TEST_SCALE=quick runs fewer seeds (the sanitizer pass);
 * STEWARD_RULES_SEED=n runs one seed.  A failure prints its seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "rules.h"

#define MAX_SYS 5
#define MAX_FIELDS 6
#define NITEMS 3
#define MAX_EVENTS 4096

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	/* splitmix64: deterministic per seed, good enough to explore */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int
rn(int n)
{
	return (int)(rnd() % (uint64_t)n);
}

static uint64_t cur_seed;

#define CHECK(cond, ...)                                                                    \
	do {                                                                                \
		if (!(cond)) {                                                              \
			char msg_[512];                                                     \
			snprintf(msg_, sizeof msg_, __VA_ARGS__);                           \
			fail_msg("seed %llu: %s (reproduce: STEWARD_RULES_SEED=%llu)",        \
				 (unsigned long long)cur_seed, msg_, (unsigned long long)cur_seed); \
		}                                                                           \
	} while (0)

/* A captured change as the world produced it; replayable. */
struct event {
	int system, item;
	bool del, insert;
	uint64_t pos;
	int nf;
	int fields[MAX_FIELDS];
	char *before[MAX_FIELDS], *after[MAX_FIELDS];
	bool before_null[MAX_FIELDS], after_null[MAX_FIELDS];
};

struct write_msg {
	int item, field;
	char *value;
	bool fill;
};

struct sysstate {
	char *val[NITEMS][MAX_FIELDS]; /* NULL = null */
	struct event *outq[MAX_EVENTS];
	size_t out_head, out_tail;
	struct write_msg inq[MAX_EVENTS];
	size_t in_head, in_tail;
	uint64_t pos;
};

struct world {
	int nsys, nf;
	rules_t *r;
	int entity;
	struct sysstate sys[MAX_SYS];
	rules_golden_t *golden[NITEMS];
	struct event *log[MAX_EVENTS];
	size_t nlog;
	struct event *all[MAX_EVENTS * 2];
	size_t nall;
	size_t accepted, conflicts, propagated, repairs;
	size_t outcomes[5];
	bool receives[MAX_SYS][MAX_FIELDS]; /* target in overwrite mode */
};

static const char *const state_values[] = {"x", "y", "z"};

/* ---- random rules -------------------------------------------------------- */

static void
random_rules(struct world *w, buf_t *y)
{
	int n = w->nsys, nf = w->nf;
	buf_append_str(y, "systems: [");
	for (int s = 0; s < n; s++)
		buf_printf(y, "%ss%d", s ? ", " : "", s);
	buf_append_str(y, "]\nentities:\n  item:\n    fields:\n      state: { type: string, values: [x, y, z] }\n");
	for (int f = 1; f < nf; f++)
		buf_printf(y, "      f%d: string\n", f);
	buf_printf(y, "    create: s%d\n    delete: s%d\n    unauthorized: %s\nsources:\n", rn(n), rn(n),
		   rn(2) ? "ignore" : "dead_letter");
	for (int s = 0; s < n; s++) {
		buf_printf(y, "  - { system: s%d, table: db.items, entity: item, key: id, fields: { state: state", s);
		for (int f = 1; f < nf; f++)
			buf_printf(y, ", f%d: f%d", f, f);
		buf_append_str(y, " } }\n");
	}
	/* Ownership: who always owns what (for targets), chosen per field. */
	int always[MAX_FIELDS];
	buf_printf(y, "ownership:\n  item:\n");
	for (int f = 0; f < nf; f++) {
		const char *name = f == 0 ? "state" : NULL;
		char fname[8];
		snprintf(fname, sizeof fname, "f%d", f % MAX_FIELDS);
		if (name == NULL)
			name = fname;
		int kind = f == 0 ? rn(2) * 2 : rn(3); /* state: single or fallback */
		int a = rn(n), b = (a + 1 + rn(n - 1)) % n;
		always[f] = -1;
		if (kind == 0) {
			buf_printf(y, "    %s: s%d\n", name, a);
			always[f] = a;
		} else if (kind == 2) {
			buf_printf(y, "    %s: { owner: s%d, fallback: s%d }\n", name, a, b);
			always[f] = a;
		} else {
			/* owner a while state is in a random subset, b otherwise */
			buf_printf(y, "    %s:\n      - { owner: s%d, when: { state: [", name, a);
			int first = 1;
			for (int v = 0; v < 3; v++)
				if (rn(2) || (first && v == 2)) {
					buf_printf(y, "%s%s", first ? "" : ", ", state_values[v]);
					first = 0;
				}
			buf_printf(y, "] } }\n      - s%d\n", b);
		}
	}
	buf_append_str(y, "targets:\n");
	for (int s = 0; s < n; s++) {
		buf_t t = BUF_INIT;
		for (int f = 0; f < nf; f++) {
			if (always[f] == s || rn(4) == 0)
				continue;
			char fb[8];
			bool overwrite = rn(10) != 0;
			w->receives[s][f] = overwrite;
			buf_printf(&t, "%s %s: %s", t.len ? "," : "", f == 0 ? "state" : (snprintf(fb, sizeof fb, "f%d", f % MAX_FIELDS), fb),
				   overwrite ? "overwrite" : "fill_if_empty");
		}
		if (t.len)
			buf_printf(y, "  - { system: s%d, entity: item, fields: {%s } }\n", s, t.data);
		buf_free(&t);
	}
}

/* ---- world ------------------------------------------------------------------- */

static const char *
field_name(int f, char *buf)
{
	if (f == 0)
		strcpy(buf, "state");
	else
		snprintf(buf, 8, "f%d", f % 100);
	return buf;
}

static void
capture(struct world *w, int s, struct event *e)
{
	struct sysstate *ss = &w->sys[s];
	e->system = s;
	e->pos = ++ss->pos;
	CHECK(ss->out_tail < MAX_EVENTS, "capture queue overflow: ping-pong?");
	ss->outq[ss->out_tail++] = e;
	CHECK(w->nall < MAX_EVENTS * 2, "too many events: ping-pong?");
	w->all[w->nall++] = e;
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Change a system's field values and capture the change (if anything changed). */
static void
local_update(struct world *w, int s, int item, int nf, const int *fields, char **vals)
{
	struct event *e = calloc(1, sizeof(*e));
	e->item = item;
	for (int i = 0; i < nf; i++) {
		int f = fields[i];
		char **cur = &w->sys[s].val[item][f];
		bool same = (*cur == NULL && vals[i] == NULL) || (*cur && vals[i] && strcmp(*cur, vals[i]) == 0);
		if (same)
			continue;
		e->fields[e->nf] = f;
		e->before[e->nf] = dup_or_null(*cur);
		e->before_null[e->nf] = *cur == NULL;
		e->after[e->nf] = dup_or_null(vals[i]);
		e->after_null[e->nf] = vals[i] == NULL;
		e->nf++;
		free(*cur);
		*cur = dup_or_null(vals[i]);
	}
	if (e->nf == 0) {
		free(e);
		return;
	}
	capture(w, s, e);
}

static void
to_change(const struct world *w, const struct event *e, Steward__Change *c, Steward__Value *vals,
	  Steward__Value **after, Steward__Value **before, uint8_t *pos, char names[][8])
{
	Steward__Change ci = STEWARD__CHANGE__INIT;
	Steward__Value vi = STEWARD__VALUE__INIT;
	static char sysnames[MAX_SYS][4];
	static char keys[NITEMS][4];
	*c = ci;
	snprintf(sysnames[e->system], 4, "s%d", e->system);
	snprintf(keys[e->item], 4, "k%d", e->item);
	c->source = sysnames[e->system];
	c->schema = "db";
	c->table = "items";
	c->has_op = true;
	c->op = e->del ? STEWARD__OP__OP_DELETE : e->insert ? STEWARD__OP__OP_INSERT : STEWARD__OP__OP_UPDATE;
	for (int i = 0; i < 8; i++)
		pos[i] = (uint8_t)(e->pos >> (56 - 8 * i));
	c->has_position = true;
	c->position.data = pos;
	c->position.len = 8;
	c->has_commit_ts_us = true;
	c->commit_ts_us = (int64_t)e->pos;
	size_t nv = 0;
	c->after = after;
	c->before = before;
	for (int img = 0; img < 2; img++) {
		Steward__Value *v = &vals[nv++];
		*v = vi;
		v->name = "id";
		v->text = keys[e->item];
		if (img == 0)
			after[c->n_after++] = v;
		else
			before[c->n_before++] = v;
	}
	for (int i = 0; i < e->nf; i++) {
		field_name(e->fields[i], names[i]);
		Steward__Value *a = &vals[nv++], *b = &vals[nv++];
		*a = vi;
		*b = vi;
		a->name = b->name = names[i];
		a->has_is_null = b->has_is_null = true;
		a->is_null = e->after_null[i];
		a->text = e->after[i];
		b->is_null = e->before_null[i];
		b->text = e->before[i];
		after[c->n_after++] = a;
		before[c->n_before++] = b;
	}
	(void)w;
}


/* Steward processes one captured change; returns the number of writes. */
static size_t
process(struct world *w, const struct event *e, rules_mapped_t *m, rules_decision_t *d,
	rules_golden_t *g, bool enqueue)
{
	Steward__Change c;
	Steward__Value vals[2 + 2 * MAX_FIELDS];
	Steward__Value *after[1 + MAX_FIELDS], *before[1 + MAX_FIELDS];
	uint8_t pos[8];
	char names[MAX_FIELDS][8];
	char err[256];
	to_change(w, e, &c, vals, after, before, pos, names);
	rules_map_status_t st = rules_map(w->r, &c, m, err, sizeof err);
	CHECK(st == RULES_MAP_OK, "change did not map: %s", err);
	rules_resolve(w->r, g, m, d);
	CHECK(d->outcome <= RULES_OUTCOME_UNAUTHORIZED_DELETE, "outcome out of range");
	if (d->outcome == RULES_OUTCOME_ECHO)
		CHECK(d->nwrites == 0 && d->ntargets == 0, "an echo produced %zu writes", d->nwrites);
	if (d->outcome == RULES_OUTCOME_APPLIED && !d->creates && !d->deletes)
		CHECK(d->naccepted > 0, "applied without an accepted field");
	if (d->outcome == RULES_OUTCOME_CONFLICT)
		CHECK(d->naccepted == 0 && d->nconflicts > 0, "conflict outcome with accepted fields");
	if (enqueue) {
		w->outcomes[d->outcome]++;
		w->accepted += d->naccepted;
		w->conflicts += d->nconflicts;
		for (size_t i = 0; i < d->nwrites; i++) {
			const rules_write_t *wr = &d->writes[i];
			CHECK(wr->system != e->system || wr->kind == RULES_WRITE_REPAIR,
			      "a propagated write went back to the system it came from");
			for (size_t k = 0; k < d->nfields; k++)
				if (d->fields[k].field == wr->field && wr->kind == RULES_WRITE_PROPAGATE)
					CHECK(d->fields[k].owner != wr->system, "a field was written back to its owner");
			if (wr->kind == RULES_WRITE_REPAIR)
				w->repairs++;
			else
				w->propagated++;
			struct sysstate *ts = &w->sys[wr->system];
			CHECK(ts->in_tail < MAX_EVENTS, "write queue overflow: ping-pong?");
			struct write_msg *msg = &ts->inq[ts->in_tail++];
			msg->item = g == w->golden[e->item] ? e->item : -1;
			msg->field = wr->field;
			msg->value = dup_or_null(wr->value);
			msg->fill = wr->mode == RULES_WRITE_FILL_IF_EMPTY;
		}
	}
	size_t nw = d->nwrites;
	rules_golden_apply(w->r, g, m, d);
	return nw;
}

static void
random_value(int f, int s, int *counter, char *buf, char **out)
{
	if (f == 0) {
		int v = rn(4);
		*out = v == 3 ? NULL : strcpy(buf, state_values[v]);
		return;
	}
	if (rn(10) == 0) {
		*out = NULL;
		return;
	}
	sprintf(buf, "s%d_%d", s, ++*counter);
	*out = buf;
}

static void
free_event(struct event *e)
{
	for (int i = 0; i < e->nf; i++) {
		free(e->before[i]);
		free(e->after[i]);
	}
	free(e);
}

static void
run_seed(uint64_t seed)
{
	struct world *w = calloc(1, sizeof(*w));
	cur_seed = seed;
	rng_state = seed * 7919 + 1;
	w->nsys = 3 + rn(3);
	w->nf = 2 + rn(MAX_FIELDS - 1);
	buf_t y = BUF_INIT;
	random_rules(w, &y);
	bool trace = getenv("STEWARD_RULES_TRACE") != NULL;
	if (trace)
		fprintf(stderr, "%s", y.data);
	rules_diags_t diags = RULES_DIAGS_INIT;
	rules_status_t st = rules_load_string(y.data, y.len, "random.yaml", &w->r, &diags);
	if (st != RULES_OK) {
		buf_t b = BUF_INIT;
		rules_diags_format(&diags, &b);
		fprintf(stderr, "%s\n%s", y.data, b.data ? b.data : "");
		buf_free(&b);
	}
	CHECK(st == RULES_OK, "generated rules do not pass rules check");
	rules_diags_free(&diags);
	w->entity = rules_entity_find(w->r, "item");
	rules_mapped_t *m = rules_mapped_new();
	rules_decision_t *d = rules_decision_new();

	/* Start in sync: every system holds the golden values. */
	for (int i = 0; i < NITEMS; i++) {
		rules_golden_t *g = w->golden[i] = rules_golden_new(w->r, w->entity);
		g->exists = true;
		char key[8];
		snprintf(key, sizeof key, "k%d", i);
		for (int s = 0; s < w->nsys; s++)
			rules_golden_set_key(g, s, key);
		for (int f = 0; f < w->nf; f++) {
			char v[32];
			if (f == 0)
				strcpy(v, state_values[rn(3)]);
			else
				sprintf(v, "init_%d_%d", i, f);
			g->fields[f].value = strdup(v);
			g->fields[f].owner = 0;
			for (int s = 0; s < w->nsys; s++)
				w->sys[s].val[i][f] = strdup(v);
		}
	}

	int edits = 20 + rn(30), counter = 0, steps = 0;
	int unauth_expected = 0;
	while (1) {
		int busy_out = 0, busy_in = 0;
		for (int s = 0; s < w->nsys; s++) {
			busy_out += w->sys[s].out_head < w->sys[s].out_tail;
			busy_in += w->sys[s].in_head < w->sys[s].in_tail;
		}
		if (edits == 0 && !busy_out && !busy_in)
			break;
		CHECK(++steps < 100000, "the world never went quiet: ping-pong");
		int what = rn(10);
		if (what < 3 && edits > 0) {
			edits--;
			int s = rn(w->nsys), item = rn(NITEMS);
			if (rn(25) == 0) {
				/* a delete or a create by some system: only rights holders get through */
				struct event *e = calloc(1, sizeof(*e));
				e->item = item;
				e->del = rn(2);
				e->insert = !e->del;
				e->system = s;
				e->pos = ++w->sys[s].pos;
				rules_golden_t *g = e->del ? w->golden[item] : rules_golden_new(w->r, w->entity);
				if (e->del) {
					/* Check on a copy so the world keeps its entities. */
					buf_t js = BUF_INIT;
					char err[128];
					rules_golden_to_json(w->r, g, &js);
					g = rules_golden_from_json(w->r, js.data, err, sizeof err);
					buf_free(&js);
				}
				process(w, e, m, d, g, false);
				rules_outcome_t o = d->outcome;
				if (o == RULES_OUTCOME_UNAUTHORIZED_CREATE || o == RULES_OUTCOME_UNAUTHORIZED_DELETE) {
					unauth_expected++;
					w->outcomes[o]++;
					CHECK(d->nwrites == 0, "unauthorized change produced writes");
				} else {
					CHECK(o == RULES_OUTCOME_APPLIED, "create/delete by a rights holder not applied");
				}
				rules_golden_free(g);
				free_event(e);
				continue;
			}
			int fields[2], nf = 1 + rn(2);
			char bufs[2][32];
			char *vals[2];
			fields[0] = rn(w->nf);
			fields[1] = (fields[0] + 1) % w->nf;
			if (nf == 2 && fields[1] == fields[0])
				nf = 1;
			for (int i = 0; i < nf; i++)
				random_value(fields[i], s, &counter, bufs[i], &vals[i]);
			local_update(w, s, item, nf, fields, vals);
		} else if (what < 6) {
			int s = rn(w->nsys);
			struct sysstate *ss = &w->sys[s];
			if (ss->in_head == ss->in_tail)
				continue;
			struct write_msg *msg = &ss->inq[ss->in_head++];
			char *cur = ss->val[msg->item][msg->field];
			if (!msg->fill || cur == NULL || cur[0] == '\0')
				local_update(w, s, msg->item, 1, &msg->field, &msg->value);
			free(msg->value);
		} else {
			int s = rn(w->nsys);
			struct sysstate *ss = &w->sys[s];
			if (ss->out_head == ss->out_tail)
				continue;
			struct event *e = ss->outq[ss->out_head++];
			process(w, e, m, d, w->golden[e->item], true);
			if (trace) {
				buf_t tb = BUF_INIT;
				rules_explain(w->r, w->golden[e->item], m, d, false, &tb);
				fprintf(stderr, "--- s%d item k%d pos %llu\n%s", e->system, e->item,
					(unsigned long long)e->pos, tb.data);
				buf_free(&tb);
			}
			CHECK(w->nlog < MAX_EVENTS, "log overflow");
			w->log[w->nlog++] = e;
		}
	}

	/* Every processed change ended in exactly one outcome. */
	size_t total = 0;
	for (int o = 0; o < 5; o++)
		total += w->outcomes[o];
	CHECK(total == w->nlog + (size_t)unauth_expected, "outcomes %zu != changes %zu", total,
	      w->nlog + (size_t)unauth_expected);
	/* No ping-pong: writes bounded by owner changes, repairs by conflicts. */
	CHECK(w->propagated <= w->accepted * (size_t)(w->nsys - 1), "%zu writes for %zu accepted changes",
	      w->propagated, w->accepted);
	CHECK(w->repairs <= w->conflicts, "%zu repairs for %zu conflicts", w->repairs, w->conflicts);

	/* Convergence: systems that receive a field (overwrite) hold the golden value unless they own it. */
	for (int i = 0; i < NITEMS; i++) {
		rules_golden_t *g = w->golden[i];
		for (int f = 0; f < w->nf; f++) {
			for (int s = 0; s < w->nsys; s++) {
				if (!w->receives[s][f])
					continue;
				/* Ask the engine who owns f in the current state: a probe change from s. */
				struct event probe = {0};
				probe.system = s;
				probe.item = i;
				probe.nf = 1;
				probe.fields[0] = f;
				probe.pos = w->sys[s].pos + 1000;
				probe.after[0] = "\x02probe";
				probe.before[0] = "\x01";
				Steward__Change c;
				Steward__Value vals[2 + 2 * MAX_FIELDS];
				Steward__Value *after[1 + MAX_FIELDS], *before[1 + MAX_FIELDS];
				uint8_t pos[8];
				char names[MAX_FIELDS][8], err[128];
				to_change(w, &probe, &c, vals, after, before, pos, names);
				CHECK(rules_map(w->r, &c, m, err, sizeof err) == RULES_MAP_OK, "probe did not map");
				rules_resolve(w->r, g, m, d);
				CHECK(d->nfields == 1, "probe not decided");
				if (d->fields[0].owner == s)
					continue;
				const char *have = w->sys[s].val[i][f], *want = g->fields[f].value;
				bool same = (have == NULL && want == NULL) || (have && want && strcmp(have, want) == 0);
				char fb[8];
				CHECK(same, "item k%d field %s: system s%d holds %s, golden is %s", i, field_name(f, fb), s,
				      have ? have : "null", want ? want : "null");
			}
		}
	}

	/* Idempotence: replaying any prefix changes nothing and writes nothing. */
	buf_t before = BUF_INIT, after = BUF_INIT;
	for (int i = 0; i < NITEMS; i++)
		rules_golden_to_json(w->r, w->golden[i], &before);
	size_t prefix = w->nlog ? (size_t)rn((int)w->nlog + 1) : 0;
	for (size_t k = 0; k < prefix; k++) {
		const struct event *e = w->log[k];
		size_t nw = process(w, e, m, d, w->golden[e->item], false);
		CHECK(nw == 0 && d->outcome == RULES_OUTCOME_ECHO, "replaying change %zu wrote %zu", k, nw);
	}
	for (int i = 0; i < NITEMS; i++)
		rules_golden_to_json(w->r, w->golden[i], &after);
	CHECK(strcmp(before.data, after.data) == 0, "replaying a prefix changed the golden records");
	buf_free(&before);
	buf_free(&after);

	for (size_t k = 0; k < w->nall; k++)
		free_event(w->all[k]);
	for (int s = 0; s < w->nsys; s++)
		for (int i = 0; i < NITEMS; i++)
			for (int f = 0; f < MAX_FIELDS; f++)
				free(w->sys[s].val[i][f]);
	for (int i = 0; i < NITEMS; i++)
		rules_golden_free(w->golden[i]);
	rules_decision_free(d);
	rules_mapped_free(m);
	rules_free(w->r);
	buf_free(&y);
	free(w);
}

static void
random_estates_converge_without_ping_pong(void **state)
{
	const char *one = getenv("STEWARD_RULES_SEED");
	if (one) {
		run_seed(strtoull(one, NULL, 10));
		return;
	}
	const char *scale = getenv("STEWARD_TEST_SCALE");
	int seeds = scale && strcmp(scale, "quick") == 0 ? 150 : 1000;
	for (int s = 1; s <= seeds; s++)
		run_seed((uint64_t)s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_estates_converge_without_ping_pong),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
