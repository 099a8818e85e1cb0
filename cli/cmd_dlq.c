/*
 * cmd_dlq.c — `steward dlq`: inspect and replay the apply service's
 * dead-letter queue.
 *
 *   steward dlq list --state FILE [--all] [--limit N]
 *   steward dlq show ID --state FILE
 *   steward dlq retry ID --state FILE    back into the outbox, under a new key
 *   steward dlq drop ID --state FILE     mark as handled, keep for the record
 *
 * A retried letter gets an Idempotency-Key derived from its original key
 * and its DLQ id: a target that remembered the rejected request under the
 * old key would only replay the rejection, and retrying the same letter
 * twice still queues one write.  Owner: apply service.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>

#include "apply_dlq.h"
#include "commands.h"
#include "exitcodes.h"
#include "idem.h"
#include "opts.h"
#include "state.h"

static const opt_spec_t dlq_opts[] = {
	{"state", 's', OPT_STRING, "FILE", NULL, 0, 0, "The apply service's state store."},
	{"all", 'a', OPT_FLAG, NULL, NULL, 0, 0, "list: include retried and dropped letters."},
	{"limit", 'n', OPT_INT, "N", "100", 1, 1000000, "list: at most N letters."},
	{NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

static const char usage_line[] = "steward dlq list|show ID|retry ID|drop ID --state FILE [OPTIONS]";
static const char description[] =
	"Inspect and replay dead letters: writes a target rejected (4xx business errors),\n"
	"changes with an ambiguous identity, and references that never appeared.\n"
	"retry queues the request again (with a new Idempotency-Key) for the running\n"
	"apply service; drop marks it handled.  See docs/apply.md.";

static int64_t
now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void
format_time(int64_t ms, char *out, size_t outlen)
{
	time_t secs = (time_t) (ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *
or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static int
dlq_list(apply_state_t *s, bool all, size_t limit)
{
	char err[512];
	apply_dlq_entry_t *e;
	size_t n;
	if (apply_state_dlq_list(s, all ? NULL : "open", limit, &e, &n, err, sizeof err) != APPLY_OK) {
		fprintf(stderr, "steward dlq list: %s\n", err);
		return STEWARD_EXIT_IOERR;
	}
	printf("%-6s %-20s %-8s %-10s %-24s %-10s %s\n", "ID", "TIME", "STATE", "ENTITY", "ID",
	       "TARGET", "REASON");
	for (size_t i = 0; i < n; i++) {
		char t[32];
		format_time(e[i].time_ms, t, sizeof t);
		printf("%-6lld %-20s %-8s %-10s %-24s %-10s %s\n", (long long) e[i].id, t,
		       e[i].state, or_dash(e[i].entity), or_dash(e[i].entity_id),
		       or_dash(e[i].target), e[i].reason);
	}
	apply_state_dlq_free(e, n);
	return STEWARD_EXIT_OK;
}

/* Print JSON text indented when it parses, as it is otherwise. */
static void
print_json_field(const char *label, const char *text)
{
	printf("%s:\n", label);
	if (!text) {
		printf("  (none)\n");
		return;
	}
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
	char *pretty = j ? json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
	printf("%s\n", pretty ? pretty : text);
	free(pretty);
	json_decref(j);
}

static int
dlq_show(apply_state_t *s, int64_t id)
{
	char err[512], t[32], pos[2 * POSITION_MAX + 1];
	apply_dlq_entry_t e;
	apply_status_t st = apply_state_dlq_get(s, id, &e, err, sizeof err);
	if (st != APPLY_OK) {
		fprintf(stderr, "steward dlq show: %s\n", err);
		return st == APPLY_NOT_FOUND ? STEWARD_EXIT_DATAERR : STEWARD_EXIT_IOERR;
	}
	format_time(e.time_ms, t, sizeof t);
	position_hex(&e.pos, pos, sizeof pos);
	printf("id:        %lld\ntime:      %s\nstate:     %s\nentity:    %s %s\n"
	       "target:    %s\nreason:    %s\nsource:    %s\nposition:  %s\nkey:       %s\n",
	       (long long) e.id, t, e.state, or_dash(e.entity), or_dash(e.entity_id),
	       or_dash(e.target), e.reason, or_dash(e.source), or_dash(pos), or_dash(e.idem_key));
	print_json_field("request", e.request);
	print_json_field("response", e.response);
	apply_state_dlq_clear(&e);
	return STEWARD_EXIT_OK;
}

/* Queue the letter's request again and mark it retried, in one transaction. */
static int
dlq_retry(apply_state_t *s, int64_t id)
{
	char err[512], key[IDEM_KEY_LEN + 1];
	int64_t outbox_id = 0;
	apply_status_t st = apply_dlq_retry(s, id, now_ms(), &outbox_id, key, err, sizeof err);
	if (st != APPLY_OK) {
		fprintf(stderr, "steward dlq retry: %s\n", err);
		return (st == APPLY_NOT_FOUND || st == APPLY_CONFLICT) ? STEWARD_EXIT_DATAERR
									: STEWARD_EXIT_IOERR;
	}
	printf("dead letter %lld queued again as outbox row %lld (key %s)\n", (long long) id,
	       (long long) outbox_id, key);
	return STEWARD_EXIT_OK;
}

static int
dlq_drop(apply_state_t *s, int64_t id)
{
	char err[512];
	apply_status_t st = apply_state_dlq_set_state(s, id, "dropped", err, sizeof err);
	if (st != APPLY_OK) {
		fprintf(stderr, "steward dlq drop: %s\n", err);
		return st == APPLY_NOT_FOUND ? STEWARD_EXIT_DATAERR : STEWARD_EXIT_IOERR;
	}
	printf("dead letter %lld dropped\n", (long long) id);
	return STEWARD_EXIT_OK;
}

int
cmd_dlq(int argc, char **argv)
{
	char err[512];
	opts_t *o = NULL;
	apply_state_t *s = NULL;
	int rc = STEWARD_EXIT_USAGE;

	opts_status_t ps = opts_parse(dlq_opts, argc, argv, 1, &o, err, sizeof err);
	if (ps == OPTS_HELP) {
		opts_print_help(stdout, usage_line, description, dlq_opts);
		return STEWARD_EXIT_OK;
	}
	if (ps == OPTS_ERROR) {
		fprintf(stderr, "steward dlq: %s\n", err);
		return STEWARD_EXIT_USAGE;
	}
	const char *action = opts_npositional(o) > 0 ? opts_positional(o, 0) : NULL;
	const char *path = opts_get(o, "state");
	if (!action || !path) {
		fprintf(stderr, "steward dlq: %s required (see --help)\n",
			!action ? "an action (list, show, retry, drop) is" : "--state FILE is");
		goto out;
	}
	bool is_list = strcmp(action, "list") == 0;
	int64_t id = 0;
	if (!is_list) {
		if (strcmp(action, "show") && strcmp(action, "retry") && strcmp(action, "drop")) {
			fprintf(stderr, "steward dlq: unknown action \"%s\" (list, show, retry, "
				"drop)\n", action);
			goto out;
		}
		char *end = NULL;
		const char *arg = opts_npositional(o) > 1 ? opts_positional(o, 1) : "";
		id = strtoll(arg, &end, 10);
		if (!*arg || *end || id <= 0 || opts_npositional(o) > 2) {
			fprintf(stderr, "steward dlq %s: expected one dead-letter ID\n", action);
			goto out;
		}
	} else if (opts_npositional(o) > 1) {
		fprintf(stderr, "steward dlq list: unexpected argument \"%s\"\n",
			opts_positional(o, 1));
		goto out;
	}
	if (apply_state_open(path, &s, err, sizeof err) != APPLY_OK) {
		fprintf(stderr, "steward dlq: %s\n", err);
		rc = STEWARD_EXIT_IOERR;
		goto out;
	}
	if (is_list)
		rc = dlq_list(s, opts_flag(o, "all"), (size_t) opts_get_int(o, "limit"));
	else if (strcmp(action, "show") == 0)
		rc = dlq_show(s, id);
	else if (strcmp(action, "retry") == 0)
		rc = dlq_retry(s, id);
	else
		rc = dlq_drop(s, id);
out:
	apply_state_close(s);
	opts_free(o);
	return rc;
}
