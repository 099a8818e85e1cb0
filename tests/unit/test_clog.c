/*
 * test_clog.c — the change log: round trips across segments, recovery of a
 * torn tail at every byte, corruption reported with file and offset (never
 * skipped), reading from a position, tailing a frame being written,
 * checkpoints and gc, decompression bombs, and CRC32C.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "buf.h"
#include "clog.h"
#include "crc32c.h"
#include "log.h"
#include "record.h"
#include "xalloc.h"
#include "test_tmpdir.h"

/* ---- helpers ---- */

static char *
seg_path(const char *dir, uint64_t seq)
{
	return xasprintf("%s/segments/%020llu.seg", dir, (unsigned long long) seq);
}

static void
test_pos(position_t *p, uint64_t i)
{
	/* Ten changes per transaction: distinct, increasing positions. */
	position_pg(p, 0x1000 + (i / 10) * 0x100, POSITION_PHASE_STREAM, i % 10);
}

/* Append change number i (id = i, a text column, a NULL column). */
static clog_status_t
append_one(clog_writer_t *w, uint64_t i, char *err, size_t errlen)
{
	Steward__Change c = STEWARD__CHANGE__INIT;
	Steward__Value id = STEWARD__VALUE__INIT, name = STEWARD__VALUE__INIT,
		       note = STEWARD__VALUE__INIT;
	Steward__Value *after[3] = {&id, &name, &note};
	char *key[1] = {"id"};
	char idtext[32], nametext[64], postext[64];
	position_t p;
	test_pos(&p, i);
	snprintf(idtext, sizeof(idtext), "%llu", (unsigned long long) i);
	snprintf(nametext, sizeof(nametext), "customer %llu \xf0\x9f\x98\x80", (unsigned long long) i);
	snprintf(postext, sizeof(postext), "0/%llX:%llu", (unsigned long long) i / 10,
		 (unsigned long long) i % 10);
	id.name = "id";
	id.type_name = "integer";
	id.text = idtext;
	name.name = "name";
	name.type_name = "text";
	name.text = nametext;
	note.name = "note";
	note.type_name = "text";
	note.has_is_null = true;
	note.is_null = true;
	c.has_version = true;
	c.version = 1;
	c.source = "erp";
	c.schema = "public";
	c.table = "customers";
	c.has_op = true;
	c.op = STEWARD__OP__OP_INSERT;
	c.has_position = true;
	c.position.data = p.bytes;
	c.position.len = p.len;
	c.position_text = postext;
	c.n_key = 1;
	c.key = key;
	c.n_after = 3;
	c.after = after;
	return clog_writer_append(w, &c, err, errlen);
}

static clog_writer_t *
open_writer(const char *dir, size_t segment_bytes, size_t batch_bytes)
{
	char err[512] = "";
	clog_options_t o = {segment_bytes, batch_bytes, 1};
	clog_writer_t *w = NULL;
	clog_status_t rc = clog_writer_open(dir, &o, &w, err, sizeof(err));
	if (rc != CLOG_OK)
		fail_msg("clog_writer_open: %s", err);
	return w;
}

/* Append [from, to] and flush after every `per_frame` records (one frame each). */
static void
write_range(clog_writer_t *w, uint64_t from, uint64_t to, uint64_t per_frame)
{
	char err[512];
	for (uint64_t i = from; i <= to; i++) {
		clog_status_t rc = append_one(w, i, err, sizeof(err));
		if (rc != CLOG_OK)
			fail_msg("append %llu: %d %s", (unsigned long long) i, rc, err);
		if (per_frame && (i - from + 1) % per_frame == 0)
			assert_int_equal(clog_writer_flush(w, err, sizeof(err)), CLOG_OK);
	}
	assert_int_equal(clog_writer_flush(w, err, sizeof(err)), CLOG_OK);
}

/*
 * Read everything after `after_i` (0 = from the start) and check the
 * records are exactly after_i+1 .. after_i+n in order with their content.
 * Returns n; *end_rc gets the status that stopped the loop.
 */
static uint64_t
read_check(const char *dir, uint64_t after_i, clog_status_t *end_rc, char *err, size_t errlen)
{
	clog_reader_t *r;
	position_t after = {0};
	if (after_i)
		test_pos(&after, after_i);
	assert_int_equal(clog_reader_open(dir, &after, &r, err, errlen), CLOG_OK);
	uint64_t n = 0;
	const Steward__Change *c;
	clog_status_t rc;
	while ((rc = clog_reader_next(r, &c, err, errlen)) == CLOG_OK) {
		uint64_t want = after_i + n + 1;
		char idtext[32];
		position_t p;
		snprintf(idtext, sizeof(idtext), "%llu", (unsigned long long) want);
		test_pos(&p, want);
		assert_int_equal(c->position.len, p.len);
		assert_memory_equal(c->position.data, p.bytes, p.len);
		assert_int_equal(c->n_after, 3);
		assert_string_equal(c->after[0]->text, idtext);
		assert_true(c->after[2]->is_null);
		assert_null(c->after[2]->text);
		assert_string_equal(c->table, "customers");
		n++;
	}
	*end_rc = rc;
	clog_reader_close(r);
	return n;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *data = xmalloc((size_t) n + 1);
	assert_int_equal(fread(data, 1, (size_t) n, f), (size_t) n);
	fclose(f);
	*len = (size_t) n;
	return data;
}

static void
write_file(const char *path, const uint8_t *data, size_t len, const char *mode)
{
	FILE *f = fopen(path, mode);
	assert_non_null(f);
	if (len)
		assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static uint64_t
file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t) st.st_size;
}

/* Offsets of the frames in a segment, from their headers. */
static size_t
frame_offsets(const uint8_t *data, size_t len, uint64_t *offs, size_t max)
{
	size_t n = 0;
	uint64_t off = 0;
	while (off + 96 <= len && n < max) {
		uint32_t plen = (uint32_t) data[off + 8] | (uint32_t) data[off + 9] << 8 |
				(uint32_t) data[off + 10] << 16 | (uint32_t) data[off + 11] << 24;
		offs[n++] = off;
		off += 96 + plen;
	}
	return n;
}

/* ---- round trips ---- */

static void
records_round_trip_across_many_segments(void **state)
{
	char *dir = test_make_tmpdir("clog-test");
	char err[512];
	clog_writer_t *w = open_writer(dir, 16 * 1024, 2048);
	write_range(w, 1, 20000, 0);
	position_t last, want;
	assert_true(clog_writer_last_position(w, &last));
	test_pos(&want, 20000);
	assert_int_equal(position_cmp(&last, &want), 0);
	assert_int_equal(clog_writer_pending_bytes(w), 0);
	clog_writer_close(w);

	clog_scan_t s;
	assert_int_equal(clog_scan(dir, true, &s, err, sizeof(err)), CLOG_OK);
	assert_true(s.segments >= 5);
	assert_int_equal(s.records, 20000);
	assert_false(s.torn_tail);
	assert_int_equal(s.bytes, clog_size_bytes(dir));

	clog_status_t rc;
	assert_int_equal(read_check(dir, 0, &rc, err, sizeof(err)), 20000);
	assert_int_equal(rc, CLOG_END);
	test_remove_tree(dir);
}

static void
reopened_writer_skips_duplicates_and_continues(void **state)
{
	char *dir = test_make_tmpdir("clog-test");
	char err[512];
	clog_writer_t *w = open_writer(dir, 0, 0);
	write_range(w, 1, 100, 30);
	clog_writer_close(w);

	w = open_writer(dir, 0, 0);
	position_t last, want;
	assert_true(clog_writer_last_position(w, &last));
	test_pos(&want, 100);
	assert_int_equal(position_cmp(&last, &want), 0);
	/* A restarted source re-sends 50..100: dropped; 101..150 appended. */
	for (uint64_t i = 50; i <= 100; i++)
		assert_int_equal(append_one(w, i, err, sizeof(err)), CLOG_DUPLICATE);
	write_range(w, 101, 150, 0);
	assert_int_equal(append_one(w, 150, err, sizeof(err)), CLOG_DUPLICATE);
	clog_writer_close(w);

	clog_status_t rc;
	assert_int_equal(read_check(dir, 0, &rc, err, sizeof(err)), 150);
	assert_int_equal(rc, CLOG_END);
	test_remove_tree(dir);
}

static void
nothing_is_durable_until_flush(void **state)
{
	char *dir = test_make_tmpdir("clog-test");
	char err[512];
	clog_writer_t *w = open_writer(dir, 0, 0);
	position_t last;
	assert_false(clog_writer_last_position(w, &last));
	assert_int_equal(append_one(w, 1, err, sizeof(err)), CLOG_OK);
	assert_true(clog_writer_pending_bytes(w) > 0);
	assert_false(clog_writer_last_position(w, &last));
	assert_int_equal(clog_writer_flush(w, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_writer_pending_bytes(w), 0);
	assert_true(clog_writer_last_position(w, &last));
	clog_writer_close(w);
	test_remove_tree(dir);
}

static void
second_writer_is_refused(void **state)
{
	char *dir = test_make_tmpdir("clog-test");
	char err[512] = "";
	clog_writer_t *w = open_writer(dir, 0, 0), *w2 = NULL;
	assert_int_equal(clog_writer_open(dir, NULL, &w2, err, sizeof(err)), CLOG_ERROR);
	assert_non_null(strstr(err, "locked"));
	clog_writer_close(w);
	assert_int_equal(clog_writer_open(dir, NULL, &w2, err, sizeof(err)), CLOG_OK);
	clog_writer_close(w2);
	test_remove_tree(dir);
}

static void
change_without_position_is_rejected(void **state)
{
	char *dir = test_make_tmpdir("clog-test");
	char err[512] = "";
	clog_writer_t *w = open_writer(dir, 0, 0);
	Steward__Change c = STEWARD__CHANGE__INIT;
	c.table = "t";
	assert_int_equal(clog_writer_append(w, &c, err, sizeof(err)), CLOG_ERROR);
	assert_non_null(strstr(err, "position"));
	clog_writer_close(w);
	test_remove_tree(dir);
}

/* ---- recovery and corruption ---- */

static void
torn_tail_at_every_offset_is_truncated_keeping_earlier_records(void **state)
{
	char *golden = test_make_tmpdir("clog-test");
	char err[512];
	clog_writer_t *w = open_writer(golden, 0, 0);
	write_range(w, 1, 30, 10);  /* three frames of ten records */
	clog_writer_close(w);
	char *gpath = seg_path(golden, 1);
	size_t len;
	uint8_t *data = read_file(gpath, &len);
	uint64_t offs[8];
	assert_int_equal(frame_offsets(data, len, offs, 8), 3);
	uint64_t last_start = offs[2];

	log_level_t saved = log_min_level;
	log_set_level(LOG_LEVEL_ERROR);  /* one truncation warning per offset */
	for (uint64_t cut = last_start + 1; cut < len; cut++) {
		char *dir = test_make_tmpdir("clog-test");
		char *segdir = xasprintf("%s/segments", dir);
		char *path = seg_path(dir, 1);
		assert_int_equal(mkdir(segdir, 0755), 0);
		write_file(path, data, cut, "wb");

		/* A reader before recovery sees the 20 whole records, then END. */
		clog_status_t rc;
		assert_int_equal(read_check(dir, 0, &rc, err, sizeof(err)), 20);
		assert_int_equal(rc, CLOG_END);

		clog_writer_t *rw = NULL;
		rc = clog_writer_open(dir, NULL, &rw, err, sizeof(err));
		if (rc != CLOG_OK)
			fail_msg("cut at %llu: %s", (unsigned long long) cut, err);
		assert_int_equal(file_size(path), last_start);
		position_t last, want;
		assert_true(clog_writer_last_position(rw, &last));
		test_pos(&want, 20);
		assert_int_equal(position_cmp(&last, &want), 0);
		/* The lost frame can be written again after recovery. */
		write_range(rw, 21, 30, 0);
		clog_writer_close(rw);
		assert_int_equal(read_check(dir, 0, &rc, err, sizeof(err)), 30);
		assert_int_equal(rc, CLOG_END);

		free(path);
		free(segdir);
		test_remove_tree(dir);
	}
	log_set_level(saved);
	free(data);
	free(gpath);
	test_remove_tree(golden);
}

/* Build a 3-frame log, flip one byte at frame 2 + delta, return the path. */
static char *
log_with_flipped_byte(char *dir, uint64_t delta, uint64_t *frame2_off)
{
	clog_writer_t *w = open_writer(dir, 0, 0);
	write_range(w, 1, 30, 10);
	clog_writer_close(w);
	char *path = seg_path(dir, 1);
	size_t len;
	uint8_t *data = read_file(path, &len);
	uint64_t offs[8] = {0};
	assert_int_equal(frame_offsets(data, len, offs, 8), 3);
	*frame2_off = offs[1];
	data[offs[1] + delta] ^= 0x40;
	write_file(path, data, len, "wb");
	free(data);
	return path;
}

static void
assert_names_file_and_offset(const char *err, const char *path, uint64_t off)
{
	char want[64];
	snprintf(want, sizeof(want), "offset %llu", (unsigned long long) off);
	if (strstr(err, path) == NULL || strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not name \"%s\" and \"%s\"", err, path, want);
}

static void
flipped_byte_in_middle_frame_is_corruption_not_truncation(void **state)
{
	/* 100: in the payload; 9: the payload length in the header. */
	const uint64_t deltas[] = {100, 9, 30};
	for (size_t k = 0; k < sizeof(deltas) / sizeof(deltas[0]); k++) {
		char *dir = test_make_tmpdir("clog-test");
		char err[512] = "";
		uint64_t off2;
		char *path = log_with_flipped_byte(dir, deltas[k], &off2);
		uint64_t size = file_size(path);

		clog_writer_t *w = NULL;
		assert_int_equal(clog_writer_open(dir, NULL, &w, err, sizeof(err)), CLOG_CORRUPT);
		assert_names_file_and_offset(err, path, off2);
		assert_int_equal(file_size(path), size);  /* nothing truncated */

		/* The reader returns frame 1, then stops at frame 2 and stays there. */
		clog_status_t rc;
		err[0] = '\0';
		assert_int_equal(read_check(dir, 0, &rc, err, sizeof(err)), 10);
		assert_int_equal(rc, CLOG_CORRUPT);
		assert_names_file_and_offset(err, path, off2);

		clog_reader_t *r;
		const Steward__Change *c;
		position_t after;
		test_pos(&after, 10);
		assert_int_equal(clog_reader_open(dir, &after, &r, err, sizeof(err)), CLOG_OK);
		assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_CORRUPT);
		assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_CORRUPT);
		clog_reader_close(r);

		clog_scan_t s;
		assert_int_equal(clog_scan(dir, true, &s, err, sizeof(err)), CLOG_CORRUPT);
		assert_names_file_and_offset(err, path, off2);
		free(path);
		test_remove_tree(dir);
	}
}

static void
bad_frame_in_sealed_segment_is_corruption(void **state)
{
	char *dir = test_make_tmpdir("clog-test");
	char err[512] = "";
	clog_writer_t *w = open_writer(dir, 4096, 1024);
	write_range(w, 1, 2000, 0);
	clog_writer_close(w);
	/* Cut the first segment's last frame short: it is sealed, so not a torn tail. */
	char *path = seg_path(dir, 1);
	size_t len;
	uint8_t *data = read_file(path, &len);
	uint64_t offs[64];
	size_t nf = frame_offsets(data, len, offs, 64);
	assert_true(nf >= 2);
	assert_int_equal(truncate(path, (off_t) (len - 5)), 0);

	clog_status_t rc;
	read_check(dir, 0, &rc, err, sizeof(err));
	assert_int_equal(rc, CLOG_CORRUPT);
	assert_names_file_and_offset(err, path, offs[nf - 1]);
	clog_scan_t s;
	assert_int_equal(clog_scan(dir, true, &s, err, sizeof(err)), CLOG_CORRUPT);
	free(data);
	free(path);
	test_remove_tree(dir);
}

/* ---- reading ---- */

static void
reader_starts_after_a_position(void **state)
{
	char *dir = test_make_tmpdir("clog-test");
	char err[512];
	clog_writer_t *w = open_writer(dir, 8192, 1024);
	write_range(w, 1, 1000, 0);
	clog_writer_close(w);
	const uint64_t starts[] = {1, 9, 10, 11, 500, 999};
	for (size_t k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
		clog_status_t rc;
		assert_int_equal(read_check(dir, starts[k], &rc, err, sizeof(err)), 1000 - starts[k]);
		assert_int_equal(rc, CLOG_END);
	}
	/* After everything: nothing, and no error. */
	clog_status_t rc;
	assert_int_equal(read_check(dir, 1000, &rc, err, sizeof(err)), 0);
	assert_int_equal(rc, CLOG_END);
	test_remove_tree(dir);
}

static void
reader_waits_for_a_half_written_frame(void **state)
{
	char *golden = test_make_tmpdir("clog-test");
	char *dir = test_make_tmpdir("clog-test");
	char err[512];
	clog_writer_t *w = open_writer(golden, 0, 0);
	write_range(w, 1, 20, 10);
	clog_writer_close(w);
	char *gpath = seg_path(golden, 1);
	size_t len;
	uint8_t *data = read_file(gpath, &len);
	uint64_t offs[4];
	assert_int_equal(frame_offsets(data, len, offs, 4), 2);

	char *segdir = xasprintf("%s/segments", dir);
	char *path = seg_path(dir, 1);
	assert_int_equal(mkdir(segdir, 0755), 0);
	write_file(path, data, offs[1], "wb");

	clog_reader_t *r;
	const Steward__Change *c;
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, sizeof(err)), CLOG_OK);
	for (int i = 0; i < 10; i++)
		assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_END);
	/* Part of the header, then part of the payload: still END, never corrupt. */
	uint64_t cuts[] = {offs[1] + 40, offs[1] + 96, len - 1};
	uint64_t done = offs[1];
	for (size_t k = 0; k < 3; k++) {
		write_file(path, data + done, cuts[k] - done, "ab");
		done = cuts[k];
		assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_END);
	}
	write_file(path, data + done, len - done, "ab");
	for (int i = 11; i <= 20; i++) {
		assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_OK);
		char idtext[16];
		snprintf(idtext, sizeof(idtext), "%d", i);
		assert_string_equal(c->after[0]->text, idtext);
	}
	assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_END);
	clog_reader_close(r);
	free(data);
	free(path);
	free(segdir);
	free(gpath);
	test_remove_tree(dir);
	test_remove_tree(golden);
}

static void
reader_tails_a_live_writer_across_segments(void **state)
{
	char *dir = test_make_tmpdir("clog-test");
	char err[512];
	clog_writer_t *w = open_writer(dir, 4096, 512);
	clog_reader_t *r;
	const Steward__Change *c;
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_END);
	uint64_t seen = 0;
	for (uint64_t round = 0; round < 20; round++) {
		write_range(w, round * 100 + 1, round * 100 + 100, 0);
		clog_status_t rc;
		while ((rc = clog_reader_next(r, &c, err, sizeof(err))) == CLOG_OK) {
			char idtext[32];
			snprintf(idtext, sizeof(idtext), "%llu", (unsigned long long) ++seen);
			assert_string_equal(c->after[0]->text, idtext);
		}
		assert_int_equal(rc, CLOG_END);
		assert_int_equal(seen, round * 100 + 100);
	}
	clog_reader_close(r);
	clog_writer_close(w);
	test_remove_tree(dir);
}

/* ---- checkpoints and gc ---- */

static void
checkpoints_are_saved_and_loaded(void **state)
{
	char *dir = test_make_tmpdir("clog-test");
	char err[512];
	position_t p, q;
	assert_int_equal(clog_checkpoint_load(dir, "apply", &q, err, sizeof(err)), CLOG_END);
	test_pos(&p, 12345);
	assert_int_equal(clog_checkpoint_save(dir, "apply", &p, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_checkpoint_load(dir, "apply", &q, err, sizeof(err)), CLOG_OK);
	assert_int_equal(position_cmp(&p, &q), 0);
	test_pos(&p, 99999);
	assert_int_equal(clog_checkpoint_save(dir, "apply", &p, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_checkpoint_load(dir, "apply", &q, err, sizeof(err)), CLOG_OK);
	assert_int_equal(position_cmp(&p, &q), 0);
	assert_int_equal(clog_checkpoint_save(dir, "../evil", &p, err, sizeof(err)), CLOG_ERROR);

	char **names;
	size_t n;
	assert_int_equal(clog_checkpoint_list(dir, &names, &n, err, sizeof(err)), CLOG_OK);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "apply");
	clog_checkpoint_list_free(names, n);

	char *path = xasprintf("%s/readers/broken", dir);
	write_file(path, (const uint8_t *) "garbage\n", 8, "wb");
	assert_int_equal(clog_checkpoint_load(dir, "broken", &q, err, sizeof(err)), CLOG_CORRUPT);
	free(path);
	test_remove_tree(dir);
}

/* Last position in segment seq, from its last frame header. */
static uint64_t
segment_count(const char *dir)
{
	clog_scan_t s;
	char err[512];
	assert_int_equal(clog_scan(dir, false, &s, err, sizeof(err)), CLOG_OK);
	return s.segments;
}

static void
gc_removes_only_fully_consumed_sealed_segments(void **state)
{
	char *dir = test_make_tmpdir("clog-test");
	char err[512];
	clog_writer_t *w = open_writer(dir, 4096, 1024);
	write_range(w, 1, 3000, 0);
	uint64_t nseg = segment_count(dir);
	assert_true(nseg >= 6);

	size_t removed = 99;
	assert_int_equal(clog_gc(dir, &removed, err, sizeof(err)), CLOG_OK);
	assert_int_equal(removed, 0);  /* no checkpoint: keep everything */

	/* Checkpoint in the middle of the log: find which segments end at or before it. */
	position_t cp;
	test_pos(&cp, 1500);
	assert_int_equal(clog_checkpoint_save(dir, "apply", &cp, err, sizeof(err)), CLOG_OK);
	position_t low;
	test_pos(&low, 300);
	assert_int_equal(clog_checkpoint_save(dir, "search", &low, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_gc(dir, &removed, err, sizeof(err)), CLOG_OK);
	uint64_t after_low = segment_count(dir);
	assert_int_equal(after_low, nseg - removed);
	/* Everything after the slowest reader is still readable. */
	clog_status_t rc;
	assert_int_equal(read_check(dir, 300, &rc, err, sizeof(err)), 2700);
	assert_int_equal(rc, CLOG_END);

	/* The slow reader catches up: more goes, but nothing past 1500. */
	assert_int_equal(clog_checkpoint_save(dir, "search", &cp, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_gc(dir, &removed, err, sizeof(err)), CLOG_OK);
	assert_true(removed > 0);
	assert_int_equal(read_check(dir, 1500, &rc, err, sizeof(err)), 1500);
	assert_int_equal(rc, CLOG_END);
	clog_reader_t *r;
	const Steward__Change *c;
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_OK);
	position_t first;
	position_set(&first, c->position.data, c->position.len);
	assert_true(position_cmp(&first, &cp) <= 0);  /* the segment holding 1500 stayed */
	clog_reader_close(r);

	/* Everyone has everything: all but the last segment go; the writer still knows its end. */
	test_pos(&cp, 3000);
	assert_int_equal(clog_checkpoint_save(dir, "apply", &cp, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_checkpoint_save(dir, "search", &cp, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_gc(dir, &removed, err, sizeof(err)), CLOG_OK);
	assert_int_equal(segment_count(dir), 1);
	clog_writer_close(w);
	w = open_writer(dir, 4096, 1024);
	assert_int_equal(append_one(w, 3000, err, sizeof(err)), CLOG_DUPLICATE);
	write_range(w, 3001, 3010, 0);
	clog_writer_close(w);
	assert_int_equal(read_check(dir, 3000, &rc, err, sizeof(err)), 10);
	test_remove_tree(dir);
}

/* ---- hostile frames ---- */

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

/* Write a one-frame segment with the given payload and header fields (valid CRC). */
static char *
write_crafted_frame(const char *dir, uint8_t compression, const void *payload, uint32_t plen,
		    uint32_t raw_len, uint32_t count)
{
	uint8_t *frame = xcalloc(1, 96 + plen);
	position_t p;
	test_pos(&p, 1);
	memcpy(frame, "STWF", 4);
	frame[4] = 1;
	frame[5] = compression;
	put32(frame + 8, plen);
	put32(frame + 12, raw_len);
	put32(frame + 16, count);
	frame[20] = p.len;
	memcpy(frame + 21, p.bytes, p.len);
	frame[53] = p.len;
	memcpy(frame + 54, p.bytes, p.len);
	memcpy(frame + 96, payload, plen);
	uint32_t crc = clog_crc32c(0, frame, 88);
	crc = clog_crc32c(crc, frame + 96, plen);
	put32(frame + 88, crc);
	char *segdir = xasprintf("%s/segments", dir);
	mkdir(segdir, 0755);
	char *path = seg_path(dir, 1);
	write_file(path, frame, 96 + plen, "wb");
	free(segdir);
	free(frame);
	return path;
}

static void
decompression_bomb_is_rejected(void **state)
{
	char *dir = test_make_tmpdir("clog-test");
	char err[512] = "";
	/* 64 MiB of zeros compresses to a few KiB; the header claims 100 bytes. */
	size_t big = 64u * 1024 * 1024;
	uint8_t *zeros = xcalloc(1, big);
	size_t bound = ZSTD_compressBound(big);
	uint8_t *z = xmalloc(bound);
	size_t zlen = ZSTD_compress(z, bound, zeros, big, 1);
	assert_false(ZSTD_isError(zlen));
	char *path = write_crafted_frame(dir, 1, z, (uint32_t) zlen, 100, 1);

	clog_reader_t *r;
	const Steward__Change *c;
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_CORRUPT);
	assert_names_file_and_offset(err, path, 0);
	assert_non_null(strstr(err, "content size"));
	clog_reader_close(r);

	/* A raw length above the cap is refused from the header alone. */
	free(path);
	path = write_crafted_frame(dir, 1, z, (uint32_t) zlen, CLOG_MAX_RAW + 1, 1);
	clog_scan_t s;
	assert_int_equal(clog_scan(dir, true, &s, err, sizeof(err)), CLOG_OK);
	assert_true(s.torn_tail);  /* the only frame: indistinguishable from a torn tail */
	assert_int_equal(s.records, 0);

	/* Garbage that is not a zstd frame, with a valid checksum. */
	free(path);
	path = write_crafted_frame(dir, 1, "not zstd at all", 15, 15, 1);
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_CORRUPT);
	clog_reader_close(r);
	free(path);
	free(z);
	free(zeros);
	test_remove_tree(dir);
}


/* ---- record forms: self-describing and shaped ---- */

/* Append one Batch entry: tag (0x0a change, 0x12 shape), varint length, packed message. */
static void
batch_put(buf_t *b, uint8_t tag, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t hdr[11];
	size_t h = 0;
	hdr[h++] = tag;
	for (size_t v = n; ; v >>= 7) {
		hdr[h++] = (uint8_t) ((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		if (v < 0x80)
			break;
	}
	buf_append(b, hdr, h);
	uint8_t *p = xmalloc(n + 1);
	protobuf_c_message_pack(m, p);
	buf_append(b, p, n);
	free(p);
}

/* Shape 5: erp public.customers, key id, columns id integer / name text / note text. */
typedef struct crafted {
	Steward__Shape shape;
	Steward__Column cols[3], *colp[3];
	char *key[1];
	Steward__Change c;
	Steward__Value vals[3], *valp[3];
	position_t pos;
} crafted_t;

static void
crafted_init(crafted_t *k)
{
	static char *names[3] = {"id", "name", "note"}, *types[3] = {"integer", "text", "text"};
	Steward__Shape sh = STEWARD__SHAPE__INIT;
	Steward__Change c = STEWARD__CHANGE__INIT;
	k->shape = sh;
	k->shape.has_id = true;
	k->shape.id = 5;
	k->shape.has_version = true;
	k->shape.version = 1;
	k->shape.source = "erp";
	k->shape.has_source_kind = true;
	k->shape.source_kind = STEWARD__SOURCE_KIND__SOURCE_KIND_POSTGRESQL;
	k->shape.schema = "public";
	k->shape.table = "customers";
	k->key[0] = "id";
	k->shape.n_key = 1;
	k->shape.key = k->key;
	for (int i = 0; i < 3; i++) {
		Steward__Column col = STEWARD__COLUMN__INIT;
		Steward__Value v = STEWARD__VALUE__INIT;
		k->cols[i] = col;
		k->cols[i].name = names[i];
		k->cols[i].has_type_id = true;
		k->cols[i].type_id = (uint32_t) (20 + i);
		k->cols[i].type_name = types[i];
		k->colp[i] = &k->cols[i];
		k->vals[i] = v;
		k->valp[i] = &k->vals[i];
	}
	k->shape.n_columns = 3;
	k->shape.columns = k->colp;
	k->vals[0].text = "1";
	k->vals[1].text = "customer 1";
	k->vals[2].has_is_null = true;
	k->vals[2].is_null = true;
	test_pos(&k->pos, 1);
	k->c = c;
	k->c.has_op = true;
	k->c.op = STEWARD__OP__OP_INSERT;
	k->c.has_position = true;
	k->c.position.data = k->pos.bytes;
	k->c.position.len = k->pos.len;
	k->c.position_text = "0/1000:1";
	k->c.has_shape = true;
	k->c.shape = 5;
	k->c.n_after = 3;
	k->c.after = k->valp;
}

/* Read the one-record log in dir; returns the status and, on CLOG_OK, checks the record. */
static clog_status_t
read_crafted(const char *dir, char *err, size_t errlen)
{
	clog_reader_t *r;
	const Steward__Change *c;
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, errlen), CLOG_OK);
	clog_status_t rc = clog_reader_next(r, &c, err, errlen);
	if (rc == CLOG_OK) {
		assert_false(c->has_shape);
		assert_true(c->has_version);
		assert_int_equal(c->version, 1);
		assert_string_equal(c->source, "erp");
		assert_int_equal(c->source_kind, STEWARD__SOURCE_KIND__SOURCE_KIND_POSTGRESQL);
		assert_null(c->database);
		assert_string_equal(c->schema, "public");
		assert_string_equal(c->table, "customers");
		assert_int_equal(c->n_key, 1);
		assert_string_equal(c->key[0], "id");
		assert_int_equal(c->n_after, 3);
		assert_int_equal(c->n_before, 0);
		assert_string_equal(c->after[0]->name, "id");
		assert_int_equal(c->after[0]->type_id, 20);
		assert_string_equal(c->after[0]->type_name, "integer");
		assert_string_equal(c->after[0]->text, "1");
		assert_string_equal(c->after[1]->name, "name");
		assert_string_equal(c->after[1]->text, "customer 1");
		assert_string_equal(c->after[2]->type_name, "text");
		assert_true(c->after[2]->is_null);
		assert_string_equal(c->position_text, "0/1000:1");
		const Steward__Change *none;
		assert_int_equal(clog_reader_next(r, &none, err, errlen), CLOG_END);
	}
	clog_reader_close(r);
	return rc;
}

static void
write_batch(const char *dir, const buf_t *b)
{
	free(write_crafted_frame(dir, 0, b->data, (uint32_t) b->len, (uint32_t) b->len, 1));
}

static void
old_form_frame_reads_as_before(void **state)
{
	(void) state;
	char *dir = test_make_tmpdir("clog-test");
	char err[512] = "";
	/* A frame as logs before shapes hold it: version 1, one self-describing Change. */
	crafted_t k;
	crafted_init(&k);
	k.c.has_shape = false;
	k.c.shape = 0;
	k.c.has_version = true;
	k.c.version = 1;
	k.c.source = "erp";
	k.c.has_source_kind = true;
	k.c.source_kind = STEWARD__SOURCE_KIND__SOURCE_KIND_POSTGRESQL;
	k.c.schema = "public";
	k.c.table = "customers";
	k.c.n_key = 1;
	k.c.key = k.key;
	for (int i = 0; i < 3; i++) {
		k.vals[i].name = k.cols[i].name;
		k.vals[i].has_type_id = true;
		k.vals[i].type_id = k.cols[i].type_id;
		k.vals[i].type_name = k.cols[i].type_name;
	}
	Steward__Change *changes[1] = {&k.c};
	Steward__Batch batch = STEWARD__BATCH__INIT;
	batch.n_changes = 1;
	batch.changes = changes;
	size_t n = steward__batch__get_packed_size(&batch);
	uint8_t *payload = xmalloc(n);
	steward__batch__pack(&batch, payload);
	free(write_crafted_frame(dir, 0, payload, (uint32_t) n, (uint32_t) n, 1));
	assert_int_equal(read_crafted(dir, err, sizeof(err)), CLOG_OK);
	clog_scan_t s;
	assert_int_equal(clog_scan(dir, true, &s, err, sizeof(err)), CLOG_OK);
	assert_false(s.torn_tail);
	assert_int_equal(s.records, 1);
	free(payload);
	test_remove_tree(dir);
}

static void
shaped_frame_reads_and_bad_shape_refs_are_corruption(void **state)
{
	(void) state;
	char *dir = test_make_tmpdir("clog-test");
	char err[512] = "";
	char *path = seg_path(dir, 1);
	crafted_t k;
	crafted_init(&k);
	buf_t b = BUF_INIT;

	/* the good form: shape then the record referring to it */
	batch_put(&b, 0x12, &k.shape.base);
	batch_put(&b, 0x0a, &k.c.base);
	write_batch(dir, &b);
	assert_int_equal(read_crafted(dir, err, sizeof(err)), CLOG_OK);
	clog_scan_t s;
	assert_int_equal(clog_scan(dir, true, &s, err, sizeof(err)), CLOG_OK);
	assert_false(s.torn_tail);

	/* an entry of neither kind */
	buf_t odd = BUF_INIT;
	batch_put(&odd, 0x1a, &k.shape.base);
	write_batch(dir, &odd);
	assert_int_equal(read_crafted(dir, err, sizeof(err)), CLOG_CORRUPT);
	assert_names_file_and_offset(err, path, 0);
	assert_non_null(strstr(err, "0x1a"));
	buf_free(&odd);

	/* an unknown shape id */
	k.c.shape = 6;
	buf_reset(&b);
	batch_put(&b, 0x12, &k.shape.base);
	batch_put(&b, 0x0a, &k.c.base);
	write_batch(dir, &b);
	assert_int_equal(read_crafted(dir, err, sizeof(err)), CLOG_CORRUPT);
	assert_names_file_and_offset(err, path, 0);
	assert_non_null(strstr(err, "shape 6"));
	assert_int_equal(clog_scan(dir, true, &s, err, sizeof(err)), CLOG_OK);
	assert_true(s.torn_tail);  /* the only frame: the deep scan rejects it too */
	assert_non_null(strstr(s.tail, "shape 6"));
	k.c.shape = 5;

	/* the record before its shape */
	buf_reset(&b);
	batch_put(&b, 0x0a, &k.c.base);
	batch_put(&b, 0x12, &k.shape.base);
	write_batch(dir, &b);
	assert_int_equal(read_crafted(dir, err, sizeof(err)), CLOG_CORRUPT);
	assert_names_file_and_offset(err, path, 0);

	/* fewer values than the shape has columns */
	k.c.n_after = 2;
	buf_reset(&b);
	batch_put(&b, 0x12, &k.shape.base);
	batch_put(&b, 0x0a, &k.c.base);
	write_batch(dir, &b);
	assert_int_equal(read_crafted(dir, err, sizeof(err)), CLOG_CORRUPT);
	assert_names_file_and_offset(err, path, 0);
	assert_non_null(strstr(err, "values"));
	k.c.n_after = 3;

	/* a shaped record that names its own table */
	k.c.table = "other";
	buf_reset(&b);
	batch_put(&b, 0x12, &k.shape.base);
	batch_put(&b, 0x0a, &k.c.base);
	write_batch(dir, &b);
	assert_int_equal(read_crafted(dir, err, sizeof(err)), CLOG_CORRUPT);
	k.c.table = NULL;

	/* a shape defined twice */
	buf_reset(&b);
	batch_put(&b, 0x12, &k.shape.base);
	batch_put(&b, 0x12, &k.shape.base);
	batch_put(&b, 0x0a, &k.c.base);
	write_batch(dir, &b);
	assert_int_equal(read_crafted(dir, err, sizeof(err)), CLOG_CORRUPT);
	assert_non_null(strstr(err, "twice"));

	/* a shape cut short */
	buf_reset(&b);
	batch_put(&b, 0x12, &k.shape.base);
	b.len -= 3;
	write_batch(dir, &b);
	assert_int_equal(read_crafted(dir, err, sizeof(err)), CLOG_CORRUPT);
	assert_names_file_and_offset(err, path, 0);

	buf_free(&b);
	free(path);
	test_remove_tree(dir);
}

/* A writer's shape goes into every batch that uses it, once, so each frame reads alone. */
static void
writer_repeats_a_shape_in_each_batch_that_uses_it(void **state)
{
	(void) state;
	char *dir = test_make_tmpdir("clog-test");
	char err[512] = "";
	clog_writer_t *w = open_writer(dir, 1 << 20, 1 << 20);
	crafted_t k;
	crafted_init(&k);
	/* the shape's bytes without the id field (2 bytes: tag 0x08, id 5) */
	size_t n = protobuf_c_message_get_packed_size(&k.shape.base);
	uint8_t *packed = xmalloc(n);
	protobuf_c_message_pack(&k.shape.base, packed);
	uint32_t id;
	assert_int_equal(clog_writer_shape(w, packed + 2, n - 2, &id, err, sizeof(err)), CLOG_OK);
	k.c.shape = id;
	/* frames: [plain 1, shaped 2, shaped 3] [plain 4] [shaped 5, plain 6, shaped 7] */
	for (uint64_t i = 1; i <= 7; i++) {
		test_pos(&k.pos, i);
		k.c.position.data = k.pos.bytes;
		k.c.position.len = k.pos.len;
		if (i == 1 || i == 4 || i == 6) {
			assert_int_equal(append_one(w, i, err, sizeof(err)), CLOG_OK);
		} else {
			size_t size = protobuf_c_message_get_packed_size(&k.c.base);
			uint8_t *dst;
			assert_int_equal(clog_writer_reserve_shaped(w, &k.pos, id, size, &dst, err,
								    sizeof(err)), CLOG_OK);
			protobuf_c_message_pack(&k.c.base, dst);
		}
		if (i == 3 || i == 4)
			assert_int_equal(clog_writer_flush(w, err, sizeof(err)), CLOG_OK);
	}
	assert_int_equal(clog_writer_flush(w, err, sizeof(err)), CLOG_OK);
	clog_writer_close(w);

	/* frame version 1 throughout; each shaped frame holds the shape exactly once */
	char *path = seg_path(dir, 1);
	size_t len;
	uint8_t *data = read_file(path, &len);
	uint64_t offs[8];
	assert_int_equal(frame_offsets(data, len, offs, 8), 3);
	assert_int_equal(data[offs[0] + 4], 1);
	assert_int_equal(data[offs[1] + 4], 1);
	assert_int_equal(data[offs[2] + 4], 1);
	for (int f = 0; f < 3; f++) {
		uint32_t plen = (uint32_t) data[offs[f] + 8] | (uint32_t) data[offs[f] + 9] << 8 |
				(uint32_t) data[offs[f] + 10] << 16;
		uint8_t raw[4096];
		size_t rlen = ZSTD_decompress(raw, sizeof(raw), data + offs[f] + 96, plen);
		assert_false(ZSTD_isError(rlen));
		int shapes = 0;
		for (size_t p = 0; p < rlen;) {  /* top-level entries: tag, 1-byte length here */
			assert_true(raw[p + 1] < 0x80);
			shapes += raw[p] == 0x12;
			p += 2 + raw[p + 1];
		}
		assert_int_equal(shapes, f == 1 ? 0 : 1);
	}
	free(data);
	free(path);

	/* readers from the start and from inside each frame see whole records */
	for (uint64_t from = 0; from < 7; from++) {
		clog_reader_t *r;
		position_t after = {0};
		if (from)
			test_pos(&after, from);
		assert_int_equal(clog_reader_open(dir, &after, &r, err, sizeof(err)), CLOG_OK);
		for (uint64_t i = from + 1; i <= 7; i++) {
			const Steward__Change *c;
			position_t p;
			assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_OK);
			test_pos(&p, i);
			assert_memory_equal(c->position.data, p.bytes, p.len);
			assert_string_equal(c->table, "customers");
			assert_string_equal(c->after[0]->name, "id");
			assert_string_equal(c->key[0], "id");
			assert_false(c->has_shape);
		}
		const Steward__Change *c;
		assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_END);
		clog_reader_close(r);
	}
	clog_scan_t s;
	assert_int_equal(clog_scan(dir, true, &s, err, sizeof(err)), CLOG_OK);
	assert_int_equal(s.records, 7);
	assert_int_equal(s.frames, 3);
	free(packed);
	test_remove_tree(dir);
}

/* Shape.position_text_by_seq: left-out position texts come back from the batch's previous record. */
static void
position_text_by_seq_is_rebuilt_from_the_previous_record(void **state)
{
	(void) state;
	char *dir = test_make_tmpdir("clog-test");
	char err[512] = "";
	char *path = seg_path(dir, 1);
	clog_writer_t *w = open_writer(dir, 1 << 20, 1 << 20);
	crafted_t k;
	crafted_init(&k);
	k.shape.has_position_text_by_seq = true;
	k.shape.position_text_by_seq = true;
	size_t n = protobuf_c_message_get_packed_size(&k.shape.base);
	uint8_t *packed = xmalloc(n);
	protobuf_c_message_pack(&k.shape.base, packed);
	uint32_t id;
	assert_int_equal(clog_writer_shape(w, packed + 2, n - 2, &id, err, sizeof(err)), CLOG_OK);
	k.c.shape = id;
	k.c.has_seq = true;
	assert_true(clog_writer_batch_starts(w, id, 100));
	static const char *const texts[] = {NULL, "mysql-bin.000007:4177:1", NULL, NULL, "(plain)", NULL,
					    "x:y:6"};
	for (uint64_t i = 1; i <= 6; i++) {
		if (i == 4) {
			assert_int_equal(append_one(w, i, err, sizeof(err)), CLOG_OK);
			continue;
		}
		test_pos(&k.pos, i);
		k.c.position.data = k.pos.bytes;
		k.c.position.len = k.pos.len;
		k.c.position_text = (char *) texts[i];
		k.c.seq = (uint32_t) i;
		size_t size = protobuf_c_message_get_packed_size(&k.c.base);
		assert_int_equal(clog_writer_batch_starts(w, id, size), i == 1 || i == 6);
		uint8_t *dst;
		assert_int_equal(clog_writer_reserve_shaped(w, &k.pos, id, size, &dst, err,
							    sizeof(err)), CLOG_OK);
		protobuf_c_message_pack(&k.c.base, dst);
		if (i == 5)
			assert_int_equal(clog_writer_flush(w, err, sizeof(err)), CLOG_OK);
	}
	assert_int_equal(clog_writer_flush(w, err, sizeof(err)), CLOG_OK);
	clog_writer_close(w);

	static const char *const want[] = {NULL, "mysql-bin.000007:4177:1", "mysql-bin.000007:4177:2",
					   "mysql-bin.000007:4177:3", "0/0:4", "0/0:5", "x:y:6"};
	for (uint64_t from = 0; from < 6; from++) {
		clog_reader_t *r;
		position_t after = {0};
		if (from)
			test_pos(&after, from);
		assert_int_equal(clog_reader_open(dir, &after, &r, err, sizeof(err)), CLOG_OK);
		for (uint64_t i = from + 1; i <= 6; i++) {
			const Steward__Change *c;
			assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_OK);
			assert_string_equal(c->position_text, want[i]);
			Steward__Change *copy = record_dup(c);
			assert_string_equal(copy->position_text, want[i]);
			record_free(copy);
		}
		const Steward__Change *c;
		assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_END);
		clog_reader_close(r);
	}
	clog_scan_t sc;
	assert_int_equal(clog_scan(dir, true, &sc, err, sizeof(err)), CLOG_OK);
	assert_int_equal(sc.records, 6);

	/* the first record of a batch must carry its text */
	test_remove_tree(dir);
	dir = test_make_tmpdir("clog-test");
	free(path);
	path = seg_path(dir, 1);
	test_pos(&k.pos, 1);
	k.c.position.data = k.pos.bytes;
	k.c.position.len = k.pos.len;
	k.c.position_text = NULL;
	k.shape.id = 5;
	k.c.shape = 5;
	buf_t b = BUF_INIT;
	batch_put(&b, 0x12, &k.shape.base);
	batch_put(&b, 0x0a, &k.c.base);
	free(write_crafted_frame(dir, 0, b.data, (uint32_t) b.len, (uint32_t) b.len, 1));
	clog_reader_t *r;
	const Steward__Change *c;
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_CORRUPT);
	assert_names_file_and_offset(err, path, 0);
	assert_non_null(strstr(err, "position text"));
	clog_reader_close(r);
	/* without the shape's flag a missing text stays missing */
	k.shape.position_text_by_seq = false;
	buf_reset(&b);
	batch_put(&b, 0x12, &k.shape.base);
	batch_put(&b, 0x0a, &k.c.base);
	free(write_crafted_frame(dir, 0, b.data, (uint32_t) b.len, (uint32_t) b.len, 1));
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_OK);
	assert_null(c->position_text);
	clog_reader_close(r);
	buf_free(&b);
	free(packed);
	free(path);
	test_remove_tree(dir);
}

/* ---- CRC32C ---- */

static void
crc32c_matches_known_values(void **state)
{
	assert_int_equal(clog_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c_sw(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(clog_crc32c(0, "", 0), 0);
	uint8_t zeros[32] = {0};
	assert_int_equal(crc32c_sw(0, zeros, 32), 0x8A9136AAu);  /* RFC 3720 B.4 */
	uint8_t ones[32];
	memset(ones, 0xff, sizeof(ones));
	assert_int_equal(crc32c_sw(0, ones, 32), 0x62A8AB43u);
	/* Continuing from a previous value equals one pass. */
	const char *text = "The quick brown fox jumps over the lazy dog";
	uint32_t whole = clog_crc32c(0, text, strlen(text));
	assert_int_equal(clog_crc32c(clog_crc32c(0, text, 10), text + 10, strlen(text) - 10), whole);
}

static void
crc32c_hardware_and_table_agree(void **state)
{
	if (!crc32c_hw_available()) {
		print_message("no SSE4.2 here: hardware path not tested\n");
		skip();
	}
	uint8_t buf[1100];
	uint32_t seed = 12345;
	for (size_t i = 0; i < sizeof(buf); i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t) (seed >> 16);
	}
	for (size_t start = 0; start < 9; start++)
		for (size_t len = 0; len + start <= sizeof(buf); len += (len < 70 ? 1 : 97))
			assert_int_equal(crc32c_hw(0, buf + start, len), crc32c_sw(0, buf + start, len));
	assert_int_equal(crc32c_hw(0xdeadbeef, buf, 333), crc32c_sw(0xdeadbeef, buf, 333));
	assert_int_equal(crc32c_hw(0, "123456789", 9), 0xE3069283u);
}

/*
 * A write the frame thread cannot make (the file size limit stands in for
 * a full disk) fails the append that next needs the thread; every batch
 * queued behind it is kept, and once writes work again a flush writes
 * them all, in order: every record appended with CLOG_OK is in the log
 * exactly once.
 */
static void
queued_batches_survive_a_failed_write(void **state)
{
	(void) state;
	char *dir = test_make_tmpdir("clog-retry");
	char err[512];
	clog_writer_t *w = open_writer(dir, 64u << 20, 2048);
	write_range(w, 1, 50, 0);  /* a segment with a few frames, durable */
	struct stat st;
	char *seg = seg_path(dir, 1);
	assert_int_equal(stat(seg, &st), 0);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = (rlim_t) st.st_size + 600;  /* room for about one more frame */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	uint64_t i = 51, last_ok = 50;
	clog_status_t rc = CLOG_OK;
	for (; i < 5000; i++) {
		rc = append_one(w, i, err, sizeof(err));
		if (rc != CLOG_OK)
			break;
		last_ok = i;
	}
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, prev);
	assert_int_equal(rc, CLOG_ERROR);
	assert_non_null(strstr(err, "could not write"));
	/* writes work again: the kept batches go out first, then new records */
	for (i = last_ok + 1; i <= last_ok + 100; i++)
		assert_int_equal(append_one(w, i, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_writer_flush(w, err, sizeof(err)), CLOG_OK);
	clog_writer_close(w);
	clog_status_t end;
	assert_int_equal(read_check(dir, 0, &end, err, sizeof(err)), last_ok + 100);
	assert_int_equal(end, CLOG_END);
	free(seg);
	test_remove_tree(dir);
}

/*
 * clog_writer_flush_begin: the records appended before it are written and
 * synced by the frame thread while more are appended; the ticket reports
 * done, the durable position follows it, and a ticket with nothing new to
 * write completes too.
 */
static void
flush_begin_syncs_in_the_background(void **state)
{
	(void) state;
	char *dir = test_make_tmpdir("clog-async");
	char err[512];
	clog_writer_t *w = open_writer(dir, 64u << 20, 4096);
	for (uint64_t i = 1; i <= 300; i++)
		assert_int_equal(append_one(w, i, err, sizeof(err)), CLOG_OK);
	uint64_t t1 = 0, t2 = 0;
	assert_int_equal(clog_writer_flush_begin(w, &t1, err, sizeof(err)), CLOG_OK);
	assert_true(t1 > 0);
	for (uint64_t i = 301; i <= 400; i++)  /* appends go on meanwhile */
		assert_int_equal(append_one(w, i, err, sizeof(err)), CLOG_OK);
	int spins = 0;
	while (!clog_writer_flush_done(w, t1) && spins++ < 5000)
		usleep(1000);
	assert_true(clog_writer_flush_done(w, t1));
	position_t durable, want;
	assert_true(clog_writer_last_position(w, &durable));
	test_pos(&want, 300);
	assert_true(position_cmp(&durable, &want) >= 0);
	/* records 1..300 are in the segment files now, before any clog_writer_flush */
	clog_status_t end;
	assert_true(read_check(dir, 0, &end, err, sizeof(err)) >= 300);
	/* a second ticket right after the first, then a synchronous flush covers it */
	assert_int_equal(clog_writer_flush_begin(w, &t2, err, sizeof(err)), CLOG_OK);
	assert_true(t2 > t1);
	assert_int_equal(clog_writer_flush(w, err, sizeof(err)), CLOG_OK);
	assert_true(clog_writer_flush_done(w, t2));
	clog_writer_close(w);
	assert_int_equal(read_check(dir, 0, &end, err, sizeof(err)), 400);
	assert_int_equal(end, CLOG_END);
	test_remove_tree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(records_round_trip_across_many_segments),
		cmocka_unit_test(queued_batches_survive_a_failed_write),
		cmocka_unit_test(flush_begin_syncs_in_the_background),
		cmocka_unit_test(reopened_writer_skips_duplicates_and_continues),
		cmocka_unit_test(nothing_is_durable_until_flush),
		cmocka_unit_test(second_writer_is_refused),
		cmocka_unit_test(change_without_position_is_rejected),
		cmocka_unit_test(torn_tail_at_every_offset_is_truncated_keeping_earlier_records),
		cmocka_unit_test(flipped_byte_in_middle_frame_is_corruption_not_truncation),
		cmocka_unit_test(bad_frame_in_sealed_segment_is_corruption),
		cmocka_unit_test(reader_starts_after_a_position),
		cmocka_unit_test(reader_waits_for_a_half_written_frame),
		cmocka_unit_test(reader_tails_a_live_writer_across_segments),
		cmocka_unit_test(checkpoints_are_saved_and_loaded),
		cmocka_unit_test(gc_removes_only_fully_consumed_sealed_segments),
		cmocka_unit_test(decompression_bomb_is_rejected),
		cmocka_unit_test(old_form_frame_reads_as_before),
		cmocka_unit_test(shaped_frame_reads_and_bad_shape_refs_are_corruption),
		cmocka_unit_test(writer_repeats_a_shape_in_each_batch_that_uses_it),
		cmocka_unit_test(position_text_by_seq_is_rebuilt_from_the_previous_record),
		cmocka_unit_test(crc32c_matches_known_values),
		cmocka_unit_test(crc32c_hardware_and_table_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
