/*
 * idem.h — deterministic Idempotency-Key derivation for target writes.
 *
 * A write to a target carries a key derived only from what the write means:
 * (entity, entity id, target, change position, the sorted field set and
 * values).  The same change applied again — after a crash, a retry or a
 * `--replay-from` — yields the same key, so targets that deduplicate by
 * Idempotency-Key (Stripe-style) recognise it.  Nothing time- or
 * process-dependent enters the key.
 *
 * The hash is SHA-256 (FIPS 180-4), implemented here because none of our
 * existing dependencies exposes one portably.  Owner: apply service.
 */
#ifndef STEWARD_APPLY_IDEM_H
#define STEWARD_APPLY_IDEM_H

#include <stddef.h>
#include <stdint.h>

#include "position.h"

#define IDEM_SHA256_LEN 32
#define IDEM_KEY_LEN 64  /* lower-case hex of a SHA-256 digest */

/* Incremental SHA-256; the struct lives on the caller's stack. */
typedef struct idem_sha256 {
	uint32_t state[8];
	uint64_t total_len;  /* bytes hashed so far */
	uint8_t block[64];
	size_t block_len;
} idem_sha256_t;

void idem_sha256_init(idem_sha256_t *ctx);
void idem_sha256_update(idem_sha256_t *ctx, const void *data, size_t len);
/* Writes the digest; ctx must be re-initialised before reuse. */
void idem_sha256_final(idem_sha256_t *ctx, uint8_t out[IDEM_SHA256_LEN]);
/* One-shot digest of data. */
void idem_sha256(const void *data, size_t len, uint8_t out[IDEM_SHA256_LEN]);
/* Lower-case hex of len bytes into out (2*len+1 bytes, NUL-terminated). */
void idem_hex(const uint8_t *bytes, size_t len, char *out);

/* One field of the write: value NULL means JSON null / SQL NULL. */
typedef struct idem_field {
	const char *name;
	const char *value;
} idem_field_t;

/*
 * Derive the key into out (IDEM_KEY_LEN hex characters + NUL).  All
 * strings are borrowed for the call; entity_id and pos may be NULL/empty
 * (a create before the id is known).  fields may be in any order: they are
 * sorted by (name, value) before hashing, so the key does not depend on the
 * order a record listed its columns.  Every component is length-prefixed,
 * so ("ab","c") and ("a","bc") never collide by concatenation.
 */
void idem_key(const char *entity, const char *entity_id, const char *target,
	      const position_t *pos, const idem_field_t *fields, size_t nfields,
	      char out[IDEM_KEY_LEN + 1]);

#endif
