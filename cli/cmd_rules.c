/*
 * cmd_rules.c — `steward rules`: check and explain ownership rules.
 *
 *   steward rules check FILE
 *   steward rules explain FILE --change JSON [--golden JSON] [--json]
 *
 * check prints every problem as "file:line:col: error: message" with a
 * hint and exits 0 (clean), 3 (problems) or 78 (unreadable / not YAML).
 * explain maps one change (a `steward log dump` line; "@path" reads it
 * from a file) against an optional golden record and prints, field by
 * field, what the engine decides and what each target would receive.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "commands.h"
#include "exitcodes.h"
#include "opts.h"
#include "record.h"
#include "rules.h"

static const opt_spec_t check_opts[] = {
	{NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

static const opt_spec_t explain_opts[] = {
	{"change", 'c', OPT_STRING, "JSON", NULL, 0, 0,
	 "The change, as a `steward log dump` line (or @FILE to read it from a file)."},
	{"golden", 'g', OPT_STRING, "JSON", NULL, 0, 0,
	 "The entity's golden record (or @FILE); without it the entity is unknown."},
	{"json", 0, OPT_FLAG, NULL, NULL, 0, 0, "Print one JSON object instead of text."},
	{NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

/* The argument itself, or the contents of the file after '@'.  Caller frees. */
static char *
arg_text(const char *arg, char *err, size_t errlen)
{
	if (arg[0] != '@')
		return strdup(arg);
	FILE *f = fopen(arg + 1, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "could not open \"%s\": %m", arg + 1);
		return NULL;
	}
	buf_t b = BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	if (b.data == NULL)
		buf_append_str(&b, "");
	return buf_steal(&b);
}

static int
load_rules(const char *cmd, const char *path, rules_t **r)
{
	rules_diags_t diags = RULES_DIAGS_INIT;
	rules_status_t st = rules_load(path, r, &diags);
	buf_t out = BUF_INIT;
	rules_diags_format(&diags, &out);
	if (out.len)
		fputs(out.data, stderr);
	buf_free(&out);
	size_t nerrors = diags.nerrors;
	rules_diags_free(&diags);
	if (st == RULES_UNREADABLE)
		return STEWARD_EXIT_CONFIG;
	if (st == RULES_INVALID) {
		fprintf(stderr, "steward rules %s: %zu problem%s in %s\n", cmd, nerrors,
			nerrors == 1 ? "" : "s", path);
		return STEWARD_EXIT_CHECK_FAILED;
	}
	return STEWARD_EXIT_OK;
}

static int
run_check(const opts_t *o)
{
	if (opts_npositional(o) != 1) {
		fprintf(stderr, "steward rules check: expected one rules file\n");
		return STEWARD_EXIT_USAGE;
	}
	rules_t *r = NULL;
	int rc = load_rules("check", opts_positional(o, 0), &r);
	rules_free(r);
	return rc;
}

static int
run_explain(const opts_t *o)
{
	char err[1024];
	int rc = STEWARD_EXIT_OK;
	rules_t *r = NULL;
	Steward__Change *c = NULL;
	rules_mapped_t *m = rules_mapped_new();
	rules_decision_t *d = rules_decision_new();
	rules_golden_t *g = NULL;
	char *change_text = NULL, *golden_text = NULL;
	buf_t out = BUF_INIT;

	if (opts_npositional(o) != 1 || opts_get(o, "change") == NULL) {
		fprintf(stderr, "steward rules explain: expected FILE --change JSON\n");
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	rc = load_rules("explain", opts_positional(o, 0), &r);
	if (rc != STEWARD_EXIT_OK)
		goto out;
	if ((change_text = arg_text(opts_get(o, "change"), err, sizeof err)) == NULL ||
	    (c = record_from_json(change_text, err, sizeof err)) == NULL) {
		fprintf(stderr, "steward rules explain: invalid --change: %s\n", err);
		rc = STEWARD_EXIT_DATAERR;
		goto out;
	}
	bool as_json = opts_flag(o, "json");
	int nmapped = 0;
	rules_map_status_t ms;
	for (ms = rules_map(r, c, m, err, sizeof err); ms != RULES_MAP_SKIP || nmapped == 0;
	     ms = rules_map_next(r, c, m, err, sizeof err)) {
		if (ms == RULES_MAP_SKIP) {
			fprintf(stderr, "steward rules explain: change from %s %s.%s is not mapped%s%s\n",
				c->source ? c->source : "?", c->schema ? c->schema : "", c->table ? c->table : "",
				err[0] ? ": " : " by any source in the rules", err);
			rc = STEWARD_EXIT_DATAERR;
			goto out;
		}
		nmapped++;
		if (ms == RULES_MAP_ERROR) {
			fprintf(stderr, "steward rules explain: cannot map the change: %s\n", err);
			rc = STEWARD_EXIT_DATAERR;
			continue;
		}
		rules_golden_free(g);
		g = NULL;
		if (opts_get(o, "golden")) {
			free(golden_text);
			golden_text = arg_text(opts_get(o, "golden"), err, sizeof err);
			if (golden_text == NULL ||
			    (g = rules_golden_from_json(r, golden_text, err, sizeof err)) == NULL) {
				fprintf(stderr, "steward rules explain: invalid --golden: %s\n", err);
				rc = STEWARD_EXIT_DATAERR;
				goto out;
			}
			if (g->entity != m->entity) {
				/* The golden record is for another entity this change also feeds. */
				rules_golden_free(g);
				g = NULL;
			}
		}
		if (g == NULL)
			g = rules_golden_new(r, m->entity);
		rules_resolve(r, g, m, d);
		if (nmapped > 1 && !as_json)
			buf_append_str(&out, "\n");
		rules_explain(r, g, m, d, as_json, &out);
	}
	fputs(out.data ? out.data : "", stdout);
out:
	buf_free(&out);
	free(change_text);
	free(golden_text);
	rules_golden_free(g);
	rules_decision_free(d);
	rules_mapped_free(m);
	record_free(c);
	rules_free(r);
	return rc;
}

struct rules_subcommand {
	const char *name;
	const opt_spec_t *specs;
	const char *usage;
	const char *description;
	int (*run)(const opts_t *o);
};

static const struct rules_subcommand subcommands[] = {
	{"check", check_opts, "steward rules check FILE",
	 "Check a rules file and print every problem with file:line:col and a hint.  "
	 "Exit 0 when clean, 3 when there are problems, 78 when the file cannot be read or is not YAML.",
	 run_check},
	{"explain", explain_opts, "steward rules explain FILE --change JSON [--golden JSON] [--json]",
	 "Show, field by field, what the rules decide for one change (a `steward log dump` line) "
	 "and what each target would receive.",
	 run_explain},
	{NULL, NULL, NULL, NULL, NULL},
};

static void
usage(FILE *f)
{
	fprintf(f, "Usage: steward rules SUBCOMMAND [OPTIONS]\n\nSubcommands:\n");
	for (const struct rules_subcommand *s = subcommands; s->name; s++)
		fprintf(f, "  %s\n", s->usage);
	fprintf(f, "\nThe rules language: docs/ownership-rules.md.\n");
}

int
cmd_rules(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return STEWARD_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return STEWARD_EXIT_OK;
	}
	for (const struct rules_subcommand *s = subcommands; s->name; s++) {
		if (strcmp(argv[1], s->name) != 0)
			continue;
		char err[512];
		opts_t *o = NULL;
		opts_status_t ps = opts_parse(s->specs, argc, argv, 2, &o, err, sizeof err);
		if (ps == OPTS_HELP) {
			opts_print_help(stdout, s->usage, s->description, s->specs);
			return STEWARD_EXIT_OK;
		}
		if (ps != OPTS_OK) {
			fprintf(stderr, "steward rules %s: %s\n", s->name, err);
			return STEWARD_EXIT_USAGE;
		}
		int rc = s->run(o);
		opts_free(o);
		return rc;
	}
	fprintf(stderr, "steward rules: unknown subcommand \"%s\"\n\n", argv[1]);
	usage(stderr);
	return STEWARD_EXIT_USAGE;
}
