/*
 * emu_idem.h — Stripe-style idempotency keys for the billing platform.
 *
 * The first request with a key reserves it; when it finishes, its status
 * and body are stored and replayed to any later request with the same key
 * and the same parameters.  The same key with different parameters is an
 * error; the same key while the first request still runs is a conflict.
 * Keys are kept 24 hours (in memory; a restart forgets them).
 */
#ifndef STEWARD_TESTS_EMULATOR_EMU_IDEM_H
#define STEWARD_TESTS_EMULATOR_EMU_IDEM_H

#include <stddef.h>

#include "emu.h"

#define EMU_IDEM_TTL_MS (24LL * 3600 * 1000)

typedef enum emu_idem_status {
	EMU_IDEM_NEW = 0,      /* key reserved: run the request, then finish or abort */
	EMU_IDEM_REPLAY,       /* resp holds the stored answer */
	EMU_IDEM_MISMATCH,     /* same key, different parameters */
	EMU_IDEM_IN_PROGRESS,  /* same key, first request still running */
} emu_idem_status_t;

emu_idem_t *emu_idem_create(void);
void emu_idem_destroy(emu_idem_t *s);  /* accepts NULL */
void emu_idem_clear(emu_idem_t *s);

/* fingerprint identifies the request (method, path, canonical params); copied. */
emu_idem_status_t emu_idem_begin(emu_idem_t *s, const char *key, const char *fingerprint,
				 emu_resp_t *resp);
/* Store resp (status, body) as the key's answer. */
void emu_idem_finish(emu_idem_t *s, const char *key, const emu_resp_t *resp);
/* Forget a reserved key (the request failed validation: nothing to replay). */
void emu_idem_abort(emu_idem_t *s, const char *key);
size_t emu_idem_count(emu_idem_t *s);

#endif
