/*
 * emu_util.c — small helpers shared by the emulator's modules: responses,
 * digests, ids, clocks, value validation and form decoding.
 */
#include "emu.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "xalloc.h"

static const char *const platform_names[] = {"crm", "billing", "support", "erp"};

const char *
emu_platform_name(int platform)
{
	if (platform >= 0 && platform < EMU_NPLATFORMS)
		return platform_names[platform];
	return "unknown";
}

bool
emu_platform_from_name(const char *name, emu_platform_t *out)
{
	for (int i = 0; i < EMU_NPLATFORMS; i++) {
		if (name && strcmp(name, platform_names[i]) == 0) {
			*out = (emu_platform_t) i;
			return true;
		}
	}
	return false;
}

const char *
emu_write_name(emu_write_t w)
{
	switch (w) {
	case EMU_WRITE_CREATE: return "create";
	case EMU_WRITE_UPDATE: return "update";
	case EMU_WRITE_DELETE: return "delete";
	default: return NULL;
	}
}

const emu_platform_ops_t *
emu_platform_ops(emu_platform_t p)
{
	switch (p) {
	case EMU_CRM: return &emu_crm_ops;
	case EMU_BILLING: return &emu_billing_ops;
	case EMU_SUPPORT: return &emu_support_ops;
	case EMU_ERP: return &emu_erp_ops;
	default: return NULL;
	}
}

void
emu_resp_init(emu_resp_t *r)
{
	memset(r, 0, sizeof(*r));
	r->content_type = "application/json";
}

void
emu_resp_free(emu_resp_t *r)
{
	if (r == NULL)
		return;
	buf_free(&r->body);
	for (int i = 0; i < r->nheaders; i++) {
		free(r->hname[i]);
		free(r->hvalue[i]);
	}
	r->nheaders = 0;
}

void
emu_resp_json(emu_resp_t *r, int status, json_t *body)
{
	r->status = status;
	buf_reset(&r->body);
	if (body) {
		char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
		buf_append_str(&r->body, text);
		free(text);
		json_decref(body);
	}
}

void
emu_resp_header(emu_resp_t *r, const char *name, const char *value)
{
	for (int i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->hname[i], name) == 0) {
			free(r->hvalue[i]);
			r->hvalue[i] = xstrdup(value);
			return;
		}
	}
	if (r->nheaders == EMU_MAX_HEADERS)
		return;  /* more headers than any endpoint sends: programming error, drop */
	r->hname[r->nheaders] = xstrdup(name);
	r->hvalue[r->nheaders] = xstrdup(value);
	r->nheaders++;
}

void
emu_digest(const void *p, size_t n, char *out, size_t outlen)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	snprintf(out, outlen, "fnv1a64:%016llx", (unsigned long long) h);
}

char *
emu_random_id(const char *prefix, size_t nrandom)
{
	static const char alphabet[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	size_t plen = strlen(prefix);
	char *id = xmalloc(plen + nrandom + 1);
	memcpy(id, prefix, plen);
	unsigned char rnd[64];
	size_t filled = 0;
	while (filled < nrandom && filled < sizeof(rnd)) {
		ssize_t got = getrandom(rnd + filled, nrandom - filled, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			/* no entropy source: fall back to the clock, ids stay unique enough for tests */
			for (size_t i = filled; i < nrandom; i++)
				rnd[i] = (unsigned char) (emu_now_ms() * 31 + (int64_t) i * 7);
			break;
		}
		filled += (size_t) got;
	}
	for (size_t i = 0; i < nrandom && i < sizeof(rnd); i++)
		id[plen + i] = alphabet[rnd[i] % 62];
	id[plen + nrandom] = '\0';
	return id;
}

int64_t
emu_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
emu_utc_now(char *out, size_t outlen)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char day[24];
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%03ldZ", day, ts.tv_nsec / 1000000);
}

void
emu_sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

bool
emu_decimal_from_json(const json_t *v, bool allow_string, char *out, size_t outlen)
{
	if (json_is_integer(v)) {
		long long x = json_integer_value(v);
		if (x <= -10000000000LL || x >= 10000000000LL)
			return false;
		snprintf(out, outlen, "%lld.00", x);
		return true;
	}
	if (json_is_real(v)) {
		double x = json_real_value(v);
		if (!(x > -1e10 && x < 1e10))
			return false;
		snprintf(out, outlen, "%.2f", x);
		return true;
	}
	if (!allow_string || !json_is_string(v))
		return false;
	const char *s = json_string_value(v);
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	size_t intdigits = 0, fracdigits = 0;
	while (isdigit((unsigned char) *p)) {
		p++;
		intdigits++;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char) *p)) {
			p++;
			fracdigits++;
		}
	}
	if (*p != '\0' || intdigits == 0 || intdigits > 10 || fracdigits > 2)
		return false;
	snprintf(out, outlen, "%.2f", strtod(s, NULL));
	return true;
}

bool
emu_email_valid(const char *s)
{
	const char *at = strchr(s, '@');
	if (at == NULL || at == s || strchr(at + 1, '@'))
		return false;
	const char *dot = strrchr(at, '.');
	if (dot == NULL || dot == at + 1 || dot[1] == '\0')
		return false;
	for (const char *p = s; *p; p++)
		if (isspace((unsigned char) *p))
			return false;
	return true;
}

bool
emu_in_set(const char *s, const char *const *values)
{
	for (; *values; values++)
		if (strcmp(s, *values) == 0)
			return true;
	return false;
}

size_t
emu_utf8_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char) *s & 0xC0) != 0x80)
			n++;
	return n;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n) ('+' is a space); false on a bad escape. */
static bool
form_decode(const char *s, size_t n, buf_t *out)
{
	buf_reset(out);
	buf_append(out, "", 0);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			buf_append_char(out, ' ');
		} else if (s[i] == '%') {
			if (i + 2 >= n)
				return false;
			int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			buf_append_char(out, (char) (hi * 16 + lo));
			i += 2;
		} else {
			buf_append_char(out, s[i]);
		}
	}
	return true;
}

json_t *
emu_form_parse(const char *body, size_t len, char *err, size_t errlen)
{
	json_t *obj = json_object();
	buf_t key = BUF_INIT, val = BUF_INIT;
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && body[end] != '&')
			end++;
		if (end > i) {
			const char *eq = memchr(body + i, '=', end - i);
			size_t klen = eq ? (size_t) (eq - (body + i)) : end - i;
			if (!form_decode(body + i, klen, &key) ||
			    !form_decode(eq ? eq + 1 : "", eq ? (size_t) (body + end - (eq + 1)) : 0, &val)) {
				snprintf(err, errlen, "invalid percent-encoding in form body");
				goto fail;
			}
			if (key.len == 0 || memchr(key.data, '\0', key.len) || memchr(val.data, '\0', val.len)) {
				snprintf(err, errlen, "invalid form parameter name");
				goto fail;
			}
			char *br = strchr(key.data, '[');
			if (br) {
				size_t inner = strlen(br + 1);
				if (inner < 2 || br[inner] != ']' || br == key.data) {
					snprintf(err, errlen, "invalid form parameter name: %s", key.data);
					goto fail;
				}
				br[inner] = '\0';
				*br = '\0';
				json_t *sub = json_object_get(obj, key.data);
				if (sub == NULL) {
					sub = json_object();
					json_object_set_new(obj, key.data, sub);
				} else if (!json_is_object(sub)) {
					snprintf(err, errlen, "parameter %s given both as a value and a hash", key.data);
					goto fail;
				}
				if (json_object_set_new(sub, br + 1, json_string(val.data)) != 0) {
					snprintf(err, errlen, "form parameter %s is not valid UTF-8", key.data);
					goto fail;
				}
			} else if (json_object_set_new(obj, key.data, json_string(val.data)) != 0) {
				snprintf(err, errlen, "form parameter is not valid UTF-8");
				goto fail;
			}
		}
		i = end + 1;
	}
	buf_free(&key);
	buf_free(&val);
	return obj;
fail:
	buf_free(&key);
	buf_free(&val);
	json_decref(obj);
	return NULL;
}
