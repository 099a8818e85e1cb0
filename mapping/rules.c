/*
 * rules.c — loading a rules file and looking things up in it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_internal.h"
#include "xalloc.h"

/* Rules files are small; anything past this is not a rules file. */
#define RULES_MAX_FILE (16u * 1024 * 1024)

rules_status_t
rules_load_string(const char *text, size_t len, const char *name, rules_t **out,
		  rules_diags_t *diags)
{
	rules_t *r = NULL;
	*out = NULL;
	size_t before = diags->nerrors;
	rules_status_t st = rules_parse(text, len, name, &r, diags);
	if (st != RULES_OK)
		goto out;
	rules_validate(r, diags); /* also after parse errors: report everything at once */
	if (diags->nerrors != before) {
		rules_free(r);
		r = NULL;
		st = RULES_INVALID;
	}
out:
	rules_diags_sort(diags);
	*out = r;
	return st;
}

rules_status_t
rules_load(const char *path, rules_t **out, rules_diags_t *diags)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		rules_diag_add(diags, path, 0, 0, RULES_SEV_ERROR, "check the path and permissions",
			       "could not open rules file: %m");
		return RULES_UNREADABLE;
	}
	buf_t b = BUF_INIT;
	char chunk[8192];
	size_t n;
	rules_status_t st;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= RULES_MAX_FILE)
		buf_append(&b, chunk, n);
	if (ferror(f) || b.len > RULES_MAX_FILE) {
		rules_diag_add(diags, path, 0, 0, RULES_SEV_ERROR, NULL,
			       b.len > RULES_MAX_FILE ? "rules file is larger than 16 MB"
						      : "could not read rules file");
		st = RULES_UNREADABLE;
		goto out;
	}
	st = rules_load_string(b.data ? b.data : "", b.len, path, out, diags);
out:
	fclose(f);
	buf_free(&b);
	return st;
}

rules_status_t
rules_check(const char *path, rules_diags_t *diags)
{
	rules_t *r;
	rules_status_t st = rules_load(path, &r, diags);
	rules_free(r);
	return st;
}

void
rules_free(rules_t *r)
{
	if (r == NULL)
		return;
	arena_destroy(r->arena);
	free(r);
}

size_t
rules_nsystems(const rules_t *r)
{
	return r->nsystems;
}

size_t
rules_nentities(const rules_t *r)
{
	return r->nentities;
}

size_t
rules_nfields(const rules_t *r, int entity)
{
	return r->entities[entity].nfields;
}

const char *
rules_system_name(const rules_t *r, int system)
{
	return system >= 0 && (size_t)system < r->nsystems ? r->systems[system] : "-";
}

const char *
rules_entity_name(const rules_t *r, int entity)
{
	return r->entities[entity].name;
}

const char *
rules_field_name(const rules_t *r, int entity, int field)
{
	return r->entities[entity].fields[field].name;
}

rules_type_t
rules_field_type(const rules_t *r, int entity, int field)
{
	return r->entities[entity].fields[field].type;
}

int
rules_field_ref_entity(const rules_t *r, int entity, int field)
{
	return r->entities[entity].fields[field].ref_entity;
}

int
rules_system_find(const rules_t *r, const char *name)
{
	for (size_t i = 0; i < r->nsystems; i++)
		if (strcmp(r->systems[i], name) == 0)
			return (int)i;
	return -1;
}

int
rules_entity_find(const rules_t *r, const char *name)
{
	for (size_t i = 0; i < r->nentities; i++)
		if (strcmp(r->entities[i].name, name) == 0)
			return (int)i;
	return -1;
}

int
rules_field_find(const rules_t *r, int entity, const char *name)
{
	const struct rentity *e = &r->entities[entity];
	for (size_t i = 0; i < e->nfields; i++)
		if (strcmp(e->fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

const char *
rules_file(const rules_t *r)
{
	return r->file;
}

static const struct rcolmap *
colmap_for(const rules_t *r, int system, int entity, int field)
{
	if (system < 0 || entity < 0)
		return NULL;
	int si = r->source_of[system * (int)r->nentities + entity];
	if (si < 0)
		return NULL;
	const struct rsource *s = &r->sources[si];
	for (size_t i = 0; i < s->ncols; i++)
		if (s->cols[i].field == field)
			return &s->cols[i];
	return NULL;
}

const char *
rules_target_column(const rules_t *r, int system, int entity, int field)
{
	const struct rcolmap *cm = colmap_for(r, system, entity, field);
	return cm && cm->kind == RCOL_COLUMN ? cm->column : NULL;
}

const char *
rules_target_table(const rules_t *r, int system, int entity)
{
	int si = r->source_of[system * (int)r->nentities + entity];
	return si < 0 ? NULL : r->sources[si].table;
}

const char *
rules_target_value(const rules_t *r, int system, int entity, int field, const char *value)
{
	const struct rcolmap *cm = colmap_for(r, system, entity, field);
	if (cm == NULL || value == NULL)
		return value;
	for (size_t i = 0; i < cm->nmap; i++)
		if (cm->map_to[i] && strcmp(cm->map_to[i], value) == 0)
			return cm->map_from[i];
	return value;
}

const struct rowner *
rules_owner_for(const struct rfield *f, rules_state_fn state, const void *ctx)
{
	for (size_t i = 0; i < f->nowners; i++) {
		const struct rowner *o = &f->owners[i];
		bool ok = true;
		for (size_t k = 0; k < o->nconds && ok; k++) {
			const struct rcond *c = &o->conds[k];
			bool known;
			const char *v = state(ctx, c->field, &known);
			if (v == NULL) {
				ok = c->match_null;
				continue;
			}
			ok = false;
			for (size_t j = 0; j < c->nvalues; j++)
				if (strcmp(c->values[j], v) == 0) {
					ok = true;
					break;
				}
		}
		if (ok)
			return o;
	}
	return NULL;
}
