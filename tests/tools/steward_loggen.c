/*
 * steward_loggen.c — write a change log of synthetic changes, for the
 * warehouse tests and the apply benchmark.
 *
 *   steward_loggen --out DIR --count N [--shape insert|mixed] [--kind pg|mysql]
 *                  [--source NAME] [--table NAME] [--keys K] [--seed S]
 *                  [--copy-out FILE] [--expect FILE]
 *   steward_loggen --out DIR --json FILE      (records as `steward log dump` lines)
 *
 * Synthetic rows have the columns id (key), name, amount, qty, created_at,
 * active, note and payload, typed for the chosen source kind.  "insert"
 * writes N inserts of distinct ids; "mixed" draws ids from 1..K (default
 * N/4) and inserts, updates (key-only before image) or deletes them.
 * --copy-out writes every inserted row as COPY text (the benchmark's
 * ceiling input); --expect writes the final state, ordered by id, as a
 * PostgreSQL warehouse in UTC prints it with COPY … TO STDOUT.
 *
 * Positions continue after what the log already holds (PostgreSQL-style,
 * one LSN per change), so running the tool twice appends.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clog.h"
#include "exitcodes.h"
#include "opts.h"
#include "position.h"
#include "record.h"
#include "xalloc.h"

static const opt_spec_t specs[] = {
	{"out", 'o', OPT_STRING, "DIR", NULL, 0, 0, "Change log directory (created if missing)."},
	{"count", 'n', OPT_INT, "N", "1000", 0, LLONG_MAX, "Number of synthetic changes."},
	{"shape", 0, OPT_STRING, "SHAPE", "insert", 0, 0, "insert or mixed."},
	{"kind", 0, OPT_STRING, "KIND", "pg", 0, 0, "Source dialect of the types: pg or mysql."},
	{"source", 0, OPT_STRING, "NAME", "gen", 0, 0, "Source name in every record."},
	{"schema", 0, OPT_STRING, "NAME", "public", 0, 0, "Source schema."},
	{"table", 0, OPT_STRING, "NAME", "items", 0, 0, "Source table."},
	{"keys", 0, OPT_INT, "K", "0", 0, LLONG_MAX, "Key space for mixed (0 = count/4)."},
	{"seed", 0, OPT_INT, "S", "1", 0, LLONG_MAX, "Random seed."},
	{"first-id", 0, OPT_INT, "ID", "1", 0, LLONG_MAX, "First id of the insert shape."},
	{"copy-out", 0, OPT_STRING, "FILE", NULL, 0, 0, "Write inserted rows as COPY text."},
	{"expect", 0, OPT_STRING, "FILE", NULL, 0, 0, "Write the expected final state."},
	{"json", 0, OPT_STRING, "FILE", NULL, 0, 0, "Write these log-dump JSON lines instead."},
	{NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

#define NCOLS 8

static const char *const col_names[NCOLS] = {"id", "name", "amount", "qty", "created_at",
					     "active", "note", "payload"};
static const char *const pg_types[NCOLS] = {"bigint", "text", "numeric(12,2)", "integer",
					    "timestamp with time zone", "boolean", "text", "jsonb"};
static const char *const my_types[NCOLS] = {"bigint(20)", "varchar(64)", "decimal(12,2)",
					    "int(11)", "timestamp(6)", "tinyint(1)", "text",
					    "json"};

typedef struct gen {
	clog_writer_t *w;
	uint64_t lsn;
	uint64_t state;       /* xorshift */
	bool mysql;
	const char *source, *schema, *table;
	char err[1024];
} gen_t;

static uint64_t
rnd(gen_t *g)
{
	uint64_t x = g->state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return g->state = x;
}

/* Column texts of row id at version ver, in the source's text form. */
static void
row_texts(gen_t *g, uint64_t id, uint64_t ver, char vals[NCOLS][128])
{
	uint64_t h = (id * 2654435761u) ^ (ver * 40503u);
	snprintf(vals[0], 128, "%" PRIu64, id);
	snprintf(vals[1], 128, "name %" PRIu64 " v%" PRIu64, id, ver);
	snprintf(vals[2], 128, "%" PRIu64 ".%02" PRIu64, h % 100000, h % 100);
	snprintf(vals[3], 128, "%" PRIu64, (h >> 8) % 1000);
	time_t t = (time_t) (1700000000 + id * 7 + ver);
	struct tm tm;
	gmtime_r(&t, &tm);
	char day[32];
	strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(vals[4], 128, g->mysql ? "%s.%06" PRIu64 : "%s.%06" PRIu64 "+00", day, h % 1000000);
	snprintf(vals[5], 128, "%s", g->mysql ? ((h & 1) ? "1" : "0") : ((h & 1) ? "t" : "f"));
	/* Every few rows, bytes that COPY text format must escape. */
	if (id % 7 == 0)
		snprintf(vals[6], 128, "tab\there\nnew line \\ back\\slash \"q\" r\r");
	else
		snprintf(vals[6], 128, "note %" PRIu64, h % 977);
	snprintf(vals[7], 128, "{\"k\": %" PRIu64 ", \"v\": \"x%" PRIu64 "\"}", id, ver);
}

/* The warehouse's output form of the same row (COPY TO, UTC session). */
static void
write_expect_row(FILE *f, gen_t *g, char vals[NCOLS][128])
{
	for (int c = 0; c < NCOLS; c++) {
		const char *v = vals[c];
		char tmp[160];
		if (c == 4) {
			/* PostgreSQL prints fractional seconds without trailing zeros. */
			snprintf(tmp, sizeof(tmp), "%.26s", v);
			size_t n = strlen(tmp);
			while (n > 0 && tmp[n - 1] == '0')
				tmp[--n] = '\0';
			if (n > 0 && tmp[n - 1] == '.')
				tmp[--n] = '\0';
			snprintf(tmp + n, sizeof(tmp) - n, "+00");
			v = tmp;
		}
		if (c == 5 && g->mysql)
			v = strcmp(v, "1") == 0 ? "1" : "0";
		if (c)
			fputc('\t', f);
		for (const char *p = v; *p; p++) {
			switch (*p) {
			case '\\': fputs("\\\\", f); break;
			case '\n': fputs("\\n", f); break;
			case '\r': fputs("\\r", f); break;
			case '\t': fputs("\\t", f); break;
			default: fputc(*p, f); break;
			}
		}
	}
	fputc('\n', f);
}

static int
append(gen_t *g, Steward__Op op, uint64_t id, uint64_t ver, FILE *copy_out)
{
	char vals[NCOLS][128];
	row_texts(g, id, ver, vals);
	Steward__Value v[NCOLS], k = STEWARD__VALUE__INIT;
	Steward__Value *after[NCOLS], *before[1];
	for (int c = 0; c < NCOLS; c++) {
		steward__value__init(&v[c]);
		v[c].name = (char *) col_names[c];
		v[c].type_name = (char *) (g->mysql ? my_types[c] : pg_types[c]);
		v[c].text = vals[c];
		after[c] = &v[c];
	}
	k.name = "id";
	k.type_name = (char *) (g->mysql ? my_types[0] : pg_types[0]);
	k.text = vals[0];
	before[0] = &k;
	char *key[1] = {"id"};
	char postext[64];
	uint8_t posbytes[POSITION_MAX];
	position_t pos;
	g->lsn += 0x40;
	position_pg(&pos, g->lsn, POSITION_PHASE_STREAM, 0);
	memcpy(posbytes, pos.bytes, pos.len);
	snprintf(postext, sizeof(postext), "%X/%X:0", (unsigned) (g->lsn >> 32), (unsigned) g->lsn);

	Steward__Change ch = STEWARD__CHANGE__INIT;
	ch.has_version = true;
	ch.version = STEWARD_RECORD_VERSION;
	ch.source = (char *) g->source;
	ch.has_source_kind = true;
	ch.source_kind = g->mysql ? STEWARD__SOURCE_KIND__SOURCE_KIND_MYSQL
				  : STEWARD__SOURCE_KIND__SOURCE_KIND_POSTGRESQL;
	ch.database = "gen";
	ch.schema = (char *) g->schema;
	ch.table = (char *) g->table;
	ch.has_op = true;
	ch.op = op;
	ch.has_commit_ts_us = true;
	ch.commit_ts_us = (int64_t) 1700000000000000LL + (int64_t) (g->lsn / 0x40) * 1000;
	ch.has_position = true;
	ch.position.data = posbytes;
	ch.position.len = pos.len;
	ch.position_text = postext;
	ch.n_key = 1;
	ch.key = key;
	if (op == STEWARD__OP__OP_DELETE || op == STEWARD__OP__OP_UPDATE) {
		ch.n_before = 1;
		ch.before = before;
	}
	if (op != STEWARD__OP__OP_DELETE) {
		ch.n_after = NCOLS;
		ch.after = after;
	}
	if (clog_writer_append(g->w, &ch, g->err, sizeof(g->err)) != CLOG_OK)
		return -1;
	if (copy_out && op == STEWARD__OP__OP_INSERT)
		write_expect_row(copy_out, g, vals);
	return 0;
}

static int
run_json(gen_t *g, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!f) {
		fprintf(stderr, "steward_loggen: could not open \"%s\"\n", path);
		return STEWARD_EXIT_IOERR;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = STEWARD_EXIT_OK, lineno = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		if (n <= 1 || line[0] == '#')
			continue;
		Steward__Change *c = record_from_json(line, g->err, sizeof(g->err));
		if (!c) {
			fprintf(stderr, "steward_loggen: %s line %d: %s\n", path, lineno, g->err);
			rc = STEWARD_EXIT_DATAERR;
			break;
		}
		uint8_t posbytes[POSITION_MAX];
		char postext[64];
		if (!c->has_position) {
			position_t pos;
			g->lsn += 0x40;
			position_pg(&pos, g->lsn, POSITION_PHASE_STREAM, 0);
			memcpy(posbytes, pos.bytes, pos.len);
			c->has_position = true;
			c->position.data = posbytes;
			c->position.len = pos.len;
			if (!c->position_text) {
				snprintf(postext, sizeof(postext), "%X/%X:0", (unsigned) (g->lsn >> 32),
					 (unsigned) g->lsn);
				c->position_text = postext;
			}
		}
		if (!c->has_commit_ts_us) {
			c->has_commit_ts_us = true;
			c->commit_ts_us = (int64_t) 1700000000000000LL + (int64_t) lineno * 1000;
		}
		clog_status_t cs = clog_writer_append(g->w, c, g->err, sizeof(g->err));
		/* Borrowed pointers must not reach record_free. */
		if (c->position.data == posbytes) {
			c->position.data = NULL;
			c->position.len = 0;
		}
		if (c->position_text == postext)
			c->position_text = NULL;
		record_free(c);
		if (cs != CLOG_OK && cs != CLOG_DUPLICATE) {
			fprintf(stderr, "steward_loggen: %s\n", g->err);
			rc = STEWARD_EXIT_IOERR;
			break;
		}
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

int
main(int argc, char **argv)
{
	char err[512];
	opts_t *o = NULL;
	int rc = STEWARD_EXIT_OK;
	FILE *copy_out = NULL, *expect = NULL;
	uint64_t *versions = NULL;
	gen_t g = {0};
	opts_status_t ps = opts_parse(specs, argc, argv, 1, &o, err, sizeof(err));
	if (ps == OPTS_HELP) {
		opts_print_help(stdout, "steward_loggen --out DIR [OPTIONS]",
				"Write a change log of synthetic changes.", specs);
		goto out;
	}
	if (ps != OPTS_OK || !opts_get(o, "out")) {
		fprintf(stderr, "steward_loggen: %s\n", ps != OPTS_OK ? err : "--out DIR is required");
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	g.mysql = strcmp(opts_get(o, "kind"), "mysql") == 0;
	g.source = opts_get(o, "source");
	g.schema = opts_get(o, "schema");
	g.table = opts_get(o, "table");
	g.state = 0x9E3779B97F4A7C15ull ^ (uint64_t) opts_get_int(o, "seed");
	if (clog_writer_open(opts_get(o, "out"), NULL, &g.w, g.err, sizeof(g.err)) != CLOG_OK) {
		fprintf(stderr, "steward_loggen: %s\n", g.err);
		rc = STEWARD_EXIT_IOERR;
		goto out;
	}
	position_t last;
	if (clog_writer_last_position(g.w, &last)) {
		uint64_t lsn;
		int phase;
		uint64_t seq;
		if (position_pg_parse(&last, &lsn, &phase, &seq))
			g.lsn = lsn;
	}
	if (g.lsn == 0)
		g.lsn = 0x1000000;
	if (opts_get(o, "json")) {
		rc = run_json(&g, opts_get(o, "json"));
	} else {
		uint64_t count = (uint64_t) opts_get_int(o, "count");
		uint64_t first = (uint64_t) opts_get_int(o, "first-id");
		bool mixed = strcmp(opts_get(o, "shape"), "mixed") == 0;
		uint64_t keys = (uint64_t) opts_get_int(o, "keys");
		if (keys == 0)
			keys = count / 4 ? count / 4 : 1;
		if (opts_get(o, "copy-out") && !(copy_out = fopen(opts_get(o, "copy-out"), "w"))) {
			fprintf(stderr, "steward_loggen: could not write \"%s\"\n", opts_get(o, "copy-out"));
			rc = STEWARD_EXIT_IOERR;
			goto out;
		}
		/* versions[id - first]: 0 = absent, else the row's current version. */
		uint64_t span = mixed ? keys : count;
		versions = xcalloc(span + 1, sizeof(*versions));
		for (uint64_t i = 0; i < count && rc == STEWARD_EXIT_OK; i++) {
			uint64_t slot = mixed ? rnd(&g) % keys : i;
			uint64_t id = first + slot;
			Steward__Op op = STEWARD__OP__OP_INSERT;
			if (versions[slot])
				op = rnd(&g) % 10 < 7 ? STEWARD__OP__OP_UPDATE : STEWARD__OP__OP_DELETE;
			uint64_t ver = op == STEWARD__OP__OP_DELETE ? 0 : versions[slot] + 1;
			if (append(&g, op, id, ver ? ver : 1, copy_out) != 0) {
				fprintf(stderr, "steward_loggen: %s\n", g.err);
				rc = STEWARD_EXIT_IOERR;
			}
			versions[slot] = ver;
		}
		if (opts_get(o, "expect") && rc == STEWARD_EXIT_OK) {
			if (!(expect = fopen(opts_get(o, "expect"), "w"))) {
				rc = STEWARD_EXIT_IOERR;
				goto out;
			}
			for (uint64_t slot = 0; slot < span; slot++) {
				if (!versions[slot])
					continue;
				char vals[NCOLS][128];
				row_texts(&g, first + slot, versions[slot], vals);
				write_expect_row(expect, &g, vals);
			}
		}
	}
	if (rc == STEWARD_EXIT_OK && clog_writer_flush(g.w, g.err, sizeof(g.err)) != CLOG_OK) {
		fprintf(stderr, "steward_loggen: %s\n", g.err);
		rc = STEWARD_EXIT_IOERR;
	}
out:
	if (copy_out)
		fclose(copy_out);
	if (expect)
		fclose(expect);
	free(versions);
	clog_writer_close(g.w);
	opts_free(o);
	return rc;
}
