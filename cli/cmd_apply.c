/*
 * cmd_apply.c — `steward apply`: change logs into targets.
 *
 *   steward apply --log DIR [--log DIR …] --warehouse DSN [options]
 *   steward apply --log DIR [--log DIR …] --rules FILE --targets FILE --state FILE [options]
 *
 * The second form runs the apply service (apply/apply_service.h):
 * ownership-resolved writes to the platforms' APIs.  Both forms together
 * run both, the warehouse on its own thread.
 *
 * Structure, for those who add targets: one option table (apply_opts)
 * holds the options common to every target and those of each target,
 * grouped; the `targets` table maps a selecting option (--warehouse) to a
 * function that builds that target's configuration from the parsed
 * options and runs it.  A new target (HTTP, the ownership-resolved apply
 * service) adds its options to apply_opts, a run_<target> function and one
 * line in `targets`.  Signals, logging options and --log are handled
 * here once for all of them.  docs/warehouse.md documents the options;
 * keep it in step with this table.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_service.h"
#include "commands.h"
#include "exitcodes.h"
#include "log.h"
#include "opts.h"
#include "warehouse.h"
#include "warehouse_rows.h"
#include "xalloc.h"

static const opt_spec_t apply_opts[] = {
	/* common */
	{"log", 'l', OPT_MULTI, "DIR", NULL, 0, 0,
	 "Change log directory to apply (repeat for several sources)."},
	{"once", 0, OPT_FLAG, NULL, NULL, 0, 0,
	 "Apply what the logs hold now, then exit (default: keep tailing)."},
	{"batch", 'b', OPT_INT, "N", "10000", 1, 10000000,
	 "Changes per target transaction."},
	{"poll-ms", 0, OPT_INT, "MS", "200", 10, 60000,
	 "While tailing, how long to wait when every log is caught up."},
	{"retries", 0, OPT_INT, "N", NULL, 0, 1000000,
	 "Consecutive retriable failures before giving up, 0 = never"
	 " (default: 5 with --once, 0 otherwise)."},
	{"log-level", 0, OPT_STRING, "LEVEL", "info", 0, 0, "error, warn, info or debug."},
	{"log-format", 0, OPT_STRING, "FORMAT", "logfmt", 0, 0, "logfmt or json."},
	{"log-debug", 0, OPT_STRING, "AREAS", NULL, 0, 0,
	 "Comma-separated areas with debug output (e.g. warehouse, all)."},
	/* warehouse target */
	{"warehouse", 'w', OPT_STRING, "DSN", NULL, 0, 0,
	 "PostgreSQL warehouse to write (libpq conninfo or URI)."},
	{"warehouse-schema", 0, OPT_STRING, "NAME", "steward", 0, 0,
	 "Warehouse schema for the tables and the state table (created if missing)."},
	{"mode", 'm', OPT_STRING, "MODE", "both", 0, 0,
	 "mirror (current state), history (every change) or both."},
	{"hard-delete", 0, OPT_FLAG, NULL, NULL, 0, 0,
	 "Mirror: delete rows instead of flagging them _steward_deleted."},
	{"scd2", 0, OPT_FLAG, NULL, NULL, 0, 0,
	 "History: maintain _steward_valid_from / _steward_valid_to (slowly changing dimension type 2)."},
	/* apply service (HTTP targets) */
	{"rules", 'r', OPT_STRING, "FILE", NULL, 0, 0,
	 "Ownership rules (docs/ownership-rules.md); selects the apply service."},
	{"targets", 't', OPT_STRING, "FILE", NULL, 0, 0,
	 "Targets file: how each system's API is written (docs/apply.md)."},
	{"state", 's', OPT_STRING, "FILE", NULL, 0, 0,
	 "The apply service's SQLite state store (created if missing)."},
	{"metrics-listen", 0, OPT_STRING, "HOST:PORT", NULL, 0, 0,
	 "Serve /metrics, /status and the operations page (/) here (default address 127.0.0.1)."},
	{"ui-token-file", 0, OPT_STRING, "FILE", NULL, 0, 0,
	 "Operations page: a bearer token (first line of FILE, or env STEWARD_UI_TOKEN) enables Retry."},
	{"replay-from", 0, OPT_STRING, "POS", NULL, 0, 0,
	 "Reapply the logs from this position (hex, as pos_hex in steward log dump)."},
	{"reference-timeout", 0, OPT_INT, "S", "300", 1, 604800,
	 "Seconds a write waits for a referenced entity before it is dead-lettered."},
	{"concurrency", 'c', OPT_INT, "N", "0", 0, 256,
	 "Cap on requests in flight per target (0 = as the targets file says)."},
	{NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

static const char usage_line[] =
	"steward apply --log DIR [--log DIR ...] (--warehouse DSN | --rules FILE --targets FILE"
	" --state FILE) [OPTIONS]";
static const char description[] =
	"Apply change logs to a target, exactly once, resuming from the position the\n"
	"target stored.  Targets: a PostgreSQL warehouse (--warehouse) with a mirror\n"
	"table (current state) and a history table (every change) per source table;\n"
	"the platforms' APIs (--rules, --targets, --state): owner-approved,\n"
	"idempotent writes (docs/apply.md).\n"
	"Exit codes: 0 done or stopped by a signal, 2 usage, 65 incompatible schema\n"
	"change or corrupt log (the change waits in the log), 69 target unreachable,\n"
	"74 log unreadable, 78 configuration, 1 other.  See docs/warehouse.md.";

/* Settings every target shares, from the common options. */
typedef struct apply_common {
	const char *const *logs;
	size_t nlogs;
	bool once;
	size_t batch;
	int poll_ms;
	int retries;
} apply_common_t;

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void) sig;
	stop_requested = 1;
}

static int
run_warehouse(const opts_t *o, const apply_common_t *c)
{
	const char *mode = opts_get(o, "mode");
	unsigned modes;
	if (strcmp(mode, "mirror") == 0)
		modes = WH_MODE_MIRROR;
	else if (strcmp(mode, "history") == 0)
		modes = WH_MODE_HISTORY;
	else if (strcmp(mode, "both") == 0)
		modes = WH_MODE_MIRROR | WH_MODE_HISTORY;
	else {
		fprintf(stderr, "steward apply: invalid --mode \"%s\": expected mirror, history or both\n",
			mode);
		return STEWARD_EXIT_USAGE;
	}
	const char *schema = opts_get(o, "warehouse-schema");
	if (!*schema) {
		fprintf(stderr, "steward apply: --warehouse-schema must not be empty\n");
		return STEWARD_EXIT_USAGE;
	}
	warehouse_config_t cfg = {
		.log_dirs = c->logs,
		.nlogs = c->nlogs,
		.dsn = opts_get(o, "warehouse"),
		.schema = schema,
		.modes = modes,
		.hard_delete = opts_flag(o, "hard-delete"),
		.scd2 = opts_flag(o, "scd2"),
		.once = c->once,
		.batch_size = c->batch,
		.poll_ms = c->poll_ms,
		.retries = c->retries,
		.stop = &stop_requested,
	};
	return warehouse_run(&cfg);
}

/* The operations page's token: --ui-token-file's first line, else STEWARD_UI_TOKEN. */
static char *
ui_token(const opts_t *o)
{
	const char *path = opts_get(o, "ui-token-file");
	char line[512];
	if (!path) {
		const char *env = getenv("STEWARD_UI_TOKEN");
		return env && *env ? xstrdup(env) : NULL;
	}
	FILE *f = fopen(path, "r");
	if (!f || !fgets(line, sizeof line, f)) {
		if (f)
			fclose(f);
		return NULL;
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	return line[0] ? xstrdup(line) : NULL;
}

static int
run_service(const opts_t *o, const apply_common_t *c)
{
	if (!opts_get(o, "targets") || !opts_get(o, "state")) {
		fprintf(stderr, "steward apply: --rules needs --targets FILE and --state FILE\n");
		return STEWARD_EXIT_USAGE;
	}
	apply_service_config_t cfg = {
		.log_dirs = c->logs,
		.nlogs = c->nlogs,
		.rules_path = opts_get(o, "rules"),
		.targets_path = opts_get(o, "targets"),
		.state_path = opts_get(o, "state"),
		.metrics_listen = opts_get(o, "metrics-listen"),
		.replay_from = opts_get(o, "replay-from"),
		.once = c->once,
		.reference_timeout_s = (int) opts_get_int(o, "reference-timeout"),
		.concurrency = (unsigned) opts_get_int(o, "concurrency"),
		.batch = opts_given(o, "batch") ? c->batch : 500,
		.poll_ms = c->poll_ms < 100 ? c->poll_ms : 100,
		.stop = &stop_requested,
	};
	char *token = ui_token(o);
	if (opts_get(o, "ui-token-file") && !token) {
		fprintf(stderr, "steward apply: could not read a token from --ui-token-file \"%s\"\n",
			opts_get(o, "ui-token-file"));
		return STEWARD_EXIT_CONFIG;
	}
	cfg.ui_token = token;
	int rc = apply_service_run(&cfg);
	free(token);
	return rc;
}

/* Targets, selected by the option that names them.  One per line. */
static const struct apply_target {
	const char *option;
	int (*run)(const opts_t *o, const apply_common_t *c);
} targets[] = {
	{"warehouse", run_warehouse},
	{"rules", run_service},
	{NULL, NULL},
};

/* Both targets at once: the warehouse on a thread of its own. */
struct wh_thread {
	const opts_t *o;
	const apply_common_t *c;
	int rc;
};

static void *
warehouse_thread(void *arg)
{
	struct wh_thread *w = arg;
	w->rc = run_warehouse(w->o, w->c);
	return NULL;
}

int
cmd_apply(int argc, char **argv)
{
	char err[512];
	opts_t *o = NULL;
	int rc = STEWARD_EXIT_OK;
	opts_status_t ps = opts_parse(apply_opts, argc, argv, 1, &o, err, sizeof(err));
	if (ps == OPTS_HELP) {
		opts_print_help(stdout, usage_line, description, apply_opts);
		goto out;
	}
	if (ps != OPTS_OK) {
		fprintf(stderr, "steward apply: %s\n", err);
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	if (!log_set_level_name(opts_get(o, "log-level")) ||
	    !log_set_format_name(opts_get(o, "log-format"))) {
		fprintf(stderr, "steward apply: invalid --log-level or --log-format\n");
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	if (opts_get(o, "log-debug"))
		log_set_debug_areas(opts_get(o, "log-debug"));
	apply_common_t common = {0};
	common.nlogs = opts_get_multi(o, "log", &common.logs);
	common.once = opts_flag(o, "once");
	common.batch = (size_t) opts_get_int(o, "batch");
	common.poll_ms = (int) opts_get_int(o, "poll-ms");
	common.retries = opts_given(o, "retries") ? (int) opts_get_int(o, "retries")
						  : (common.once ? 5 : 0);
	if (common.nlogs == 0 || opts_npositional(o) > 0) {
		fprintf(stderr, "steward apply: %s\nUsage: %s\n",
			common.nlogs ? "unexpected argument" : "at least one --log DIR is required",
			usage_line);
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	const struct apply_target *target = NULL;
	size_t ntargets = 0;
	for (const struct apply_target *t = targets; t->option; t++) {
		if (!opts_get(o, t->option))
			continue;
		ntargets++;
		target = t;
	}
	if (!target) {
		fprintf(stderr, "steward apply: no target: give --warehouse DSN or --rules FILE"
			" --targets FILE --state FILE\nUsage: %s\n", usage_line);
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (ntargets > 1) {
		struct wh_thread w = {o, &common, 0};
		pthread_t th;
		if (pthread_create(&th, NULL, warehouse_thread, &w) != 0) {
			fprintf(stderr, "steward apply: could not start the warehouse thread\n");
			rc = STEWARD_EXIT_FAILURE;
			goto out;
		}
		rc = run_service(o, &common);
		if (rc != STEWARD_EXIT_OK)
			stop_requested = 1;
		pthread_join(th, NULL);
		if (rc == STEWARD_EXIT_OK)
			rc = w.rc;
		goto out;
	}
	rc = target->run(o, &common);
out:
	opts_free(o);
	return rc;
}
