/*
 * test_record_encode.c — the hand-written Change encoder (proto/record_encode.h)
 * against protobuf-c: on many random changes its bytes are identical to
 * protobuf_c_message_pack's and unpack to the same message; records queued
 * with clog_writer_reserve read back from the change log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clog.h"
#include "record.h"
#include "record_encode.h"
#include "steward.pb-c.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static size_t
rnd_below(size_t n)
{
	return (size_t) (rnd() % n);
}

/* A random length that hits the varint boundaries of lengths. */
static size_t
rnd_len(void)
{
	static const size_t edges[] = {0, 1, 5, 40, 126, 127, 128, 129, 300,
				       16383, 16384, 16385, 20000};
	return rnd_below(4) == 0 ? edges[rnd_below(sizeof(edges) / sizeof(edges[0]))]
				 : rnd_below(60);
}

/* Heap string of printable ASCII; NULL sometimes when nullable. */
static char *
rnd_str(bool nullable)
{
	if (nullable && rnd_below(6) == 0)
		return NULL;
	size_t n = rnd_len();
	char *s = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		s[i] = (char) (32 + rnd_below(95));
	s[n] = '\0';
	return s;
}

/* One random change and the encoder's view of it (sharing the strings). */
typedef struct sample {
	Steward__Change ch;
	Steward__Value **values;     /* before then after */
	char **keys;
	uint8_t pos[32];
	uint8_t *packed[2];          /* before_packed, after_packed bytes */
	buf_t head, keys_enc, prefixes;
	size_t *prefix_off;
	record_enc_value_t *enc;
	record_enc_change_t ec;
} sample_t;

static void
rnd_image(sample_t *s, Steward__Value **vals, size_t n, record_enc_value_t *enc, size_t base)
{
	for (size_t i = 0; i < n; i++) {
		Steward__Value *v = calloc(1, sizeof(*v));
		steward__value__init(v);
		v->name = rnd_str(true);
		v->has_type_id = true;
		v->type_id = rnd_below(3) == 0 ? (uint32_t) rnd() : (uint32_t) rnd_below(300);
		v->type_name = rnd_str(true);
		enc[i].prefix_len = 0;
		s->prefix_off[base + i] = s->prefixes.len;
		record_enc_value_prefix(&s->prefixes, v->name, v->type_id, v->type_name);
		switch (rnd_below(5)) {
		case 0:
			v->has_is_null = true;
			v->is_null = true;
			enc[i].kind = RECORD_ENC_NULL;
			break;
		case 1:
			v->has_unchanged = true;
			v->unchanged = true;
			enc[i].kind = RECORD_ENC_UNCHANGED;
			break;
		default:
			v->text = rnd_str(false);
			enc[i].kind = RECORD_ENC_TEXT;
			enc[i].text = v->text;
			enc[i].len = strlen(v->text);
			break;
		}
		vals[i] = v;
	}
}

static void
sample_make(sample_t *s)
{
	memset(s, 0, sizeof(*s));
	Steward__Change *c = &s->ch;
	steward__change__init(c);
	c->has_version = true;
	c->version = 1;
	c->source = rnd_str(true);
	c->has_source_kind = true;
	c->source_kind = (Steward__SourceKind) rnd_below(3);
	c->database = rnd_str(true);
	c->schema = rnd_str(true);
	c->table = rnd_str(true);
	record_enc_head(&s->head, c->version, c->source, c->source_kind, c->database, c->schema,
			c->table);
	record_enc_row_t *r = &s->ec.row;
	c->has_op = true;
	c->op = (Steward__Op) rnd_below(7);
	r->op = c->op;
	c->txid = rnd_str(true);
	r->txid = c->txid;
	r->txid_len = c->txid ? strlen(c->txid) : 0;
	c->has_commit_ts_us = rnd_below(5) != 0;
	c->commit_ts_us = rnd_below(4) == 0 ? -(int64_t) rnd_below(1000000) : (int64_t) (rnd() >> 1);
	if (!c->has_commit_ts_us)
		c->commit_ts_us = 0;
	r->has_commit_ts = c->has_commit_ts_us;
	r->commit_ts_us = c->commit_ts_us;
	c->has_position = true;
	c->position.len = 1 + rnd_below(sizeof(s->pos));
	for (size_t i = 0; i < c->position.len; i++)
		s->pos[i] = (uint8_t) rnd();
	c->position.data = s->pos;
	r->position = s->pos;
	r->position_len = c->position.len;
	c->position_text = rnd_str(true);
	r->position_text = c->position_text;
	r->position_text_len = c->position_text ? strlen(c->position_text) : 0;
	c->has_seq = rnd_below(5) != 0;
	c->seq = c->has_seq ? (uint32_t) (rnd_below(2) ? rnd() : rnd_below(200)) : 0;
	r->has_seq = c->has_seq;
	r->seq = c->seq;
	c->n_key = rnd_below(4);
	s->keys = calloc(c->n_key + 1, sizeof(char *));
	for (size_t i = 0; i < c->n_key; i++)
		s->keys[i] = rnd_str(false);
	c->key = s->keys;
	record_enc_keys(&s->keys_enc, s->keys, c->n_key);
	c->n_before = rnd_below(3) == 0 ? 0 : rnd_below(9);
	c->n_after = rnd_below(3) == 0 ? 0 : rnd_below(9);
	size_t n = c->n_before + c->n_after;
	s->values = calloc(n + 1, sizeof(*s->values));
	s->enc = calloc(n + 1, sizeof(*s->enc));
	s->prefix_off = calloc(n + 1, sizeof(size_t));
	rnd_image(s, s->values, c->n_before, s->enc, 0);
	rnd_image(s, s->values + c->n_before, c->n_after, s->enc + c->n_before, c->n_before);
	s->prefix_off[n] = s->prefixes.len;
	for (size_t i = 0; i < n; i++) {
		s->enc[i].prefix = (const uint8_t *) s->prefixes.data + s->prefix_off[i];
		s->enc[i].prefix_len = s->prefix_off[i + 1] - s->prefix_off[i];
	}
	c->before = c->n_before ? s->values : NULL;
	c->after = c->n_after ? s->values + c->n_before : NULL;
	s->ec.head = (const uint8_t *) s->head.data;
	s->ec.head_len = s->head.len;
	s->ec.keys = (const uint8_t *) s->keys_enc.data;
	s->ec.keys_len = s->keys_enc.len;
	s->ec.before = s->enc;
	s->ec.nbefore = c->n_before;
	s->ec.after = s->enc + c->n_before;
	s->ec.nafter = c->n_after;
}

/*
 * The fields only packed records have or leave out (the log's reader
 * checks them, so only the byte-level test uses these samples): shape,
 * packed images (fields 20-22), no position.
 */
static void
sample_add_packed(sample_t *s)
{
	Steward__Change *c = &s->ch;
	if (rnd_below(4) == 0) {
		c->has_position = false;
		c->position.len = 0;
		c->position.data = NULL;
		s->ec.row.position = NULL;
		s->ec.row.position_len = 0;
	}
	if (rnd_below(2)) {
		c->has_shape = true;
		c->shape = (uint32_t) (rnd_below(2) ? rnd() : rnd_below(300));
		s->ec.has_shape = true;
		s->ec.shape = c->shape;
	}
	ProtobufCBinaryData *bins[2] = {&c->before_packed, &c->after_packed};
	protobuf_c_boolean *has[2] = {&c->has_before_packed, &c->has_after_packed};
	for (int k = 0; k < 2; k++) {
		if (rnd_below(3) != 0)
			continue;
		size_t n = rnd_below(4) == 0 ? 200 + rnd_below(200) : rnd_below(60);
		s->packed[k] = malloc(n + 1);
		for (size_t i = 0; i < n; i++)
			s->packed[k][i] = (uint8_t) rnd();
		*has[k] = true;
		bins[k]->len = n;
		bins[k]->data = s->packed[k];
	}
	s->ec.before_packed = c->has_before_packed ? s->packed[0] : NULL;
	s->ec.before_packed_len = c->before_packed.len;
	s->ec.after_packed = c->has_after_packed ? s->packed[1] : NULL;
	s->ec.after_packed_len = c->after_packed.len;
}

static void
sample_free(sample_t *s)
{
	Steward__Change *c = &s->ch;
	free(c->source);
	free(c->database);
	free(c->schema);
	free(c->table);
	free(c->txid);
	free(c->position_text);
	for (size_t i = 0; i < c->n_key; i++)
		free(s->keys[i]);
	free(s->keys);
	for (size_t i = 0; i < c->n_before + c->n_after; i++) {
		free(s->values[i]->name);
		free(s->values[i]->type_name);
		free(s->values[i]->text);
		free(s->values[i]);
	}
	free(s->values);
	free(s->enc);
	free(s->prefix_off);
	free(s->packed[0]);
	free(s->packed[1]);
	buf_free(&s->head);
	buf_free(&s->keys_enc);
	buf_free(&s->prefixes);
}

static void
encoder_bytes_equal_protobuf_c_pack(void **state)
{
	(void) state;
	for (int iter = 0; iter < 3000; iter++) {
		sample_t s;
		sample_make(&s);
		if (iter % 2)
			sample_add_packed(&s);
		size_t want = protobuf_c_message_get_packed_size(&s.ch.base);
		uint8_t *ref = malloc(want + 1), *got = malloc(want + 64);
		assert_int_equal(protobuf_c_message_pack(&s.ch.base, ref), want);
		size_t size = record_encode_size(&s.ec);
		assert_int_equal(size, want);
		assert_int_equal(record_encode(&s.ec, got), size);
		assert_memory_equal(got, ref, want);

		/* protobuf-c reads the encoder's bytes back as the same message */
		Steward__Change *u = steward__change__unpack(NULL, size, got);
		assert_non_null(u);
		assert_int_equal(protobuf_c_message_get_packed_size(&u->base), want);
		uint8_t *again = malloc(want + 1);
		protobuf_c_message_pack(&u->base, again);
		assert_memory_equal(again, ref, want);
		assert_int_equal(u->n_before, s.ch.n_before);
		assert_int_equal(u->n_after, s.ch.n_after);
		for (size_t i = 0; i < u->n_after; i++) {
			const Steward__Value *a = u->after[i], *b = s.ch.after[i];
			assert_int_equal(a->is_null, b->is_null);
			assert_int_equal(a->unchanged, b->unchanged);
			if (b->text)
				assert_string_equal(a->text, b->text);
			else
				assert_null(a->text);
		}
		steward__change__free_unpacked(u, NULL);
		free(again);
		free(ref);
		free(got);
		sample_free(&s);
	}
}

static void
reserved_records_read_back_from_the_log(void **state)
{
	(void) state;
	char dir[] = "/tmp/steward-test-record-encode-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char err[512];
	clog_options_t o = {.segment_bytes = 1 << 20, .batch_raw_bytes = 8192, .zstd_level = 1};
	clog_writer_t *w = NULL;
	assert_int_equal(clog_writer_open(dir, &o, &w, err, sizeof err), CLOG_OK);
	enum { N = 300 };
	uint8_t *packed[N];
	size_t lens[N];
	for (int i = 0; i < N; i++) {
		sample_t s;
		sample_make(&s);
		/* positions must increase: overwrite with a counter */
		memset(s.pos, 0, 8);
		s.pos[7] = (uint8_t) (i + 1);
		s.pos[6] = (uint8_t) ((i + 1) >> 8);
		s.ch.position.len = 8;
		s.ec.row.position_len = 8;
		position_t pos;
		assert_true(position_set(&pos, s.pos, 8));
		lens[i] = record_encode_size(&s.ec);
		uint8_t *dst;
		assert_int_equal(clog_writer_reserve(w, &pos, lens[i], &dst, err, sizeof err), CLOG_OK);
		assert_int_equal(record_encode(&s.ec, dst), lens[i]);
		packed[i] = malloc(lens[i] + 1);
		protobuf_c_message_pack(&s.ch.base, packed[i]);
		/* the same position again is a duplicate, and leaves nothing behind */
		assert_int_equal(clog_writer_reserve(w, &pos, lens[i], &dst, err, sizeof err),
				 CLOG_DUPLICATE);
		sample_free(&s);
	}
	assert_int_equal(clog_writer_flush(w, err, sizeof err), CLOG_OK);
	clog_writer_close(w);

	clog_reader_t *r = NULL;
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, sizeof err), CLOG_OK);
	for (int i = 0; i < N; i++) {
		const Steward__Change *c;
		assert_int_equal(clog_reader_next(r, &c, err, sizeof err), CLOG_OK);
		size_t n = protobuf_c_message_get_packed_size(&c->base);
		assert_int_equal(n, lens[i]);
		uint8_t *b = malloc(n + 1);
		protobuf_c_message_pack(&c->base, b);
		assert_memory_equal(b, packed[i], n);
		free(b);
		free(packed[i]);
	}
	const Steward__Change *c;
	assert_int_equal(clog_reader_next(r, &c, err, sizeof err), CLOG_END);
	clog_reader_close(r);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/*
 * Shaped form of a sample, when its images fit one shape (the after
 * image's columns; the before image empty or with the same columns, whose
 * names and types the sample then takes from the after image so that the
 * self-describing form is what a reader must rebuild).  false: write it
 * self-describing.  *shape gets the Shape's bytes (without id).
 */
static bool
sample_shape(sample_t *s, buf_t *shape)
{
	Steward__Change *c = &s->ch;
	if (c->n_before != 0 && c->n_before != c->n_after)
		return false;
	if (c->n_before == 0 && c->n_after == 0)
		return false;
	size_t ncols = c->n_after;
	for (size_t i = 0; i < c->n_before; i++) {
		Steward__Value *b = c->before[i], *a = c->after[i];
		free(b->name);
		free(b->type_name);
		b->name = a->name ? strdup(a->name) : NULL;
		b->type_name = a->type_name ? strdup(a->type_name) : NULL;
		b->type_id = a->type_id;
	}
	record_enc_shape_head(shape, c->version, c->source, c->source_kind, c->database, c->schema,
			      c->table);
	record_enc_shape_keys(shape, c->key, c->n_key);
	for (size_t i = 0; i < ncols; i++)
		record_enc_shape_column(shape, s->ec.after[i].prefix, s->ec.after[i].prefix_len);
	for (size_t i = 0; i < c->n_before + c->n_after; i++)
		s->enc[i].prefix_len = 0;
	s->ec.head_len = 0;
	s->ec.keys_len = 0;
	s->ec.has_shape = true;
	return true;
}

static void
shaped_records_read_back_as_self_describing(void **state)
{
	(void) state;
	char dir[] = "/tmp/steward-test-record-encode-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char err[512];
	/* small batches: shapes are written again in many batches */
	clog_options_t o = {.segment_bytes = 1 << 20, .batch_raw_bytes = 4096, .zstd_level = 1};
	clog_writer_t *w = NULL;
	assert_int_equal(clog_writer_open(dir, &o, &w, err, sizeof err), CLOG_OK);
	enum { N = 600 };
	uint8_t *packed[N];
	size_t lens[N];
	buf_t shapes[4] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
	uint32_t ids[4] = {0};
	size_t nshaped = 0;
	for (int i = 0; i < N; i++) {
		sample_t s;
		sample_make(&s);
		memset(s.pos, 0, 8);
		s.pos[7] = (uint8_t) (i + 1);
		s.pos[6] = (uint8_t) ((i + 1) >> 8);
		s.ch.position.len = 8;
		s.ec.row.position_len = 8;
		position_t pos;
		assert_true(position_set(&pos, s.pos, 8));
		buf_t shape = BUF_INIT;
		bool shaped = sample_shape(&s, &shape);
		uint8_t *dst;
		if (shaped) {
			/* keep a few shapes alive and reuse them: the same bytes, the same id */
			size_t k = (size_t) i % 4;
			uint32_t id;
			assert_int_equal(clog_writer_shape(w, (const uint8_t *) shape.data, shape.len,
							   &id, err, sizeof err), CLOG_OK);
			uint32_t again;
			assert_int_equal(clog_writer_shape(w, (const uint8_t *) shape.data, shape.len,
							   &again, err, sizeof err), CLOG_OK);
			assert_int_equal(again, id);
			if (shapes[k].len == shape.len &&
			    memcmp(shapes[k].data, shape.data, shape.len) == 0)
				assert_int_equal(id, ids[k]);
			buf_reset(&shapes[k]);
			buf_append(&shapes[k], shape.data, shape.len);
			ids[k] = id;
			s.ec.shape = id;
			lens[i] = record_encode_size(&s.ec);
			assert_int_equal(clog_writer_reserve_shaped(w, &pos, id, lens[i], &dst, err,
								    sizeof err), CLOG_OK);
			nshaped++;
		} else {
			lens[i] = record_encode_size(&s.ec);
			assert_int_equal(clog_writer_reserve(w, &pos, lens[i], &dst, err, sizeof err),
					 CLOG_OK);
		}
		assert_int_equal(record_encode(&s.ec, dst), lens[i]);
		lens[i] = protobuf_c_message_get_packed_size(&s.ch.base);
		packed[i] = malloc(lens[i] + 1);
		protobuf_c_message_pack(&s.ch.base, packed[i]);
		buf_free(&shape);
		sample_free(&s);
		if (i % 97 == 0)
			assert_int_equal(clog_writer_flush(w, err, sizeof err), CLOG_OK);
	}
	assert_true(nshaped > N / 4 && nshaped < N);
	/* an unknown id is refused at the writer */
	position_t last;
	uint8_t lastb[8] = {0, 0, 0, 0, 0, 0, 0xff, 0xff};
	assert_true(position_set(&last, lastb, 8));
	uint8_t *dst;
	assert_int_equal(clog_writer_reserve_shaped(w, &last, 9999, 4, &dst, err, sizeof err),
			 CLOG_ERROR);
	assert_int_equal(clog_writer_flush(w, err, sizeof err), CLOG_OK);
	clog_writer_close(w);

	/* every reader sees the self-describing record, from the start or from the middle */
	for (int from = 0; from < N; from += 151) {
		clog_reader_t *r = NULL;
		position_t after = {0};
		uint8_t ab[8] = {0};
		if (from) {
			ab[7] = (uint8_t) from;
			ab[6] = (uint8_t) (from >> 8);
			assert_true(position_set(&after, ab, 8));
		}
		assert_int_equal(clog_reader_open(dir, &after, &r, err, sizeof err), CLOG_OK);
		for (int i = from; i < N; i++) {
			const Steward__Change *c;
			assert_int_equal(clog_reader_next(r, &c, err, sizeof err), CLOG_OK);
			assert_false(c->has_shape);
			size_t n = protobuf_c_message_get_packed_size(&c->base);
			assert_int_equal(n, lens[i]);
			uint8_t *b = malloc(n + 1);
			protobuf_c_message_pack(&c->base, b);
			assert_memory_equal(b, packed[i], n);
			/* a copy owns its strings: freeing it leaves the reader's record intact */
			Steward__Change *copy = record_dup(c);
			record_free(copy);
			protobuf_c_message_pack(&c->base, b);
			assert_memory_equal(b, packed[i], n);
			free(b);
		}
		const Steward__Change *c;
		assert_int_equal(clog_reader_next(r, &c, err, sizeof err), CLOG_END);
		clog_reader_close(r);
	}
	/* the deep scan decodes (and frees) every shaped record too */
	clog_scan_t sc;
	assert_int_equal(clog_scan(dir, true, &sc, err, sizeof err), CLOG_OK);
	assert_int_equal(sc.records, N);
	for (int i = 0; i < N; i++)
		free(packed[i]);
	for (int k = 0; k < 4; k++)
		buf_free(&shapes[k]);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* The packed-row encoder writes what protobuf-c packs for the same fields. */
static void
packed_row_encoder_equals_protobuf_c_pack(void **state)
{
	(void) state;
	uint8_t img[2][700], a[1600], b[1600];
	for (int iter = 0; iter < 5000; iter++) {
		record_enc_packed_row_t r;
		memset(&r, 0, sizeof(r));
		r.has_op = rnd_below(3) != 0;
		r.op = (Steward__Op) (1 + rnd_below(6));
		r.has_seq = rnd_below(3) != 0;
		r.seq = (uint32_t) (rnd_below(2) ? rnd() : rnd_below(300));
		r.has_shape = rnd_below(3) != 0;
		r.shape = (uint32_t) (rnd_below(4) ? 1 + rnd_below(200) : rnd());
		size_t len[2];
		for (int k = 0; k < 2; k++) {
			len[k] = rnd_below(5) == 0 ? 128 + rnd_below(500) : rnd_below(128);
			for (size_t i = 0; i < len[k]; i++)
				img[k][i] = (uint8_t) rnd();
		}
		if (rnd_below(3)) {
			r.before = img[0];
			r.before_len = len[0];
		}
		if (rnd_below(3)) {
			r.after = img[1];
			r.after_len = len[1];
		}
		Steward__Change c = STEWARD__CHANGE__INIT;
		c.has_op = r.has_op;
		c.op = r.has_op ? r.op : 0;
		c.has_seq = r.has_seq;
		c.seq = r.has_seq ? r.seq : 0;
		c.has_shape = r.has_shape;
		c.shape = r.has_shape ? r.shape : 0;
		c.has_before_packed = r.before != NULL;
		c.before_packed = (ProtobufCBinaryData) {r.before ? r.before_len : 0, r.before ? img[0] : NULL};
		c.has_after_packed = r.after != NULL;
		c.after_packed = (ProtobufCBinaryData) {r.after ? r.after_len : 0, r.after ? img[1] : NULL};
		size_t want = protobuf_c_message_get_packed_size(&c.base);
		assert_int_equal(record_encode_packed_row_size(&r), want);
		assert_int_equal(protobuf_c_message_pack(&c.base, a), want);
		assert_int_equal(record_encode_packed_row(&r, b), want);
		assert_memory_equal(a, b, want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encoder_bytes_equal_protobuf_c_pack),
		cmocka_unit_test(packed_row_encoder_equals_protobuf_c_pack),
		cmocka_unit_test(reserved_records_read_back_from_the_log),
		cmocka_unit_test(shaped_records_read_back_as_self_describing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
