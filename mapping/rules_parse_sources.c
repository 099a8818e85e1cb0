/*
 * rules_parse_sources.c — the sources: and identity: sections of a rules
 * file: table -> entity mappings with their transforms and links, and
 * match keys.  Transforms are type-checked against the entity's fields here.
 */
#include "rules_parse.h"

/* ---- sources ----------------------------------------------------- */

static void
parse_colmap(struct pctx *c, struct rsource *src, const struct rentity *e, struct rcolmap *cm,
	     const struct rfield *f, const yaml_node_t *v)
{
	cm->ref_system = src->system;
	cm->pos = npos(v);
	if (is_scalar(v)) {
		cm->kind = RCOL_COLUMN;
		cm->column = astr(c, sval(v));
		return;
	}
	if (!is_map(v)) {
		perr(c, v, "write field: column, or { column: c, map: {...} }",
		     "mapping of field \"%s\" must be a column name or a transform", f->name);
		return;
	}
	static const char *const keys[] = {"column", "cast", "map", "default", "constant",
					   "concat", "separator", "system", NULL};
	check_keys(c, v, keys, "field mapping");
	yaml_node_t *col = map_get(c, v, "column"), *cst = map_get(c, v, "constant"),
		    *cat = map_get(c, v, "concat"), *cast = map_get(c, v, "cast"),
		    *map = map_get(c, v, "map"), *def = map_get(c, v, "default"),
		    *sys = map_get(c, v, "system");
	int kinds = (col != NULL) + (cst != NULL) + (cat != NULL);
	if (kinds != 1) {
		perr(c, v, "use exactly one of column:, constant:, concat:",
		     "field \"%s\" must come from exactly one of a column, a constant or a concatenation",
		     f->name);
		return;
	}
	if (col) {
		cm->kind = RCOL_COLUMN;
		cm->column = astr(c, sval(col) ? sval(col) : "");
	} else if (cst) {
		cm->kind = RCOL_CONSTANT;
		if (!is_null_scalar(cst) && sval(cst) && check_canon(c, cst, f, sval(cst), "constant"))
			cm->constant = astr(c, c->tmp.data);
	} else {
		cm->kind = RCOL_CONCAT;
		if (f->type != RULES_TYPE_STRING)
			perr(c, cat, afmt(c, "field \"%s\" is declared %s", f->name, rules_type_name(f->type)),
			     "type mismatch: concatenation produces a string, field \"%s\" is %s", f->name,
			     rules_type_name(f->type));
		if (!is_seq(cat) || seq_len(cat) < 2) {
			perr(c, cat, "write concat: [first_name, last_name]",
			     "concat needs a list of at least two columns");
		} else {
			cm->nconcat = seq_len(cat);
			cm->concat = arena_calloc(c->r->arena, cm->nconcat * sizeof(char *));
			for (size_t i = 0; i < cm->nconcat; i++) {
				const char *s = sval(seq_item(c, cat, i));
				cm->concat[i] = astr(c, s ? s : "");
			}
		}
		yaml_node_t *sep = map_get(c, v, "separator");
		cm->separator = astr(c, sep && sval(sep) ? sval(sep) : "");
	}
	if (cast) {
		rules_type_t t;
		if (!sval(cast) || !rules_type_from_name(sval(cast), &t))
			perr(c, cast, "types: string, integer, decimal, boolean, date, timestamp, json",
			     "unknown cast type \"%s\"", sval(cast) ? sval(cast) : "?");
		else if (t != f->type)
			perr(c, cast,
			     afmt(c, "field \"%s\" is declared %s; cast to %s or change the field's type",
				  f->name, rules_type_name(f->type), rules_type_name(f->type)),
			     "type mismatch: cast to %s for field \"%s\" of type %s", sval(cast), f->name,
			     rules_type_name(f->type));
	}
	if (map) {
		if (!is_map(map)) {
			perr(c, map, "write map: { A: active, C: churned }", "map must be a mapping");
		} else {
			cm->nmap = map_len(map);
			cm->map_from = arena_calloc(c->r->arena, cm->nmap * sizeof(char *));
			cm->map_to = arena_calloc(c->r->arena, cm->nmap * sizeof(char *));
			for (size_t i = 0; i < cm->nmap; i++) {
				yaml_node_t *mk = node(c, map_pairs(map)[i].key);
				yaml_node_t *mv = node(c, map_pairs(map)[i].value);
				cm->map_from[i] = astr(c, sval(mk) ? sval(mk) : "");
				if (!is_null_scalar(mv) && sval(mv) && check_canon(c, mv, f, sval(mv), "mapped value"))
					cm->map_to[i] = astr(c, c->tmp.data);
			}
		}
	}
	if (def) {
		if (!map)
			perr(c, def, "default: applies to values missing from map:", "default without a map");
		cm->has_default = true;
		if (!is_null_scalar(def) && sval(def) && check_canon(c, def, f, sval(def), "default"))
			cm->map_default = astr(c, c->tmp.data);
	}
	if (sys) {
		if (f->type != RULES_TYPE_REFERENCE)
			perr(c, sys, "system: names the key namespace of a reference field",
			     "field \"%s\" is not a reference", f->name);
		cm->ref_system = need_system(c, sys);
	}
	(void)e;
}

void
rules_parse_sources(struct pctx *c, const yaml_node_t *n)
{
	rules_t *r = c->r;
	if (!is_seq(n)) {
		perr(c, n, "write sources: as a list of - { system, table, entity, key, fields }",
		     "sources must be a list");
		return;
	}
	r->sources = arena_calloc(r->arena, (seq_len(n) + 1) * sizeof(*r->sources));
	static const char *const keys[] = {"system", "table", "entity", "key", "fields", "links", NULL};
	for (size_t i = 0; i < seq_len(n); i++) {
		yaml_node_t *s = seq_item(c, n, i);
		if (!is_map(s)) {
			perr(c, s, NULL, "a source must be a mapping");
			continue;
		}
		check_keys(c, s, keys, "source");
		struct rsource *src = &r->sources[r->nsources];
		src->pos = npos(s);
		yaml_node_t *sys = map_get(c, s, "system"), *tab = map_get(c, s, "table"),
			    *ent = map_get(c, s, "entity"), *key = map_get(c, s, "key"),
			    *fields = map_get(c, s, "fields"), *links = map_get(c, s, "links");
		if (!sys || !tab || !ent || !key || !fields) {
			perr(c, s, "a source needs system, table (schema.table), entity, key and fields",
			     "incomplete source mapping");
			continue;
		}
		src->system = need_system(c, sys);
		src->entity = need_entity(c, ent);
		const char *t = sval(tab);
		if (t == NULL || strchr(t, '.') == NULL) {
			perr(c, tab, "write the table as schema.table (MySQL: database.table)",
			     "table \"%s\" is not qualified", t ? t : "?");
			continue;
		}
		src->table = astr(c, t);
		if (src->system < 0 || src->entity < 0)
			continue;
		for (size_t j = 0; j < r->nsources; j++)
			if (r->sources[j].system == src->system && r->sources[j].entity == src->entity &&
			    strcmp(r->sources[j].table, t) == 0)
				perr(c, tab, "map each table once per entity", "table %s of %s is mapped to %s twice", t,
				     r->systems[src->system], r->entities[src->entity].name);
		if (is_scalar(key)) {
			src->nkey = 1;
			src->key = arena_calloc(r->arena, sizeof(char *));
			src->key[0] = astr(c, sval(key));
		} else if (is_seq(key) && seq_len(key) > 0) {
			src->nkey = seq_len(key);
			src->key = arena_calloc(r->arena, src->nkey * sizeof(char *));
			for (size_t j = 0; j < src->nkey; j++) {
				const char *k = sval(seq_item(c, key, j));
				src->key[j] = astr(c, k ? k : "");
			}
		} else {
			perr(c, key, "write key: id or key: [a, b]", "key must name one or more columns");
		}
		struct rentity *e = &r->entities[src->entity];
		if (!is_map(fields)) {
			perr(c, fields, "write fields: { field: column, ... }", "fields must be a mapping");
		} else {
			check_keys(c, fields, NULL, "fields");
			src->cols = arena_calloc(r->arena, (map_len(fields) + 1) * sizeof(*src->cols));
			for (size_t j = 0; j < map_len(fields); j++) {
				yaml_node_t *fk = node(c, map_pairs(fields)[j].key);
				int fi = need_field(c, e, fk);
				if (fi < 0)
					continue;
				struct rcolmap *cm = &src->cols[src->ncols++];
				cm->field = fi;
				parse_colmap(c, src, e, cm, &e->fields[fi], node(c, map_pairs(fields)[j].value));
				cm->pos = npos(fk);
			}
		}
		if (links && !is_seq(links)) {
			perr(c, links, "write links: [{ column: external_id, system: erp }]", "links must be a list");
		} else if (links) {
			src->links = arena_calloc(r->arena, (seq_len(links) + 1) * sizeof(*src->links));
			static const char *const lkeys[] = {"column", "system", NULL};
			for (size_t j = 0; j < seq_len(links); j++) {
				yaml_node_t *l = seq_item(c, links, j);
				if (!is_map(l)) {
					perr(c, l, "write { column: external_id, system: erp }", "a link must be a mapping");
					continue;
				}
				check_keys(c, l, lkeys, "link");
				yaml_node_t *lc = map_get(c, l, "column"), *ls = map_get(c, l, "system");
				if (!lc || !ls || !sval(lc)) {
					perr(c, l, "a link needs column and system", "incomplete link");
					continue;
				}
				struct rlink *lk = &src->links[src->nlinks];
				lk->column = astr(c, sval(lc));
				lk->system = need_system(c, ls);
				if (lk->system < 0)
					continue;
				if (lk->system == src->system) {
					perr(c, ls, "a link names the entity's key in another system",
					     "link to the source's own system %s", r->systems[lk->system]);
					continue;
				}
				set_rule(c, &lk->rule, l, afmt(c, "link.%s.%s.%s", r->systems[src->system], t, lk->column));
				src->nlinks++;
			}
		}
		r->nsources++;
	}
}

/* ---- identity ---------------------------------------------------- */

void
rules_parse_identity(struct pctx *c, const yaml_node_t *n)
{
	rules_t *r = c->r;
	if (!is_map(n)) {
		perr(c, n, "write identity: { customer: { match: [...] } }", "identity must be a mapping");
		return;
	}
	for (size_t i = 0; i < map_len(n); i++) {
		int ei = need_entity(c, node(c, map_pairs(n)[i].key));
		yaml_node_t *v = node(c, map_pairs(n)[i].value);
		if (ei < 0)
			continue;
		struct rentity *e = &r->entities[ei];
		static const char *const keys[] = {"match", NULL};
		check_keys(c, v, keys, "identity");
		yaml_node_t *m = map_get(c, v, "match");
		if (!is_seq(m)) {
			perr(c, m ? m : v, "write match: [{ field: email, normalize: [trim, lowercase] }]",
			     "match must be a list");
			continue;
		}
		e->match = arena_calloc(r->arena, (seq_len(m) + 1) * sizeof(*e->match));
		for (size_t j = 0; j < seq_len(m); j++) {
			yaml_node_t *it = seq_item(c, m, j);
			yaml_node_t *fn = is_map(it) ? map_get(c, it, "field") : it;
			static const char *const mkeys[] = {"field", "normalize", NULL};
			if (is_map(it))
				check_keys(c, it, mkeys, "match key");
			int fi = need_field(c, e, fn);
			if (fi < 0)
				continue;
			struct rmatch *mk = &e->match[e->nmatch++];
			mk->field = fi;
			mk->pos = npos(it);
			yaml_node_t *norm = is_map(it) ? map_get(c, it, "normalize") : NULL;
			size_t nn = is_seq(norm) ? seq_len(norm) : norm ? 1 : 0;
			for (size_t k = 0; k < nn; k++) {
				yaml_node_t *x = is_seq(norm) ? seq_item(c, norm, k) : norm;
				const char *s = sval(x) ? sval(x) : "";
				if (strcmp(s, "trim") == 0)
					mk->norm |= RNORM_TRIM;
				else if (strcmp(s, "lowercase") == 0)
					mk->norm |= RNORM_LOWERCASE;
				else if (strcmp(s, "digits") == 0)
					mk->norm |= RNORM_DIGITS;
				else if (strcmp(s, "collapse_spaces") == 0)
					mk->norm |= RNORM_COLLAPSE_SPACE;
				else
					perr(c, x, "normalizations: trim, lowercase, digits, collapse_spaces",
					     "unknown normalization \"%s\"", s);
			}
		}
	}
}

