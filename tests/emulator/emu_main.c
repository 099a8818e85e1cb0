/*
 * emu_main.c — steward-emulator: serves Salesforce-, Stripe- and
 * Zendesk-style APIs and a small ERP API over the demo estate's databases,
 * with injectable faults, rate limits and an inspection API for tests.
 * See docs/emulator.md.
 */
#include <errno.h>
#include <mysql.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "emu_db.h"
#include "emu_faults.h"
#include "emu_http.h"
#include "emu_idem.h"
#include "emu_log.h"
#include "exitcodes.h"
#include "log.h"
#include "opts.h"
#include "redact.h"
#include "xalloc.h"

static const opt_spec_t emulator_opts[] = {
	{"listen", 'l', OPT_STRING, "ADDR:PORT", "127.0.0.1:18400", 0, 0,
	 "Address and port to listen on (IPv4)."},
	{"erp-dsn", 0, OPT_STRING, "DSN", NULL, 0, 0,
	 "libpq DSN of the ERP database (erp); without it /erp answers 503."},
	{"support-dsn", 0, OPT_STRING, "DSN", NULL, 0, 0,
	 "libpq DSN of the support desk database (support); without it /support answers 503."},
	{"crm-dsn", 0, OPT_STRING, "URI", NULL, 0, 0,
	 "mysql://user:password@host:port/crm; without it /crm answers 503."},
	{"billing-dsn", 0, OPT_STRING, "URI", NULL, 0, 0,
	 "mysql://user:password@host:port/billing; without it /billing answers 503."},
	{"token", 0, OPT_STRING, "TOKEN", NULL, 0, 0,
	 "Require Authorization: Bearer TOKEN (also STEWARD_EMULATOR_TOKEN; prefer --token-file)."},
	{"token-file", 0, OPT_STRING, "FILE", NULL, 0, 0,
	 "Read the bearer token from the first line of FILE."},
	{"rate-limit", 0, OPT_MULTI, "PLATFORM=RPS[:BURST]", NULL, 0, 0,
	 "Token-bucket rate limit of a platform (429 + Retry-After beyond it); repeatable."},
	{"quota", 0, OPT_MULTI, "PLATFORM=N[/SECONDS]", NULL, 0, 0,
	 "Request quota per window (default 86400 s); crm answers 403 REQUEST_LIMIT_EXCEEDED; repeatable."},
	{"db-pool", 0, OPT_INT, "N", "16", 1, 200,
	 "Most database connections per platform."},
	{"log-capacity", 0, OPT_INT, "N", "100000", 100, 10000000,
	 "Requests kept in the inspection log (older ones are dropped)."},
	{"log-level", 0, OPT_STRING, "LEVEL", "info", 0, 0,
	 "error, warn, info or debug."},
	{NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

static char *
read_token_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "could not open token file \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	char line[1024];
	char *tok = NULL;
	if (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		tok = xstrdup(line);
	}
	fclose(f);
	if (tok == NULL || *tok == '\0') {
		free(tok);
		snprintf(err, errlen, "token file \"%s\" is empty", path);
		return NULL;
	}
	return tok;
}

int
main(int argc, char **argv)
{
	int rc = STEWARD_EXIT_FAILURE;
	char err[1024];
	opts_t *o = NULL;
	char *token = NULL;
	emu_ctx_t ctx = {0};
	emu_server_t *server = NULL;

	opts_status_t st = opts_parse(emulator_opts, argc, argv, 1, &o, err, sizeof(err));
	if (st == OPTS_HELP) {
		opts_print_help(stdout, "steward-emulator [OPTIONS]",
				"Serves CRM (Salesforce-style), billing (Stripe-style), support (Zendesk-style) "
				"and ERP APIs that persist into the demo estate's databases, with injectable "
				"faults, rate limits and an inspection API under /_emulator/.",
				emulator_opts);
		return STEWARD_EXIT_OK;
	}
	if (st != OPTS_OK) {
		fprintf(stderr, "steward-emulator: %s\n", err);
		return STEWARD_EXIT_USAGE;
	}
	if (!log_set_level_name(opts_get(o, "log-level"))) {
		fprintf(stderr, "steward-emulator: invalid --log-level\n");
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	const char *listen = opts_get(o, "listen");
	const char *colon = strrchr(listen, ':');
	int port = colon ? atoi(colon + 1) : 0;
	if (colon == NULL || port <= 0 || port > 65535) {
		fprintf(stderr, "steward-emulator: invalid --listen \"%s\": expected ADDR:PORT\n", listen);
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	char host[64];
	snprintf(host, sizeof(host), "%.*s", (int) (colon - listen), listen);

	if (opts_get(o, "token-file")) {
		token = read_token_file(opts_get(o, "token-file"), err, sizeof(err));
		if (token == NULL) {
			log_error("emulator", "%s", err);
			rc = STEWARD_EXIT_CONFIG;
			goto out;
		}
	} else if (opts_get(o, "token")) {
		token = xstrdup(opts_get(o, "token"));
	} else if (getenv("STEWARD_EMULATOR_TOKEN") && *getenv("STEWARD_EMULATOR_TOKEN")) {
		token = xstrdup(getenv("STEWARD_EMULATOR_TOKEN"));
	}

	if (mysql_library_init(0, NULL, NULL) != 0) {
		log_error("emulator", "could not initialise the MariaDB client library");
		goto out;
	}
	const char *dsn[EMU_NPLATFORMS] = {
		[EMU_CRM] = opts_get(o, "crm-dsn"),
		[EMU_BILLING] = opts_get(o, "billing-dsn"),
		[EMU_SUPPORT] = opts_get(o, "support-dsn"),
		[EMU_ERP] = opts_get(o, "erp-dsn"),
	};
	ctx.db = emu_db_create(dsn, (int) opts_get_int(o, "db-pool"));
	ctx.idem = emu_idem_create();
	ctx.faults = emu_faults_create();
	ctx.log = emu_log_create((size_t) opts_get_int(o, "log-capacity"));
	char base_url[128];
	snprintf(base_url, sizeof(base_url), "http://%s:%d", host, port);
	ctx.base_url = base_url;

	const char *const *values;
	size_t n = opts_get_multi(o, "rate-limit", &values);
	for (size_t i = 0; i < n; i++) {
		if (emu_limits_set_rate_arg(ctx.faults, values[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "steward-emulator: %s\n", err);
			rc = STEWARD_EXIT_USAGE;
			goto out;
		}
	}
	n = opts_get_multi(o, "quota", &values);
	for (size_t i = 0; i < n; i++) {
		if (emu_limits_set_quota_arg(ctx.faults, values[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "steward-emulator: %s\n", err);
			rc = STEWARD_EXIT_USAGE;
			goto out;
		}
	}
	emu_limits_commit_defaults(ctx.faults);

	if (emu_db_check(ctx.db, err, sizeof(err)) < 0) {
		log_error("emulator", "%s", err);
		rc = STEWARD_EXIT_UNAVAILABLE;
		goto out;
	}

	/* Block the stop signals before any thread starts; main waits for them. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	server = emu_server_start(host, port, token, &ctx, err, sizeof(err));
	if (server == NULL) {
		log_error("emulator", "%s", err);
		rc = STEWARD_EXIT_UNAVAILABLE;
		goto out;
	}
	for (int p = 0; p < EMU_NPLATFORMS; p++) {
		if (dsn[p]) {
			char safe[512];
			redact_dsn(dsn[p], safe, sizeof(safe));
			log_info("emulator", "platform %s persists into %s", emu_platform_name(p), safe);
		}
	}
	log_info("emulator", "listening on %s:%d (auth %s)", host, port, token ? "bearer token" : "off");
	int sig;
	sigwait(&stop, &sig);
	log_info("emulator", "stopping on signal %d", sig);
	rc = STEWARD_EXIT_OK;
out:
	emu_server_stop(server);
	emu_log_destroy(ctx.log);
	emu_faults_destroy(ctx.faults);
	emu_idem_destroy(ctx.idem);
	emu_db_destroy(ctx.db);
	if (ctx.db)
		mysql_library_end();
	if (token) {
		memset(token, 0, strlen(token));
		free(token);
	}
	opts_free(o);
	return rc;
}
