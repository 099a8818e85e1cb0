/*
 * metrics.h — a Prometheus metrics registry (text exposition format 0.0.4).
 *
 * Families are registered once (name, type, help, label names); series are
 * looked up once per label set and the returned handle is kept by the
 * caller, so the hot path is one atomic add.  All functions are
 * thread-safe.  Names and units follow Prometheus conventions: counters end
 * in _total, durations are in seconds, sizes in bytes.
 */
#ifndef STEWARD_COMMON_METRICS_H
#define STEWARD_COMMON_METRICS_H

#include <stddef.h>

#include "buf.h"

typedef enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
} metrics_type_t;

typedef struct metrics metrics_t;
typedef struct metrics_family metrics_family_t;
typedef struct metrics_series metrics_series_t;

metrics_t *metrics_create(void);
void metrics_destroy(metrics_t *m);  /* accepts NULL */

/*
 * Register (or find, if already registered with the same name) a family.
 * label_names: comma-separated, e.g. "source,table"; "" for none.
 * buckets: upper bounds for histograms (ascending; +Inf is implicit),
 * ignored otherwise.  The family is owned by the registry.
 */
metrics_family_t *metrics_family(metrics_t *m, const char *name, metrics_type_t type,
				 const char *help, const char *label_names,
				 const double *buckets, size_t nbuckets);

/*
 * The series for these label values (in label_names order, count must match);
 * created on first use.  Owned by the registry; valid until metrics_destroy.
 */
metrics_series_t *metrics_series(metrics_family_t *f, const char *const *label_values);

void metrics_add(metrics_series_t *s, double v);   /* counter or gauge */
void metrics_set(metrics_series_t *s, double v);   /* gauge */
void metrics_observe(metrics_series_t *s, double v); /* histogram */
double metrics_value(const metrics_series_t *s);   /* counter/gauge current value */

/* Append the whole registry in the text exposition format. */
void metrics_render(metrics_t *m, buf_t *out);

/* Common histogram buckets: seconds from 1 ms to ~60 s; sizes 1 to 64k. */
extern const double METRICS_LATENCY_BUCKETS[];
extern const size_t METRICS_LATENCY_NBUCKETS;
extern const double METRICS_SIZE_BUCKETS[];
extern const size_t METRICS_SIZE_NBUCKETS;

#endif
