/*
 * opts.h — command-line options from one table.
 *
 * Each subcommand declares a NULL-terminated opt_spec_t array (name, type,
 * default, bounds, doc).  The same table parses argv, validates bounds and
 * prints --help, so the documentation cannot drift from the parser.
 * Accepted forms: --name value, --name=value, -x value, and "--" to end
 * options.  Non-option words are positional arguments.
 */
#ifndef STEWARD_COMMON_OPTS_H
#define STEWARD_COMMON_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum opt_type {
	OPT_FLAG,    /* no value; present or not */
	OPT_STRING,  /* one value; the last one given wins */
	OPT_INT,     /* integer checked against min..max */
	OPT_MULTI,   /* may be repeated; every value kept */
} opt_type_t;

typedef struct opt_spec {
	const char *name;          /* long name without "--"; NULL ends the table */
	char short_name;           /* 0 for none */
	opt_type_t type;
	const char *metavar;       /* shown in --help, e.g. "DIR" */
	const char *default_value; /* text form; NULL = unset */
	long long min, max;        /* OPT_INT bounds (inclusive) */
	const char *doc;           /* one sentence */
} opt_spec_t;

typedef struct opts opts_t;

typedef enum opts_status {
	OPTS_OK = 0,
	OPTS_HELP = 1,   /* --help or -h was given: print help, exit 0 */
	OPTS_ERROR = 2,  /* message in err: print it, exit 2 */
} opts_status_t;

/*
 * Parse argv[first..argc).  On OPTS_OK *out is a new opts_t the caller frees
 * with opts_free; values borrowed from it stay valid until then.
 */
opts_status_t opts_parse(const opt_spec_t *specs, int argc, char **argv,
			 int first, opts_t **out, char *err, size_t errlen);
void opts_free(opts_t *o);  /* accepts NULL */

/* Value given, or the spec's default, or NULL. */
const char *opts_get(const opts_t *o, const char *name);
long long opts_get_int(const opts_t *o, const char *name);
bool opts_flag(const opts_t *o, const char *name);
/* True when the option appeared on the command line. */
bool opts_given(const opts_t *o, const char *name);
/* Values of an OPT_MULTI option; *values borrowed from o. */
size_t opts_get_multi(const opts_t *o, const char *name, const char *const **values);
size_t opts_npositional(const opts_t *o);
const char *opts_positional(const opts_t *o, size_t i);

/* usage: "steward capture [OPTIONS]"; description: a paragraph. */
void opts_print_help(FILE *f, const char *usage, const char *description,
		     const opt_spec_t *specs);

#endif
