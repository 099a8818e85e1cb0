/*
 * cmd_log.c — `steward log`: inspect and maintain a change log.
 *
 *   steward log dump   --data-dir DIR [--after-hex HEX] [--follow] [--limit N]
 *   steward log verify --data-dir DIR
 *   steward log gc     --data-dir DIR
 *   steward log stats  --data-dir DIR
 *
 * All of them only read the log (gc deletes consumed sealed segments), so
 * they run safely while a capture agent is writing.  The dump line format
 * is documented in docs/change-log.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clog.h"
#include "commands.h"
#include "exitcodes.h"
#include "opts.h"
#include "record.h"

static const opt_spec_t dump_opts[] = {
	{"data-dir", 'd', OPT_STRING, "DIR", NULL, 0, 0, "Data directory holding the change log."},
	{"after-hex", 0, OPT_STRING, "HEX", NULL, 0, 0,
	 "Start after this position (the \"pos_hex\" of a dumped line)."},
	{"follow", 'f', OPT_FLAG, NULL, NULL, 0, 0,
	 "Keep waiting for new records, as tail -f does, until interrupted."},
	{"limit", 'n', OPT_INT, "N", "0", 0, LLONG_MAX, "Stop after N records (0 = no limit)."},
	{NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

static const opt_spec_t dir_opts[] = {
	{"data-dir", 'd', OPT_STRING, "DIR", NULL, 0, 0, "Data directory holding the change log."},
	{NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

struct log_subcommand {
	const char *name;
	const opt_spec_t *specs;
	const char *usage;
	const char *description;
	int (*run)(const opts_t *o, const char *dir);
};

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void) sig;
	stop_requested = 1;
}

static int
exit_for(clog_status_t rc)
{
	return rc == CLOG_CORRUPT ? STEWARD_EXIT_DATAERR : STEWARD_EXIT_IOERR;
}

static int
run_dump(const opts_t *o, const char *dir)
{
	char err[1024];
	position_t after = {0};
	const char *hex = opts_get(o, "after-hex");
	if (hex && !position_from_hex(&after, hex)) {
		fprintf(stderr, "steward log dump: invalid --after-hex \"%s\": expected up to %d bytes of hex\n",
			hex, POSITION_MAX);
		return STEWARD_EXIT_USAGE;
	}
	long long limit = opts_get_int(o, "limit");
	bool follow = opts_flag(o, "follow");
	clog_reader_t *r;
	clog_status_t rc = clog_reader_open(dir, &after, &r, err, sizeof(err));
	if (rc != CLOG_OK) {
		fprintf(stderr, "steward log dump: %s\n", err);
		return exit_for(rc);
	}
	if (follow) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	int status = STEWARD_EXIT_OK;
	long long n = 0;
	buf_t line = BUF_INIT;
	while (limit == 0 || n < limit) {
		const Steward__Change *c;
		rc = clog_reader_next(r, &c, err, sizeof(err));
		if (rc == CLOG_OK) {
			buf_reset(&line);
			record_to_json(c, &line);
			buf_append_char(&line, '\n');
			if (fwrite(line.data, 1, line.len, stdout) != line.len) {
				status = STEWARD_EXIT_IOERR;
				break;
			}
			n++;
			continue;
		}
		if (rc == CLOG_END) {
			if (!follow || stop_requested)
				break;
			fflush(stdout);
			struct timespec ts = {0, 200 * 1000 * 1000};
			nanosleep(&ts, NULL);
			if (stop_requested)
				break;
			continue;
		}
		/* Print what came before the bad frame, then say where it is. */
		fflush(stdout);
		fprintf(stderr, "steward log dump: %s\n", err);
		status = exit_for(rc);
		break;
	}
	buf_free(&line);
	if (fflush(stdout) != 0 && status == STEWARD_EXIT_OK) {
		fprintf(stderr, "steward log dump: could not write output: %s\n", strerror(errno));
		status = STEWARD_EXIT_IOERR;
	}
	clog_reader_close(r);
	return status;
}

static void
print_position(const char *label, const position_t *p)
{
	char hex[2 * POSITION_MAX + 1];
	if (p->len == 0) {
		printf("%-14s -\n", label);
		return;
	}
	position_hex(p, hex, sizeof(hex));
	printf("%-14s %s\n", label, hex);
}

static int
run_verify(const opts_t *o, const char *dir)
{
	char err[1024];
	clog_scan_t s;
	clog_status_t rc = clog_scan(dir, true, &s, err, sizeof(err));
	printf("segments       %" PRIu64 "\n", s.segments);
	printf("frames         %" PRIu64 "\n", s.frames);
	printf("records        %" PRIu64 "\n", s.records);
	printf("bytes          %" PRIu64 "\n", s.bytes);
	printf("raw_bytes      %" PRIu64 "\n", s.raw_bytes);
	print_position("first_pos_hex", &s.first);
	print_position("last_pos_hex", &s.last);
	if (s.torn_tail)
		printf("incomplete     %s (a frame being written, or a torn tail the writer "
		       "truncates when it next opens)\n", s.tail);
	if (rc != CLOG_OK) {
		fflush(stdout);
		fprintf(stderr, "steward log verify: %s\n", err);
		return exit_for(rc);
	}
	printf("ok\n");
	return STEWARD_EXIT_OK;
}

static int
run_gc(const opts_t *o, const char *dir)
{
	char err[1024];
	size_t removed = 0;
	uint64_t before = clog_size_bytes(dir);
	clog_status_t rc = clog_gc(dir, &removed, err, sizeof(err));
	if (rc != CLOG_OK) {
		fprintf(stderr, "steward log gc: %s\n", err);
		return exit_for(rc);
	}
	uint64_t after = clog_size_bytes(dir);
	printf("removed %zu segment%s (%" PRIu64 " bytes)\n", removed, removed == 1 ? "" : "s",
	       before > after ? before - after : 0);
	return STEWARD_EXIT_OK;
}

static int
run_stats(const opts_t *o, const char *dir)
{
	char err[1024];
	clog_scan_t s;
	clog_status_t rc = clog_scan(dir, false, &s, err, sizeof(err));
	if (rc != CLOG_OK) {
		fprintf(stderr, "steward log stats: %s\n", err);
		return exit_for(rc);
	}
	printf("segments       %" PRIu64 "\n", s.segments);
	if (s.segments)
		printf("segment_range  %" PRIu64 "..%" PRIu64 "\n", s.first_segment, s.last_segment);
	printf("frames         %" PRIu64 "\n", s.frames);
	printf("records        %" PRIu64 "\n", s.records);
	printf("bytes          %" PRIu64 "\n", s.bytes);
	printf("raw_bytes      %" PRIu64 "\n", s.raw_bytes);
	if (s.bytes > 0)
		printf("compression    %.2fx\n", (double) s.raw_bytes / (double) s.bytes);
	print_position("first_pos_hex", &s.first);
	print_position("last_pos_hex", &s.last);
	if (s.torn_tail)
		printf("incomplete     %s\n", s.tail);

	char **names;
	size_t n;
	rc = clog_checkpoint_list(dir, &names, &n, err, sizeof(err));
	if (rc != CLOG_OK) {
		fprintf(stderr, "steward log stats: %s\n", err);
		return exit_for(rc);
	}
	int status = STEWARD_EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		position_t p;
		char label[256];
		rc = clog_checkpoint_load(dir, names[i], &p, err, sizeof(err));
		if (rc == CLOG_END)
			continue;
		if (rc != CLOG_OK) {
			fprintf(stderr, "steward log stats: %s\n", err);
			status = exit_for(rc);
			continue;
		}
		snprintf(label, sizeof(label), "reader %s", names[i]);
		print_position(label, &p);
	}
	clog_checkpoint_list_free(names, n);
	return status;
}

static const struct log_subcommand subcommands[] = {
	{"dump", dump_opts, "steward log dump --data-dir DIR [--after-hex HEX] [--follow] [--limit N]",
	 "Print change records as JSON lines, one change a line, in log order.  Safe while\n"
	 "capture is writing.  On corruption, prints every record before the bad frame,\n"
	 "then the segment file and offset on stderr, and exits 65.",
	 run_dump},
	{"verify", dir_opts, "steward log verify --data-dir DIR",
	 "Check every frame: checksum, decompression, decoding, and position order.\n"
	 "Prints counts; exits 65 naming the segment file and offset on corruption.",
	 run_verify},
	{"gc", dir_opts, "steward log gc --data-dir DIR",
	 "Remove sealed segments whose records every reader has consumed (by its\n"
	 "checkpoint).  With no reader checkpoint, removes nothing.",
	 run_gc},
	{"stats", dir_opts, "steward log stats --data-dir DIR",
	 "Print sizes, record counts, position range and reader checkpoints, from the\n"
	 "frame headers (fast; use verify to check contents).",
	 run_stats},
	{NULL, NULL, NULL, NULL, NULL},
};

static void
log_usage(FILE *f)
{
	fprintf(f, "Usage: steward log SUBCOMMAND --data-dir DIR [OPTIONS]\n\n"
		   "Inspect and maintain a change log.\n\nSubcommands:\n"
		   "  dump     print records as JSON lines\n"
		   "  verify   check every frame of the log\n"
		   "  gc       remove segments every reader has consumed\n"
		   "  stats    sizes, counts, positions and reader checkpoints\n\n"
		   "Run 'steward log SUBCOMMAND --help' for its options.  "
		   "Format: docs/change-log.md.\n");
}

int
cmd_log(int argc, char **argv)
{
	if (argc < 2) {
		log_usage(stderr);
		return STEWARD_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		log_usage(stdout);
		return STEWARD_EXIT_OK;
	}
	for (const struct log_subcommand *s = subcommands; s->name; s++) {
		if (strcmp(argv[1], s->name) != 0)
			continue;
		char err[512];
		opts_t *o = NULL;
		opts_status_t ps = opts_parse(s->specs, argc, argv, 2, &o, err, sizeof(err));
		if (ps == OPTS_HELP) {
			opts_print_help(stdout, s->usage, s->description, s->specs);
			return STEWARD_EXIT_OK;
		}
		if (ps == OPTS_ERROR) {
			fprintf(stderr, "steward log %s: %s\n", s->name, err);
			return STEWARD_EXIT_USAGE;
		}
		int status;
		const char *dir = opts_get(o, "data-dir");
		if (opts_npositional(o) > 0) {
			fprintf(stderr, "steward log %s: unexpected argument \"%s\" (see --help)\n",
				s->name, opts_positional(o, 0));
			status = STEWARD_EXIT_USAGE;
		} else if (dir == NULL) {
			fprintf(stderr, "steward log %s: --data-dir is required (see --help)\n", s->name);
			status = STEWARD_EXIT_USAGE;
		} else {
			status = s->run(o, dir);
		}
		opts_free(o);
		return status;
	}
	fprintf(stderr, "steward log: unknown subcommand \"%s\"\n\n", argv[1]);
	log_usage(stderr);
	return STEWARD_EXIT_USAGE;
}
