/*
 * rules_internal.h — the compiled form of a rules file, shared by the
 * mapping/ implementation files only (never included outside mapping/).
 *
 * Everything hangs off one arena owned by struct rules: names are interned
 * once at load, fields are dense per-entity indexes, ownership is a short
 * precedence array per field and targets are bit masks, so that resolving
 * a change touches no allocator and no hash table.
 */
#ifndef STEWARD_MAPPING_RULES_INTERNAL_H
#define STEWARD_MAPPING_RULES_INTERNAL_H

#include <stdarg.h>

#include "arena.h"
#include "rules.h"

struct rpos {
	int line, col;
};

/* One condition: field's current value is one of values (or null). */
struct rcond {
	int field;
	const char **values;
	size_t nvalues;
	bool match_null;
	struct rpos pos;
};

/* One precedence entry of a field's ownership; all conds must hold. */
struct rowner {
	int system;
	int fallback;           /* -1: none */
	struct rcond *conds;
	size_t nconds;
	rules_rule_t rule;
	bool wildcard;          /* came from the entity's "*" entry */
};

struct rfield {
	const char *name;
	rules_type_t type;
	int ref_entity;         /* RULES_TYPE_REFERENCE only, else -1 */
	const char **values;    /* allowed values (enumeration), may be empty */
	size_t nvalues;
	struct rpos pos;
	struct rowner *owners;  /* ordered precedence */
	size_t nowners;
	uint64_t target_mask;   /* systems that receive the field */
	uint64_t fill_mask;     /* of which: fill-if-empty */
	const rules_rule_t **target_rule; /* [nsystems] */
};

enum rnorm {
	RNORM_TRIM = 1,
	RNORM_LOWERCASE = 2,
	RNORM_DIGITS = 4,
	RNORM_COLLAPSE_SPACE = 8,
};

struct rmatch {
	int field;
	unsigned norm;
	struct rpos pos;
};

struct rentity {
	const char *name;
	struct rpos pos;
	struct rfield *fields;
	size_t nfields;
	uint64_t create_mask, delete_mask;
	rules_unauth_action_t unauth;
	rules_rule_t create_rule, delete_rule;
	struct rmatch *match;
	size_t nmatch;
	bool has_ownership;
};

enum rcol_kind {
	RCOL_COLUMN = 0,
	RCOL_CONSTANT,
	RCOL_CONCAT,
};

/* How one field of the entity is computed from a row. */
struct rcolmap {
	int field;
	enum rcol_kind kind;
	const char *column;         /* RCOL_COLUMN */
	const char *constant;       /* RCOL_CONSTANT, canonical; NULL = null */
	const char **concat;        /* RCOL_CONCAT column names */
	size_t nconcat;
	const char *separator;
	const char **map_from, **map_to; /* value map (map_to canonical; NULL = null) */
	size_t nmap;
	bool has_default;
	const char *map_default;
	int ref_system;             /* reference fields: key namespace */
	struct rpos pos;
};

struct rlink {
	const char *column;
	int system;
	rules_rule_t rule;
};

struct rsource {
	int system;
	const char *table;          /* "schema.table" as written */
	int entity;
	const char **key;
	size_t nkey;
	struct rcolmap *cols;
	size_t ncols;
	struct rlink *links;
	size_t nlinks;
	struct rpos pos;
};

struct rtarget {
	int system;
	int entity;
	bool create, delete;
	rules_rule_t rule;
};

struct rules {
	arena_t *arena;
	const char *file;
	const char **systems;
	struct rpos *system_pos;
	size_t nsystems;
	struct rentity *entities;
	size_t nentities;
	struct rsource *sources;
	size_t nsources;
	struct rtarget *targets;
	size_t ntargets;
	/* per (system, entity): index into sources, -1 none; [nsystems*nentities] */
	int *source_of;
	/* per (system, entity): index into targets, -1 none */
	int *target_of;
	rules_rule_t replay_rule;
	rules_rule_t lifecycle_rule;
};

/* rules_diag.c */
void rules_diag_add(rules_diags_t *d, const char *file, int line, int col,
		    rules_severity_t sev, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
void rules_diags_sort(rules_diags_t *d);

/* rules_parse.c: YAML text -> struct rules (names resolved); problems to diags. */
rules_status_t rules_parse(const char *text, size_t len, const char *name,
			   rules_t **out, rules_diags_t *diags);

/* rules_validate.c: semantic checks on a parsed rules object. */
void rules_validate(const rules_t *r, rules_diags_t *diags);

/*
 * rules_value.c: canonical text of a value of type t, into out (which is
 * reset first).  False when text is not a valid t.
 */
bool rules_value_canon(rules_type_t t, const char *text, buf_t *out);
/* Type from its name ("string", "decimal", ...); false if unknown. */
bool rules_type_from_name(const char *name, rules_type_t *t);

/* Owner entry in force for field f given a state lookup; NULL if none. */
typedef const char *(*rules_state_fn)(const void *ctx, int field, bool *known);
const struct rowner *rules_owner_for(const struct rfield *f, rules_state_fn state,
				     const void *ctx);

static inline bool
rules_mask_has(uint64_t mask, int system)
{
	return system >= 0 && (mask >> system) & 1u;
}

#endif
