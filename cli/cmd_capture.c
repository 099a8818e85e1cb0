/*
 * cmd_capture.c — `steward capture`: parse the option table into a
 * capture_config_t and run the agent for the DSN's kind.
 *
 * To add a source kind: add its options to capture_opts (shared ones stay
 * shared), and a branch in run_agent.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "capture.h"
#include "commands.h"
#include "exitcodes.h"
#include "log.h"
#include "opts.h"

static const opt_spec_t capture_opts[] = {
	{"dsn", 0, OPT_STRING, "DSN", NULL, 0, 0,
	 "Source database: a libpq connection string or URI (postgresql://user@host/db)."},
	{"data-dir", 'd', OPT_STRING, "DIR", NULL, 0, 0,
	 "Directory of the change log (created if missing)."},
	{"source", 0, OPT_STRING, "NAME", NULL, 0, 0,
	 "Source name stored in every record (default: the database name)."},
	{"slot", 0, OPT_STRING, "NAME", "steward", 0, 0,
	 "PostgreSQL logical replication slot to create or reuse."},
	{"publication", 0, OPT_STRING, "NAME", NULL, 0, 0,
	 "PostgreSQL publication to use (default: \"steward\", created FOR ALL TABLES)."},
	{"no-snapshot", 0, OPT_FLAG, NULL, NULL, 0, 0,
	 "Skip the initial snapshot; capture only changes from now on."},
	{"endpos", 0, OPT_STRING, "LSN", NULL, 0, 0,
	 "Stop once every change up to this position is durable (e.g. 0/16B3748)."},
	{"check", 0, OPT_FLAG, NULL, NULL, 0, 0,
	 "Check the server's configuration for capture, change nothing, and exit (3 = problems)."},
	{"server-id", 0, OPT_INT, "N", "0", 0, 4294967295LL,
	 "MySQL/MariaDB replica server id (default 0: derived from --data-dir, see docs/capture-mysql.md)."},
	{"status-interval", 0, OPT_INT, "MS", "1000", 10, 3600000,
	 "How often to flush the change log and acknowledge the position to the server."},
	{"log-format", 0, OPT_STRING, "FORMAT", "logfmt", 0, 0, "Log line format: logfmt or json."},
	{"log-level", 0, OPT_STRING, "LEVEL", "info", 0, 0,
	 "Least severe level logged: error, warn, info or debug."},
	{NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

static const char usage_line[] = "steward capture --dsn DSN --data-dir DIR [OPTIONS]";
static const char description[] =
	"Capture every committed row change of a source database, from a consistent\n"
	"initial snapshot onward, into a durable change log.  See\n"
	"docs/capture-postgresql.md.  Exit codes: 0 stopped cleanly, 2 usage,\n"
	"3 --check found problems, 65 undecodable stream, 69 source unavailable or\n"
	"slot dropped, 74 change log I/O error, 78 configuration error.";

static int
run_agent(const capture_config_t *cfg)
{
	if (capture_dsn_is_mysql(cfg->dsn))
		return mysql_capture_run(cfg);
	return pg_capture_run(cfg);
}

int
cmd_capture(int argc, char **argv)
{
	char err[512];
	opts_t *o = NULL;
	capture_config_t cfg;
	int rc;

	switch (opts_parse(capture_opts, argc, argv, 1, &o, err, sizeof(err))) {
	case OPTS_HELP:
		opts_print_help(stdout, usage_line, description, capture_opts);
		return STEWARD_EXIT_OK;
	case OPTS_ERROR:
		fprintf(stderr, "steward capture: %s\n", err);
		return STEWARD_EXIT_USAGE;
	case OPTS_OK:
		break;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.dsn = opts_get(o, "dsn");
	cfg.data_dir = opts_get(o, "data-dir");
	cfg.source_name = opts_get(o, "source");
	cfg.slot = opts_get(o, "slot");
	cfg.publication = opts_get(o, "publication");
	cfg.no_snapshot = opts_flag(o, "no-snapshot");
	cfg.check = opts_flag(o, "check");
	cfg.endpos = opts_get(o, "endpos");
	cfg.status_interval_ms = (int) opts_get_int(o, "status-interval");
	cfg.server_id = (int) (unsigned) opts_get_int(o, "server-id");
	if (opts_npositional(o) > 0) {
		fprintf(stderr, "steward capture: unexpected argument \"%s\" (see --help)\n",
			opts_positional(o, 0));
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	if (cfg.dsn == NULL || (cfg.data_dir == NULL && !cfg.check)) {
		fprintf(stderr, "steward capture: --dsn and --data-dir are required (see --help)\n");
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	if (!log_set_format_name(opts_get(o, "log-format"))) {
		fprintf(stderr, "steward capture: invalid --log-format \"%s\": use logfmt or json\n",
			opts_get(o, "log-format"));
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	if (!log_set_level_name(opts_get(o, "log-level"))) {
		fprintf(stderr, "steward capture: invalid --log-level \"%s\": use error, warn, info "
				"or debug\n", opts_get(o, "log-level"));
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	rc = run_agent(&cfg);
out:
	opts_free(o);
	return rc;
}
