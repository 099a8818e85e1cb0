/*
 * state.h — the apply service's embedded state store (SQLite, WAL mode).
 *
 * One database file holds everything apply must not lose or repeat:
 *   cursor       last applied change-log position per source
 *   golden       golden record per (entity, entity id): JSON with per-field
 *                provenance, as produced by the rules engine
 *   crosswalk    (entity, canonical id) <-> (system, system key); unique in
 *                both directions, so an ambiguous identity is detected,
 *                never guessed
 *   checkpoint   last position delivered per target
 *   outbox       pending writes to targets (idempotency key unique)
 *   dlq          dead letters: rejected writes with request and response
 *   conflicts    field values refused by the ownership rules
 *
 * Atomicity: apply_state_begin .. apply_state_commit wrap any number of
 * calls in ONE SQLite transaction; the cursor, golden record, crosswalk and
 * outbox rows of a change are written together or not at all.  Outside a
 * transaction each call commits on its own.
 *
 * Durability: a commit that returned APPLY_OK survives kill -9 and power
 * loss (WAL, synchronous=FULL; see state.c).
 *
 * Times are wall-clock milliseconds since 1970 given by the caller, so
 * tests control the clock.  Strings passed in are borrowed for the call;
 * strings handed out are owned by the caller (free(), or the *_free
 * helpers for rows).  Errors: APPLY_RETRIABLE for busy/locked/IO/full,
 * APPLY_PERMANENT otherwise, APPLY_CONFLICT for a broken uniqueness rule,
 * APPLY_NOT_FOUND for a missing row; message in err.
 * One apply_state_t per thread.  Owner: apply service.
 */
#ifndef STEWARD_APPLY_STATE_H
#define STEWARD_APPLY_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apply_status.h"
#include "position.h"

#define APPLY_STATE_SCHEMA_VERSION 1

typedef struct apply_state apply_state_t;

/*
 * Open or create the store at path, migrating its schema to
 * APPLY_STATE_SCHEMA_VERSION.  A file from a newer Steward is refused
 * (APPLY_PERMANENT).  On APPLY_OK *out is the caller's (apply_state_close).
 */
apply_status_t apply_state_open(const char *path, apply_state_t **out,
				char *err, size_t errlen);
/* Rolls back an open transaction.  Accepts NULL. */
void apply_state_close(apply_state_t *s);
/* user_version of the open database. */
int apply_state_schema_version(apply_state_t *s);

/* ---- transactions ---- */

/* BEGIN IMMEDIATE: takes the write lock now (busy timeout applies). */
apply_status_t apply_state_begin(apply_state_t *s, char *err, size_t errlen);
/* On failure the transaction is rolled back. */
apply_status_t apply_state_commit(apply_state_t *s, char *err, size_t errlen);
/*
 * BEGIN IMMEDIATE for a transaction whose commit does not wait for the disk
 * (synchronous=NORMAL for this transaction only; apply_state_commit and
 * apply_state_rollback restore FULL).  Atomic, and durable against a crash
 * of the process; after a power loss it may be forgotten together with
 * every later lazy commit, never out of order (the WAL is replayed as a
 * prefix), and it becomes durable with the next ordinary commit.  For
 * records whose loss only means doing idempotent work again: the outbox
 * worker's answers (a forgotten answer is resent under the same
 * Idempotency-Key).  Never for a cursor advance.
 */
apply_status_t apply_state_begin_lazy(apply_state_t *s, char *err, size_t errlen);
/* Safe to call without an open transaction. */
void apply_state_rollback(apply_state_t *s);
bool apply_state_in_txn(apply_state_t *s);

/* ---- cursor: last applied position per source ---- */

/* No cursor yet: APPLY_OK with out->len == 0. */
apply_status_t apply_state_cursor_get(apply_state_t *s, const char *source,
				      position_t *out, char *err, size_t errlen);
apply_status_t apply_state_cursor_set(apply_state_t *s, const char *source,
				      const position_t *pos, char *err, size_t errlen);

/* ---- golden records ---- */

/* *json_out: newly allocated JSON text; APPLY_NOT_FOUND if none. */
apply_status_t apply_state_golden_get(apply_state_t *s, const char *entity,
				      const char *entity_id, char **json_out,
				      char *err, size_t errlen);
/* Insert or replace. */
apply_status_t apply_state_golden_put(apply_state_t *s, const char *entity,
				      const char *entity_id, const char *json,
				      int64_t now_ms, char *err, size_t errlen);
apply_status_t apply_state_golden_delete(apply_state_t *s, const char *entity,
					 const char *entity_id, char *err, size_t errlen);

/* ---- identity crosswalk ---- */

/*
 * Record that canonical_id of entity is system_key in system.  Idempotent
 * for the same mapping.  APPLY_CONFLICT (nothing written) when the
 * canonical id already has another key in that system, or the key already
 * belongs to another canonical id: an ambiguous identity.
 */
apply_status_t apply_state_xwalk_put(apply_state_t *s, const char *entity,
				     const char *canonical_id, const char *system,
				     const char *system_key, char *err, size_t errlen);
/* The system's key for a canonical id; APPLY_NOT_FOUND if unknown. */
apply_status_t apply_state_xwalk_key(apply_state_t *s, const char *entity,
				     const char *canonical_id, const char *system,
				     char **key_out, char *err, size_t errlen);
/* The canonical id for a system's key; APPLY_NOT_FOUND if unknown. */
apply_status_t apply_state_xwalk_canonical(apply_state_t *s, const char *entity,
					   const char *system, const char *system_key,
					   char **canonical_out, char *err, size_t errlen);

/* ---- per-target checkpoints ---- */

apply_status_t apply_state_checkpoint_get(apply_state_t *s, const char *target,
					  position_t *out, char *err, size_t errlen);
apply_status_t apply_state_checkpoint_set(apply_state_t *s, const char *target,
					  const position_t *pos, char *err, size_t errlen);

/* ---- outbox: pending writes ---- */

typedef struct apply_outbox_row {
	int64_t id;              /* assigned by the store */
	char *entity;
	char *entity_id;
	char *target;            /* system name */
	char *idem_key;          /* unique */
	char *request;           /* serialised request (JSON text) */
	position_t pos;          /* source position of the change */
	char *source;            /* source the position belongs to */
	int attempts;
	int64_t next_attempt_ms;
	int64_t created_ms;
	char *last_error;        /* NULL until a failed attempt */
} apply_outbox_row_t;

/*
 * Queue a write (id, attempts, last_error ignored).  A row with the same
 * idem_key already queued is left as it is (*id_out = its id, *added =
 * false): replaying a change does not queue it twice.  id_out/added may be
 * NULL.
 */
apply_status_t apply_state_outbox_add(apply_state_t *s, const apply_outbox_row_t *row,
				      int64_t *id_out, bool *added, char *err, size_t errlen);
/*
 * Rows ready to send: for every (target, entity, entity id) only the
 * oldest pending row (per-entity order), and only if its next_attempt_ms
 * <= now_ms; at most limit rows, oldest first.  *rows is the caller's
 * (apply_state_rows_free).
 */
apply_status_t apply_state_outbox_due(apply_state_t *s, int64_t now_ms, size_t limit,
				      apply_outbox_row_t **rows, size_t *n,
				      char *err, size_t errlen);
/*
 * Pending rows with id > after_id, in id order, at most limit (ids grow:
 * AUTOINCREMENT, one writer at a time), whether due or not.  *rows is the
 * caller's (apply_state_outbox_rows_free).
 */
apply_status_t apply_state_outbox_after(apply_state_t *s, int64_t after_id, size_t limit,
					apply_outbox_row_t **rows, size_t *n,
					char *err, size_t errlen);
/* Delivered (or dead-lettered): remove the row. */
apply_status_t apply_state_outbox_done(apply_state_t *s, int64_t id, char *err, size_t errlen);
/* Failed attempt: store attempts, next time and the (redacted) error. */
apply_status_t apply_state_outbox_reschedule(apply_state_t *s, int64_t id, int attempts,
					     int64_t next_attempt_ms, const char *last_error,
					     char *err, size_t errlen);
/* Pending rows in total (target NULL) or for one target. */
apply_status_t apply_state_outbox_count(apply_state_t *s, const char *target, int64_t *n,
					char *err, size_t errlen);
void apply_state_outbox_rows_free(apply_outbox_row_t *rows, size_t n);  /* accepts NULL */

/* ---- dead-letter queue ---- */

typedef struct apply_dlq_entry {
	int64_t id;
	int64_t time_ms;
	char *entity;
	char *entity_id;
	char *target;     /* NULL when the change never reached a target */
	char *reason;     /* e.g. "bad request (400)", "ambiguous identity: …" */
	char *request;    /* may be NULL */
	char *response;   /* may be NULL */
	char *idem_key;   /* may be NULL */
	char *source;
	position_t pos;
	char *state;      /* "open", "retried", "dropped" */
} apply_dlq_entry_t;

/* Add an entry in state "open" (id and state ignored). */
apply_status_t apply_state_dlq_add(apply_state_t *s, const apply_dlq_entry_t *e,
				   int64_t *id_out, char *err, size_t errlen);
/* Entries in state (NULL = any), oldest first, at most limit. */
apply_status_t apply_state_dlq_list(apply_state_t *s, const char *state, size_t limit,
				    apply_dlq_entry_t **entries, size_t *n,
				    char *err, size_t errlen);
/* APPLY_NOT_FOUND if no such id; *e is the caller's (apply_state_dlq_clear). */
apply_status_t apply_state_dlq_get(apply_state_t *s, int64_t id, apply_dlq_entry_t *e,
				   char *err, size_t errlen);
/* "retried" or "dropped"; APPLY_NOT_FOUND if no such id. */
apply_status_t apply_state_dlq_set_state(apply_state_t *s, int64_t id, const char *state,
					 char *err, size_t errlen);
void apply_state_dlq_clear(apply_dlq_entry_t *e);  /* frees the strings */
void apply_state_dlq_free(apply_dlq_entry_t *entries, size_t n);  /* accepts NULL */

/* ---- conflict log ---- */

apply_status_t apply_state_conflict_add(apply_state_t *s, int64_t time_ms, const char *entity,
					const char *entity_id, const char *field,
					const char *system, const char *rule, const char *value,
					char *err, size_t errlen);
apply_status_t apply_state_conflict_count(apply_state_t *s, int64_t *n, char *err, size_t errlen);

#endif
