/*
 * rules_map.c — a captured steward.Change -> canonical entity fields.
 *
 * Finds the source mapping for (system, schema.table), computes every field
 * it feeds (column, constant, value map, concatenation), canonicalizes the
 * values by the field's type, and collects the row's key, external-id links
 * and references.  All output lives in the mapped object's arena.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_internal.h"
#include "xalloc.h"

struct rules_mapped_priv {
	arena_t *arena;
	buf_t tmp;
	buf_t canon;
};

rules_mapped_t *
rules_mapped_new(void)
{
	rules_mapped_t *m = xcalloc(1, sizeof(*m));
	m->priv = xcalloc(1, sizeof(*m->priv));
	m->priv->arena = arena_create(16 * 1024);
	m->system = m->entity = m->source = -1;
	return m;
}

void
rules_mapped_free(rules_mapped_t *m)
{
	if (m == NULL)
		return;
	arena_destroy(m->priv->arena);
	buf_free(&m->priv->tmp);
	buf_free(&m->priv->canon);
	free(m->priv);
	free(m);
}

void
rules_mapped_set(rules_mapped_t *m, int field, const char *value)
{
	if (field < 0 || (size_t)field >= m->nfields)
		return;
	m->present[field] = true;
	m->values[field] = value ? arena_strdup(m->priv->arena, value) : NULL;
}

/* A column of an image: NULL when absent or unchanged; *is_null for SQL NULL. */
static const Steward__Value *
image_find(Steward__Value *const *vals, size_t n, const char *col)
{
	for (size_t i = 0; i < n; i++)
		if (vals[i]->name && strcmp(vals[i]->name, col) == 0)
			return vals[i]->unchanged ? NULL : vals[i];
	return NULL;
}

static bool
value_is_null(const Steward__Value *v)
{
	return v->is_null || v->text == NULL;
}

/* Compute one field; false + err on a value that cannot be mapped. */
static bool
map_field(const rules_t *r, const struct rsource *src, const struct rcolmap *cm,
	  Steward__Value *const *img, size_t nimg, Steward__Value *const *old_img, size_t nold,
	  rules_mapped_t *m, char *err, size_t errlen)
{
	const struct rfield *f = &r->entities[src->entity].fields[cm->field];
	struct rules_mapped_priv *p = m->priv;
	const char *raw = NULL;
	switch (cm->kind) {
	case RCOL_CONSTANT:
		m->present[cm->field] = true;
		m->values[cm->field] = cm->constant;
		return true;
	case RCOL_CONCAT: {
		buf_reset(&p->tmp);
		bool any = false;
		for (size_t i = 0; i < cm->nconcat; i++) {
			const Steward__Value *v = image_find(img, nimg, cm->concat[i]);
			if (v == NULL)
				return true; /* a part was not sent: the field is not in this change */
			if (value_is_null(v) || v->text[0] == '\0')
				continue;
			if (any)
				buf_append_str(&p->tmp, cm->separator);
			buf_append_str(&p->tmp, v->text);
			any = true;
		}
		m->present[cm->field] = true;
		m->values[cm->field] = any ? arena_strdup(p->arena, p->tmp.data) : NULL;
		return true;
	}
	case RCOL_COLUMN:
	default: {
		const Steward__Value *v = image_find(img, nimg, cm->column);
		if (v == NULL)
			return true;
		/* The change did not touch this column: it is not part of it. */
		const Steward__Value *old = old_img ? image_find(old_img, nold, cm->column) : NULL;
		if (old && value_is_null(old) == value_is_null(v) &&
		    (value_is_null(v) || strcmp(old->text, v->text) == 0))
			return true;
		m->present[cm->field] = true;
		if (value_is_null(v)) {
			m->values[cm->field] = NULL;
			return true;
		}
		raw = v->text;
		break;
	}
	}
	if (cm->nmap) {
		for (size_t i = 0; i < cm->nmap; i++)
			if (strcmp(cm->map_from[i], raw) == 0) {
				m->values[cm->field] = cm->map_to[i];
				return true;
			}
		if (!cm->has_default) {
			snprintf(err, errlen, "value \"%s\" of column %s has no entry in the value map of field %s",
				 raw, cm->column, f->name);
			return false;
		}
		m->values[cm->field] = cm->map_default;
		return true;
	}
	if (!rules_value_canon(f->type, raw, &p->canon)) {
		snprintf(err, errlen, "value \"%s\" of column %s is not a valid %s for field %s", raw,
			 cm->column, rules_type_name(f->type), f->name);
		return false;
	}
	if (f->type == RULES_TYPE_REFERENCE) {
		rules_ref_t *ref = &m->refs[m->nrefs++];
		ref->field = cm->field;
		ref->entity = f->ref_entity;
		ref->system = cm->ref_system;
		ref->key = arena_strdup(p->arena, p->canon.data);
		buf_reset(&p->tmp);
		buf_printf(&p->tmp, "%s:%s", r->systems[cm->ref_system], p->canon.data);
		m->values[cm->field] = arena_strdup(p->arena, p->tmp.data);
		return true;
	}
	m->values[cm->field] = arena_strdup(p->arena, p->canon.data);
	return true;
}

static rules_map_status_t map_from(const rules_t *r, const Steward__Change *c, size_t from,
				   rules_mapped_t *m, char *err, size_t errlen);

rules_map_status_t
rules_map(const rules_t *r, const Steward__Change *c, rules_mapped_t *m, char *err, size_t errlen)
{
	return map_from(r, c, 0, m, err, errlen);
}

rules_map_status_t
rules_map_next(const rules_t *r, const Steward__Change *c, rules_mapped_t *m, char *err,
	       size_t errlen)
{
	if (m->source < 0)
		return RULES_MAP_SKIP;
	return map_from(r, c, (size_t)m->source + 1, m, err, errlen);
}

static rules_map_status_t
map_from(const rules_t *r, const Steward__Change *c, size_t from, rules_mapped_t *m, char *err,
	 size_t errlen)
{
	struct rules_mapped_priv *p = m->priv;
	arena_reset(p->arena);
	m->nlinks = m->nrefs = m->nfields = 0;
	m->system = m->entity = m->source = -1;
	m->key = NULL;
	if (err && errlen)
		err[0] = '\0';
	bool del = false;
	switch (c->op) {
	case STEWARD__OP__OP_INSERT:
	case STEWARD__OP__OP_SNAPSHOT_READ:
	case STEWARD__OP__OP_UPDATE:
		break;
	case STEWARD__OP__OP_DELETE:
		del = true;
		break;
	default:
		return RULES_MAP_SKIP;
	}
	int sys = c->source ? rules_system_find(r, c->source) : -1;
	if (sys < 0 || c->table == NULL)
		return RULES_MAP_SKIP;
	buf_reset(&p->tmp);
	buf_printf(&p->tmp, "%s.%s", c->schema ? c->schema : "", c->table);
	const struct rsource *src = NULL;
	for (size_t i = from; i < r->nsources; i++)
		if (r->sources[i].system == sys && strcmp(r->sources[i].table, p->tmp.data) == 0) {
			src = &r->sources[i];
			break;
		}
	if (src == NULL)
		return RULES_MAP_SKIP;
	const struct rentity *e = &r->entities[src->entity];
	m->system = sys;
	m->entity = src->entity;
	m->source = (int)(src - r->sources);
	m->op = del ? RULES_CHANGE_DELETE : RULES_CHANGE_UPSERT;
	m->is_insert = c->op == STEWARD__OP__OP_INSERT || c->op == STEWARD__OP__OP_SNAPSHOT_READ;
	m->commit_ts_us = c->has_commit_ts_us ? c->commit_ts_us : 0;
	m->position.len = 0;
	if (c->has_position && !position_set(&m->position, c->position.data, c->position.len)) {
		snprintf(err, errlen, "position of %zu bytes is too long", c->position.len);
		return RULES_MAP_ERROR;
	}
	m->nfields = e->nfields;
	m->present = arena_calloc(p->arena, (e->nfields + 1) * sizeof(bool));
	m->values = arena_calloc(p->arena, (e->nfields + 1) * sizeof(char *));
	m->refs = arena_calloc(p->arena, (src->ncols + 1) * sizeof(*m->refs));
	m->links = arena_calloc(p->arena, (src->nlinks + 1) * sizeof(*m->links));

	Steward__Value *const *img = del ? c->before : c->after;
	size_t nimg = del ? c->n_before : c->n_after;
	if (nimg == 0) {
		img = del ? c->after : c->before;
		nimg = del ? c->n_after : c->n_before;
	}
	/* Key: from the image, falling back to the other one (an update's old key). */
	buf_reset(&p->tmp);
	for (size_t k = 0; k < src->nkey; k++) {
		const Steward__Value *v = image_find(img, nimg, src->key[k]);
		if (v == NULL)
			v = image_find(del ? c->after : c->before, del ? c->n_after : c->n_before, src->key[k]);
		if (v == NULL) {
			snprintf(err, errlen, "key column %s of %s is missing from the change", src->key[k],
				 src->table);
			return RULES_MAP_ERROR;
		}
		if (value_is_null(v)) {
			/* e.g. a payment without an invoice: the row is not that entity */
			snprintf(err, errlen, "key column %s of %s is null: not a %s", src->key[k], src->table,
				 e->name);
			return RULES_MAP_SKIP;
		}
		if (k)
			buf_append_char(&p->tmp, '|');
		buf_append_str(&p->tmp, v->text);
	}
	m->key = arena_strdup(p->arena, p->tmp.data);
	for (size_t l = 0; l < src->nlinks; l++) {
		const Steward__Value *v = image_find(img, nimg, src->links[l].column);
		if (v == NULL || value_is_null(v) || v->text[0] == '\0')
			continue;
		rules_link_t *lk = &m->links[m->nlinks++];
		lk->system = src->links[l].system;
		lk->key = arena_strdup(p->arena, v->text);
		lk->rule = &src->links[l].rule;
	}
	if (del)
		return RULES_MAP_OK;
	for (size_t i = 0; i < src->ncols; i++)
		if (!map_field(r, src, &src->cols[i], img, nimg,
			       c->op == STEWARD__OP__OP_UPDATE ? c->before : NULL, c->n_before, m, err, errlen))
			return RULES_MAP_ERROR;
	return RULES_MAP_OK;
}

size_t
rules_match_keys(const rules_t *r, const rules_mapped_t *m, buf_t *out)
{
	if (m->entity < 0)
		return 0;
	const struct rentity *e = &r->entities[m->entity];
	size_t n = 0;
	for (size_t i = 0; i < e->nmatch; i++) {
		const struct rmatch *mk = &e->match[i];
		if (!m->present[mk->field] || m->values[mk->field] == NULL)
			continue;
		const char *s = m->values[mk->field];
		size_t start = out->len;
		buf_printf(out, "%s:", e->fields[mk->field].name);
		size_t vstart = out->len;
		if (mk->norm & RNORM_TRIM)
			while (isspace((unsigned char)*s))
				s++;
		bool space = false;
		for (; *s; s++) {
			unsigned char ch = (unsigned char)*s;
			if ((mk->norm & RNORM_DIGITS) && !isdigit(ch))
				continue;
			if ((mk->norm & RNORM_COLLAPSE_SPACE) && isspace(ch)) {
				space = true;
				continue;
			}
			if (space && out->len > vstart)
				buf_append_char(out, ' ');
			space = false;
			buf_append_char(out, (mk->norm & RNORM_LOWERCASE) ? (char)tolower(ch) : (char)ch);
		}
		if (mk->norm & RNORM_TRIM)
			while (out->len > vstart && isspace((unsigned char)out->data[out->len - 1]))
				out->len--;
		if (out->len == vstart) {
			out->len = start; /* empty after normalization: no key */
			out->data[out->len] = '\0';
			continue;
		}
		buf_append_char(out, '\0');
		n++;
	}
	return n;
}
