/*
 * cmd_capture.c — `steward capture`: parse the option table into a
 * capture_config_t and run the agent for the DSN's kind.
 *
 * To add a source kind: add its options to capture_opts (shared ones stay
 * shared), and a branch in run_agent.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "capture_metrics.h"
#include "commands.h"
#include "exitcodes.h"
#include "log.h"
#include "opts.h"
#include "xalloc.h"

static const opt_spec_t capture_opts[] = {
	{"dsn", 0, OPT_STRING, "DSN", NULL, 0, 0,
	 "Source database: a libpq connection string or URI (postgresql://user@host/db)."},
	{"dsn-file", 0, OPT_STRING, "FILE", NULL, 0, 0,
	 "Read the DSN from FILE's first line, so a password is never on the command line."},
	{"metrics-listen", 0, OPT_STRING, "HOST:PORT", NULL, 0, 0,
	 "Serve /metrics and /status here (a bare PORT binds 127.0.0.1)."},
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

/* The first line of path, without its newline (heap), or NULL with a message. */
static char *
read_dsn_file(const char *path, char *err, size_t errlen)
{
	char line[4096];
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "could not open DSN file \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	char *dsn = NULL;
	if (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0])
			dsn = xstrdup(line);
	}
	fclose(f);
	if (!dsn)
		snprintf(err, errlen, "DSN file \"%s\" is empty", path);
	return dsn;
}

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
	capture_metrics_t *metrics = NULL;
	char *dsn_from_file = NULL;
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
	cfg.metrics_listen = opts_get(o, "metrics-listen");
	if (opts_get(o, "dsn-file")) {
		if (cfg.dsn) {
			fprintf(stderr, "steward capture: give --dsn or --dsn-file, not both\n");
			rc = STEWARD_EXIT_USAGE;
			goto out;
		}
		if (!(dsn_from_file = read_dsn_file(opts_get(o, "dsn-file"), err, sizeof err))) {
			fprintf(stderr, "steward capture: %s\n", err);
			rc = STEWARD_EXIT_CONFIG;
			goto out;
		}
		cfg.dsn = dsn_from_file;
	}
	if (opts_npositional(o) > 0) {
		fprintf(stderr, "steward capture: unexpected argument \"%s\" (see --help)\n",
			opts_positional(o, 0));
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	if (cfg.dsn == NULL || (cfg.data_dir == NULL && !cfg.check)) {
		fprintf(stderr, "steward capture: --dsn (or --dsn-file) and --data-dir are required "
				"(see --help)\n");
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
	if (cfg.metrics_listen && !cfg.check) {
		if (!(metrics = capture_metrics_start(&cfg, err, sizeof err))) {
			fprintf(stderr, "steward capture: could not serve metrics on \"%s\": %s\n",
				cfg.metrics_listen, err);
			rc = STEWARD_EXIT_CONFIG;
			goto out;
		}
	}
	rc = run_agent(&cfg);
out:
	capture_metrics_stop(metrics);
	free(dsn_from_file);
	opts_free(o);
	return rc;
}
