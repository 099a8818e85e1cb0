/*
 * rules_parse.c — rules file YAML -> struct rules, names resolved.
 *
 * Uses libyaml's document API so every node keeps its line and column for
 * diagnostics.  Parsing never stops at the first problem: each section is
 * read as far as it makes sense and every problem is reported.  Semantic
 * checks that need the whole file (ownership coverage, conditions, targets)
 * live in rules_validate.c.
 */
#include "rules_parse.h"

/* ---- systems ----------------------------------------------------- */

static void
parse_systems(struct pctx *c, const yaml_node_t *n)
{
	rules_t *r = c->r;
	size_t cap = is_map(n) ? map_len(n) : seq_len(n);
	if (!is_map(n) && !is_seq(n)) {
		perr(c, n, "list the systems, e.g. systems: [erp, crm]", "systems must be a mapping or a list");
		return;
	}
	r->systems = arena_calloc(r->arena, (cap + 1) * sizeof(*r->systems));
	r->system_pos = arena_calloc(r->arena, (cap + 1) * sizeof(*r->system_pos));
	static const char *const keys[] = {"description", "kind", NULL};
	for (size_t i = 0; i < cap; i++) {
		yaml_node_t *kn = is_map(n) ? node(c, map_pairs(n)[i].key) : seq_item(c, n, i);
		if (is_map(n)) {
			yaml_node_t *v = node(c, map_pairs(n)[i].value);
			if (is_map(v))
				check_keys(c, v, keys, "system");
		}
		const char *name = sval(kn);
		if (name == NULL || *name == '\0') {
			perr(c, kn, NULL, "expected a system name");
			continue;
		}
		if (find_system(r, name) >= 0) {
			perr(c, kn, "remove the duplicate", "system \"%s\" declared twice", name);
			continue;
		}
		if (r->nsystems == RULES_MAX_SYSTEMS) {
			perr(c, kn, NULL, "too many systems (at most %d)", RULES_MAX_SYSTEMS);
			break;
		}
		r->system_pos[r->nsystems] = npos(kn);
		r->systems[r->nsystems++] = astr(c, name);
	}
}

/* ---- entities ---------------------------------------------------- */

static void
parse_field_type(struct pctx *c, struct rfield *f, const yaml_node_t *v)
{
	const yaml_node_t *tn = v;
	const char *tname = NULL;
	char refbuf[128] = "";
	f->ref_entity = -1;
	if (is_map(v)) {
		static const char *const keys[] = {"type", "to", "values", "description", NULL};
		check_keys(c, v, keys, "field");
		tn = map_get(c, v, "type");
		yaml_node_t *to = map_get(c, v, "to");
		if (to)
			snprintf(refbuf, sizeof refbuf, "%s", sval(to) ? sval(to) : "");
		yaml_node_t *vals = map_get(c, v, "values");
		if (vals && !is_seq(vals)) {
			perr(c, vals, "write values: [a, b, c]", "values must be a list");
		} else if (vals) {
			f->nvalues = seq_len(vals);
			f->values = arena_calloc(c->r->arena, (f->nvalues + 1) * sizeof(char *));
			for (size_t i = 0; i < f->nvalues; i++) {
				const char *s = sval(seq_item(c, vals, i));
				f->values[i] = astr(c, s ? s : "");
			}
		}
	}
	tname = sval(tn);
	if (tname == NULL) {
		perr(c, is_map(v) ? v : tn, "e.g. name: string, or { type: string, values: [a, b] }",
		     "field \"%s\" has no type", f->name);
		return;
	}
	char word[64];
	snprintf(word, sizeof word, "%s", tname);
	char *sp = strchr(word, ' ');
	if (sp) {
		*sp = '\0';
		snprintf(refbuf, sizeof refbuf, "%s", tname + (sp - word) + 1);
	}
	if (!rules_type_from_name(word, &f->type)) {
		perr(c, tn, "types: string, integer, decimal, boolean, date, timestamp, json, reference <entity>",
		     "unknown type \"%s\" for field \"%s\"", tname, f->name);
		return;
	}
	if (f->type == RULES_TYPE_REFERENCE) {
		int e = find_entity(c->r, refbuf);
		if (e < 0)
			perr(c, tn, "write reference <entity>, e.g. reference customer",
			     "reference field \"%s\" points to unknown entity \"%s\"", f->name, refbuf);
		f->ref_entity = e;
	} else if (refbuf[0]) {
		perr(c, tn, "only reference fields name another entity", "unexpected \"%s\" after type %s",
		     refbuf, word);
	}
	for (size_t i = 0; i < f->nvalues; i++) {
		if (!rules_value_canon(f->type, f->values[i], &c->tmp))
			perr(c, v, NULL, "value \"%s\" of field \"%s\" is not a valid %s", f->values[i],
			     f->name, word);
		else
			f->values[i] = astr(c, c->tmp.data);
	}
}

static rules_unauth_action_t
parse_unauth(struct pctx *c, const yaml_node_t *n)
{
	const char *v = sval(n);
	if (v && strcmp(v, "dead_letter") == 0)
		return RULES_UNAUTH_DEAD_LETTER;
	if (v && strcmp(v, "ignore") == 0)
		return RULES_UNAUTH_IGNORE;
	perr(c, n, "use dead_letter or ignore", "unknown action \"%s\" for unauthorized changes",
	     v ? v : "?");
	return RULES_UNAUTH_DEAD_LETTER;
}

static void
parse_entities(struct pctx *c, const yaml_node_t *n)
{
	rules_t *r = c->r;
	if (!is_map(n)) {
		perr(c, n, "e.g. entities: { customer: { fields: { name: string } } }",
		     "entities must be a mapping of entity name to definition");
		return;
	}
	size_t cap = map_len(n);
	r->entities = arena_calloc(r->arena, (cap + 1) * sizeof(*r->entities));
	/* First the names, so references may point forward. */
	for (size_t i = 0; i < cap; i++) {
		yaml_node_t *kn = node(c, map_pairs(n)[i].key);
		const char *name = sval(kn);
		if (name == NULL)
			continue;
		if (find_entity(r, name) >= 0) {
			perr(c, kn, "remove the duplicate", "entity \"%s\" declared twice", name);
			continue;
		}
		struct rentity *e = &r->entities[r->nentities++];
		e->name = astr(c, name);
		e->pos = npos(kn);
		e->unauth = RULES_UNAUTH_DEAD_LETTER;
	}
	static const char *const keys[] = {"fields", "create", "delete", "unauthorized", "description", NULL};
	for (size_t i = 0; i < cap; i++) {
		yaml_node_t *kn = node(c, map_pairs(n)[i].key);
		yaml_node_t *v = node(c, map_pairs(n)[i].value);
		int ei = find_entity(r, sval(kn));
		if (ei < 0)
			continue;
		struct rentity *e = &r->entities[ei];
		if (e->fields != NULL)
			continue; /* duplicate, reported */
		if (!is_map(v)) {
			perr(c, v, "e.g. customer: { fields: { name: string } }",
			     "entity \"%s\" must be a mapping with fields", e->name);
			continue;
		}
		check_keys(c, v, keys, "entity");
		yaml_node_t *fields = map_get(c, v, "fields");
		if (!is_map(fields) || map_len(fields) == 0) {
			perr(c, fields ? fields : kn, "add fields: { name: string, ... }",
			     "entity \"%s\" has no fields", e->name);
		} else {
			check_keys(c, fields, NULL, "fields");
			e->fields = arena_calloc(r->arena, map_len(fields) * sizeof(*e->fields));
			for (size_t j = 0; j < map_len(fields); j++) {
				yaml_node_t *fk = node(c, map_pairs(fields)[j].key);
				if (sval(fk) == NULL || find_field(e, sval(fk)) >= 0)
					continue;
				if (strcmp(sval(fk), "*") == 0) {
					perr(c, fk, "choose a field name", "\"*\" is not a field name");
					continue;
				}
				struct rfield *f = &e->fields[e->nfields++];
				f->name = astr(c, sval(fk));
				f->pos = npos(fk);
				f->target_rule = arena_calloc(r->arena, RULES_MAX_SYSTEMS * sizeof(void *));
				parse_field_type(c, f, node(c, map_pairs(fields)[j].value));
			}
		}
		yaml_node_t *cr = map_get(c, v, "create");
		yaml_node_t *del = map_get(c, v, "delete");
		e->create_mask = system_mask(c, cr);
		e->delete_mask = system_mask(c, del);
		set_rule(c, &e->create_rule, cr ? cr : kn, afmt(c, "create.%s", e->name));
		set_rule(c, &e->delete_rule, del ? del : kn, afmt(c, "delete.%s", e->name));
		yaml_node_t *ua = map_get(c, v, "unauthorized");
		if (ua)
			e->unauth = parse_unauth(c, ua);
	}
}

/* ---- ownership --------------------------------------------------- */

static void
parse_when(struct pctx *c, const struct rentity *e, struct rowner *o, const yaml_node_t *w)
{
	if (!is_map(w) || map_len(w) == 0) {
		perr(c, w, "write when: { status: [active, past_due] }",
		     "when must map a field to the values it holds");
		return;
	}
	o->conds = arena_calloc(c->r->arena, map_len(w) * sizeof(*o->conds));
	for (size_t i = 0; i < map_len(w); i++) {
		yaml_node_t *fk = node(c, map_pairs(w)[i].key);
		yaml_node_t *vals = node(c, map_pairs(w)[i].value);
		int fi = need_field(c, e, fk);
		if (fi < 0)
			continue;
		const struct rfield *f = &e->fields[fi];
		struct rcond *cd = &o->conds[o->nconds++];
		cd->field = fi;
		cd->pos = npos(fk);
		size_t nv = is_seq(vals) ? seq_len(vals) : 1;
		cd->values = arena_calloc(c->r->arena, (nv + 1) * sizeof(char *));
		for (size_t j = 0; j < nv; j++) {
			yaml_node_t *x = is_seq(vals) ? seq_item(c, vals, j) : vals;
			if (is_null_scalar(x)) {
				cd->match_null = true;
				continue;
			}
			if (!sval(x)) {
				perr(c, x, NULL, "condition values must be scalars");
				continue;
			}
			if (check_canon(c, x, f, sval(x), "condition value"))
				cd->values[cd->nvalues++] = astr(c, c->tmp.data);
		}
	}
}

static bool
parse_owner_entry(struct pctx *c, const struct rentity *e, struct rowner *o, const yaml_node_t *v,
		  bool allow_when)
{
	o->fallback = -1;
	if (is_scalar(v)) {
		o->system = need_system(c, v);
		return o->system >= 0;
	}
	if (!is_map(v)) {
		perr(c, v, "write field: system, { owner: s, fallback: t } or a list of { owner, when }",
		     "cannot read this ownership entry");
		return false;
	}
	static const char *const keys[] = {"owner", "fallback", "when", NULL};
	check_keys(c, v, keys, "ownership entry");
	yaml_node_t *ow = map_get(c, v, "owner"), *fb = map_get(c, v, "fallback"), *w = map_get(c, v, "when");
	if (!ow) {
		perr(c, v, "add owner: <system>", "ownership entry without an owner");
		return false;
	}
	o->system = need_system(c, ow);
	if (fb) {
		o->fallback = need_system(c, fb);
		if (o->fallback >= 0 && o->fallback == o->system)
			perr(c, fb, "name a different system or drop fallback:",
			     "fallback \"%s\" is the owner itself", c->r->systems[o->system]);
	}
	if (w && !allow_when)
		perr(c, w, "conditional owners go in a list: - { owner: billing, when: {...} }",
		     "when: is only allowed in a precedence list");
	else if (w)
		parse_when(c, e, o, w);
	return o->system >= 0;
}

static void
parse_ownership(struct pctx *c, const yaml_node_t *n)
{
	rules_t *r = c->r;
	if (!is_map(n)) {
		perr(c, n, "write ownership: { customer: { \"*\": crm } }", "ownership must be a mapping");
		return;
	}
	check_keys(c, n, NULL, "ownership");
	for (size_t i = 0; i < map_len(n); i++) {
		int ei = need_entity(c, node(c, map_pairs(n)[i].key));
		yaml_node_t *v = node(c, map_pairs(n)[i].value);
		if (ei < 0)
			continue;
		struct rentity *e = &r->entities[ei];
		e->has_ownership = true;
		if (!is_map(v)) {
			perr(c, v, "write customer: { \"*\": crm, credit_limit: erp }",
			     "ownership of %s must map fields to owners", e->name);
			continue;
		}
		check_keys(c, v, NULL, "ownership");
		/* Specific entries first, then the wildcard for the rest. */
		for (int pass = 0; pass < 2; pass++) {
			for (size_t j = 0; j < map_len(v); j++) {
				yaml_node_t *fk = node(c, map_pairs(v)[j].key);
				yaml_node_t *ov = node(c, map_pairs(v)[j].value);
				bool wild = sval(fk) && strcmp(sval(fk), "*") == 0;
				if (wild != (pass == 1))
					continue;
				int fi = wild ? -1 : need_field(c, e, fk);
				if (!wild && fi < 0)
					continue;
				size_t nent = is_seq(ov) ? seq_len(ov) : 1;
				struct rowner *owners = arena_calloc(r->arena, nent * sizeof(*owners));
				size_t no = 0;
				for (size_t k = 0; k < nent; k++) {
					yaml_node_t *it = is_seq(ov) ? seq_item(c, ov, k) : ov;
					struct rowner *o = &owners[no];
					if (!parse_owner_entry(c, e, o, it, is_seq(ov)))
						continue;
					o->wildcard = wild;
					const char *fname = wild ? "*" : e->fields[fi].name;
					set_rule(c, &o->rule, it,
						 is_seq(ov) ? afmt(c, "ownership.%s.%s[%zu]", e->name, fname, k)
							    : afmt(c, "ownership.%s.%s", e->name, fname));
					no++;
				}
				for (size_t f = 0; f < e->nfields; f++) {
					if (wild ? e->fields[f].owners != NULL : (int)f != fi)
						continue;
					e->fields[f].owners = owners;
					e->fields[f].nowners = no;
				}
			}
		}
	}
}

/* ---- targets ----------------------------------------------------- */

static bool
parse_mode(struct pctx *c, const yaml_node_t *n, bool *fill)
{
	const char *m = sval(n);
	if (m && strcmp(m, "overwrite") == 0)
		*fill = false;
	else if (m && strcmp(m, "fill_if_empty") == 0)
		*fill = true;
	else {
		perr(c, n, "modes: overwrite, fill_if_empty", "unknown write mode \"%s\"", m ? m : "?");
		return false;
	}
	return true;
}

static bool
owns_always(const struct rfield *f, int system)
{
	return f->nowners == 1 && f->owners[0].nconds == 0 && f->owners[0].system == system;
}

static void
add_target_field(struct pctx *c, struct rtarget *t, struct rfield *f, bool fill)
{
	uint64_t bit = UINT64_C(1) << t->system;
	f->target_mask |= bit;
	if (fill)
		f->fill_mask |= bit;
	else
		f->fill_mask &= ~bit;
	f->target_rule[t->system] = &t->rule;
	(void)c;
}

static void
parse_targets(struct pctx *c, const yaml_node_t *n)
{
	rules_t *r = c->r;
	if (!is_seq(n)) {
		perr(c, n, "write targets: as a list of - { system, entity, fields }", "targets must be a list");
		return;
	}
	r->targets = arena_calloc(r->arena, (seq_len(n) + 1) * sizeof(*r->targets));
	static const char *const keys[] = {"system", "entity", "fields", "mode", "create", "delete", NULL};
	for (size_t i = 0; i < seq_len(n); i++) {
		yaml_node_t *tn = seq_item(c, n, i);
		if (!is_map(tn)) {
			perr(c, tn, NULL, "a target must be a mapping");
			continue;
		}
		check_keys(c, tn, keys, "target");
		yaml_node_t *sys = map_get(c, tn, "system"), *ent = map_get(c, tn, "entity"),
			    *fields = map_get(c, tn, "fields"), *mode = map_get(c, tn, "mode");
		if (!sys || !ent || !fields) {
			perr(c, tn, "a target needs system, entity and fields", "incomplete target");
			continue;
		}
		struct rtarget *t = &r->targets[r->ntargets];
		t->system = need_system(c, sys);
		t->entity = need_entity(c, ent);
		t->create = true;
		if (t->system < 0 || t->entity < 0)
			continue;
		for (size_t j = 0; j < r->ntargets; j++)
			if (r->targets[j].system == t->system && r->targets[j].entity == t->entity)
				perr(c, tn, "merge the two entries", "%s is a target of %s twice",
				     r->systems[t->system], r->entities[t->entity].name);
		const char *bools[2] = {"create", "delete"};
		for (int b = 0; b < 2; b++) {
			yaml_node_t *bn = map_get(c, tn, bools[b]);
			const char *s = sval(bn);
			if (!bn)
				continue;
			bool val = s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0);
			if (!s || (!val && strcmp(s, "false") != 0 && strcmp(s, "no") != 0))
				perr(c, bn, "write true or false", "%s must be a boolean", bools[b]);
			if (b == 0)
				t->create = val;
			else
				t->delete = val;
		}
		set_rule(c, &t->rule, tn,
			 afmt(c, "target.%s.%s", r->systems[t->system], r->entities[t->entity].name));
		r->ntargets++;
		bool fill = false;
		if (mode)
			parse_mode(c, mode, &fill);
		struct rentity *e = &r->entities[t->entity];
		if (is_scalar(fields) && strcmp(sval(fields), "*") == 0) {
			for (size_t f = 0; f < e->nfields; f++)
				if (!owns_always(&e->fields[f], t->system))
					add_target_field(c, t, &e->fields[f], fill);
		} else if (is_seq(fields)) {
			for (size_t j = 0; j < seq_len(fields); j++) {
				int fi = need_field(c, e, seq_item(c, fields, j));
				if (fi >= 0)
					add_target_field(c, t, &e->fields[fi], fill);
			}
		} else if (is_map(fields)) {
			check_keys(c, fields, NULL, "target fields");
			for (size_t j = 0; j < map_len(fields); j++) {
				int fi = need_field(c, e, node(c, map_pairs(fields)[j].key));
				bool ffill = fill;
				if (fi >= 0 && parse_mode(c, node(c, map_pairs(fields)[j].value), &ffill))
					add_target_field(c, t, &e->fields[fi], ffill);
			}
		} else {
			perr(c, fields, "write fields: \"*\", [a, b] or { a: overwrite, b: fill_if_empty }",
			     "cannot read the target's fields");
		}
	}
}

/* ---- top level --------------------------------------------------- */

static void
build_indexes(rules_t *r)
{
	size_t n = r->nsystems * r->nentities;
	r->source_of = arena_alloc(r->arena, (n + 1) * sizeof(int));
	r->target_of = arena_alloc(r->arena, (n + 1) * sizeof(int));
	for (size_t i = 0; i < n; i++)
		r->source_of[i] = r->target_of[i] = -1;
	for (size_t i = 0; i < r->nsources; i++) {
		const struct rsource *s = &r->sources[i];
		if (s->system >= 0 && s->entity >= 0 && r->source_of[s->system * r->nentities + s->entity] < 0)
			r->source_of[s->system * r->nentities + s->entity] = (int)i;
	}
	for (size_t i = 0; i < r->ntargets; i++) {
		const struct rtarget *t = &r->targets[i];
		r->target_of[t->system * r->nentities + t->entity] = (int)i;
	}
}

rules_status_t
rules_parse(const char *text, size_t len, const char *name, rules_t **out, rules_diags_t *diags)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	rules_status_t st = RULES_OK;
	*out = NULL;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rules_diag_add(diags, name, (int)parser.problem_mark.line + 1,
			       (int)parser.problem_mark.column + 1, RULES_SEV_ERROR,
			       "the file must be YAML (check indentation and quoting)",
			       "not valid YAML: %s%s%s", parser.problem ? parser.problem : "parse error",
			       parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return RULES_UNREADABLE;
	}
	struct pctx c = {0};
	c.doc = &doc;
	c.diags = diags;
	c.file = name;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!is_map(root)) {
		rules_diag_add(diags, name, root ? npos(root).line : 1, root ? npos(root).col : 1,
			       RULES_SEV_ERROR, "start with systems:, entities:, sources:, ownership:, targets:",
			       "a rules file must be a YAML mapping");
		st = RULES_UNREADABLE;
		goto out;
	}
	rules_t *r = xcalloc(1, sizeof(*r));
	r->arena = arena_create(64 * 1024);
	r->file = arena_strdup(r->arena, name);
	c.r = r;
	static const char *const keys[] = {"version", "systems", "entities", "sources", "identity",
					   "ownership", "targets", NULL};
	check_keys(&c, root, keys, "the rules file");
	yaml_node_t *ver = map_get(&c, root, "version");
	if (ver && (!sval(ver) || strcmp(sval(ver), "1") != 0))
		perr(&c, ver, "this Steward reads version: 1", "unsupported rules version \"%s\"",
		     sval(ver) ? sval(ver) : "?");
	const char *required[] = {"systems", "entities", "ownership"};
	for (int i = 0; i < 3; i++)
		if (!map_get(&c, root, required[i]))
			perr(&c, root, "see docs/ownership-rules.md for a complete example",
			     "missing section \"%s\"", required[i]);
	if (map_get(&c, root, "systems"))
		parse_systems(&c, map_get(&c, root, "systems"));
	if (map_get(&c, root, "entities"))
		parse_entities(&c, map_get(&c, root, "entities"));
	if (map_get(&c, root, "sources"))
		rules_parse_sources(&c, map_get(&c, root, "sources"));
	if (map_get(&c, root, "identity"))
		rules_parse_identity(&c, map_get(&c, root, "identity"));
	if (map_get(&c, root, "ownership"))
		parse_ownership(&c, map_get(&c, root, "ownership"));
	if (map_get(&c, root, "targets"))
		parse_targets(&c, map_get(&c, root, "targets"));
	build_indexes(r);
	r->replay_rule.id = "replay";
	r->replay_rule.file = r->file;
	r->lifecycle_rule.id = "lifecycle";
	r->lifecycle_rule.file = r->file;
	*out = r;
out:
	buf_free(&c.tmp);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return st;
}
