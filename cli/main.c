/*
 * main.c — `steward`: dispatch to a subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "exitcodes.h"
#include "redact.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"capture", cmd_capture, "Capture row changes from a source database into a change log"},
	{"log", cmd_log, "Inspect a change log (dump, verify, gc)"},
	{"rules", cmd_rules, "Check and explain ownership rules (check, explain)"},
	{"apply", cmd_apply, "Apply change logs to the platforms' APIs and the PostgreSQL warehouse"},
	{"dlq", cmd_dlq, "Inspect and replay the apply dead-letter queue (list, show, retry, drop)"},
	{"status", cmd_status, "Sources and targets at a glance (state, lag, dead letters, errors)"},
	{NULL, NULL, NULL},
};

static void
usage(FILE *f)
{
	fprintf(f, "Usage: steward COMMAND [OPTIONS]\n\n"
		   "Steward replicates row changes between business systems, keeping one\n"
		   "system of record per field.\n\nCommands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'steward COMMAND --help' for a command's options.\n"
		   "Global: --version, --help.  Exit codes: docs/cli.md.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return STEWARD_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return STEWARD_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("steward %s\n", STEWARD_VERSION);
		return STEWARD_EXIT_OK;
	}
	/* Commands parse a copy; ps shows the original with passwords masked. */
	char **args = redact_argv(argc, argv);
	for (const struct command *c = commands; c->name; c++)
		if (strcmp(args[1], c->name) == 0)
			return c->run(argc - 1, args + 1);
	fprintf(stderr, "steward: unknown command \"%s\"\n\n", argv[1]);
	usage(stderr);
	return STEWARD_EXIT_USAGE;
}
