/*
 * opts.c — table-driven option parsing; see opts.h.
 */
#include "opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct opt_value {
	const opt_spec_t *spec;
	bool given;
	const char *value;    /* last value (borrowed from argv or default) */
	const char **multi;   /* OPT_MULTI values */
	size_t nmulti;
};

struct opts {
	const opt_spec_t *specs;
	struct opt_value *values;
	size_t nvalues;
	const char **positional;
	size_t npositional;
};

static struct opt_value *
find_long(opts_t *o, const char *name, size_t len)
{
	for (size_t i = 0; i < o->nvalues; i++) {
		const char *n = o->values[i].spec->name;
		if (strlen(n) == len && strncmp(n, name, len) == 0)
			return &o->values[i];
	}
	return NULL;
}

static struct opt_value *
find_short(opts_t *o, char c)
{
	for (size_t i = 0; i < o->nvalues; i++)
		if (o->values[i].spec->short_name == c)
			return &o->values[i];
	return NULL;
}

static const struct opt_value *
lookup(const opts_t *o, const char *name)
{
	for (size_t i = 0; i < o->nvalues; i++)
		if (strcmp(o->values[i].spec->name, name) == 0)
			return &o->values[i];
	return NULL;
}

static bool
set_value(struct opt_value *v, const char *value, char *err, size_t errlen)
{
	const opt_spec_t *s = v->spec;
	if (s->type == OPT_INT) {
		char *end;
		errno = 0;
		long long n = strtoll(value, &end, 10);
		if (errno || end == value || *end != '\0') {
			snprintf(err, errlen, "option --%s expects an integer, got \"%s\"", s->name, value);
			return false;
		}
		if (n < s->min || n > s->max) {
			snprintf(err, errlen, "option --%s must be between %lld and %lld, got %lld",
				 s->name, s->min, s->max, n);
			return false;
		}
	}
	if (s->type == OPT_MULTI) {
		v->multi = xrealloc(v->multi, (v->nmulti + 1) * sizeof(*v->multi));
		v->multi[v->nmulti++] = value;
	}
	v->value = value;
	v->given = true;
	return true;
}

opts_status_t
opts_parse(const opt_spec_t *specs, int argc, char **argv, int first,
	   opts_t **out, char *err, size_t errlen)
{
	opts_t *o = xcalloc(1, sizeof(*o));
	o->specs = specs;
	for (const opt_spec_t *s = specs; s->name; s++)
		o->nvalues++;
	o->values = xcalloc(o->nvalues, sizeof(*o->values));
	for (size_t i = 0; i < o->nvalues; i++) {
		o->values[i].spec = &specs[i];
		o->values[i].value = specs[i].default_value;
	}
	o->positional = xcalloc((size_t) argc + 1, sizeof(char *));

	bool only_positional = false;
	for (int i = first; i < argc; i++) {
		const char *arg = argv[i];
		if (only_positional || arg[0] != '-' || arg[1] == '\0') {
			o->positional[o->npositional++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_positional = true;
			continue;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			opts_free(o);
			return OPTS_HELP;
		}
		struct opt_value *v;
		const char *inline_value = NULL;
		if (arg[1] == '-') {
			const char *name = arg + 2;
			const char *eq = strchr(name, '=');
			size_t len = eq ? (size_t) (eq - name) : strlen(name);
			v = find_long(o, name, len);
			if (eq)
				inline_value = eq + 1;
		} else {
			v = arg[2] == '\0' ? find_short(o, arg[1]) : NULL;
		}
		if (v == NULL) {
			snprintf(err, errlen, "unknown option \"%s\" (see --help)", arg);
			opts_free(o);
			return OPTS_ERROR;
		}
		if (v->spec->type == OPT_FLAG) {
			if (inline_value) {
				snprintf(err, errlen, "option --%s takes no value", v->spec->name);
				opts_free(o);
				return OPTS_ERROR;
			}
			v->given = true;
			v->value = "1";
			continue;
		}
		const char *value = inline_value;
		if (value == NULL) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "option --%s needs a value (%s)", v->spec->name,
					 v->spec->metavar ? v->spec->metavar : "VALUE");
				opts_free(o);
				return OPTS_ERROR;
			}
			value = argv[++i];
		}
		if (!set_value(v, value, err, errlen)) {
			opts_free(o);
			return OPTS_ERROR;
		}
	}
	*out = o;
	return OPTS_OK;
}

void
opts_free(opts_t *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->nvalues; i++)
		free(o->values[i].multi);
	free(o->values);
	free(o->positional);
	free(o);
}

const char *
opts_get(const opts_t *o, const char *name)
{
	const struct opt_value *v = lookup(o, name);
	return v ? v->value : NULL;
}

long long
opts_get_int(const opts_t *o, const char *name)
{
	const char *s = opts_get(o, name);
	return s ? strtoll(s, NULL, 10) : 0;
}

bool
opts_flag(const opts_t *o, const char *name)
{
	const struct opt_value *v = lookup(o, name);
	return v && v->given;
}

bool
opts_given(const opts_t *o, const char *name)
{
	const struct opt_value *v = lookup(o, name);
	return v && v->given;
}

size_t
opts_get_multi(const opts_t *o, const char *name, const char *const **values)
{
	const struct opt_value *v = lookup(o, name);
	if (v == NULL) {
		*values = NULL;
		return 0;
	}
	*values = v->multi;
	return v->nmulti;
}

size_t
opts_npositional(const opts_t *o)
{
	return o->npositional;
}

const char *
opts_positional(const opts_t *o, size_t i)
{
	return i < o->npositional ? o->positional[i] : NULL;
}

void
opts_print_help(FILE *f, const char *usage, const char *description,
		const opt_spec_t *specs)
{
	fprintf(f, "Usage: %s\n\n%s\n\nOptions:\n", usage, description);
	for (const opt_spec_t *s = specs; s->name; s++) {
		char left[64];
		if (s->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", s->short_name, s->name,
				 s->type == OPT_FLAG ? "" : " ", s->type == OPT_FLAG ? "" : s->metavar);
		else
			snprintf(left, sizeof(left), "    --%s%s%s", s->name,
				 s->type == OPT_FLAG ? "" : " ", s->type == OPT_FLAG ? "" : s->metavar);
		fprintf(f, "  %-30s %s", left, s->doc);
		if (s->default_value && s->type != OPT_FLAG)
			fprintf(f, " (default: %s)", s->default_value);
		if (s->type == OPT_MULTI)
			fprintf(f, " (repeatable)");
		fputc('\n', f);
	}
	fprintf(f, "  %-30s %s\n", "-h, --help", "Show this help and exit.");
}
