/*
 * rules_resolve.c — the decision engine: golden record + mapped change ->
 * accepted / echo / conflict per field, unauthorized create/delete, and
 * the per-target write sets.
 *
 * The hot path (rules_resolve) walks precompiled arrays only: a field's
 * owner is the first entry of a short precedence array whose conditions
 * hold, targets are bit masks, and the decision's arrays are reused, so a
 * steady-state call never allocates.
 */
#include <stdlib.h>
#include <string.h>

#include "rules_internal.h"
#include "xalloc.h"

rules_decision_t *
rules_decision_new(void)
{
	return xcalloc(1, sizeof(rules_decision_t));
}

void
rules_decision_free(rules_decision_t *d)
{
	if (d == NULL)
		return;
	free(d->fields);
	free(d->writes);
	free(d->targets);
	free(d);
}

static const char *const outcome_names[] = {
	[RULES_OUTCOME_APPLIED] = "applied",
	[RULES_OUTCOME_ECHO] = "echo",
	[RULES_OUTCOME_CONFLICT] = "conflict",
	[RULES_OUTCOME_UNAUTHORIZED_CREATE] = "unauthorized_create",
	[RULES_OUTCOME_UNAUTHORIZED_DELETE] = "unauthorized_delete",
};

const char *
rules_outcome_name(rules_outcome_t o)
{
	return (size_t)o < 5 ? outcome_names[o] : "?";
}

const char *
rules_verdict_name(rules_verdict_t v)
{
	static const char *const n[] = {"accepted", "echo", "conflict"};
	return (size_t)v < 3 ? n[v] : "?";
}

static void
ensure(rules_decision_t *d, size_t nfields, size_t nsystems)
{
	if (d->cap_fields < nfields) {
		d->cap_fields = nfields;
		d->fields = xrealloc(d->fields, nfields * sizeof(*d->fields));
	}
	size_t nw = nfields * nsystems;
	if (d->cap_writes < nw) {
		d->cap_writes = nw;
		d->writes = xrealloc(d->writes, nw * sizeof(*d->writes));
	}
	if (d->cap_targets < nsystems) {
		d->cap_targets = nsystems;
		d->targets = xrealloc(d->targets, nsystems * sizeof(*d->targets));
	}
}

struct state {
	const rules_golden_t *g;
	const rules_mapped_t *m;
	bool creating;
};

/* Conditions look at the golden state; for a record being created, at the incoming one. */
static const char *
state_value(const void *ctx, int field, bool *known)
{
	const struct state *s = ctx;
	*known = true;
	if (s->creating)
		return s->m->present[field] ? s->m->values[field] : NULL;
	return s->g->fields[field].value;
}

static bool
same_value(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return a == b || strcmp(a, b) == 0;
}

static void
decide_fields(const rules_t *r, const struct rentity *e, const rules_golden_t *g,
	      const rules_mapped_t *m, bool creating, rules_decision_t *d)
{
	struct state st = {g, m, creating};
	int S = m->system;
	for (size_t f = 0; f < e->nfields; f++) {
		if (!m->present[f])
			continue;
		const struct rfield *fd = &e->fields[f];
		/* Most fields have one unconditional owner: skip the condition walk. */
		const struct rowner *o = fd->nowners == 1 && fd->owners[0].nconds == 0
						 ? &fd->owners[0]
						 : rules_owner_for(fd, state_value, &st);
		rules_field_decision_t *out = &d->fields[d->nfields++];
		const rules_golden_field_t *gf = &g->fields[f];
		const char *v = m->values[f];
		out->field = (int)f;
		out->old_value = gf->value;
		out->new_value = v;
		out->via_fallback = false;
		out->owner = o ? o->system : -1;
		out->rule = o ? &o->rule : &r->lifecycle_rule;
		if (same_value(gf->value, v)) {
			out->verdict = RULES_ECHO;
		} else if (o && S == o->system) {
			/* The owner's null leaves a fallback's value standing. */
			if (v == NULL && o->fallback >= 0 && gf->owner == o->fallback)
				out->verdict = RULES_ECHO;
			else
				out->verdict = RULES_ACCEPTED;
		} else if (o && S == o->fallback && (gf->value == NULL || gf->owner == S)) {
			out->verdict = RULES_ACCEPTED;
			out->via_fallback = true;
		} else if (creating && gf->owner < 0) {
			/* The creator seeds fields nobody has set; owners take over from there. */
			out->verdict = RULES_ACCEPTED;
			out->rule = &e->create_rule;
		} else {
			out->verdict = RULES_CONFLICT;
		}
		if (out->verdict == RULES_ACCEPTED)
			d->naccepted++;
		else if (out->verdict == RULES_ECHO)
			d->nechoes++;
		else
			d->nconflicts++;
	}
}

static const rules_field_decision_t *
decision_for(const rules_decision_t *d, int field)
{
	/* fields are in field order: binary search keeps wide entities cheap */
	size_t lo = 0, hi = d->nfields;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (d->fields[mid].field < field)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->nfields && d->fields[lo].field == field ? &d->fields[lo] : NULL;
}

static void
push_write(rules_decision_t *d, int system, int field, const char *value, bool fill,
	   rules_write_kind_t kind, const rules_rule_t *rule)
{
	rules_write_t *w = &d->writes[d->nwrites++];
	w->system = system;
	w->field = field;
	w->value = value;
	w->mode = fill ? RULES_WRITE_FILL_IF_EMPTY : RULES_WRITE_OVERWRITE;
	w->kind = kind;
	w->rule = rule;
}

/* Systems that must hear about this change (before create/delete handling). */
static uint64_t
systems_touched(const struct rentity *e, const rules_golden_t *g, int S, const rules_decision_t *d)
{
	uint64_t mask = 0;
	for (size_t i = 0; i < d->nfields; i++) {
		const rules_field_decision_t *fd = &d->fields[i];
		const struct rfield *f = &e->fields[fd->field];
		if (fd->verdict == RULES_ACCEPTED) {
			uint64_t m = f->target_mask & ~(UINT64_C(1) << S);
			if (fd->owner >= 0)
				m &= ~(UINT64_C(1) << fd->owner);
			mask |= m;
		} else if (fd->verdict == RULES_CONFLICT && rules_mask_has(f->target_mask, S) &&
			   !rules_mask_has(f->fill_mask, S) && g->fields[fd->field].owner >= 0) {
			mask |= UINT64_C(1) << S;
		}
	}
	return mask;
}

/* A new record in system t gets every field it receives that has a value. */
static void
plan_create(const rules_t *r, const struct rentity *e, const rules_golden_t *g,
	    const rules_mapped_t *m, rules_decision_t *d, int t)
{
	uint64_t bit = UINT64_C(1) << t;
	for (size_t f = 0; f < e->nfields; f++) {
		const struct rfield *fd = &e->fields[f];
		if (!(fd->target_mask & bit))
			continue;
		const rules_field_decision_t *dec = m->present[f] ? decision_for(d, (int)f) : NULL;
		const char *v = dec && dec->verdict == RULES_ACCEPTED ? dec->new_value : g->fields[f].value;
		int owner;
		if (dec) {
			owner = dec->owner;
		} else {
			struct state st = {g, m, !(g->exists && !g->deleted)};
			const struct rowner *o = rules_owner_for(fd, state_value, &st);
			owner = o ? o->system : -1;
		}
		if (v != NULL && owner != t)
			push_write(d, t, (int)f, v, (fd->fill_mask & bit) != 0, RULES_WRITE_PROPAGATE,
				   fd->target_rule[t]);
	}
	(void)r;
}

static void
plan_writes(const rules_t *r, const struct rentity *e, const rules_golden_t *g,
	    const rules_mapped_t *m, rules_decision_t *d)
{
	int S = m->system;
	const int *target_of = &r->target_of[(size_t)m->entity];
	uint64_t touched = d->deletes ? ~UINT64_C(0) : systems_touched(e, g, S, d);
	for (size_t t = 0; t < r->nsystems; t++) {
		int ti = target_of[t * r->nentities];
		if (ti < 0)
			continue;
		const struct rtarget *tg = &r->targets[ti];
		const char *key = g->keys[t];
		if (key == NULL && (int)t == S)
			key = m->key; /* the source's first change: its key is not recorded yet */
		bool create = !d->deletes && key == NULL && (int)t != S && tg->create &&
			      d->outcome == RULES_OUTCOME_APPLIED;
		if (!create && !((touched >> t) & 1))
			continue;
		if (!create && key == NULL)
			continue; /* no record there and not allowed to create one */
		rules_target_set_t *ts = &d->targets[d->ntargets];
		ts->system = (int)t;
		ts->key = key;
		ts->first = d->nwrites;
		ts->count = 0;
		if (d->deletes) {
			if (tg->delete && (int)t != S) {
				ts->op = RULES_TARGET_DELETE;
				d->ntargets++;
			}
			continue;
		}
		if (create) {
			ts->op = RULES_TARGET_CREATE;
			plan_create(r, e, g, m, d, (int)t);
		} else {
			ts->op = RULES_TARGET_UPDATE;
			uint64_t bit = UINT64_C(1) << t;
			for (size_t i = 0; i < d->nfields; i++) {
				const rules_field_decision_t *dec = &d->fields[i];
				const struct rfield *fd = &e->fields[dec->field];
				if (!(fd->target_mask & bit))
					continue;
				bool fill = (fd->fill_mask & bit) != 0;
				if (dec->verdict == RULES_ACCEPTED && (int)t != S && (int)t != dec->owner)
					push_write(d, (int)t, dec->field, dec->new_value, fill, RULES_WRITE_PROPAGATE,
						   fd->target_rule[t]);
				else if (dec->verdict == RULES_CONFLICT && (int)t == S && !fill &&
					 g->fields[dec->field].owner >= 0)
					push_write(d, (int)t, dec->field, g->fields[dec->field].value, false,
						   RULES_WRITE_REPAIR, fd->target_rule[t]);
			}
		}
		ts->count = d->nwrites - ts->first;
		if (ts->count > 0 || create)
			d->ntargets++;
	}
}

void
rules_resolve(const rules_t *r, const rules_golden_t *g, const rules_mapped_t *m,
	      rules_decision_t *d)
{
	const struct rentity *e = &r->entities[m->entity];
	int S = m->system;
	ensure(d, e->nfields, r->nsystems);
	d->nfields = d->nwrites = d->ntargets = 0;
	d->naccepted = d->nechoes = d->nconflicts = 0;
	d->creates = d->deletes = false;
	d->rule = NULL;
	d->unauth_action = e->unauth;
	bool exists = g->exists && !g->deleted;

	if (m->position.len > 0 && g->seen[S].len > 0 && position_cmp(&m->position, &g->seen[S]) <= 0) {
		/* Already reflected: replaying it must change nothing. */
		d->outcome = RULES_OUTCOME_ECHO;
		d->rule = &r->replay_rule;
		return;
	}
	if (m->op == RULES_CHANGE_DELETE) {
		if (!exists) {
			d->outcome = RULES_OUTCOME_ECHO;
			d->rule = &e->delete_rule;
		} else if (!rules_mask_has(e->delete_mask, S)) {
			d->outcome = RULES_OUTCOME_UNAUTHORIZED_DELETE;
			d->rule = &e->delete_rule;
		} else {
			d->outcome = RULES_OUTCOME_APPLIED;
			d->rule = &e->delete_rule;
			d->deletes = true;
			plan_writes(r, e, g, m, d);
		}
		return;
	}
	if (!exists) {
		if (!rules_mask_has(e->create_mask, S)) {
			d->outcome = RULES_OUTCOME_UNAUTHORIZED_CREATE;
			d->rule = &e->create_rule;
			return;
		}
		d->creates = true;
		d->rule = &e->create_rule;
	}
	decide_fields(r, e, g, m, !exists, d);
	if (d->naccepted > 0 || d->creates)
		d->outcome = RULES_OUTCOME_APPLIED;
	else if (d->nconflicts > 0)
		d->outcome = RULES_OUTCOME_CONFLICT;
	else
		d->outcome = RULES_OUTCOME_ECHO;
	if (d->outcome != RULES_OUTCOME_ECHO)
		plan_writes(r, e, g, m, d);
}

void
rules_golden_apply(const rules_t *r, rules_golden_t *g, const rules_mapped_t *m,
		   const rules_decision_t *d)
{
	if (d->outcome == RULES_OUTCOME_UNAUTHORIZED_CREATE ||
	    d->outcome == RULES_OUTCOME_UNAUTHORIZED_DELETE || d->rule == &r->replay_rule)
		return;
	int S = m->system;
	/* Values first: the decision borrows old values from g. */
	for (size_t i = 0; i < d->nfields; i++) {
		const rules_field_decision_t *fd = &d->fields[i];
		if (fd->verdict != RULES_ACCEPTED)
			continue;
		rules_golden_field_t *gf = &g->fields[fd->field];
		char *nv = fd->new_value ? xstrdup(fd->new_value) : NULL;
		free(gf->value);
		gf->value = nv;
		gf->owner = S;
		gf->position = m->position;
		gf->commit_ts_us = m->commit_ts_us;
	}
	if (d->creates) {
		g->exists = true;
		g->deleted = false;
	}
	if (d->deletes)
		g->deleted = true;
	if (m->key && (g->keys[S] == NULL || strcmp(g->keys[S], m->key) != 0))
		rules_golden_set_key(g, S, m->key);
	for (size_t i = 0; i < m->nlinks; i++)
		if (g->keys[m->links[i].system] == NULL)
			rules_golden_set_key(g, m->links[i].system, m->links[i].key);
	if (m->position.len > 0)
		g->seen[S] = m->position;
}
