/*
 * template.c — URL and JSON body rendering for target writes.
 */
#include "template.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

#define EXPR_MAX 256

void
template_url_encode(const char *s, buf_t *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			buf_append_char(out, (char) *p);
		} else {
			char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			buf_append(out, enc, 3);
		}
	}
}

/*
 * Split "name", "id:sys" or "ref:name:sys" (expr is modified in place).
 */
static template_status_t
parse_expr(char *expr, template_kind_t *kind, const char **name, const char **system,
	   char *err, size_t errlen)
{
	char *c1 = strchr(expr, ':');
	*system = NULL;
	if (!c1) {
		*kind = TEMPLATE_FIELD;
		*name = expr;
	} else {
		*c1 = '\0';
		char *rest = c1 + 1;
		char *c2 = strchr(rest, ':');
		if (strcmp(expr, "id") == 0 && !c2 && *rest) {
			*kind = TEMPLATE_ID;
			*name = NULL;
			*system = rest;
		} else if (strcmp(expr, "ref") == 0 && c2 && c2 > rest && c2[1] &&
			   !strchr(c2 + 1, ':')) {
			*c2 = '\0';
			*kind = TEMPLATE_REF;
			*name = rest;
			*system = c2 + 1;
		} else {
			*c1 = ':';
			snprintf(err, errlen, "bad placeholder \"{%s}\": expected {field}, "
				 "{id:system} or {ref:field:system}", expr);
			return TEMPLATE_INVALID;
		}
	}
	const char *n = *kind == TEMPLATE_ID ? *system : *name;
	if (!*n) {
		snprintf(err, errlen, "empty placeholder \"{}\"");
		return TEMPLATE_INVALID;
	}
	return TEMPLATE_OK;
}

static template_status_t
resolve_expr(const char *expr_in, template_resolve_fn resolve, void *ud, const char **value,
	     char *err, size_t errlen)
{
	char expr[EXPR_MAX];
	template_kind_t kind;
	const char *name, *system;
	if (strlen(expr_in) >= sizeof expr) {
		snprintf(err, errlen, "placeholder longer than %d characters", EXPR_MAX - 1);
		return TEMPLATE_INVALID;
	}
	strcpy(expr, expr_in);
	template_status_t st = parse_expr(expr, &kind, &name, &system, err, errlen);
	if (st != TEMPLATE_OK)
		return st;
	*value = NULL;
	if (!resolve) {
		*value = "";
		return TEMPLATE_OK;  /* syntax check only */
	}
	st = resolve(ud, kind, name, system, value);
	switch (st) {
	case TEMPLATE_OK:
		break;
	case TEMPLATE_MISSING_REF:
		snprintf(err, errlen, "missing reference %s in %s", name, system);
		break;
	case TEMPLATE_MISSING_ID:
		snprintf(err, errlen, "no id in %s yet", system);
		break;
	case TEMPLATE_INVALID:
		if (kind == TEMPLATE_FIELD)
			snprintf(err, errlen, "unknown field \"%s\"", name);
		else
			snprintf(err, errlen, "cannot resolve \"{%s}\"", expr_in);
		break;
	}
	return st;
}

/* Walk a URL template; with resolve == NULL only the syntax is checked. */
static template_status_t
render(const char *tmpl, template_resolve_fn resolve, void *ud, buf_t *out,
       char *err, size_t errlen)
{
	for (const char *p = tmpl; *p;) {
		if (p[0] == '{' && p[1] == '{') {
			buf_append_char(out, '{');
			p += 2;
		} else if (p[0] == '}' && p[1] == '}') {
			buf_append_char(out, '}');
			p += 2;
		} else if (*p == '}') {
			snprintf(err, errlen, "unmatched '}' at offset %zu of template",
				 (size_t) (p - tmpl));
			return TEMPLATE_INVALID;
		} else if (*p == '{') {
			const char *end = strchr(p + 1, '}');
			const char *nested = strchr(p + 1, '{');
			if (!end || (nested && nested < end)) {
				snprintf(err, errlen, "unterminated placeholder at offset %zu of "
					 "template", (size_t) (p - tmpl));
				return TEMPLATE_INVALID;
			}
			char *expr = xstrndup(p + 1, (size_t) (end - p - 1));
			const char *value;
			template_status_t st = resolve_expr(expr, resolve, ud, &value, err, errlen);
			if (st == TEMPLATE_OK && !value) {
				snprintf(err, errlen, "\"{%s}\" is null and cannot be part of a URL",
					 expr);
				st = TEMPLATE_INVALID;
			}
			free(expr);
			if (st != TEMPLATE_OK)
				return st;
			template_url_encode(value, out);
			p = end + 1;
		} else {
			buf_append_char(out, *p++);
		}
	}
	return TEMPLATE_OK;
}

template_status_t
template_check(const char *tmpl, char *err, size_t errlen)
{
	buf_t scratch = BUF_INIT;
	template_status_t st = render(tmpl, NULL, NULL, &scratch, err, errlen);
	buf_free(&scratch);
	return st;
}

template_status_t
template_render_url(const char *tmpl, template_resolve_fn resolve, void *ud, buf_t *out,
		    char *err, size_t errlen)
{
	return render(tmpl, resolve, ud, out, err, errlen);
}

bool
template_json_type_from_name(const char *name, template_json_type_t *out)
{
	static const char *const names[] = {"string", "integer", "number", "boolean", "json"};
	for (int i = 0; i < 5; i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (template_json_type_t) i;
			return true;
		}
	}
	return false;
}

/* Convert a source text value to the JSON type asked for; NULL if it is not one. */
static json_t *
to_json(const char *v, template_json_type_t type)
{
	char *end;
	switch (type) {
	case TEMPLATE_JSON_STRING:
		return json_string(v);  /* NULL on invalid UTF-8 */
	case TEMPLATE_JSON_INTEGER: {
		errno = 0;
		long long n = strtoll(v, &end, 10);
		if (errno || end == v || *end)
			return NULL;
		return json_integer(n);
	}
	case TEMPLATE_JSON_NUMBER: {
		errno = 0;
		double d = strtod(v, &end);
		if (errno || end == v || *end)
			return NULL;
		return json_real(d);
	}
	case TEMPLATE_JSON_BOOLEAN:
		if (!strcasecmp(v, "t") || !strcasecmp(v, "true") || !strcmp(v, "1") ||
		    !strcasecmp(v, "yes"))
			return json_true();
		if (!strcasecmp(v, "f") || !strcasecmp(v, "false") || !strcmp(v, "0") ||
		    !strcasecmp(v, "no"))
			return json_false();
		return NULL;
	case TEMPLATE_JSON_RAW:
		return json_loads(v, JSON_DECODE_ANY, NULL);
	}
	return NULL;
}

/* Set obj[a][b]…[last] = v for a dotted name (steals v).  False on a clash. */
static bool
set_dotted(json_t *obj, const char *name, json_t *v)
{
	char *path = xstrdup(name);
	char *seg = path, *dot;
	bool ok = true;
	while ((dot = strchr(seg, '.')) != NULL) {
		*dot = '\0';
		json_t *child = json_object_get(obj, seg);
		if (!child) {
			child = json_object();
			json_object_set_new(obj, seg, child);
		} else if (!json_is_object(child)) {
			ok = false;
			break;
		}
		obj = child;
		seg = dot + 1;
	}
	if (ok)
		ok = json_object_set_new(obj, seg, v) == 0;
	else
		json_decref(v);
	free(path);
	return ok;
}

template_status_t
template_render_body(const template_body_field_t *fields, size_t n,
		     template_resolve_fn resolve, void *ud, json_t **out, char *err, size_t errlen)
{
	json_t *body = json_object();
	template_status_t st = TEMPLATE_OK;
	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		const template_body_field_t *f = &fields[i];
		const char *value;
		st = resolve_expr(f->expr, resolve, ud, &value, err, errlen);
		if (st != TEMPLATE_OK)
			goto out;
		json_t *j;
		if (!value) {
			if (f->omit_null)
				continue;
			j = json_null();
		} else if (!(j = to_json(value, f->type))) {
			snprintf(err, errlen, "value of \"%s\" for \"%s\" is not a valid %s",
				 f->expr, f->json_name,
				 f->type == TEMPLATE_JSON_STRING ? "UTF-8 string"
				 : f->type == TEMPLATE_JSON_RAW ? "JSON text"
				 : f->type == TEMPLATE_JSON_BOOLEAN ? "boolean" : "number");
			st = TEMPLATE_INVALID;
			goto out;
		}
		if (!set_dotted(body, f->json_name, j)) {
			snprintf(err, errlen, "JSON name \"%s\" clashes with another field",
				 f->json_name);
			st = TEMPLATE_INVALID;
			goto out;
		}
	}
	*out = body;
	body = NULL;
out:
	json_decref(body);
	return st;
}
