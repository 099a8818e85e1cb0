/*
 * log.c — logfmt/JSON event lines on stderr.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "buf.h"
#include "xalloc.h"

log_level_t log_min_level = LOG_LEVEL_INFO;
static log_format_t log_format = LOG_FORMAT_LOGFMT;
static char *debug_areas;  /* NULL = none; "all" = every area */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_set_level(log_level_t level)
{
	log_min_level = level;
}

bool
log_set_level_name(const char *name)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			log_min_level = (log_level_t) i;
			return true;
		}
	}
	return false;
}

void
log_set_format(log_format_t format)
{
	log_format = format;
}

bool
log_set_format_name(const char *name)
{
	if (strcmp(name, "logfmt") == 0)
		log_format = LOG_FORMAT_LOGFMT;
	else if (strcmp(name, "json") == 0)
		log_format = LOG_FORMAT_JSON;
	else
		return false;
	return true;
}

void
log_set_debug_areas(const char *areas)
{
	free(debug_areas);
	debug_areas = (areas && *areas) ? xstrdup(areas) : NULL;
}

bool
log_debug_enabled(const char *area)
{
	static int env_checked;
	if (!env_checked) {
		env_checked = 1;
		const char *env = getenv("STEWARD_DEBUG");
		if (env && !debug_areas)
			log_set_debug_areas(env);
	}
	if (debug_areas == NULL)
		return false;
	if (strcmp(debug_areas, "all") == 0)
		return true;
	size_t alen = strlen(area);
	for (const char *p = debug_areas; *p;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t) (end - p) : strlen(p);
		if (n == alen && strncmp(p, area, n) == 0)
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

/* logfmt: quote when the value has spaces, quotes, '=' or is empty. */
static void
append_logfmt_value(buf_t *b, const char *v)
{
	bool quote = (*v == '\0') || strpbrk(v, " \t\"=\n\\") != NULL;
	if (!quote) {
		buf_append_str(b, v);
		return;
	}
	buf_append_char(b, '"');
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_append_char(b, '\\');
		if (*p == '\n') {
			buf_append_str(b, "\\n");
			continue;
		}
		buf_append_char(b, *p);
	}
	buf_append_char(b, '"');
}

static void
append_json_string(buf_t *b, const char *v)
{
	buf_append_char(b, '"');
	for (const unsigned char *p = (const unsigned char *) v; *p; p++) {
		switch (*p) {
		case '"': buf_append_str(b, "\\\""); break;
		case '\\': buf_append_str(b, "\\\\"); break;
		case '\n': buf_append_str(b, "\\n"); break;
		case '\r': buf_append_str(b, "\\r"); break;
		case '\t': buf_append_str(b, "\\t"); break;
		default:
			if (*p < 0x20)
				buf_printf(b, "\\u%04x", *p);
			else
				buf_append_char(b, (char) *p);
		}
	}
	buf_append_char(b, '"');
}

static void
append_field(buf_t *b, const char *key, const char *value, bool first)
{
	if (log_format == LOG_FORMAT_JSON) {
		if (!first)
			buf_append_char(b, ',');
		append_json_string(b, key);
		buf_append_char(b, ':');
		append_json_string(b, value);
	} else {
		if (!first)
			buf_append_char(b, ' ');
		buf_append_str(b, key);
		buf_append_char(b, '=');
		append_logfmt_value(b, value);
	}
}

void
log_emit(log_level_t level, const char *area, const char *const *kv,
	 const char *fmt, ...)
{
	char ts[40];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int) (tv.tv_usec / 1000));

	buf_t msg = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len > 0) {
		buf_reserve(&msg, (size_t) len);
		va_start(ap, fmt);
		vsnprintf(msg.data, (size_t) len + 1, fmt, ap);
		va_end(ap);
		msg.len = (size_t) len;
	} else {
		buf_append_str(&msg, "");
	}

	buf_t line = BUF_INIT;
	if (log_format == LOG_FORMAT_JSON)
		buf_append_char(&line, '{');
	append_field(&line, "ts", ts, true);
	append_field(&line, "level", level_names[level], false);
	append_field(&line, "area", area, false);
	append_field(&line, "msg", msg.data, false);
	for (int i = 0; kv && kv[i] && kv[i + 1]; i += 2)
		append_field(&line, kv[i], kv[i + 1], false);
	if (log_format == LOG_FORMAT_JSON)
		buf_append_char(&line, '}');
	buf_append_char(&line, '\n');
	/* One write per line so concurrent writers do not interleave. */
	fwrite(line.data, 1, line.len, stderr);
	fflush(stderr);
	buf_free(&line);
	buf_free(&msg);
}
