/*
 * apply_targets.h — the targets file: how the apply service writes each
 * (system, entity) to a platform's HTTP API.
 *
 * YAML (docs/apply.md, docs/examples/targets.yaml):
 *
 *   version: 1
 *   systems:
 *     crm:
 *       base_url: http://127.0.0.1:18500/crm
 *       token_env: CRM_TOKEN        # or token_file: PATH (never logged)
 *       rate_limit: 200             # requests per second, 0 = unlimited
 *       burst: 50
 *       concurrency: 8              # requests in flight to this system
 *       timeout_ms: 10000
 *       headers: ["X-Api-Version: 59"]
 *       entities:
 *         customer:
 *           update: { method: PATCH, url: "/sobjects/Account/{id:crm}" }
 *           upsert: { method: PATCH, url: "/sobjects/Account/ExternalId__c/{customer_no}" }
 *           create: { method: POST, url: "/sobjects/Account" }
 *           delete: { method: DELETE, url: "/sobjects/Account/{id:crm}" }
 *           id: { json: /id }       # or { location: true }: the new record's id
 *           body:                   # canonical field -> JSON member
 *             customer_no: ExternalId__c
 *             credit_limit: { name: Credit_Limit__c, type: number }
 *           extra:                  # JSON member -> expression, always sent
 *             crm_account_id: "id:crm"
 *
 * Every problem is reported with the file's line number, and the file is
 * checked against the rules (systems, entities and fields must exist).
 * Owner: apply service; everything returned is owned by the
 * apply_targets_t and valid until apply_targets_free.
 */
#ifndef STEWARD_APPLY_APPLY_TARGETS_H
#define STEWARD_APPLY_APPLY_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

#include "apply_status.h"
#include "rules.h"
#include "template.h"

typedef enum apply_op_kind {
	APPLY_OP_CREATE = 0,
	APPLY_OP_UPDATE = 1,
	APPLY_OP_UPSERT = 2,
	APPLY_OP_DELETE = 3,
	APPLY_OP_COUNT = 4,
} apply_op_kind_t;

typedef struct apply_target_op {
	bool present;
	char *method;
	char *url;         /* template, relative to base_url */
} apply_target_op_t;

typedef struct apply_target_field {
	int field;                    /* rules field index */
	char *json_name;
	template_json_type_t type;
} apply_target_field_t;

typedef struct apply_target_extra {
	char *json_name;
	char *expr;                   /* "id:crm", "ref:customer:billing", a field name */
	template_json_type_t type;
} apply_target_extra_t;

typedef struct apply_target_entity {
	int entity;                   /* rules entity index */
	apply_target_op_t ops[APPLY_OP_COUNT];
	char *id_json;                /* JSON pointer to the new id, or NULL */
	bool id_location;             /* id = last segment of the Location header */
	apply_target_field_t *fields;
	size_t nfields;
	apply_target_extra_t *extras;
	size_t nextras;
} apply_target_entity_t;

typedef struct apply_target_system {
	int system;                   /* rules system index */
	char *name;
	char *base_url;
	char *token_env, *token_file;
	double rate_limit, burst;
	unsigned concurrency;
	long timeout_ms;
	char **headers;               /* NULL-terminated */
	apply_target_entity_t *entities;
	size_t nentities;
} apply_target_system_t;

typedef struct apply_targets {
	apply_target_system_t *systems;
	size_t nsystems;
} apply_targets_t;

/*
 * Load and check a targets file against rules (borrowed).  On APPLY_OK *out
 * is the caller's (apply_targets_free).  Otherwise APPLY_PERMANENT with
 * "FILE:LINE: message" in err.
 */
apply_status_t apply_targets_load(const char *path, const rules_t *rules,
				  apply_targets_t **out, char *err, size_t errlen);
/* Same from text; name is used as the file name in messages. */
apply_status_t apply_targets_load_string(const char *text, size_t len, const char *name,
					 const rules_t *rules, apply_targets_t **out,
					 char *err, size_t errlen);
void apply_targets_free(apply_targets_t *t);  /* accepts NULL */

/* Lookups; NULL when not configured. */
const apply_target_system_t *apply_targets_system(const apply_targets_t *t, int system);
const apply_target_entity_t *apply_targets_entity(const apply_targets_t *t, int system,
						   int entity);
/* The body member for a field; NULL when the field is not sent. */
const apply_target_field_t *apply_target_entity_field(const apply_target_entity_t *e,
						      int field);

#endif
