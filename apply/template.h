/*
 * template.h — URL and JSON body templates for target writes.
 *
 * URL templates are text with placeholders:
 *   {field}               a canonical field of the change's entity
 *   {id:crm}              this entity's id in system "crm" (crosswalk)
 *   {ref:customer:billing} the id, in system "billing", of the entity the
 *                         reference field "customer" points to
 *   {{ and }}             literal braces
 * Substituted values are percent-encoded (RFC 3986 unreserved characters
 * pass), so a value can never add a path segment or a query parameter.
 *
 * JSON bodies are built with jansson from a list of (JSON name, expression,
 * JSON type); the expression is what goes between braces above.  Dotted
 * names ("address.city") build nested objects.
 *
 * Values come from the caller through one resolver callback, so this
 * module does no I/O and knows nothing of the state store.  A reference or
 * id that is not known yet yields a distinct status, so the caller can wait
 * (in order) or dead-letter the change naming the reference.  Owner: apply
 * service.
 */
#ifndef STEWARD_APPLY_TEMPLATE_H
#define STEWARD_APPLY_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"

typedef enum template_status {
	TEMPLATE_OK = 0,
	TEMPLATE_MISSING_REF = 1,  /* a {ref:…} not in the crosswalk yet: wait or DLQ */
	TEMPLATE_MISSING_ID = 2,   /* an {id:…} not known yet: the entity needs a create */
	TEMPLATE_INVALID = 3,      /* bad template, unknown field, null in a URL, bad value */
} template_status_t;

typedef enum template_kind {
	TEMPLATE_FIELD = 0,  /* name = field */
	TEMPLATE_ID = 1,     /* name = NULL (this entity), system */
	TEMPLATE_REF = 2,    /* name = reference field, system */
} template_kind_t;

/*
 * Resolve one placeholder.  Return TEMPLATE_OK with *value set (NULL for a
 * null value), or TEMPLATE_MISSING_REF / TEMPLATE_MISSING_ID /
 * TEMPLATE_INVALID (unknown field).  *value is borrowed: it must stay valid
 * until the render call returns.
 */
typedef template_status_t (*template_resolve_fn)(void *ud, template_kind_t kind,
						 const char *name, const char *system,
						 const char **value);

/*
 * Check a URL template's syntax without resolving anything (config load).
 */
template_status_t template_check(const char *tmpl, char *err, size_t errlen);

/*
 * Render a URL template, appending to out.  On anything but TEMPLATE_OK,
 * err names the placeholder (e.g. "missing reference customer in billing")
 * and out's content is unspecified.
 */
template_status_t template_render_url(const char *tmpl, template_resolve_fn resolve, void *ud,
				      buf_t *out, char *err, size_t errlen);

/* Percent-encode s (RFC 3986: everything but A-Z a-z 0-9 - . _ ~). */
void template_url_encode(const char *s, buf_t *out);

typedef enum template_json_type {
	TEMPLATE_JSON_STRING = 0,
	TEMPLATE_JSON_INTEGER = 1,
	TEMPLATE_JSON_NUMBER = 2,   /* decimal text -> JSON number */
	TEMPLATE_JSON_BOOLEAN = 3,  /* t/true/1/yes, f/false/0/no */
	TEMPLATE_JSON_RAW = 4,      /* the value is JSON text */
} template_json_type_t;

/* "string", "integer", "number", "boolean", "json"; false when unknown. */
bool template_json_type_from_name(const char *name, template_json_type_t *out);

typedef struct template_body_field {
	const char *json_name;  /* may be dotted: "address.city" */
	const char *expr;       /* "name", "id:crm", "ref:customer:billing" */
	template_json_type_t type;
	bool omit_null;         /* leave the member out instead of null */
} template_body_field_t;

/*
 * Build a JSON object from fields.  On TEMPLATE_OK *out is a new reference
 * (json_decref); otherwise *out is NULL and err says which field.
 */
template_status_t template_render_body(const template_body_field_t *fields, size_t n,
				       template_resolve_fn resolve, void *ud, json_t **out,
				       char *err, size_t errlen);

#endif
