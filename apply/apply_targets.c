/*
 * apply_targets.c — load and check the targets file (libyaml document API,
 * so every node keeps its line for messages).
 */
#include "apply_targets.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "xalloc.h"

typedef struct loader {
	yaml_document_t doc;
	const char *name;
	const rules_t *rules;
	char *err;
	size_t errlen;
	bool failed;
} loader_t;

static void fail(loader_t *L, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail(loader_t *L, const yaml_node_t *n, const char *fmt, ...)
{
	if (L->failed)
		return;
	L->failed = true;
	char msg[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(L->err, L->errlen, "%s:%zu: %s", L->name,
		 n ? n->start_mark.line + 1 : (size_t) 0, msg);
}

static const char *
scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *) n->data.scalar.value : NULL;
}

static yaml_node_t *
node(loader_t *L, int id)
{
	return yaml_document_get_node(&L->doc, id);
}

/* Iterate a mapping: calls fn(key, value) for each pair. */
typedef void (*pair_fn)(loader_t *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud);

static void
each_pair(loader_t *L, yaml_node_t *map, const char *what, pair_fn fn, void *ud)
{
	if (!map || map->type != YAML_MAPPING_NODE) {
		fail(L, map, "%s must be a mapping", what);
		return;
	}
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top && !L->failed; p++) {
		yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
		const char *ks = scalar(k);
		if (!ks) {
			fail(L, k, "%s: keys must be scalars", what);
			return;
		}
		fn(L, ks, k, v, ud);
	}
}

static char *
need_string(loader_t *L, yaml_node_t *v, const char *key)
{
	const char *s = scalar(v);
	if (!s || !*s) {
		fail(L, v, "\"%s\" must be a non-empty string", key);
		return NULL;
	}
	return xstrdup(s);
}

static double
need_number(loader_t *L, yaml_node_t *v, const char *key, double min, double max)
{
	const char *s = scalar(v);
	char *end = NULL;
	errno = 0;
	double d = s ? strtod(s, &end) : 0;
	if (!s || !*s || *end || errno || d < min || d > max) {
		fail(L, v, "\"%s\" must be a number between %g and %g", key, min, max);
		return 0;
	}
	return d;
}

/* ---- entity blocks ---- */

struct ent_ctx {
	apply_target_system_t *sys;
	apply_target_entity_t *e;
};

static const char *const op_names[APPLY_OP_COUNT] = {"create", "update", "upsert", "delete"};

static void
op_pair(loader_t *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
	apply_target_op_t *op = ud;
	if (strcmp(key, "method") == 0) {
		const char *m = scalar(v);
		static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE", NULL};
		bool ok = false;
		for (int i = 0; m && methods[i]; i++)
			ok |= strcmp(m, methods[i]) == 0;
		if (!ok) {
			fail(L, v, "\"method\" must be POST, PUT, PATCH or DELETE");
			return;
		}
		free(op->method);
		op->method = xstrdup(m);
	} else if (strcmp(key, "url") == 0) {
		char terr[256];
		free(op->url);
		op->url = need_string(L, v, key);
		if (op->url && template_check(op->url, terr, sizeof terr) != TEMPLATE_OK)
			fail(L, v, "bad url template: %s", terr);
	} else {
		fail(L, k, "unknown key \"%s\" (expected method, url)", key);
	}
}

static bool
json_type_of(loader_t *L, yaml_node_t *v, const char *s, template_json_type_t *out)
{
	if (!template_json_type_from_name(s, out)) {
		fail(L, v, "unknown type \"%s\" (string, integer, number, boolean, json)", s);
		return false;
	}
	return true;
}

static void
body_pair(loader_t *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
	struct ent_ctx *c = ud;
	int f = rules_field_find(L->rules, c->e->entity, key);
	if (f < 0) {
		fail(L, k, "entity \"%s\" has no field \"%s\"",
		     rules_entity_name(L->rules, c->e->entity), key);
		return;
	}
	apply_target_field_t tf = {f, NULL, TEMPLATE_JSON_STRING};
	rules_type_t rt = rules_field_type(L->rules, c->e->entity, f);
	if (rt == RULES_TYPE_DECIMAL)
		tf.type = TEMPLATE_JSON_NUMBER;
	else if (rt == RULES_TYPE_INTEGER)
		tf.type = TEMPLATE_JSON_INTEGER;
	else if (rt == RULES_TYPE_BOOLEAN)
		tf.type = TEMPLATE_JSON_BOOLEAN;
	if (v && v->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
			const char *pk = scalar(node(L, p->key));
			yaml_node_t *pv = node(L, p->value);
			if (pk && strcmp(pk, "name") == 0) {
				free(tf.json_name);
				tf.json_name = need_string(L, pv, pk);
			} else if (pk && strcmp(pk, "type") == 0 && scalar(pv)) {
				json_type_of(L, pv, scalar(pv), &tf.type);
			} else {
				fail(L, node(L, p->key), "unknown key \"%s\" (expected name, type)",
				     pk ? pk : "?");
			}
		}
		if (!tf.json_name && !L->failed)
			fail(L, v, "field \"%s\" needs a name", key);
	} else {
		tf.json_name = need_string(L, v, key);
	}
	if (L->failed) {
		free(tf.json_name);
		return;
	}
	c->e->fields = xrealloc(c->e->fields, (c->e->nfields + 1) * sizeof *c->e->fields);
	c->e->fields[c->e->nfields++] = tf;
}

static void
extra_pair(loader_t *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
	struct ent_ctx *c = ud;
	apply_target_extra_t x = {xstrdup(key), NULL, TEMPLATE_JSON_STRING};
	if (v && v->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
			const char *pk = scalar(node(L, p->key));
			yaml_node_t *pv = node(L, p->value);
			if (pk && strcmp(pk, "expr") == 0) {
				free(x.expr);
				x.expr = need_string(L, pv, pk);
			} else if (pk && strcmp(pk, "type") == 0 && scalar(pv)) {
				json_type_of(L, pv, scalar(pv), &x.type);
			} else {
				fail(L, node(L, p->key), "unknown key \"%s\" (expected expr, type)",
				     pk ? pk : "?");
			}
		}
	} else {
		x.expr = need_string(L, v, key);
	}
	if (!L->failed && x.expr) {
		char tmpl[300], terr[256];
		snprintf(tmpl, sizeof tmpl, "{%s}", x.expr);
		if (template_check(tmpl, terr, sizeof terr) != TEMPLATE_OK)
			fail(L, v, "bad expression \"%s\": %s", x.expr, terr);
	}
	if (L->failed || !x.expr) {
		if (!L->failed)
			fail(L, v, "extra \"%s\" needs an expression", key);
		free(x.json_name);
		free(x.expr);
		return;
	}
	c->e->extras = xrealloc(c->e->extras, (c->e->nextras + 1) * sizeof *c->e->extras);
	c->e->extras[c->e->nextras++] = x;
}

static void
id_pair(loader_t *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
	apply_target_entity_t *e = ud;
	if (strcmp(key, "json") == 0) {
		free(e->id_json);
		e->id_json = need_string(L, v, key);
		if (e->id_json && e->id_json[0] != '/')
			fail(L, v, "\"json\" must be a JSON pointer (\"/id\")");
	} else if (strcmp(key, "location") == 0) {
		const char *s = scalar(v);
		e->id_location = s && strcmp(s, "true") == 0;
	} else {
		fail(L, k, "unknown key \"%s\" (expected json, location)", key);
	}
}

static void
entity_pair(loader_t *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
	struct ent_ctx *c = ud;
	for (int i = 0; i < APPLY_OP_COUNT; i++) {
		if (strcmp(key, op_names[i]) == 0) {
			apply_target_op_t *op = &c->e->ops[i];
			each_pair(L, v, key, op_pair, op);
			if (!L->failed && (!op->method || !op->url))
				fail(L, v, "\"%s\" needs method and url", key);
			op->present = !L->failed;
			return;
		}
	}
	if (strcmp(key, "body") == 0)
		each_pair(L, v, key, body_pair, c);
	else if (strcmp(key, "extra") == 0)
		each_pair(L, v, key, extra_pair, c);
	else if (strcmp(key, "id") == 0)
		each_pair(L, v, key, id_pair, c->e);
	else
		fail(L, k, "unknown key \"%s\" (expected create, update, upsert, delete, id, body, "
		     "extra)", key);
}

static void
entities_pair(loader_t *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
	apply_target_system_t *sys = ud;
	int ent = rules_entity_find(L->rules, key);
	if (ent < 0) {
		fail(L, k, "unknown entity \"%s\" (not in the rules file)", key);
		return;
	}
	for (size_t i = 0; i < sys->nentities; i++)
		if (sys->entities[i].entity == ent) {
			fail(L, k, "entity \"%s\" configured twice for \"%s\"", key, sys->name);
			return;
		}
	sys->entities = xrealloc(sys->entities, (sys->nentities + 1) * sizeof *sys->entities);
	apply_target_entity_t *e = &sys->entities[sys->nentities++];
	memset(e, 0, sizeof *e);
	e->entity = ent;
	struct ent_ctx c = {sys, e};
	each_pair(L, v, key, entity_pair, &c);
	if (L->failed)
		return;
	if (!e->ops[APPLY_OP_CREATE].present && !e->ops[APPLY_OP_UPDATE].present &&
	    !e->ops[APPLY_OP_UPSERT].present && !e->ops[APPLY_OP_DELETE].present)
		fail(L, v, "entity \"%s\" of \"%s\" has no create, update, upsert or delete", key,
		     sys->name);
	else if (e->ops[APPLY_OP_CREATE].present && !e->id_json && !e->id_location)
		fail(L, v, "entity \"%s\" of \"%s\" creates records but does not say where the new "
		     "id is (id: {json: /id} or {location: true})", key, sys->name);
}

static void
system_pair(loader_t *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
	apply_target_system_t *s = ud;
	if (strcmp(key, "base_url") == 0) {
		free(s->base_url);
		s->base_url = need_string(L, v, key);
		if (s->base_url && strncmp(s->base_url, "http://", 7) && strncmp(s->base_url, "https://", 8))
			fail(L, v, "\"base_url\" must start with http:// or https://");
	} else if (strcmp(key, "token_env") == 0) {
		free(s->token_env);
		s->token_env = need_string(L, v, key);
	} else if (strcmp(key, "token_file") == 0) {
		free(s->token_file);
		s->token_file = need_string(L, v, key);
	} else if (strcmp(key, "rate_limit") == 0) {
		s->rate_limit = need_number(L, v, key, 0, 1e6);
	} else if (strcmp(key, "burst") == 0) {
		s->burst = need_number(L, v, key, 1, 1e6);
	} else if (strcmp(key, "concurrency") == 0) {
		s->concurrency = (unsigned) need_number(L, v, key, 1, 256);
	} else if (strcmp(key, "timeout_ms") == 0) {
		s->timeout_ms = (long) need_number(L, v, key, 10, 600000);
	} else if (strcmp(key, "headers") == 0) {
		if (!v || v->type != YAML_SEQUENCE_NODE) {
			fail(L, v, "\"headers\" must be a list of \"Name: value\" strings");
			return;
		}
		size_t n = 0;
		for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++)
			n++;
		s->headers = xcalloc(n + 1, sizeof(char *));
		n = 0;
		for (yaml_node_item_t *i = v->data.sequence.items.start;
		     i < v->data.sequence.items.top && !L->failed; i++) {
			yaml_node_t *h = node(L, *i);
			const char *hs = scalar(h);
			if (!hs || !strchr(hs, ':') || strpbrk(hs, "\r\n")) {
				fail(L, h, "header must be \"Name: value\" on one line");
				return;
			}
			s->headers[n++] = xstrdup(hs);
		}
	} else if (strcmp(key, "entities") == 0) {
		each_pair(L, v, key, entities_pair, s);
	} else {
		fail(L, k, "unknown key \"%s\" (expected base_url, token_env, token_file, rate_limit, "
		     "burst, concurrency, timeout_ms, headers, entities)", key);
	}
}

static void
systems_pair(loader_t *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
	apply_targets_t *t = ud;
	int sys = rules_system_find(L->rules, key);
	if (sys < 0) {
		fail(L, k, "unknown system \"%s\" (not in the rules file)", key);
		return;
	}
	if (apply_targets_system(t, sys)) {
		fail(L, k, "system \"%s\" configured twice", key);
		return;
	}
	t->systems = xrealloc(t->systems, (t->nsystems + 1) * sizeof *t->systems);
	apply_target_system_t *s = &t->systems[t->nsystems++];
	memset(s, 0, sizeof *s);
	s->system = sys;
	s->name = xstrdup(key);
	s->concurrency = 8;
	s->timeout_ms = 10000;
	s->burst = 1;
	each_pair(L, v, key, system_pair, s);
	if (!L->failed && !s->base_url)
		fail(L, v, "system \"%s\" needs a base_url", key);
	if (!L->failed && s->token_env && s->token_file)
		fail(L, v, "system \"%s\": give token_env or token_file, not both", key);
	if (!L->failed && s->rate_limit > 0 && s->burst < 1)
		s->burst = 1;
}

static void
top_pair(loader_t *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
	if (strcmp(key, "version") == 0) {
		const char *s = scalar(v);
		if (!s || strcmp(s, "1") != 0)
			fail(L, v, "unsupported version (expected 1)");
	} else if (strcmp(key, "systems") == 0) {
		each_pair(L, v, key, systems_pair, ud);
	} else {
		fail(L, k, "unknown key \"%s\" (expected version, systems)", key);
	}
}

apply_status_t
apply_targets_load_string(const char *text, size_t len, const char *name, const rules_t *rules,
			  apply_targets_t **out, char *err, size_t errlen)
{
	loader_t L = {.name = name, .rules = rules, .err = err, .errlen = errlen};
	yaml_parser_t parser;
	*out = NULL;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
	if (!yaml_parser_load(&parser, &L.doc)) {
		snprintf(err, errlen, "%s:%zu: %s", name, parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "not YAML");
		yaml_parser_delete(&parser);
		return APPLY_PERMANENT;
	}
	yaml_parser_delete(&parser);
	apply_targets_t *t = xcalloc(1, sizeof *t);
	yaml_node_t *root = yaml_document_get_root_node(&L.doc);
	if (!root)
		fail(&L, NULL, "empty targets file");
	else
		each_pair(&L, root, "the targets file", top_pair, t);
	if (!L.failed && t->nsystems == 0)
		fail(&L, root, "no systems configured");
	yaml_document_delete(&L.doc);
	if (L.failed) {
		apply_targets_free(t);
		return APPLY_PERMANENT;
	}
	*out = t;
	return APPLY_OK;
}

apply_status_t
apply_targets_load(const char *path, const rules_t *rules, apply_targets_t **out,
		   char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "could not open targets file \"%s\": %s", path, strerror(errno));
		return APPLY_PERMANENT;
	}
	buf_t b = BUF_INIT;
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(&b, chunk, n);
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "could not read targets file \"%s\"", path);
		buf_free(&b);
		return APPLY_PERMANENT;
	}
	apply_status_t st = apply_targets_load_string(b.data ? b.data : "", b.len, path, rules,
						      out, err, errlen);
	buf_free(&b);
	return st;
}

void
apply_targets_free(apply_targets_t *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nsystems; i++) {
		apply_target_system_t *s = &t->systems[i];
		for (size_t j = 0; j < s->nentities; j++) {
			apply_target_entity_t *e = &s->entities[j];
			for (int k = 0; k < APPLY_OP_COUNT; k++) {
				free(e->ops[k].method);
				free(e->ops[k].url);
			}
			free(e->id_json);
			for (size_t k = 0; k < e->nfields; k++)
				free(e->fields[k].json_name);
			free(e->fields);
			for (size_t k = 0; k < e->nextras; k++) {
				free(e->extras[k].json_name);
				free(e->extras[k].expr);
			}
			free(e->extras);
		}
		free(s->entities);
		for (char **h = s->headers; h && *h; h++)
			free(*h);
		free(s->headers);
		free(s->name);
		free(s->base_url);
		free(s->token_env);
		free(s->token_file);
	}
	free(t->systems);
	free(t);
}

const apply_target_system_t *
apply_targets_system(const apply_targets_t *t, int system)
{
	for (size_t i = 0; t && i < t->nsystems; i++)
		if (t->systems[i].system == system)
			return &t->systems[i];
	return NULL;
}

const apply_target_entity_t *
apply_targets_entity(const apply_targets_t *t, int system, int entity)
{
	const apply_target_system_t *s = apply_targets_system(t, system);
	for (size_t i = 0; s && i < s->nentities; i++)
		if (s->entities[i].entity == entity)
			return &s->entities[i];
	return NULL;
}

const apply_target_field_t *
apply_target_entity_field(const apply_target_entity_t *e, int field)
{
	for (size_t i = 0; e && i < e->nfields; i++)
		if (e->fields[i].field == field)
			return &e->fields[i];
	return NULL;
}
