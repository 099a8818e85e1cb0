/*
 * log.h — one line per event, logfmt (default) or JSON.
 *
 * The level is checked before any formatting, so a disabled log_debug costs
 * one comparison.  Debug output is switched per area at run time
 * (STEWARD_DEBUG=capture,clog or --log-debug), never by -DDEBUG.
 *
 * Never pass a DSN or token to these functions: use redact_dsn() first.
 */
#ifndef STEWARD_COMMON_LOG_H
#define STEWARD_COMMON_LOG_H

#include <stdbool.h>

typedef enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
} log_level_t;

typedef enum log_format {
	LOG_FORMAT_LOGFMT = 0,
	LOG_FORMAT_JSON = 1,
} log_format_t;

extern log_level_t log_min_level;

void log_set_level(log_level_t level);
/* Returns false when name is not error|warn|info|debug. */
bool log_set_level_name(const char *name);
void log_set_format(log_format_t format);
bool log_set_format_name(const char *name);
/* Comma-separated list of areas whose debug lines are shown ("all" = every). */
void log_set_debug_areas(const char *areas);
bool log_debug_enabled(const char *area);

/*
 * Emit one event.  msg is a printf format; kv is an optional
 * NULL-terminated list of key, value string pairs appended as fields
 * (e.g. the correlation id of a change: "source", "erp", "pos", "0/16B3748").
 */
void log_emit(log_level_t level, const char *area, const char *const *kv,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_error(area, ...) \
	do { if (log_min_level >= LOG_LEVEL_ERROR) log_emit(LOG_LEVEL_ERROR, area, NULL, __VA_ARGS__); } while (0)
#define log_warn(area, ...) \
	do { if (log_min_level >= LOG_LEVEL_WARN) log_emit(LOG_LEVEL_WARN, area, NULL, __VA_ARGS__); } while (0)
#define log_info(area, ...) \
	do { if (log_min_level >= LOG_LEVEL_INFO) log_emit(LOG_LEVEL_INFO, area, NULL, __VA_ARGS__); } while (0)
#define log_debug(area, ...) \
	do { if (log_debug_enabled(area)) log_emit(LOG_LEVEL_DEBUG, area, NULL, __VA_ARGS__); } while (0)
/* With key/value fields, e.g. the correlation id of a change. */
#define log_info_kv(area, kv, ...) \
	do { if (log_min_level >= LOG_LEVEL_INFO) log_emit(LOG_LEVEL_INFO, area, kv, __VA_ARGS__); } while (0)
#define log_warn_kv(area, kv, ...) \
	do { if (log_min_level >= LOG_LEVEL_WARN) log_emit(LOG_LEVEL_WARN, area, kv, __VA_ARGS__); } while (0)
#define log_error_kv(area, kv, ...) \
	do { if (log_min_level >= LOG_LEVEL_ERROR) log_emit(LOG_LEVEL_ERROR, area, kv, __VA_ARGS__); } while (0)

#endif
