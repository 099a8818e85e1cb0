/*
 * rules.h — the ownership rules language and engine: the whole contract.
 *
 * A rules file (YAML, docs/ownership-rules.md) declares systems, canonical
 * entities with typed fields, source mappings (captured table -> entity),
 * identity, field ownership (possibly conditional on the entity's state,
 * with a fallback owner), create/delete rights and targets.  This module
 * loads and checks that file, maps a captured steward.Change to canonical
 * field values, and decides — purely and deterministically — what a change
 * does to an entity's golden record and which targets receive what.
 *
 * Purity: nothing here does I/O except rules_load() reading the rules file.
 * No globals, no hidden state: the same rules, golden record and change
 * always produce the same decision.
 *
 * Typical apply loop (per captured change):
 *
 *     rules_mapped_t *m = rules_mapped_new();          // once
 *     rules_decision_t *d = rules_decision_new();      // once
 *     switch (rules_map(rules, change, m, err, sizeof err)) { ... }
 *     // look up the golden record by (m->system, m->key) or m->links
 *     rules_resolve(rules, golden, m, d);              // allocation-free
 *     // act on d->outcome, d->fields, d->writes / d->targets
 *     rules_golden_apply(rules, golden, m, d);         // new golden state
 *     // store rules_golden_to_json(...) in the same transaction
 *
 * Indexes: systems, entities and fields are identified by small integers
 * assigned at load time in file order (names: rules_system_name(),
 * rules_entity_name(), rules_field_name()).  Field indexes are per entity.
 */
#ifndef STEWARD_MAPPING_RULES_H
#define STEWARD_MAPPING_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "position.h"
#include "steward.pb-c.h"

/* A rules file names at most this many systems (bit masks are 64-bit). */
#define RULES_MAX_SYSTEMS 64

typedef struct rules rules_t;

/* ------------------------------------------------------------------ */
/* Diagnostics                                                         */
/* ------------------------------------------------------------------ */

typedef enum rules_severity {
	RULES_SEV_ERROR = 0,
	RULES_SEV_WARNING = 1,
} rules_severity_t;

typedef struct rules_diag {
	char *file;      /* path as given to rules_load */
	int line, col;   /* 1-based; 0 when the problem has no position */
	rules_severity_t severity;
	char *message;   /* lowercase, no trailing period */
	char *hint;      /* how to fix it; NULL when there is nothing to add */
} rules_diag_t;

/* A list of diagnostics, sorted by position.  Owns its strings. */
typedef struct rules_diags {
	rules_diag_t *items;
	size_t n, cap;
	size_t nerrors;
} rules_diags_t;

#define RULES_DIAGS_INIT {NULL, 0, 0, 0}

void rules_diags_free(rules_diags_t *d); /* frees the items; d itself is the caller's */
/* Append every diagnostic as "file:line:col: error: message\n  hint: ...\n". */
void rules_diags_format(const rules_diags_t *d, buf_t *out);

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

typedef enum rules_status {
	RULES_OK = 0,
	RULES_INVALID = 1,    /* read and parsed, but the rules have errors (in diags) */
	RULES_UNREADABLE = 2, /* cannot read the file or it is not YAML (in diags) */
} rules_status_t;

/*
 * Load, validate and compile a rules file.  Every problem found is added to
 * diags (all of them, not only the first).  On RULES_OK *out is a new rules
 * object (free with rules_free) — diags may still hold warnings; otherwise
 * *out is NULL.  diags is the caller's; clear it with rules_diags_free.
 */
rules_status_t rules_load(const char *path, rules_t **out, rules_diags_t *diags);
/* Same, from text in memory; name is used as the file in diagnostics. */
rules_status_t rules_load_string(const char *text, size_t len, const char *name,
				 rules_t **out, rules_diags_t *diags);
/* Load and discard: the `steward rules check` entry point. */
rules_status_t rules_check(const char *path, rules_diags_t *diags);
void rules_free(rules_t *r); /* accepts NULL */

/* ------------------------------------------------------------------ */
/* Schema introspection (names borrowed from rules, valid until rules_free) */
/* ------------------------------------------------------------------ */

typedef enum rules_type {
	RULES_TYPE_STRING = 0,
	RULES_TYPE_INTEGER,
	RULES_TYPE_DECIMAL,
	RULES_TYPE_BOOLEAN,
	RULES_TYPE_DATE,
	RULES_TYPE_TIMESTAMP,
	RULES_TYPE_JSON,
	RULES_TYPE_REFERENCE,
} rules_type_t;

typedef enum rules_write_mode {
	RULES_WRITE_OVERWRITE = 0,
	RULES_WRITE_FILL_IF_EMPTY = 1, /* write only when the target's value is null/empty */
} rules_write_mode_t;

/* What to do with a create/delete from a system without the right. */
typedef enum rules_unauth_action {
	RULES_UNAUTH_DEAD_LETTER = 0, /* quarantine the change for a human */
	RULES_UNAUTH_IGNORE = 1,      /* drop it silently (counted) */
} rules_unauth_action_t;

size_t rules_nsystems(const rules_t *r);
size_t rules_nentities(const rules_t *r);
size_t rules_nfields(const rules_t *r, int entity);
const char *rules_system_name(const rules_t *r, int system);
const char *rules_entity_name(const rules_t *r, int entity);
const char *rules_field_name(const rules_t *r, int entity, int field);
rules_type_t rules_field_type(const rules_t *r, int entity, int field);
/* Entity a reference field points to; -1 for other types. */
int rules_field_ref_entity(const rules_t *r, int entity, int field);
const char *rules_type_name(rules_type_t t);
/* -1 when unknown. */
int rules_system_find(const rules_t *r, const char *name);
int rules_entity_find(const rules_t *r, const char *name);
int rules_field_find(const rules_t *r, int entity, const char *name);
/* The file the rules came from (as given to rules_load). */
const char *rules_file(const rules_t *r);

/*
 * The column of system's source table that carries field of entity, for
 * writing to that system; NULL when the system has no mapping for the
 * entity or the field is computed (constant, concatenation).
 */
const char *rules_target_column(const rules_t *r, int system, int entity, int field);
/* schema.table of system's source mapping for entity; NULL if none. */
const char *rules_target_table(const rules_t *r, int system, int entity);
/*
 * Translate a canonical value back through system's value map for the
 * field (the first source value that maps to it); value itself otherwise.
 * Borrowed from rules or from value.
 */
const char *rules_target_value(const rules_t *r, int system, int entity, int field,
			       const char *value);

/* ------------------------------------------------------------------ */
/* Rules that decide: every decision names one                          */
/* ------------------------------------------------------------------ */

/*
 * A rule as written in the file.  id is stable across loads of the same
 * file ("ownership.customer.status[0]", "ownership.customer.*",
 * "create.customer", "delete.customer", "replay", "target.erp.customer").
 * Borrowed from rules.
 */
typedef struct rules_rule {
	const char *id;
	const char *file;
	int line, col;
} rules_rule_t;

/* ------------------------------------------------------------------ */
/* Mapping a captured change                                           */
/* ------------------------------------------------------------------ */

typedef enum rules_map_status {
	RULES_MAP_OK = 0,
	RULES_MAP_SKIP = 1,  /* no mapping for this system/table, or not a row change */
	RULES_MAP_ERROR = 2, /* the row cannot be mapped (bad value, missing key); err says why */
} rules_map_status_t;

typedef enum rules_change_op {
	RULES_CHANGE_UPSERT = 0, /* insert, update or snapshot read */
	RULES_CHANGE_DELETE = 1,
} rules_change_op_t;

/* A link found in the row: this entity's key in another system. */
typedef struct rules_link {
	int system;
	const char *key;
	const rules_rule_t *rule; /* the source mapping's links entry */
} rules_link_t;

/* A reference field's value as found: a key of entity in system's namespace. */
typedef struct rules_ref {
	int field;
	int entity;
	int system;
	const char *key;
} rules_ref_t;

/*
 * A change mapped to canonical form.  Built by rules_map; every pointer is
 * owned by the mapped object and valid until the next rules_map on it or
 * rules_mapped_free.  values[f] is the canonical text of field f (NULL =
 * null) and meaningful only when present[f]; a field is absent when the
 * table does not feed it or the source did not send it (unchanged TOAST).
 * Canonical text: integers without sign/leading zeros, decimals without
 * trailing fractional zeros, booleans "true"/"false", dates "YYYY-MM-DD",
 * timestamps "YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]", references
 * "<system>:<key>" (apply may replace them with its own canonical id with
 * rules_mapped_set).
 */
typedef struct rules_mapped {
	int system;             /* index of change->source */
	int entity;
	int source;             /* index of the source mapping used */
	rules_change_op_t op;
	bool is_insert;         /* the source reported an insert/snapshot read */
	const char *key;        /* per-system key; composite keys joined by '|' */
	position_t position;
	int64_t commit_ts_us;
	size_t nfields;
	bool *present;          /* [nfields] */
	const char **values;    /* [nfields] */
	rules_link_t *links;
	size_t nlinks;
	rules_ref_t *refs;
	size_t nrefs;
	struct rules_mapped_priv *priv;
} rules_mapped_t;

rules_mapped_t *rules_mapped_new(void);
void rules_mapped_free(rules_mapped_t *m); /* accepts NULL */

/*
 * Map change (borrowed) into m.  Deletes take the key from the old image
 * (or the new one when absent); upserts take fields from the new image.
 */
rules_map_status_t rules_map(const rules_t *r, const Steward__Change *change,
			     rules_mapped_t *m, char *err, size_t errlen);
/*
 * A table may feed several entities (billing's payments feed payment and
 * settle invoice): after rules_map, rules_map_next maps the same change
 * with the next source mapping of that table into m, RULES_MAP_SKIP when
 * there is none.  Apply handles each mapping as its own decision:
 *
 *     for (st = rules_map(r, c, m, ...); st != RULES_MAP_SKIP;
 *          st = rules_map_next(r, c, m, ...)) { ... }
 *
 * A null key column also gives RULES_MAP_SKIP (the row is not that
 * entity; err says why); on RULES_MAP_ERROR keep calling rules_map_next.
 */
rules_map_status_t rules_map_next(const rules_t *r, const Steward__Change *change,
				  rules_mapped_t *m, char *err, size_t errlen);
/* Replace a field's value (copied into m); value NULL = null. */
void rules_mapped_set(rules_mapped_t *m, int field, const char *value);

/*
 * Deterministic match keys declared under the entity's identity.match: for
 * each, the normalized value ("email:ann@example.com") or nothing when the
 * field is null/absent.  Appends NUL-separated keys to out and returns how
 * many were appended.
 */
size_t rules_match_keys(const rules_t *r, const rules_mapped_t *m, buf_t *out);

/* ------------------------------------------------------------------ */
/* Golden records                                                      */
/* ------------------------------------------------------------------ */

typedef struct rules_golden_field {
	char *value;            /* canonical text; NULL = null (also when never set) */
	int owner;              /* system whose change set it; -1 never set */
	position_t position;    /* that change's source position */
	int64_t commit_ts_us;   /* and commit time */
} rules_golden_field_t;

/*
 * The current canonical state of one entity instance with per-field
 * provenance, its key in each system (the crosswalk row) and, per system,
 * the last source position already reflected (what makes replays no-ops).
 * Owns all its memory.
 */
typedef struct rules_golden {
	int entity;
	bool exists;            /* false: not created yet (or never seen) */
	bool deleted;
	size_t nfields;
	rules_golden_field_t *fields;  /* [nfields] */
	size_t nsystems;
	char **keys;                   /* [nsystems]; NULL = no record there */
	position_t *seen;              /* [nsystems]; len 0 = nothing seen */
} rules_golden_t;

/* An empty (not existing) golden record for entity. */
rules_golden_t *rules_golden_new(const rules_t *r, int entity);
void rules_golden_free(rules_golden_t *g); /* accepts NULL */
/* Record a key (e.g. returned by a target's API on create); key NULL clears. */
void rules_golden_set_key(rules_golden_t *g, int system, const char *key);
/*
 * JSON form for storage:
 *   {"entity":"customer","exists":true,"deleted":false,
 *    "keys":{"erp":"C001"},"seen":{"erp":"<hex position>"},
 *    "fields":{"name":{"value":"Acme"|null,"owner":"crm",
 *                      "pos":"<hex>","commit_ts_us":123}}}
 * Unknown field or system names in input are errors (the rules changed:
 * migrate explicitly).  from_json returns NULL with err set on error.
 */
void rules_golden_to_json(const rules_t *r, const rules_golden_t *g, buf_t *out);
rules_golden_t *rules_golden_from_json(const rules_t *r, const char *json,
				       char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Resolving                                                           */
/* ------------------------------------------------------------------ */

/* How one change ends: exactly one of these. */
typedef enum rules_outcome {
	RULES_OUTCOME_APPLIED = 0,          /* at least one field accepted, or a delete */
	RULES_OUTCOME_ECHO,                 /* nothing new: every field already held (or a replay) */
	RULES_OUTCOME_CONFLICT,             /* no field accepted, at least one conflict */
	RULES_OUTCOME_UNAUTHORIZED_CREATE,  /* the system may not create this entity */
	RULES_OUTCOME_UNAUTHORIZED_DELETE,  /* the system may not delete it */
} rules_outcome_t;

typedef enum rules_verdict {
	RULES_ACCEPTED = 0, /* the owner (or fallback) changed the value */
	RULES_ECHO,         /* the value is the one the golden record holds */
	RULES_CONFLICT,     /* a non-owner tried to change an owned field */
} rules_verdict_t;

typedef struct rules_field_decision {
	int field;
	rules_verdict_t verdict;
	int owner;               /* the field's owner in the entity's current state */
	bool via_fallback;       /* accepted from the fallback owner */
	const char *old_value;   /* golden value before (borrowed from golden) */
	const char *new_value;   /* the change's value (borrowed from mapped) */
	const rules_rule_t *rule;
} rules_field_decision_t;

typedef enum rules_write_kind {
	RULES_WRITE_PROPAGATE = 0, /* an accepted owner value */
	RULES_WRITE_REPAIR = 1,    /* restore the owner's value in a system that diverged */
} rules_write_kind_t;

typedef struct rules_write {
	int system;
	int field;
	const char *value;       /* borrowed (mapped or golden); NULL = null */
	rules_write_mode_t mode;
	rules_write_kind_t kind;
	const rules_rule_t *rule; /* the target rule */
} rules_write_t;

typedef enum rules_target_op {
	RULES_TARGET_UPDATE = 0, /* the system has the record (golden->keys[system]) */
	RULES_TARGET_CREATE = 1, /* create it; record the returned id with rules_golden_set_key */
	RULES_TARGET_DELETE = 2,
} rules_target_op_t;

/* Per-target write set: writes[first .. first+count). */
typedef struct rules_target_set {
	int system;
	rules_target_op_t op;
	const char *key;         /* golden->keys[system] (borrowed); NULL for create */
	size_t first, count;
} rules_target_set_t;

/*
 * The result of rules_resolve.  Reused across calls: its arrays grow to the
 * largest entity and are never shrunk, so the steady state allocates
 * nothing.  Pointers inside borrow from the rules, the golden record and
 * the mapped change passed to rules_resolve and are valid while those are
 * unchanged (rules_golden_apply changes the golden record: read the
 * decision first, or copy what you need).
 */
typedef struct rules_decision {
	rules_outcome_t outcome;
	rules_unauth_action_t unauth_action;  /* for the unauthorized outcomes */
	const rules_rule_t *rule;   /* decided the whole change (create/delete/replay); NULL otherwise */
	bool creates;               /* this change creates the entity */
	bool deletes;               /* this change deletes it */
	size_t naccepted, nechoes, nconflicts;
	rules_field_decision_t *fields;  /* one per present field, in field order */
	size_t nfields;
	rules_write_t *writes;           /* grouped by target, in system order */
	size_t nwrites;
	rules_target_set_t *targets;
	size_t ntargets;
	size_t cap_fields, cap_writes, cap_targets;
} rules_decision_t;

rules_decision_t *rules_decision_new(void);
void rules_decision_free(rules_decision_t *d); /* accepts NULL */

/*
 * Decide what the mapped change m does to golden (which must be for
 * m->entity; pass an empty record from rules_golden_new when the entity is
 * unknown).  Pure and allocation-free once d has grown.  Guarantees:
 *   - a field is accepted only from its owner in golden's current state
 *     (or from the fallback owner while the value is null or the
 *     fallback's own; or, when the change creates the entity, from the
 *     creator for a field that has no value yet);
 *   - a value equal to the golden one is an echo, from anyone;
 *   - a change at or before the last position seen from its system for
 *     this entity is a replay: an echo with no writes;
 *   - writes go to the targets of each accepted field except the system
 *     the value came from and the field's owner; a conflict from a system
 *     that receives the field repairs it with the golden value;
 *   - echoes produce no writes.
 */
void rules_resolve(const rules_t *r, const rules_golden_t *golden,
		   const rules_mapped_t *m, rules_decision_t *d);

/*
 * Make golden reflect decision d (from rules_resolve on the same golden and
 * m): accepted values with their provenance, exists/deleted, m's key and
 * links into the crosswalk, and m's position as seen.  Unauthorized and
 * replayed changes leave the golden record untouched.
 */
void rules_golden_apply(const rules_t *r, rules_golden_t *golden,
			const rules_mapped_t *m, const rules_decision_t *d);

const char *rules_outcome_name(rules_outcome_t o);  /* "applied", "echo", ... */
const char *rules_verdict_name(rules_verdict_t v);  /* "accepted", "echo", "conflict" */

/* ------------------------------------------------------------------ */
/* Explaining                                                          */
/* ------------------------------------------------------------------ */

/*
 * Render a decision for people (text: fields one per line, then what each
 * target receives) or machines (as_json: one JSON object).  The format is
 * the contract of `steward rules explain`; see docs/ownership-rules.md.
 */
void rules_explain(const rules_t *r, const rules_golden_t *golden,
		   const rules_mapped_t *m, const rules_decision_t *d,
		   bool as_json, buf_t *out);

#endif
