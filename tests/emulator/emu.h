/*
 * emu.h — shared contract of steward-emulator's modules: the platforms, the
 * request a platform handler receives, the response it fills, and the
 * server context (database pools, idempotency store, faults, request log).
 *
 * The HTTP layer (emu_http.c) owns requests and responses; a platform
 * handler (emu_crm.c, emu_billing.c, emu_support.c, emu_erp.c) reads an
 * emu_req_t and fills an emu_resp_t, never touching libmicrohttpd.
 */
#ifndef STEWARD_TESTS_EMULATOR_EMU_H
#define STEWARD_TESTS_EMULATOR_EMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

typedef enum emu_platform {
	EMU_CRM = 0,
	EMU_BILLING = 1,
	EMU_SUPPORT = 2,
	EMU_ERP = 3,
	EMU_NPLATFORMS = 4,
} emu_platform_t;

/* "crm", "billing", "support", "erp"; "unknown" for anything else. */
const char *emu_platform_name(int platform);
/* False when name is not one of the four platform names. */
bool emu_platform_from_name(const char *name, emu_platform_t *out);

typedef enum emu_write {
	EMU_WRITE_NONE = 0,
	EMU_WRITE_CREATE,
	EMU_WRITE_UPDATE,
	EMU_WRITE_DELETE,
} emu_write_t;

const char *emu_write_name(emu_write_t w);  /* NULL for EMU_WRITE_NONE */

typedef struct emu_db emu_db_t;
typedef struct emu_idem emu_idem_t;
typedef struct emu_faults emu_faults_t;
typedef struct emu_log emu_log_t;

/* The server's long-lived parts; all thread-safe, owned by the server. */
typedef struct emu_ctx {
	emu_db_t *db;
	emu_idem_t *idem;
	emu_faults_t *faults;
	emu_log_t *log;
	const char *base_url;  /* "http://127.0.0.1:18400", for URLs in bodies */
} emu_ctx_t;

/* One request, as a platform handler sees it.  Everything is borrowed for
 * the duration of the handler call. */
typedef struct emu_req {
	emu_ctx_t *ctx;
	emu_platform_t platform;
	const char *method;
	const char *path;            /* decoded URL path */
	const char *sub;             /* path after the platform prefix, "/…" */
	const char *body;            /* NUL-terminated; "" when none */
	size_t body_len;
	const char *content_type;    /* NULL when absent */
	const char *idempotency_key; /* NULL when absent */
	json_t *query;               /* object of query arguments (strings) */
} emu_req_t;

#define EMU_MAX_HEADERS 8

typedef struct emu_resp {
	int status;                   /* 0 = not answered yet */
	buf_t body;
	const char *content_type;     /* static string */
	int nheaders;
	char *hname[EMU_MAX_HEADERS]; /* owned */
	char *hvalue[EMU_MAX_HEADERS];
	emu_write_t write;            /* what the request changed in the database */
	bool replayed;                /* an idempotent replay (no write) */
} emu_resp_t;

void emu_resp_init(emu_resp_t *r);
void emu_resp_free(emu_resp_t *r);
/* Replace any body with the JSON text of body (stolen; NULL = empty body). */
void emu_resp_json(emu_resp_t *r, int status, json_t *body);
/* Add (or replace) a response header; both strings are copied. */
void emu_resp_header(emu_resp_t *r, const char *name, const char *value);

/* Errors the HTTP layer raises before a platform handler runs; each platform
 * renders them in its own error shape. */
typedef enum emu_errkind {
	EMU_ERR_UNAUTHORIZED,  /* 401 */
	EMU_ERR_RATE_LIMITED,  /* 429 */
	EMU_ERR_QUOTA,         /* 403 (crm) or 429 */
	EMU_ERR_FAULT,         /* injected 5xx */
	EMU_ERR_NO_ROUTE,      /* 404: no such endpoint */
	EMU_ERR_METHOD,        /* 405 */
	EMU_ERR_TOO_LARGE,     /* 413 */
	EMU_ERR_INTERNAL,      /* 500: database failure */
	EMU_ERR_UNAVAILABLE,   /* 503: platform has no database configured */
} emu_errkind_t;

typedef struct emu_platform_ops {
	const char *prefix;  /* "/crm" */
	void (*handle)(const emu_req_t *req, emu_resp_t *resp);
	void (*error)(emu_resp_t *resp, emu_errkind_t kind, int status, const char *message);
} emu_platform_ops_t;

extern const emu_platform_ops_t emu_crm_ops;
extern const emu_platform_ops_t emu_billing_ops;
extern const emu_platform_ops_t emu_support_ops;
extern const emu_platform_ops_t emu_erp_ops;

/* The ops of a platform (index = emu_platform_t). */
const emu_platform_ops_t *emu_platform_ops(emu_platform_t p);

/* Control endpoints under /_emulator/ (emu_control.c); sub is the path
 * after "/_emulator". */
void emu_control_handle(const emu_req_t *req, emu_resp_t *resp);

/* ---- small helpers (emu_util.c) ---- */

/* 64-bit FNV-1a of p[0..n), as "fnv1a64:%016llx" into out (>= 25 bytes). */
void emu_digest(const void *p, size_t n, char *out, size_t outlen);
/* prefix followed by nrandom base62 characters from getrandom(2). */
char *emu_random_id(const char *prefix, size_t nrandom);
/* Milliseconds on the monotonic clock. */
int64_t emu_now_ms(void);
/* Current UTC time as "2024-05-01T12:00:00.123Z" into out (>= 32 bytes). */
void emu_utc_now(char *out, size_t outlen);
void emu_sleep_ms(int64_t ms);

/*
 * A decimal(12,2) value from JSON: a number, or (when allow_string) a string
 * of digits with an optional sign and at most two decimals.  Writes the
 * canonical text ("1234.50") to out.  False when the value is not a number
 * or does not fit 10 integer digits.
 */
bool emu_decimal_from_json(const json_t *v, bool allow_string, char *out, size_t outlen);
/* True when s looks like an e-mail address (something@something.tld). */
bool emu_email_valid(const char *s);
/* True when s is one of the NULL-terminated values. */
bool emu_in_set(const char *s, const char *const *values);
/* Length of s in characters (UTF-8 code points). */
size_t emu_utf8_len(const char *s);

/*
 * Parse an application/x-www-form-urlencoded body into a JSON object whose
 * values are strings; "a[b]=c" becomes {"a":{"b":"c"}}.  NULL with a
 * message in err when the body is malformed.  Caller owns the result.
 */
json_t *emu_form_parse(const char *body, size_t len, char *err, size_t errlen);

#endif
