/*
 * rules_explain.c — a decision rendered for people and for machines; the
 * output contract of `steward rules explain` (docs/ownership-rules.md).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "rules_internal.h"

static void
quoted(buf_t *out, const char *v)
{
	if (v == NULL) {
		buf_append_str(out, "null");
		return;
	}
	json_t *s = json_string(v);
	char *t = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
	buf_append_str(out, t ? t : "\"?\"");
	free(t);
	json_decref(s);
}

static void
rule_text(buf_t *out, const rules_rule_t *rule)
{
	if (rule == NULL)
		return;
	if (rule->line > 0)
		buf_printf(out, "%s (%s:%d:%d)", rule->id, rule->file, rule->line, rule->col);
	else
		buf_printf(out, "%s", rule->id);
}

static const char *
op_name(const rules_mapped_t *m)
{
	if (m->op == RULES_CHANGE_DELETE)
		return "delete";
	return m->is_insert ? "insert" : "update";
}

static const char *
target_op_name(rules_target_op_t op)
{
	return op == RULES_TARGET_CREATE ? "create" : op == RULES_TARGET_DELETE ? "delete" : "update";
}

static void
explain_text(const rules_t *r, const rules_golden_t *g, const rules_mapped_t *m,
	     const rules_decision_t *d, buf_t *out)
{
	const struct rentity *e = &r->entities[m->entity];
	buf_printf(out, "change:  %s %s %s key=%s\n", r->systems[m->system], r->sources[m->source].table,
		   op_name(m), m->key ? m->key : "?");
	buf_printf(out, "entity:  %s%s\n", e->name,
		   d->creates ? " (new)" : g->exists && !g->deleted ? "" : " (not known)");
	buf_printf(out, "outcome: %s", rules_outcome_name(d->outcome));
	if (d->outcome == RULES_OUTCOME_UNAUTHORIZED_CREATE || d->outcome == RULES_OUTCOME_UNAUTHORIZED_DELETE)
		buf_printf(out, " -> %s", d->unauth_action == RULES_UNAUTH_IGNORE ? "ignored" : "dead letter");
	if (d->rule) {
		buf_append_str(out, "  by ");
		rule_text(out, d->rule);
	}
	buf_append_char(out, '\n');
	for (size_t i = 0; i < m->nlinks; i++)
		buf_printf(out, "link:    %s key %s\n", r->systems[m->links[i].system], m->links[i].key);
	if (d->nfields) {
		buf_append_str(out, "\nfields:\n");
		for (size_t i = 0; i < d->nfields; i++) {
			const rules_field_decision_t *fd = &d->fields[i];
			buf_printf(out, "  %-16s %-9s ", e->fields[fd->field].name, rules_verdict_name(fd->verdict));
			if (fd->verdict == RULES_ECHO) {
				quoted(out, fd->new_value);
			} else {
				quoted(out, fd->old_value);
				buf_append_str(out, " -> ");
				quoted(out, fd->new_value);
			}
			buf_printf(out, "  owner %s%s  by ", rules_system_name(r, fd->owner),
				   fd->via_fallback ? " (fallback)" : "");
			rule_text(out, fd->rule);
			buf_append_char(out, '\n');
		}
	}
	buf_append_str(out, "\ntargets:\n");
	if (d->ntargets == 0)
		buf_append_str(out, "  (none)\n");
	for (size_t t = 0; t < d->ntargets; t++) {
		const rules_target_set_t *ts = &d->targets[t];
		const char *table = rules_target_table(r, ts->system, m->entity);
		buf_printf(out, "  %s %s %s", r->systems[ts->system], target_op_name(ts->op), table ? table : e->name);
		if (ts->key)
			buf_printf(out, " key=%s", ts->key);
		buf_append_char(out, '\n');
		for (size_t i = ts->first; i < ts->first + ts->count; i++) {
			const rules_write_t *w = &d->writes[i];
			const char *col = rules_target_column(r, w->system, m->entity, w->field);
			buf_printf(out, "    %s", e->fields[w->field].name);
			if (col && strcmp(col, e->fields[w->field].name) != 0)
				buf_printf(out, " (column %s)", col);
			buf_append_str(out, " = ");
			quoted(out, rules_target_value(r, w->system, m->entity, w->field, w->value));
			buf_printf(out, "  %s%s  by ", w->mode == RULES_WRITE_FILL_IF_EMPTY ? "fill_if_empty" : "overwrite",
				   w->kind == RULES_WRITE_REPAIR ? " repair" : "");
			rule_text(out, w->rule);
			buf_append_char(out, '\n');
		}
	}
}

static json_t *
rule_json(const rules_rule_t *rule)
{
	if (rule == NULL)
		return json_null();
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(rule->id));
	json_object_set_new(o, "file", json_string(rule->file));
	json_object_set_new(o, "line", json_integer(rule->line));
	json_object_set_new(o, "col", json_integer(rule->col));
	return o;
}

static json_t *
str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static void
explain_json(const rules_t *r, const rules_golden_t *g, const rules_mapped_t *m,
	     const rules_decision_t *d, buf_t *out)
{
	const struct rentity *e = &r->entities[m->entity];
	json_t *o = json_object();
	json_object_set_new(o, "system", json_string(r->systems[m->system]));
	json_object_set_new(o, "table", json_string(r->sources[m->source].table));
	json_object_set_new(o, "op", json_string(op_name(m)));
	json_object_set_new(o, "key", str_or_null(m->key));
	json_object_set_new(o, "entity", json_string(e->name));
	json_object_set_new(o, "known", json_boolean(g->exists && !g->deleted));
	json_object_set_new(o, "outcome", json_string(rules_outcome_name(d->outcome)));
	if (d->outcome == RULES_OUTCOME_UNAUTHORIZED_CREATE || d->outcome == RULES_OUTCOME_UNAUTHORIZED_DELETE)
		json_object_set_new(o, "action", json_string(d->unauth_action == RULES_UNAUTH_IGNORE ? "ignore"
												  : "dead_letter"));
	json_object_set_new(o, "rule", rule_json(d->rule));
	json_t *links = json_array();
	for (size_t i = 0; i < m->nlinks; i++) {
		json_t *l = json_object();
		json_object_set_new(l, "system", json_string(r->systems[m->links[i].system]));
		json_object_set_new(l, "key", json_string(m->links[i].key));
		json_array_append_new(links, l);
	}
	json_object_set_new(o, "links", links);
	json_t *fields = json_array();
	for (size_t i = 0; i < d->nfields; i++) {
		const rules_field_decision_t *fd = &d->fields[i];
		json_t *f = json_object();
		json_object_set_new(f, "field", json_string(e->fields[fd->field].name));
		json_object_set_new(f, "verdict", json_string(rules_verdict_name(fd->verdict)));
		json_object_set_new(f, "old", str_or_null(fd->old_value));
		json_object_set_new(f, "new", str_or_null(fd->new_value));
		json_object_set_new(f, "owner", fd->owner >= 0 ? json_string(r->systems[fd->owner]) : json_null());
		json_object_set_new(f, "via_fallback", json_boolean(fd->via_fallback));
		json_object_set_new(f, "rule", rule_json(fd->rule));
		json_array_append_new(fields, f);
	}
	json_object_set_new(o, "fields", fields);
	json_t *targets = json_array();
	for (size_t t = 0; t < d->ntargets; t++) {
		const rules_target_set_t *ts = &d->targets[t];
		json_t *to = json_object();
		json_object_set_new(to, "system", json_string(r->systems[ts->system]));
		json_object_set_new(to, "op", json_string(target_op_name(ts->op)));
		json_object_set_new(to, "table", str_or_null(rules_target_table(r, ts->system, m->entity)));
		json_object_set_new(to, "key", str_or_null(ts->key));
		json_t *writes = json_array();
		for (size_t i = ts->first; i < ts->first + ts->count; i++) {
			const rules_write_t *w = &d->writes[i];
			json_t *wo = json_object();
			json_object_set_new(wo, "field", json_string(e->fields[w->field].name));
			json_object_set_new(wo, "column", str_or_null(rules_target_column(r, w->system, m->entity, w->field)));
			json_object_set_new(wo, "value", str_or_null(rules_target_value(r, w->system, m->entity, w->field, w->value)));
			json_object_set_new(wo, "mode", json_string(w->mode == RULES_WRITE_FILL_IF_EMPTY ? "fill_if_empty" : "overwrite"));
			json_object_set_new(wo, "kind", json_string(w->kind == RULES_WRITE_REPAIR ? "repair" : "propagate"));
			json_object_set_new(wo, "rule", rule_json(w->rule));
			json_array_append_new(writes, wo);
		}
		json_object_set_new(to, "writes", writes);
		json_array_append_new(targets, to);
	}
	json_object_set_new(o, "targets", targets);
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	buf_append_str(out, s);
	buf_append_char(out, '\n');
	free(s);
	json_decref(o);
}

void
rules_explain(const rules_t *r, const rules_golden_t *g, const rules_mapped_t *m,
	      const rules_decision_t *d, bool as_json, buf_t *out)
{
	if (as_json)
		explain_json(r, g, m, d, out);
	else
		explain_text(r, g, m, d, out);
}
