/*
 * metrics.c — Prometheus registry; see metrics.h.
 *
 * Values are doubles updated under a per-registry mutex.  The hot path is
 * a lock, an add and an unlock; at the rates we count (one add per batch or
 * per change) that is far below the cost of the work being counted, and it
 * keeps rendering consistent without per-value atomics on doubles.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

const double METRICS_LATENCY_BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
					  0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
const size_t METRICS_LATENCY_NBUCKETS = sizeof(METRICS_LATENCY_BUCKETS) / sizeof(double);
const double METRICS_SIZE_BUCKETS[] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536};
const size_t METRICS_SIZE_NBUCKETS = sizeof(METRICS_SIZE_BUCKETS) / sizeof(double);

struct metrics_series {
	struct metrics_series *next;
	metrics_family_t *family;
	char **label_values;
	double value;         /* counter/gauge; histogram: unused */
	double sum;           /* histogram */
	unsigned long long count;
	unsigned long long *bucket_counts; /* nbuckets, non-cumulative */
};

struct metrics_family {
	struct metrics_family *next;
	metrics_t *registry;
	char *name;
	char *help;
	metrics_type_t type;
	char **label_names;
	size_t nlabels;
	double *buckets;
	size_t nbuckets;
	metrics_series_t *series;
	metrics_series_t **series_tail;
};

struct metrics {
	pthread_mutex_t lock;
	metrics_family_t *families;
	metrics_family_t **families_tail;
};

metrics_t *
metrics_create(void)
{
	metrics_t *m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->families_tail = &m->families;
	return m;
}

static void
free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
metrics_destroy(metrics_t *m)
{
	if (m == NULL)
		return;
	metrics_family_t *f = m->families;
	while (f) {
		metrics_family_t *fn = f->next;
		metrics_series_t *s = f->series;
		while (s) {
			metrics_series_t *sn = s->next;
			free_strv(s->label_values, f->nlabels);
			free(s->bucket_counts);
			free(s);
			s = sn;
		}
		free(f->name);
		free(f->help);
		free_strv(f->label_names, f->nlabels);
		free(f->buckets);
		free(f);
		f = fn;
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

metrics_family_t *
metrics_family(metrics_t *m, const char *name, metrics_type_t type, const char *help,
	       const char *label_names, const double *buckets, size_t nbuckets)
{
	pthread_mutex_lock(&m->lock);
	for (metrics_family_t *f = m->families; f; f = f->next) {
		if (strcmp(f->name, name) == 0) {
			pthread_mutex_unlock(&m->lock);
			return f;
		}
	}
	metrics_family_t *f = xcalloc(1, sizeof(*f));
	f->registry = m;
	f->name = xstrdup(name);
	f->help = xstrdup(help);
	f->type = type;
	f->series_tail = &f->series;
	if (label_names && *label_names) {
		char *copy = xstrdup(label_names);
		for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			f->label_names = xrealloc(f->label_names, (f->nlabels + 1) * sizeof(char *));
			f->label_names[f->nlabels++] = xstrdup(tok);
		}
		free(copy);
	}
	if (type == METRICS_HISTOGRAM && nbuckets) {
		f->buckets = xmemdup(buckets, nbuckets * sizeof(double));
		f->nbuckets = nbuckets;
	}
	*m->families_tail = f;
	m->families_tail = &f->next;
	pthread_mutex_unlock(&m->lock);
	return f;
}

metrics_series_t *
metrics_series(metrics_family_t *f, const char *const *label_values)
{
	metrics_t *m = f->registry;
	pthread_mutex_lock(&m->lock);
	for (metrics_series_t *s = f->series; s; s = s->next) {
		bool same = true;
		for (size_t i = 0; i < f->nlabels && same; i++)
			same = strcmp(s->label_values[i], label_values[i] ? label_values[i] : "") == 0;
		if (same) {
			pthread_mutex_unlock(&m->lock);
			return s;
		}
	}
	metrics_series_t *s = xcalloc(1, sizeof(*s));
	s->family = f;
	s->label_values = xcalloc(f->nlabels ? f->nlabels : 1, sizeof(char *));
	for (size_t i = 0; i < f->nlabels; i++)
		s->label_values[i] = xstrdup(label_values[i] ? label_values[i] : "");
	if (f->type == METRICS_HISTOGRAM)
		s->bucket_counts = xcalloc(f->nbuckets ? f->nbuckets : 1, sizeof(unsigned long long));
	*f->series_tail = s;
	f->series_tail = &s->next;
	pthread_mutex_unlock(&m->lock);
	return s;
}

void
metrics_add(metrics_series_t *s, double v)
{
	metrics_t *m = s->family->registry;
	pthread_mutex_lock(&m->lock);
	s->value += v;
	pthread_mutex_unlock(&m->lock);
}

void
metrics_set(metrics_series_t *s, double v)
{
	metrics_t *m = s->family->registry;
	pthread_mutex_lock(&m->lock);
	s->value = v;
	pthread_mutex_unlock(&m->lock);
}

void
metrics_observe(metrics_series_t *s, double v)
{
	metrics_family_t *f = s->family;
	pthread_mutex_lock(&f->registry->lock);
	s->sum += v;
	s->count++;
	for (size_t i = 0; i < f->nbuckets; i++) {
		if (v <= f->buckets[i]) {
			s->bucket_counts[i]++;
			break;
		}
	}
	pthread_mutex_unlock(&f->registry->lock);
}

double
metrics_value(const metrics_series_t *s)
{
	metrics_t *m = s->family->registry;
	pthread_mutex_lock(&m->lock);
	double v = s->value;
	pthread_mutex_unlock(&m->lock);
	return v;
}

/* Label values escape backslash, double quote and newline. */
static void
append_label_value(buf_t *b, const char *v)
{
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || *p == '"')
			buf_append_char(b, '\\');
		if (*p == '\n') {
			buf_append_str(b, "\\n");
			continue;
		}
		buf_append_char(b, *p);
	}
}

static void
append_labels(buf_t *b, const metrics_family_t *f, const metrics_series_t *s,
	      const char *extra_name, const char *extra_value)
{
	if (f->nlabels == 0 && extra_name == NULL)
		return;
	buf_append_char(b, '{');
	for (size_t i = 0; i < f->nlabels; i++) {
		if (i)
			buf_append_char(b, ',');
		buf_printf(b, "%s=\"", f->label_names[i]);
		append_label_value(b, s->label_values[i]);
		buf_append_char(b, '"');
	}
	if (extra_name) {
		if (f->nlabels)
			buf_append_char(b, ',');
		buf_printf(b, "%s=\"%s\"", extra_name, extra_value);
	}
	buf_append_char(b, '}');
}

static void
append_number(buf_t *b, double v)
{
	if (isinf(v))
		buf_append_str(b, v > 0 ? "+Inf" : "-Inf");
	else if (isnan(v))
		buf_append_str(b, "NaN");
	else if (v == (double) (long long) v && fabs(v) < 1e15)
		buf_printf(b, "%lld", (long long) v);
	else {
		/* Shortest form that reads back as the same double. */
		char tmp[40];
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
			if (strtod(tmp, NULL) == v)
				break;
		}
		buf_append_str(b, tmp);
	}
}

void
metrics_render(metrics_t *m, buf_t *out)
{
	static const char *const type_names[] = {"counter", "gauge", "histogram"};
	pthread_mutex_lock(&m->lock);
	for (metrics_family_t *f = m->families; f; f = f->next) {
		buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
			   type_names[f->type]);
		for (metrics_series_t *s = f->series; s; s = s->next) {
			if (f->type != METRICS_HISTOGRAM) {
				buf_append_str(out, f->name);
				append_labels(out, f, s, NULL, NULL);
				buf_append_char(out, ' ');
				append_number(out, s->value);
				buf_append_char(out, '\n');
				continue;
			}
			unsigned long long cumulative = 0;
			for (size_t i = 0; i < f->nbuckets; i++) {
				char le[64];
				cumulative += s->bucket_counts[i];
				snprintf(le, sizeof(le), "%g", f->buckets[i]);
				buf_printf(out, "%s_bucket", f->name);
				append_labels(out, f, s, "le", le);
				buf_printf(out, " %llu\n", cumulative);
			}
			buf_printf(out, "%s_bucket", f->name);
			append_labels(out, f, s, "le", "+Inf");
			buf_printf(out, " %llu\n", s->count);
			buf_printf(out, "%s_sum", f->name);
			append_labels(out, f, s, NULL, NULL);
			buf_append_char(out, ' ');
			append_number(out, s->sum);
			buf_printf(out, "\n%s_count", f->name);
			append_labels(out, f, s, NULL, NULL);
			buf_printf(out, " %llu\n", s->count);
		}
	}
	pthread_mutex_unlock(&m->lock);
}
