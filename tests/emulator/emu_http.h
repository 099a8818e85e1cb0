/*
 * emu_http.h — the emulator's HTTP server (libmicrohttpd, one thread per
 * connection so an injected delay stalls only its own connection).
 *
 * Every request goes through the same pipeline: route by prefix (/crm,
 * /billing, /support, /erp, /_emulator) → injected fault → bearer token →
 * rate limit → quota → the platform's handler → "after" fault → request log.
 */
#ifndef STEWARD_TESTS_EMULATOR_EMU_HTTP_H
#define STEWARD_TESTS_EMULATOR_EMU_HTTP_H

#include <stddef.h>

#include "emu.h"

typedef struct emu_server emu_server_t;

/*
 * Listen on host:port (an IPv4 address).  token: when non-NULL every request
 * must carry "Authorization: Bearer <token>" (copied).  ctx is borrowed and
 * must outlive the server.  NULL with a message on failure.
 */
emu_server_t *emu_server_start(const char *host, int port, const char *token,
			       emu_ctx_t *ctx, char *err, size_t errlen);
void emu_server_stop(emu_server_t *s);  /* accepts NULL; waits for requests in flight */

#endif
