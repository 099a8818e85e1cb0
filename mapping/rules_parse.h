/*
 * rules_parse.h — the rules parser's shared context and YAML helpers
 * (private to mapping/rules_parse*.c).
 *
 * The parser is split by section: rules_parse.c reads systems, entities,
 * ownership and targets and drives the whole; rules_parse_sources.c reads
 * sources and identity.  Helpers are static inline so each file keeps its
 * own copy and nothing leaks into the library's symbol table.
 */
#ifndef STEWARD_MAPPING_RULES_PARSE_H
#define STEWARD_MAPPING_RULES_PARSE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "rules_internal.h"
#include "xalloc.h"

struct pctx {
	rules_t *r;
	yaml_document_t *doc;
	rules_diags_t *diags;
	const char *file;
	buf_t tmp;
};

typedef yaml_node_pair_t pair_t;

static inline yaml_node_t *
node(struct pctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

static inline struct rpos
npos(const yaml_node_t *n)
{
	struct rpos p = {0, 0};
	if (n) {
		p.line = (int)n->start_mark.line + 1;
		p.col = (int)n->start_mark.column + 1;
	}
	return p;
}

#define perr(c, n, hint, ...) \
	rules_diag_add((c)->diags, (c)->file, npos(n).line, npos(n).col, RULES_SEV_ERROR, hint, __VA_ARGS__)

static inline bool
is_map(const yaml_node_t *n)
{
	return n && n->type == YAML_MAPPING_NODE;
}

static inline bool
is_seq(const yaml_node_t *n)
{
	return n && n->type == YAML_SEQUENCE_NODE;
}

static inline bool
is_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE;
}

static inline const char *
sval(const yaml_node_t *n)
{
	return is_scalar(n) ? (const char *)n->data.scalar.value : NULL;
}

/* YAML's null: ~, null, or an empty plain scalar. */
static inline bool
is_null_scalar(const yaml_node_t *n)
{
	if (!is_scalar(n) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = sval(n);
	return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
	       strcmp(v, "NULL") == 0;
}

static inline size_t
map_len(const yaml_node_t *n)
{
	return is_map(n) ? (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start) : 0;
}

static inline pair_t *
map_pairs(const yaml_node_t *n)
{
	return n->data.mapping.pairs.start;
}

static inline size_t
seq_len(const yaml_node_t *n)
{
	return is_seq(n) ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 0;
}

static inline yaml_node_t *
seq_item(struct pctx *c, const yaml_node_t *n, size_t i)
{
	return node(c, n->data.sequence.items.start[i]);
}

static inline yaml_node_t *
map_get(struct pctx *c, const yaml_node_t *m, const char *key)
{
	for (size_t i = 0; i < map_len(m); i++) {
		const char *k = sval(node(c, map_pairs(m)[i].key));
		if (k && strcmp(k, key) == 0)
			return node(c, map_pairs(m)[i].value);
	}
	return NULL;
}

static inline const char *
astr(struct pctx *c, const char *s)
{
	return arena_strdup(c->r->arena, s);
}

static inline const char *
afmt(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline const char *
afmt(struct pctx *c, const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	return arena_strdup(c->r->arena, b);
}

static inline void
set_rule(struct pctx *c, rules_rule_t *rule, const yaml_node_t *n, const char *id)
{
	struct rpos p = npos(n);
	rule->id = id;
	rule->file = c->r->file;
	rule->line = p.line;
	rule->col = p.col;
}

/*
 * Report keys of mapping m not in allowed (NULL-terminated) and duplicate
 * keys.  what names the place ("source", "target") in the message.
 */
static inline void
check_keys(struct pctx *c, const yaml_node_t *m, const char *const *allowed, const char *what)
{
	for (size_t i = 0; i < map_len(m); i++) {
		yaml_node_t *kn = node(c, map_pairs(m)[i].key);
		const char *k = sval(kn);
		if (k == NULL) {
			perr(c, kn, NULL, "%s keys must be plain names", what);
			continue;
		}
		for (size_t j = 0; j < i; j++) {
			const char *prev = sval(node(c, map_pairs(m)[j].key));
			if (prev && strcmp(prev, k) == 0)
				perr(c, kn, "remove one of the two entries", "duplicate key \"%s\" in %s", k, what);
		}
		if (allowed == NULL)
			continue;
		bool ok = false;
		buf_reset(&c->tmp);
		for (const char *const *a = allowed; *a; a++) {
			if (strcmp(*a, k) == 0)
				ok = true;
			buf_printf(&c->tmp, "%s%s", a == allowed ? "" : ", ", *a);
		}
		if (!ok) {
			char hint[512];
			snprintf(hint, sizeof hint, "expected one of: %s", c->tmp.data);
			perr(c, kn, hint, "unknown key \"%s\" in %s", k, what);
		}
	}
}

static int
find_system(const rules_t *r, const char *name)
{
	for (size_t i = 0; name && i < r->nsystems; i++)
		if (strcmp(r->systems[i], name) == 0)
			return (int)i;
	return -1;
}

static int
find_entity(const rules_t *r, const char *name)
{
	for (size_t i = 0; name && i < r->nentities; i++)
		if (strcmp(r->entities[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int
find_field(const struct rentity *e, const char *name)
{
	for (size_t i = 0; name && i < e->nfields; i++)
		if (strcmp(e->fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* List of names for hints: "erp, crm, billing". */
static inline const char *
system_list(struct pctx *c)
{
	buf_reset(&c->tmp);
	for (size_t i = 0; i < c->r->nsystems; i++)
		buf_printf(&c->tmp, "%s%s", i ? ", " : "", c->r->systems[i]);
	return afmt(c, "declare it under systems:, or use one of: %s",
		    c->r->nsystems ? c->tmp.data : "(none declared)");
}

static int
need_system(struct pctx *c, const yaml_node_t *n)
{
	const char *name = sval(n);
	if (name == NULL) {
		perr(c, n, "write the system's name, e.g. erp", "expected a system name");
		return -1;
	}
	int s = find_system(c->r, name);
	if (s < 0)
		perr(c, n, system_list(c), "unknown system \"%s\"", name);
	return s;
}

static int
need_entity(struct pctx *c, const yaml_node_t *n)
{
	const char *name = sval(n);
	if (name == NULL) {
		perr(c, n, "write the entity's name, e.g. customer", "expected an entity name");
		return -1;
	}
	int e = find_entity(c->r, name);
	if (e < 0) {
		buf_reset(&c->tmp);
		for (size_t i = 0; i < c->r->nentities; i++)
			buf_printf(&c->tmp, "%s%s", i ? ", " : "", c->r->entities[i].name);
		perr(c, n, afmt(c, "declare it under entities:, or use one of: %s", c->tmp.data),
		     "unknown entity \"%s\"", name);
	}
	return e;
}

static int
need_field(struct pctx *c, const struct rentity *e, const yaml_node_t *n)
{
	const char *name = sval(n);
	int f = find_field(e, name);
	if (f < 0) {
		buf_reset(&c->tmp);
		for (size_t i = 0; i < e->nfields; i++)
			buf_printf(&c->tmp, "%s%s", i ? ", " : "", e->fields[i].name);
		perr(c, n, afmt(c, "fields of %s: %s", e->name, c->tmp.data),
		     "unknown field \"%s\" of entity %s", name ? name : "?", e->name);
	}
	return f;
}

/* A system list: one name or a sequence of names -> bit mask. */
static inline uint64_t
system_mask(struct pctx *c, const yaml_node_t *n)
{
	uint64_t mask = 0;
	if (is_scalar(n) && !is_null_scalar(n)) {
		int s = need_system(c, n);
		if (s >= 0)
			mask |= UINT64_C(1) << s;
	} else if (is_seq(n)) {
		for (size_t i = 0; i < seq_len(n); i++) {
			int s = need_system(c, seq_item(c, n, i));
			if (s >= 0)
				mask |= UINT64_C(1) << s;
		}
	} else if (n && !is_null_scalar(n)) {
		perr(c, n, "write [erp, crm] or a single name", "expected a list of systems");
	}
	return mask;
}

static inline bool
check_canon(struct pctx *c, const yaml_node_t *where, const struct rfield *f, const char *v,
	    const char *what)
{
	if (rules_value_canon(f->type, v, &c->tmp)) {
		if (f->nvalues) {
			for (size_t i = 0; i < f->nvalues; i++)
				if (strcmp(f->values[i], c->tmp.data) == 0)
					return true;
			perr(c, where, "use one of the values declared for the field, or add it there",
			     "%s \"%s\" is not one of the values of field \"%s\"", what, v, f->name);
			return false;
		}
		return true;
	}
	perr(c, where, afmt(c, "field \"%s\" is declared %s", f->name, rules_type_name(f->type)),
	     "type mismatch: %s \"%s\" is not a valid %s for field \"%s\"", what, v,
	     rules_type_name(f->type), f->name);
	return false;
}

void rules_parse_sources(struct pctx *c, const yaml_node_t *n);
void rules_parse_identity(struct pctx *c, const yaml_node_t *n);

#endif
