/*
 * rules_golden.c — golden records: creation, crosswalk keys, JSON form.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_internal.h"
#include "xalloc.h"

rules_golden_t *
rules_golden_new(const rules_t *r, int entity)
{
	rules_golden_t *g = xcalloc(1, sizeof(*g));
	g->entity = entity;
	g->nfields = r->entities[entity].nfields;
	g->fields = xcalloc(g->nfields + 1, sizeof(*g->fields));
	for (size_t i = 0; i < g->nfields; i++)
		g->fields[i].owner = -1;
	g->nsystems = r->nsystems;
	g->keys = xcalloc(g->nsystems + 1, sizeof(char *));
	g->seen = xcalloc(g->nsystems + 1, sizeof(position_t));
	return g;
}

void
rules_golden_free(rules_golden_t *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->nfields; i++)
		free(g->fields[i].value);
	for (size_t i = 0; i < g->nsystems; i++)
		free(g->keys[i]);
	free(g->fields);
	free(g->keys);
	free(g->seen);
	free(g);
}

void
rules_golden_set_key(rules_golden_t *g, int system, const char *key)
{
	if (system < 0 || (size_t)system >= g->nsystems)
		return;
	char *k = key ? xstrdup(key) : NULL;
	free(g->keys[system]);
	g->keys[system] = k;
}

void
rules_golden_to_json(const rules_t *r, const rules_golden_t *g, buf_t *out)
{
	json_t *o = json_object();
	char hex[2 * POSITION_MAX + 1];
	json_object_set_new(o, "entity", json_string(r->entities[g->entity].name));
	json_object_set_new(o, "exists", json_boolean(g->exists));
	json_object_set_new(o, "deleted", json_boolean(g->deleted));
	json_t *keys = json_object(), *seen = json_object(), *fields = json_object();
	for (size_t s = 0; s < g->nsystems; s++) {
		if (g->keys[s])
			json_object_set_new(keys, r->systems[s], json_string(g->keys[s]));
		if (g->seen[s].len) {
			position_hex(&g->seen[s], hex, sizeof hex);
			json_object_set_new(seen, r->systems[s], json_string(hex));
		}
	}
	for (size_t f = 0; f < g->nfields; f++) {
		const rules_golden_field_t *gf = &g->fields[f];
		if (gf->owner < 0 && gf->value == NULL)
			continue;
		json_t *fo = json_object();
		json_object_set_new(fo, "value", gf->value ? json_string(gf->value) : json_null());
		json_object_set_new(fo, "owner", gf->owner >= 0 ? json_string(r->systems[gf->owner]) : json_null());
		position_hex(&gf->position, hex, sizeof hex);
		json_object_set_new(fo, "pos", json_string(hex));
		json_object_set_new(fo, "commit_ts_us", json_integer(gf->commit_ts_us));
		json_object_set_new(fields, r->entities[g->entity].fields[f].name, fo);
	}
	json_object_set_new(o, "keys", keys);
	json_object_set_new(o, "seen", seen);
	json_object_set_new(o, "fields", fields);
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	buf_append_str(out, s);
	free(s);
	json_decref(o);
}

static bool
sys_map(const rules_t *r, json_t *obj, const char *what, char *err, size_t errlen,
	rules_golden_t *g, bool positions)
{
	const char *k;
	json_t *v;
	if (obj == NULL)
		return true;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "golden record: \"%s\" must be an object", what);
		return false;
	}
	json_object_foreach(obj, k, v) {
		int s = rules_system_find(r, k);
		if (s < 0 || !json_is_string(v)) {
			snprintf(err, errlen, "golden record: %s entry \"%s\" is not a known system with a string",
				 what, k);
			return false;
		}
		if (positions) {
			if (!position_from_hex(&g->seen[s], json_string_value(v))) {
				snprintf(err, errlen, "golden record: bad position \"%s\"", json_string_value(v));
				return false;
			}
		} else {
			rules_golden_set_key(g, s, json_string_value(v));
		}
	}
	return true;
}

rules_golden_t *
rules_golden_from_json(const rules_t *r, const char *text, char *err, size_t errlen)
{
	json_error_t je;
	rules_golden_t *g = NULL;
	json_t *o = json_loads(text, 0, &je);
	if (!json_is_object(o)) {
		snprintf(err, errlen, "golden record is not a JSON object: %s", o ? "wrong type" : je.text);
		goto fail;
	}
	json_t *ent = json_object_get(o, "entity");
	int e = json_is_string(ent) ? rules_entity_find(r, json_string_value(ent)) : -1;
	if (e < 0) {
		snprintf(err, errlen, "golden record: unknown or missing entity");
		goto fail;
	}
	g = rules_golden_new(r, e);
	g->exists = json_is_true(json_object_get(o, "exists")) || json_object_get(o, "exists") == NULL;
	g->deleted = json_is_true(json_object_get(o, "deleted"));
	if (!sys_map(r, json_object_get(o, "keys"), "keys", err, errlen, g, false) ||
	    !sys_map(r, json_object_get(o, "seen"), "seen", err, errlen, g, true))
		goto fail;
	json_t *fields = json_object_get(o, "fields");
	const char *k;
	json_t *v;
	if (fields && !json_is_object(fields)) {
		snprintf(err, errlen, "golden record: \"fields\" must be an object");
		goto fail;
	}
	json_object_foreach(fields, k, v) {
		int f = rules_field_find(r, e, k);
		if (f < 0) {
			snprintf(err, errlen, "golden record: unknown field \"%s\" of %s", k,
				 r->entities[e].name);
			goto fail;
		}
		rules_golden_field_t *gf = &g->fields[f];
		json_t *val = json_is_object(v) ? json_object_get(v, "value") : v;
		if (json_is_string(val)) {
			gf->value = xstrdup(json_string_value(val));
		} else if (json_is_integer(val) || json_is_real(val) || json_is_boolean(val)) {
			char *s = json_dumps(val, JSON_ENCODE_ANY);
			gf->value = s ? xstrdup(s) : NULL;
			free(s);
		} else if (!json_is_null(val) && val != NULL) {
			snprintf(err, errlen, "golden record: field \"%s\" has a non-scalar value", k);
			goto fail;
		}
		if (!json_is_object(v))
			continue;
		json_t *ow = json_object_get(v, "owner"), *pos = json_object_get(v, "pos"),
		       *ts = json_object_get(v, "commit_ts_us");
		if (json_is_string(ow) && (gf->owner = rules_system_find(r, json_string_value(ow))) < 0) {
			snprintf(err, errlen, "golden record: field \"%s\" owned by unknown system \"%s\"", k,
				 json_string_value(ow));
			goto fail;
		}
		if (json_is_string(pos) && !position_from_hex(&gf->position, json_string_value(pos))) {
			snprintf(err, errlen, "golden record: field \"%s\" has a bad position", k);
			goto fail;
		}
		if (json_is_integer(ts))
			gf->commit_ts_us = json_integer_value(ts);
	}
	json_decref(o);
	return g;
fail:
	rules_golden_free(g);
	json_decref(o);
	return NULL;
}
