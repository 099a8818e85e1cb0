/*
 * apply_status.h — the status every fallible apply-side function returns.
 *
 * Apply-side errors say whether trying again can help: a RETRIABLE error
 * (target down, database busy, timeout) is retried by the caller later; a
 * PERMANENT one (bad request, corrupt state, misconfiguration) is not — the
 * change goes to the dead-letter queue or the service stops.  The message
 * always goes into the caller's (char *err, size_t errlen).
 */
#ifndef STEWARD_APPLY_APPLY_STATUS_H
#define STEWARD_APPLY_APPLY_STATUS_H

typedef enum apply_status {
	APPLY_OK = 0,
	APPLY_RETRIABLE = 1,
	APPLY_PERMANENT = 2,
	APPLY_NOT_FOUND = 3,  /* lookups: no such row (not an error by itself) */
	APPLY_CONFLICT = 4,   /* a uniqueness rule would break (ambiguous identity) */
} apply_status_t;

#endif
