/*
 * rules_validate.c — semantic checks of a parsed rules file.
 *
 * Name resolution and type checks of transforms happen while parsing; what
 * needs the whole file is here: every field has an owner in every state,
 * conditions neither overlap nor leave gaps, no target receives a field it
 * always owns, and owners can actually deliver the fields they own.
 */
#include <stdio.h>
#include <string.h>

#include "rules_internal.h"

#define verr(r, d, line, col, hint, ...) \
	rules_diag_add(d, (r)->file, line, col, RULES_SEV_ERROR, hint, __VA_ARGS__)
#define vwarn(r, d, line, col, hint, ...) \
	rules_diag_add(d, (r)->file, line, col, RULES_SEV_WARNING, hint, __VA_ARGS__)

static bool first_sharing(const struct rentity *e, const struct rfield *f);

static bool
cond_has(const struct rcond *c, const char *v)
{
	if (v == NULL)
		return c->match_null;
	for (size_t i = 0; i < c->nvalues; i++)
		if (strcmp(c->values[i], v) == 0)
			return true;
	return false;
}

/* The first value both conditions accept ("" = null), or NULL. */
static const char *
cond_overlap(const struct rcond *a, const struct rcond *b)
{
	if (a->match_null && b->match_null)
		return "null";
	for (size_t i = 0; i < a->nvalues; i++)
		if (cond_has(b, a->values[i]))
			return a->values[i];
	return NULL;
}

static void
check_conditions(const rules_t *r, const struct rentity *e, const struct rfield *f,
		 rules_diags_t *d)
{
	const struct rowner *os = f->owners;
	/* Wildcard entries are shared by many fields: report them once, on the first. */
	if (f->nowners && os[0].wildcard && !first_sharing(e, f))
		return;
	for (size_t i = 0; i < f->nowners; i++) {
		if (os[i].nconds == 0 && i + 1 < f->nowners) {
			const struct rowner *n = &os[i + 1];
			verr(r, d, n->rule.line, n->rule.col,
			     "move the entry without when: to the end of the list",
			     "unreachable ownership entry: the entry at line %d has no condition and always applies",
			     os[i].rule.line);
		}
		for (size_t j = 0; j < i; j++) {
			if (os[i].nconds != 1 || os[j].nconds != 1 ||
			    os[i].conds[0].field != os[j].conds[0].field)
				continue;
			const char *v = cond_overlap(&os[j].conds[0], &os[i].conds[0]);
			if (v) {
				char hint[256];
				snprintf(hint, sizeof hint, "each value may select one owner; remove \"%s\" from one of them", v);
				verr(r, d, os[i].conds[0].pos.line, os[i].conds[0].pos.col, hint,
				     "overlapping conditions: %s = \"%s\" is already matched by the entry at line %d",
				     e->fields[os[i].conds[0].field].name, v, os[j].rule.line);
			}
		}
	}
	if (f->nowners == 0 || os[f->nowners - 1].nconds == 0)
		return;
	/*
	 * The last entry is conditional: complete only when every entry tests
	 * the same enumerated field and together they cover all its values and
	 * null.
	 */
	int cf = os[0].nconds == 1 ? os[0].conds[0].field : -1;
	bool same = cf >= 0;
	for (size_t i = 0; i < f->nowners && same; i++)
		same = os[i].nconds == 1 && os[i].conds[0].field == cf;
	const struct rowner *last = &os[f->nowners - 1];
	char hint[512];
	snprintf(hint, sizeof hint, "add a last entry without when: as the default owner, e.g. - owner: %s",
		 r->systems[last->system]);
	if (!same || e->fields[cf].nvalues == 0) {
		verr(r, d, last->rule.line, last->rule.col, hint,
		     "incomplete conditions: field %s.%s has no owner when no condition holds",
		     e->name, f->name);
		return;
	}
	const struct rfield *condf = &e->fields[cf];
	char missing[256] = "";
	size_t used = 0;
	for (size_t v = 0; v <= condf->nvalues; v++) {
		const char *val = v < condf->nvalues ? condf->values[v] : NULL;
		bool covered = false;
		for (size_t i = 0; i < f->nowners && !covered; i++)
			covered = cond_has(&os[i].conds[0], val);
		if (!covered && used < sizeof missing - 1)
			used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%s",
						 used ? ", " : "", val ? val : "null");
	}
	if (used)
		verr(r, d, last->rule.line, last->rule.col, hint,
		     "incomplete conditions: field %s.%s has no owner when %s is %s", e->name, f->name,
		     condf->name, missing);
}

static const struct rsource *
source_for(const rules_t *r, int system, int entity)
{
	int i = r->source_of[system * (int)r->nentities + entity];
	return i < 0 ? NULL : &r->sources[i];
}

static bool
source_feeds(const struct rsource *s, int field)
{
	for (size_t i = 0; i < s->ncols; i++)
		if (s->cols[i].field == field)
			return true;
	return false;
}

/* Is f the first field using its (wildcard) owner list? */
static bool
first_sharing(const struct rentity *e, const struct rfield *f)
{
	for (const struct rfield *g = e->fields; g < f; g++)
		if (g->owners == f->owners)
			return false;
	return true;
}

void
rules_validate(const rules_t *r, rules_diags_t *d)
{
	for (size_t ei = 0; ei < r->nentities; ei++) {
		const struct rentity *e = &r->entities[ei];
		if (!e->has_ownership && e->nfields) {
			char hint[256];
			snprintf(hint, sizeof hint, "add ownership: { %s: { \"*\": <system> } }", e->name);
			verr(r, d, e->pos.line, e->pos.col, hint, "entity %s has no ownership rules", e->name);
			continue;
		}
		for (size_t fi = 0; fi < e->nfields; fi++) {
			const struct rfield *f = &e->fields[fi];
			if (f->nowners == 0) {
				char hint[256];
				snprintf(hint, sizeof hint,
					 "add \"%s: <system>\" or a \"*\" entry under ownership.%s", f->name, e->name);
				verr(r, d, f->pos.line, f->pos.col, hint, "field %s.%s has no owner", e->name, f->name);
				continue;
			}
			check_conditions(r, e, f, d);
			for (size_t s = 0; s < r->nsystems; s++) {
				if (!rules_mask_has(f->target_mask, (int)s))
					continue;
				if (f->nowners == 1 && f->owners[0].nconds == 0 && f->owners[0].system == (int)s) {
					const rules_rule_t *t = f->target_rule[s];
					verr(r, d, t->line, t->col,
					     "remove the field from the target: a field is never written back to its owner",
					     "target %s receives %s.%s, which it owns", r->systems[s], e->name, f->name);
				}
			}
			/* Owners that can never deliver the field. */
			for (size_t i = 0; i < f->nowners; i++) {
				const struct rowner *o = &f->owners[i];
				const struct rsource *src = source_for(r, o->system, (int)ei);
				if (src == NULL) {
					if (!o->wildcard || first_sharing(e, f))
						vwarn(r, d, o->rule.line, o->rule.col,
						      "add a sources: entry for this system and entity",
						      "%s owns %s.%s but no source maps a table of %s to %s",
						      r->systems[o->system], e->name, f->name, r->systems[o->system], e->name);
				} else if (!source_feeds(src, (int)fi)) {
					vwarn(r, d, o->rule.line, o->rule.col,
					      "map a column to the field in that source, or give the field another owner",
					      "%s owns %s.%s but its mapping of %s does not feed it",
					      r->systems[o->system], e->name, f->name, src->table);
				}
			}
		}
		for (size_t s = 0; s < r->nsystems; s++)
			if (rules_mask_has(e->create_mask, (int)s) && !source_for(r, (int)s, (int)ei))
				vwarn(r, d, e->create_rule.line, e->create_rule.col,
				      "add a sources: entry for this system and entity",
				      "%s may create %s but no source maps a table of %s to it", r->systems[s],
				      e->name, r->systems[s]);
	}
	for (size_t i = 0; i < r->nsources; i++) {
		const struct rsource *s = &r->sources[i];
		for (size_t k = 0; k < s->nkey; k++)
			if (s->key[k][0] == '\0')
				verr(r, d, s->pos.line, s->pos.col, NULL, "empty key column name");
	}
}
