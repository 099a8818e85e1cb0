/*
 * test_clog_packed.c — packed records (Batch field 3) in the change log:
 * a log of packed records reads exactly as the log of the same rows in
 * text form, transaction fields left out are filled from the previous
 * record across batch boundaries, and malformed packed records of every
 * kind are corruption with file and offset, never a crash or a misread.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "clog.h"
#include "crc32c.h"
#include "packed_ref.h"
#include "position.h"
#include "record_encode.h"
#include "value_text.h"
#include "xalloc.h"
#include "test_tmpdir.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t
rnd_below(uint64_t n)
{
	return rnd() % n;
}

/* ---- directories and frames ---- */

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> 8 * i);
}

/* Replace the log in dir by one uncompressed frame of the batch bytes (valid CRC). */
static char *
write_frame(const char *dir, const buf_t *batch, uint32_t count, const position_t *first,
	    const position_t *last)
{
	size_t plen = batch->len;
	uint8_t *frame = xcalloc(1, 96 + plen);
	memcpy(frame, "STWF", 4);
	frame[4] = 1;
	put32(frame + 8, (uint32_t) plen);
	put32(frame + 12, (uint32_t) plen);
	put32(frame + 16, count);
	frame[20] = first->len;
	memcpy(frame + 21, first->bytes, first->len);
	frame[53] = last->len;
	memcpy(frame + 54, last->bytes, last->len);
	if (plen)
		memcpy(frame + 96, batch->data, plen);
	uint32_t crc = clog_crc32c(0, frame, 88);
	crc = clog_crc32c(crc, frame + 96, plen);
	put32(frame + 88, crc);
	char *segdir = xasprintf("%s/segments", dir);
	mkdir(segdir, 0755);
	char *path = xasprintf("%s/00000000000000000001.seg", segdir);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(frame, 1, 96 + plen, f), 96 + plen);
	fclose(f);
	free(segdir);
	free(frame);
	return path;
}

/* ---- the table: one column per codec ---- */

enum { NCOLS = 11 };

static const struct {
	const char *name, *type;
	uint32_t type_id;
	Steward__Codec codec;
	unsigned scale;
} cols[NCOLS] = {
	{"id", "bigint(20)", 8, STEWARD__CODEC__CODEC_INT, 0},
	{"u", "bigint(20) unsigned", 8, STEWARD__CODEC__CODEC_UINT, 0},
	{"name", "varchar(40)", 15, STEWARD__CODEC__CODEC_TEXT, 0},
	{"price", "decimal(20,2)", 246, STEWARD__CODEC__CODEC_DECIMAL, 2},
	{"ratio", "decimal(18,18)", 246, STEWARD__CODEC__CODEC_DECIMAL, 18},
	{"d", "double", 5, STEWARD__CODEC__CODEC_DOUBLE, 0},
	{"f", "float", 4, STEWARD__CODEC__CODEC_FLOAT, 0},
	{"day", "date", 10, STEWARD__CODEC__CODEC_DATE, 0},
	{"at", "datetime(3)", 18, STEWARD__CODEC__CODEC_DATETIME, 3},
	{"ts", "timestamp(6)", 17, STEWARD__CODEC__CODEC_TIMESTAMP, 6},
	{"ts0", "timestamp", 17, STEWARD__CODEC__CODEC_TIMESTAMP, 0},
};

/* A shape's bytes (without id): text form, or packed with the columns' codecs. */
static void
shape_bytes(buf_t *out, bool packed)
{
	static char *keys[1] = {"id"};
	record_enc_shape_head(out, 1, "shop", STEWARD__SOURCE_KIND__SOURCE_KIND_MYSQL, NULL, "shop",
			      "orders");
	record_enc_shape_keys(out, keys, 1);
	for (int i = 0; i < NCOLS; i++) {
		buf_t col = BUF_INIT;
		record_enc_value_prefix(&col, cols[i].name, cols[i].type_id, cols[i].type);
		if (packed)
			record_enc_column_codec(&col, cols[i].codec, cols[i].scale);
		record_enc_shape_column(out, (const uint8_t *) col.data, col.len);
		buf_free(&col);
	}
	record_enc_shape_position_by_seq(out);
}

/* One row's typed values; null[i] for SQL NULL. */
typedef struct row_values {
	bool null[NCOLS];
	int64_t id;
	uint64_t u;
	char name[48];
	int64_t price, ratio;
	double d;
	float f;
	uint64_t day, at, at_us, ts, ts_us, ts0;
} row_values_t;

static void
row_random(row_values_t *v, int64_t id)
{
	memset(v, 0, sizeof(*v));
	for (int i = 1; i < NCOLS; i++)
		v->null[i] = rnd_below(6) == 0;
	v->id = rnd_below(3) ? id : (int64_t) rnd();
	v->u = rnd_below(4) ? rnd_below(1000) : rnd();
	size_t nl = rnd_below(sizeof(v->name) - 1);
	for (size_t k = 0; k < nl; k++)
		v->name[k] = (char) ('a' + rnd_below(26));
	if (rnd_below(5) == 0)
		strcpy(v->name, nl % 2 ? "x\xc3\xa9" : "");  /* UTF-8, or empty: not NULL */
	v->price = (int64_t) rnd_below(1000000000000000000ull) * (rnd_below(2) ? 1 : -1);
	if (rnd_below(3) == 0)
		v->price /= 1000000000000;
	v->ratio = (int64_t) rnd_below(1000000000000000000ull) * (rnd_below(2) ? 1 : -1);
	uint64_t bits = rnd();
	memcpy(&v->d, &bits, 8);
	if (rnd_below(2))
		v->d = (double) rnd_below(10000000) / (double) (1 + rnd_below(97));
	uint32_t fb = (uint32_t) rnd();
	memcpy(&v->f, &fb, 4);
	v->day = rnd_below(4) ? (2000 + rnd_below(30)) << 9 | (1 + rnd_below(12)) << 5 |
				    (1 + rnd_below(28))
			      : rnd_below(1u << 24);
	v->at = rnd_below(1ull << 39);
	v->at_us = rnd_below(1000000);
	v->ts = rnd_below(8) ? rnd_below(1ull << 32) : 0;
	v->ts_us = v->ts == 0 && rnd_below(2) ? 0 : rnd_below(1000000);
	v->ts0 = rnd_below(8) ? rnd_below(1ull << 32) : 0;
}

/* Column i's text, appended to b. */
static void
value_text(const row_values_t *v, int i, buf_t *b)
{
	switch (i) {
	case 0: value_text_int(v->id, b); break;
	case 1: value_text_uint(v->u, b); break;
	case 2: buf_append_str(b, v->name); break;
	case 3: value_text_decimal(v->price, 2, b); break;
	case 4: value_text_decimal(v->ratio, 18, b); break;
	case 5: value_text_double(v->d, b); break;
	case 6: value_text_float(v->f, b); break;
	case 7: value_text_date(v->day, b); break;
	case 8: value_text_datetime(v->at, 3, v->at_us, b); break;
	case 9: value_text_timestamp(v->ts, 6, v->ts_us, b); break;
	case 10: value_text_timestamp(v->ts0, 0, 0, b); break;
	}
}

static void
put_varint(buf_t *b, uint64_t v)
{
	uint8_t t[10];
	buf_append(b, t, record_varint_put(t, v));
}

static uint64_t
zigzag(int64_t v)
{
	return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
}

static void
put_le(buf_t *b, uint64_t v, int n)
{
	for (int k = 0; k < n; k++)
		buf_append_char(b, (char) (v >> 8 * k));
}

/* The row's packed image (steward.proto, Codec). */
static void
packed_image(const row_values_t *v, buf_t *b)
{
	uint8_t bitmap[(NCOLS + 7) / 8] = {0};
	for (int i = 0; i < NCOLS; i++)
		if (v->null[i])
			bitmap[i / 8] |= (uint8_t) (1u << (i % 8));
	buf_append(b, bitmap, sizeof(bitmap));
	for (int i = 0; i < NCOLS; i++) {
		if (v->null[i])
			continue;
		uint64_t bits;
		uint32_t fb;
		switch (i) {
		case 0: put_varint(b, zigzag(v->id)); break;
		case 1: put_varint(b, v->u); break;
		case 2:
			put_varint(b, strlen(v->name));
			buf_append_str(b, v->name);
			break;
		case 3: put_varint(b, zigzag(v->price)); break;
		case 4: put_varint(b, zigzag(v->ratio)); break;
		case 5:
			memcpy(&bits, &v->d, 8);
			put_le(b, bits, 8);
			break;
		case 6:
			memcpy(&fb, &v->f, 4);
			put_le(b, fb, 4);
			break;
		case 7: put_varint(b, v->day); break;
		case 8:
			put_varint(b, v->at);
			put_varint(b, v->at_us);
			break;
		case 9:
			put_varint(b, v->ts);
			put_varint(b, v->ts_us);
			break;
		case 10: put_varint(b, v->ts0); break;
		}
	}
}

/* The row's text image as record_encode values; texts in *texts (offsets, then pointers). */
static void
text_image(const row_values_t *v, buf_t *texts, record_enc_value_t *vals)
{
	size_t off[NCOLS];
	for (int i = 0; i < NCOLS; i++) {
		off[i] = texts->len;
		if (!v->null[i])
			value_text(v, i, texts);
		vals[i] = (record_enc_value_t) {(const uint8_t *) "", 0, v->null[i] ? RECORD_ENC_NULL : RECORD_ENC_TEXT,
						NULL, texts->len - off[i]};
	}
	for (int i = 0; i < NCOLS; i++)
		vals[i].text = texts->data ? texts->data + off[i] : "";
}

/* A row change's transaction fields, as the MySQL capture fills them (kind: 0 insert, 1 update, 2 delete). */
static void
row_fields(record_enc_change_t *c, int kind, const char *txid, int64_t commit, const position_t *pos,
	   const char *ptext, size_t plen, uint32_t seq, uint32_t shape)
{
	c->row.op = kind == 0 ? STEWARD__OP__OP_INSERT :
		    kind == 1 ? STEWARD__OP__OP_UPDATE : STEWARD__OP__OP_DELETE;
	c->row.txid = txid;
	c->row.txid_len = txid ? strlen(txid) : 0;
	c->row.has_commit_ts = true;
	c->row.commit_ts_us = commit;
	c->row.position = pos->bytes;
	c->row.position_len = pos->len;
	c->row.position_text = ptext;
	c->row.position_text_len = plen;
	c->row.has_seq = true;
	c->row.seq = seq;
	c->has_shape = true;
	c->shape = shape;
}

/* ---- writing the same rows in both forms ---- */

typedef struct log_pair {
	char *text_dir, *packed_dir;
	char *refs_dir;            /* packed with value references (proto/packed_ref.h) */
	uint64_t refs_restarts;    /* rows coded again to start the next batch */
	uint64_t rows;
	uint64_t left_out;         /* packed records written without txid/commit/position */
	uint64_t txn_split;        /* transactions whose rows span batches */
} log_pair_t;

/*
 * Write txns transactions of 1..40 rows each (insert, update, delete) into
 * a text log and a packed log, as the MySQL capture does: a record leaves
 * out what the previous record of its batch gives whenever it is not the
 * first of its batch.
 */
static void
write_pair(log_pair_t *lp, int txns, size_t batch_bytes)
{
	char err[512];
	clog_options_t opts = {.segment_bytes = 256 * 1024, .batch_raw_bytes = batch_bytes,
			       .zstd_level = 1};
	clog_writer_t *wt, *wp, *wr;
	lp->text_dir = test_make_tmpdir("clog-packed");
	lp->packed_dir = test_make_tmpdir("clog-packed");
	lp->refs_dir = test_make_tmpdir("clog-packed");
	assert_int_equal(clog_writer_open(lp->text_dir, &opts, &wt, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_writer_open(lp->packed_dir, &opts, &wp, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_writer_open(lp->refs_dir, &opts, &wr, err, sizeof(err)), CLOG_OK);
	buf_t sht = BUF_INIT, shp = BUF_INIT, shr = BUF_INIT;
	shape_bytes(&sht, false);
	shape_bytes(&shp, true);
	shape_bytes(&shr, true);
	record_enc_shape_value_refs(&shr);
	uint32_t idt, idp, idr;
	assert_int_equal(clog_writer_shape(wr, (const uint8_t *) shr.data, shr.len, &idr, err,
					   sizeof(err)), CLOG_OK);
	uint8_t codec[NCOLS], scale[NCOLS];
	for (int i = 0; i < NCOLS; i++) {
		codec[i] = (uint8_t) cols[i].codec;
		scale[i] = (uint8_t) cols[i].scale;
	}
	packed_refs_t refs;
	packed_refs_init(&refs, NCOLS, codec, scale);
	buf_t cb = BUF_INIT, ca = BUF_INIT;
	assert_int_equal(clog_writer_shape(wt, (const uint8_t *) sht.data, sht.len, &idt, err,
					   sizeof(err)), CLOG_OK);
	assert_int_equal(clog_writer_shape(wp, (const uint8_t *) shp.data, shp.len, &idp, err,
					   sizeof(err)), CLOG_OK);
	buf_t texts = BUF_INIT, bimg = BUF_INIT, aimg = BUF_INIT;
	int64_t id = 0;
	for (int t = 0; t < txns; t++) {
		char txid[40], ptext[64];
		/* a transaction without a GTID now and then: its records have no txid */
		bool has_txid = t % 9 != 4;
		snprintf(txid, sizeof(txid), "0-1-%d", 100 + t);
		int64_t commit = 1700000000000000 + (int64_t) t * 1000;
		uint64_t offset = 4000 + (uint64_t) t * 500;
		int nrows = 1 + (int) rnd_below(t % 5 == 0 ? 40 : 6);
		bool split = false;
		for (int s = 0; s < nrows; s++) {
			position_t pos;
			position_mysql(&pos, 1, offset, POSITION_PHASE_STREAM, (uint64_t) s);
			int plen = snprintf(ptext, sizeof(ptext), "mysql-bin.000001:%llu:%d",
					    (unsigned long long) offset, s);
			int kind = (int) rnd_below(3);  /* 0 insert, 1 update, 2 delete */
			row_values_t before, after;
			row_random(&before, ++id);
			row_random(&after, id);
			record_enc_value_t bv[NCOLS], av[NCOLS];

			/* the text form */
			buf_reset(&texts);
			buf_t btexts = BUF_INIT;
			text_image(&before, &btexts, bv);
			text_image(&after, &texts, av);
			record_enc_change_t ec = {0};
			row_fields(&ec, kind, has_txid ? txid : NULL, commit, &pos, ptext, (size_t) plen,
				   (uint32_t) s, idt);
			ec.row.txid_len = strlen(txid);
			if (kind != 0) {
				ec.before = bv;
				ec.nbefore = NCOLS;
			}
			if (kind != 2) {
				ec.after = av;
				ec.nafter = NCOLS;
			}
			if (s > 0 && !clog_writer_batch_starts(wt, idt, record_encode_size(&ec)))
				ec.row.position_text = NULL;
			size_t size = record_encode_size(&ec);
			uint8_t *dst;
			assert_int_equal(clog_writer_reserve_shaped(wt, &pos, idt, size, &dst, err,
								    sizeof(err)), CLOG_OK);
			assert_int_equal(record_encode(&ec, dst), size);
			buf_free(&btexts);

			/* the packed form */
			buf_reset(&bimg);
			buf_reset(&aimg);
			packed_image(&before, &bimg);
			packed_image(&after, &aimg);
			ec.before = ec.after = NULL;
			ec.nbefore = ec.nafter = 0;
			ec.shape = idp;
			ec.row.position_text = ptext;
			if (kind != 0) {
				ec.before_packed = (const uint8_t *) bimg.data;
				ec.before_packed_len = bimg.len;
			}
			if (kind != 2) {
				ec.after_packed = (const uint8_t *) aimg.data;
				ec.after_packed_len = aimg.len;
			}
			record_enc_change_t lean = ec;
			lean.row.txid = NULL;
			lean.row.has_commit_ts = false;
			lean.row.position = NULL;
			lean.row.position_text = NULL;
			if (s > 0 && !clog_writer_batch_starts(wp, idp, record_encode_size(&lean))) {
				ec = lean;
				lp->left_out++;
			} else if (s > 0) {
				split = true;
			}
			size = record_encode_size(&ec);
			assert_int_equal(clog_writer_reserve_packed(wp, &pos, idp, size, &dst, err,
								    sizeof(err)), CLOG_OK);
			assert_int_equal(record_encode(&ec, dst), size);

			/*
			 * The value-references form, as the MySQL capture writes it:
			 * references continue while the pending batch holds rows of
			 * them and takes this one; else they start from zero.
			 */
			record_enc_change_t er = ec;
			er.shape = idr;
			uint64_t gen = clog_writer_shape_batch(wr, idr, 0);
			if (gen == 0 || refs.batch != gen) {
				packed_refs_reset(&refs);
				refs.batch = 0;
			}
			for (;;) {
				buf_reset(&cb);
				buf_reset(&ca);
				if (kind != 0)
					assert_true(packed_refs_encode(&refs, (const uint8_t *) bimg.data,
								       bimg.len, &cb, err, sizeof(err)));
				if (kind != 2)
					assert_true(packed_refs_encode(&refs, (const uint8_t *) aimg.data,
								       aimg.len, &ca, err, sizeof(err)));
				if (refs.batch == 0 ||
				    clog_writer_shape_batch(wr, idr, cb.len + ca.len + 1024) == refs.batch)
					break;
				assert_int_equal(clog_writer_batch_end(wr, err, sizeof(err)), CLOG_OK);
				packed_refs_reset(&refs);
				refs.batch = 0;
				lp->refs_restarts++;
			}
			er.before_packed = kind != 0 ? (const uint8_t *) cb.data : NULL;
			er.before_packed_len = kind != 0 ? cb.len : 0;
			er.after_packed = kind != 2 ? (const uint8_t *) ca.data : NULL;
			er.after_packed_len = kind != 2 ? ca.len : 0;
			record_enc_change_t rlean = er;
			rlean.row.txid = NULL;
			rlean.row.has_commit_ts = false;
			rlean.row.position = NULL;
			rlean.row.position_text = NULL;
			if (s > 0 && !clog_writer_batch_starts(wr, idr, record_encode_size(&rlean)))
				er = rlean;
			else {
				er.row.txid = has_txid ? txid : NULL;
				er.row.has_commit_ts = true;
				er.row.position = pos.bytes;
				er.row.position_text = ptext;
			}
			size = record_encode_size(&er);
			assert_int_equal(clog_writer_reserve_packed(wr, &pos, idr, size, &dst, err,
								    sizeof(err)), CLOG_OK);
			assert_int_equal(record_encode(&er, dst), size);
			refs.batch = clog_writer_shape_batch(wr, idr, 0);
			lp->rows++;
		}
		lp->txn_split += split;
	}
	assert_int_equal(clog_writer_flush(wt, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_writer_flush(wp, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_writer_flush(wr, err, sizeof(err)), CLOG_OK);
	clog_writer_close(wt);
	clog_writer_close(wp);
	clog_writer_close(wr);
	packed_refs_free(&refs);
	buf_free(&cb);
	buf_free(&ca);
	buf_free(&sht);
	buf_free(&shp);
	buf_free(&shr);
	buf_free(&texts);
	buf_free(&bimg);
	buf_free(&aimg);
}

static uint8_t *
pack(const Steward__Change *c, size_t *n)
{
	*n = steward__change__get_packed_size(c);
	uint8_t *p = xmalloc(*n + 1);
	assert_int_equal(steward__change__pack(c, p), *n);
	return p;
}

/* Field by field what a reader must see the same in both forms. */
static void
assert_same_change(const Steward__Change *a, const Steward__Change *b)
{
	assert_false(b->has_shape);
	assert_false(b->has_before_packed);
	assert_false(b->has_after_packed);
	assert_null(b->before_packed.data);
	assert_null(b->after_packed.data);
	assert_string_equal(a->table, b->table);
	assert_int_equal(a->has_position, b->has_position);
	assert_int_equal(a->position.len, b->position.len);
	assert_memory_equal(a->position.data, b->position.data, a->position.len);
	assert_string_equal(a->position_text, b->position_text);
	if (a->txid || b->txid)
		assert_string_equal(a->txid ? a->txid : "(none)", b->txid ? b->txid : "(none)");
	assert_int_equal(a->has_commit_ts_us, b->has_commit_ts_us);
	assert_int_equal(a->commit_ts_us, b->commit_ts_us);
	assert_int_equal(a->n_before, b->n_before);
	assert_int_equal(a->n_after, b->n_after);
	Steward__Value **ia[2] = {a->before, a->after}, **ib[2] = {b->before, b->after};
	size_t n[2] = {a->n_before, a->n_after};
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < n[k]; i++) {
			const Steward__Value *x = ia[k][i], *y = ib[k][i];
			assert_string_equal(x->name, y->name);
			assert_string_equal(x->type_name, y->type_name);
			assert_int_equal(x->has_type_id, y->has_type_id);
			assert_int_equal(x->type_id, y->type_id);
			assert_int_equal(x->has_is_null, y->has_is_null);
			assert_int_equal(x->is_null, y->is_null);
			assert_int_equal(x->has_unchanged, y->has_unchanged);
			if (x->text || y->text)
				assert_string_equal(x->text ? x->text : "(none)",
						    y->text ? y->text : "(none)");
		}
	}
	/* and nothing else differs: the same bytes packed */
	size_t na, nb;
	uint8_t *pa = pack(a, &na), *pb = pack(b, &nb);
	assert_int_equal(na, nb);
	assert_memory_equal(pa, pb, na);
	free(pa);
	free(pb);
}

/* Read two logs side by side: the same records (assert_same_change); returns how many. */
static uint64_t
read_alike(const char *text_dir, const char *other_dir)
{
	char err[512];
	clog_reader_t *rt, *ro;
	assert_int_equal(clog_reader_open(text_dir, NULL, &rt, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_reader_open(other_dir, NULL, &ro, err, sizeof(err)), CLOG_OK);
	uint64_t n = 0;
	for (;;) {
		const Steward__Change *a, *b;
		clog_status_t sa = clog_reader_next(rt, &a, err, sizeof(err));
		assert_true(sa == CLOG_OK || sa == CLOG_END);
		clog_status_t sb = clog_reader_next(ro, &b, err, sizeof(err));
		if (sb != CLOG_OK && sb != CLOG_END)
			fail_msg("%s: %s", other_dir, err);
		assert_int_equal(sa, sb);
		if (sa == CLOG_END)
			break;
		assert_same_change(a, b);
		n++;
	}
	clog_reader_close(rt);
	clog_reader_close(ro);
	return n;
}

static void
packed_log_reads_as_the_text_log_of_the_same_rows(void **state)
{
	log_pair_t lp = {0};
	write_pair(&lp, 400, 3000);
	/* the log covers what it should: rows that left fields out, transactions split by batches */
	assert_true(lp.left_out > 100);
	assert_true(lp.txn_split > 3);

	char err[512];
	clog_reader_t *rp;
	assert_int_equal(read_alike(lp.text_dir, lp.packed_dir), lp.rows);
	/* the value-references log reads the same, across every batch boundary */
	assert_int_equal(read_alike(lp.text_dir, lp.refs_dir), lp.rows);

	/* a deep scan (and its pbc allocator, freeing every record) agrees */
	clog_scan_t s;
	assert_int_equal(clog_scan(lp.packed_dir, true, &s, err, sizeof(err)), CLOG_OK);
	assert_false(s.torn_tail);
	assert_int_equal(s.records, lp.rows);
	assert_true(s.frames > 10);

	/* reading from a position inside a transaction of left-out fields */
	position_t after;
	position_mysql(&after, 1, 4000, POSITION_PHASE_STREAM, 0);
	assert_int_equal(clog_reader_open(lp.packed_dir, &after, &rp, err, sizeof(err)), CLOG_OK);
	const Steward__Change *c;
	uint64_t m = 0;
	while (clog_reader_next(rp, &c, err, sizeof(err)) == CLOG_OK) {
		assert_non_null(c->position_text);
		assert_true(c->has_commit_ts_us);
		m++;
	}
	assert_int_equal(m, lp.rows - 1);
	clog_reader_close(rp);
	test_remove_tree(lp.text_dir);
	test_remove_tree(lp.packed_dir);
	test_remove_tree(lp.refs_dir);
}

/* ---- runs ---- */

/* Every byte of a log's segments, in name order, into out. */
static void
segment_bytes(const char *dir, buf_t *out)
{
	char path[4096];
	for (int seq = 1; seq < 1000; seq++) {
		snprintf(path, sizeof(path), "%s/segments/%020d.seg", dir, seq);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		char chunk[8192];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_append(out, chunk, n);
		fclose(f);
	}
}

/* A row through the reserve path: the full record, or the lean one when it continues its batch. */
static void
reserve_row(clog_writer_t *w, uint32_t shape, const position_t *pos, const record_enc_change_t *full,
	    const record_enc_packed_row_t *lean, bool first_of_txn)
{
	char err[512];
	uint8_t *dst;
	size_t size = record_encode_packed_row_size(lean);
	if (!first_of_txn && !clog_writer_batch_starts(w, shape, size)) {
		assert_int_equal(clog_writer_reserve_packed(w, pos, shape, size, &dst, err, sizeof(err)),
				 CLOG_OK);
		assert_int_equal(record_encode_packed_row(lean, dst), size);
		return;
	}
	size = record_encode_size(full);
	assert_int_equal(clog_writer_reserve_packed(w, pos, shape, size, &dst, err, sizeof(err)),
			 CLOG_OK);
	assert_int_equal(record_encode(full, dst), size);
}

static void
run_flush(clog_writer_t *w, const position_t *last, uint32_t *n, buf_t *run)
{
	char err[512];
	assert_int_equal(clog_writer_append_run(w, last, *n, (const uint8_t *) run->data, run->len,
						err, sizeof(err)), CLOG_OK);
	*n = 0;
	buf_reset(run);
}

/*
 * Rows appended as runs (clog_writer_run_room, clog_writer_append_run), as
 * the MySQL capture appends the rows of a rows event, make the same log,
 * byte for byte, as one clog_writer_reserve_packed per row; a run that
 * does not continue the pending batch, or goes back in position, is refused.
 */
static void
runs_write_what_reserves_write(void **state)
{
	(void) state;
	char err[512];
	clog_options_t opts = {.segment_bytes = 64 * 1024, .batch_raw_bytes = 4096, .zstd_level = 1};
	char *da = test_make_tmpdir("clog-run"), *db = test_make_tmpdir("clog-run");
	clog_writer_t *wa, *wb;
	assert_int_equal(clog_writer_open(da, &opts, &wa, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_writer_open(db, &opts, &wb, err, sizeof(err)), CLOG_OK);
	buf_t shp = BUF_INIT, img = BUF_INIT, run = BUF_INIT;
	shape_bytes(&shp, true);
	uint32_t ida, idb;
	assert_int_equal(clog_writer_shape(wa, (const uint8_t *) shp.data, shp.len, &ida, err,
					   sizeof(err)), CLOG_OK);
	assert_int_equal(clog_writer_shape(wb, (const uint8_t *) shp.data, shp.len, &idb, err,
					   sizeof(err)), CLOG_OK);
	assert_int_equal(ida, idb);
	/* nothing pending, or a shape not registered: no run */
	assert_int_equal(clog_writer_run_room(wb, idb), 0);
	assert_int_equal(clog_writer_run_room(wb, idb + 1), 0);
	uint64_t rows = 0, run_rows = 0;
	int64_t id = 0;
	for (int t = 0; t < 60; t++) {
		char txid[40], ptext[64];
		snprintf(txid, sizeof(txid), "0-1-%d", 100 + t);
		uint64_t offset = 4000 + (uint64_t) t * 500;
		int nrows = 1 + (int) rnd_below(t % 4 == 0 ? 400 : 8);
		int kind = t % 3;  /* insert, update, delete: one op per transaction, as per rows event */
		uint32_t n = 0;
		size_t room = 0;
		position_t pos, last;
		for (int s = 0; s < nrows; s++) {
			position_mysql(&pos, 1, offset, POSITION_PHASE_STREAM, (uint64_t) s);
			int plen = snprintf(ptext, sizeof(ptext), "mysql-bin.000001:%llu:%d",
					    (unsigned long long) offset, s);
			row_values_t row;
			row_random(&row, ++id);
			buf_reset(&img);
			packed_image(&row, &img);
			const uint8_t *im = (const uint8_t *) img.data;
			record_enc_packed_row_t lean = {
				.before = kind != 0 ? im : NULL, .before_len = kind != 0 ? img.len : 0,
				.after = kind != 2 ? im : NULL, .after_len = kind != 2 ? img.len : 0,
			};
			record_enc_change_t full = {0};
			row_fields(&full, kind, txid, 1700000000000000 + (int64_t) t, &pos, ptext,
				   (size_t) plen, (uint32_t) s, ida);
			full.before_packed = lean.before;
			full.before_packed_len = lean.before_len;
			full.after_packed = lean.after;
			full.after_packed_len = lean.after_len;
			reserve_row(wa, ida, &pos, &full, &lean, s == 0);

			/* the same row into a run when one may take it */
			if (n == 0)
				room = s > 0 ? clog_writer_run_room(wb, idb) : 0;
			if (n > 0 && run.len >= room)
				run_flush(wb, &last, &n, &run);
			if (n == 0 && s > 0)
				room = clog_writer_run_room(wb, idb);
			if (s > 0 && run.len < room) {
				size_t size = record_encode_packed_row_size(&lean);
				uint8_t hdr[11];
				size_t h = 0;
				hdr[h++] = 0x1a;
				h += record_varint_put(hdr + h, size);
				buf_append(&run, hdr, h);
				buf_reserve(&run, size);
				run.len += record_encode_packed_row(&lean, (uint8_t *) run.data + run.len);
				last = pos;
				n++;
				run_rows++;
			} else {
				reserve_row(wb, idb, &pos, &full, &lean, s == 0);
			}
			rows++;
		}
		if (n > 0)
			run_flush(wb, &last, &n, &run);
	}
	/* most rows went in runs, and batches were cut inside transactions */
	assert_true(run_rows > rows / 2);
	assert_int_equal(clog_writer_flush(wa, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_writer_flush(wb, err, sizeof(err)), CLOG_OK);

	clog_writer_close(wa);
	clog_writer_close(wb);

	/* an empty batch has no run to continue */
	char *dc = test_make_tmpdir("clog-run");
	clog_writer_t *wc;
	assert_int_equal(clog_writer_open(dc, &opts, &wc, err, sizeof(err)), CLOG_OK);
	uint32_t idc;
	assert_int_equal(clog_writer_shape(wc, (const uint8_t *) shp.data, shp.len, &idc, err,
					   sizeof(err)), CLOG_OK);
	position_t p1, p2;
	position_mysql(&p1, 1, 1000, POSITION_PHASE_STREAM, 0);
	position_mysql(&p2, 1, 1000, POSITION_PHASE_STREAM, 1);
	static const uint8_t entry[] = {0x1a, 0x03, 0xb2, 0x01, 0x00};  /* an empty after image */
	assert_int_equal(clog_writer_run_room(wc, idc), 0);
	assert_int_equal(clog_writer_append_run(wc, &p2, 1, entry, sizeof(entry), err, sizeof(err)),
			 CLOG_ERROR);
	assert_non_null(strstr(err, "does not continue the pending batch"));
	/* nor may a run go back: its last position must follow the last appended */
	uint8_t *dst;
	assert_int_equal(clog_writer_reserve_packed(wc, &p2, idc, 3, &dst, err, sizeof(err)),
			 CLOG_OK);
	memcpy(dst, entry + 2, 3);
	assert_true(clog_writer_run_room(wc, idc) > 0);
	assert_int_equal(clog_writer_append_run(wc, &p1, 1, entry, sizeof(entry), err, sizeof(err)),
			 CLOG_ERROR);
	assert_int_equal(clog_writer_append_run(wc, &p2, 1, entry, sizeof(entry), err, sizeof(err)),
			 CLOG_ERROR);
	clog_writer_close(wc);
	test_remove_tree(dc);

	buf_t sa = BUF_INIT, sb = BUF_INIT;
	segment_bytes(da, &sa);
	segment_bytes(db, &sb);
	assert_true(sa.len > 64 * 1024);  /* more than one segment */
	assert_int_equal(sa.len, sb.len);
	assert_memory_equal(sa.data, sb.data, sa.len);
	buf_free(&sa);
	buf_free(&sb);
	buf_free(&shp);
	buf_free(&img);
	buf_free(&run);
	test_remove_tree(da);
	test_remove_tree(db);
}

/* ---- hand-made batches ---- */

static void
batch_put(buf_t *b, uint8_t tag, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t hdr[11];
	size_t h = 0;
	hdr[h++] = tag;
	h += record_varint_put(hdr + h, n);
	buf_append(b, hdr, h);
	uint8_t *p = xmalloc(n + 1);
	protobuf_c_message_pack(m, p);
	buf_append(b, p, n);
	free(p);
}

/* The packed shape (id 3) as a Batch entry. */
/* The shape entry expect_corrupt writes: 0 as written, 1 value_refs in field 2, 2 none in field 4. */
static int shape_form;

static void
batch_put_shape(buf_t *b)
{
	buf_t sh = BUF_INIT;
	shape_bytes(&sh, true);
	if (shape_form == 1)
		record_enc_shape_value_refs(&sh);
	uint8_t hdr[16];
	size_t h = 0;
	hdr[h++] = shape_form == 2 ? 0x22 : 0x12;
	h += record_varint_put(hdr + h, 2 + sh.len);
	hdr[h++] = 0x08;
	hdr[h++] = 3;
	buf_append(b, hdr, h);
	buf_append(b, sh.data, sh.len);
	buf_free(&sh);
}

typedef struct crafted {
	Steward__Change c;
	position_t pos;
	buf_t img;
	char ptext[64];
} crafted_t;

/* A good packed record: row seq of transaction 1, every field present. */
static void
crafted_init(crafted_t *k, int seq)
{
	Steward__Change c = STEWARD__CHANGE__INIT;
	k->c = c;
	position_mysql(&k->pos, 1, 5000, POSITION_PHASE_STREAM, (uint64_t) seq);
	snprintf(k->ptext, sizeof(k->ptext), "mysql-bin.000001:5000:%d", seq);
	k->c.has_op = true;
	k->c.op = STEWARD__OP__OP_INSERT;
	k->c.txid = "0-1-7";
	k->c.has_commit_ts_us = true;
	k->c.commit_ts_us = 1700000000123456;
	k->c.has_position = true;
	k->c.position.data = k->pos.bytes;
	k->c.position.len = k->pos.len;
	k->c.position_text = k->ptext;
	k->c.has_seq = true;
	k->c.seq = (uint32_t) seq;
	k->c.has_shape = true;
	k->c.shape = 3;
	row_values_t v;
	row_random(&v, seq);
	k->img = (buf_t) BUF_INIT;
	packed_image(&v, &k->img);
	k->c.has_after_packed = true;
	k->c.after_packed.data = (uint8_t *) k->img.data;
	k->c.after_packed.len = k->img.len;
}

/* Leave out what the previous record gives. */
static void
crafted_lean(crafted_t *k)
{
	k->c.txid = NULL;
	k->c.has_commit_ts_us = false;
	k->c.has_position = false;
	k->c.position.data = NULL;
	k->c.position.len = 0;
	k->c.position_text = NULL;
}

/* Read the log in dir to its end or first error; the records read in *n. */
static clog_status_t
read_all(const char *dir, uint64_t *n, char *err, size_t errlen)
{
	clog_reader_t *r;
	const Steward__Change *c;
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, errlen), CLOG_OK);
	clog_status_t rc;
	*n = 0;
	while ((rc = clog_reader_next(r, &c, err, errlen)) == CLOG_OK)
		(*n)++;
	clog_reader_close(r);
	return rc;
}

/* Write k[0..n) (tags given) after the shape and expect corruption saying want. */
static void
expect_corrupt(const char *dir, crafted_t *k, const uint8_t *tags, int n, const char *want)
{
	buf_t b = BUF_INIT;
	batch_put_shape(&b);
	position_t last = k[n - 1].pos;
	for (int i = 0; i < n; i++)
		batch_put(&b, tags[i], &k[i].c.base);
	char *path = write_frame(dir, &b, (uint32_t) n, &k[0].pos, &last);
	char err[512] = "";
	uint64_t got;
	clog_status_t rc = read_all(dir, &got, err, sizeof(err));
	if (rc != CLOG_CORRUPT)
		fail_msg("read %d, %llu records, wanted corruption saying \"%s\"", rc,
			 (unsigned long long) got, want);
	if (strstr(err, path) == NULL || strstr(err, "offset 0") == NULL || strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not name the file, offset 0 and \"%s\"", err, want);
	/* the deep scan rejects the frame too (the only one: as a torn tail) */
	clog_scan_t s;
	assert_int_equal(clog_scan(dir, true, &s, err, sizeof(err)), CLOG_OK);
	assert_true(s.torn_tail);
	free(path);
	buf_free(&b);
}

static void
left_out_fields_come_from_the_previous_record_of_the_batch(void **state)
{
	char *dir = test_make_tmpdir("clog-packed");
	crafted_t k[3];
	for (int i = 0; i < 3; i++)
		crafted_init(&k[i], i);
	crafted_lean(&k[1]);
	crafted_lean(&k[2]);
	k[2].c.has_commit_ts_us = true;  /* its own commit time wins */
	k[2].c.commit_ts_us = 5;
	k[1].c.op = STEWARD__OP__OP_UPDATE;
	/* and op, shape and seq derived: k[1]'s op and shape, its seq + 1 */
	k[2].c.has_op = false;
	k[2].c.has_shape = false;
	k[2].c.has_seq = false;
	buf_t b = BUF_INIT;
	batch_put_shape(&b);
	for (int i = 0; i < 3; i++)
		batch_put(&b, 0x1a, &k[i].c.base);
	free(write_frame(dir, &b, 3, &k[0].pos, &k[2].pos));
	char err[512];
	clog_reader_t *r;
	const Steward__Change *c;
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, sizeof(err)), CLOG_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_OK);
		assert_string_equal(c->txid, "0-1-7");
		assert_true(c->has_commit_ts_us);
		assert_int_equal(c->commit_ts_us, i == 2 ? 5 : 1700000000123456);
		assert_true(c->has_op);
		assert_int_equal(c->op, i == 0 ? STEWARD__OP__OP_INSERT : STEWARD__OP__OP_UPDATE);
		assert_true(c->has_seq);
		assert_int_equal(c->seq, i);
		assert_true(c->has_position);
		assert_int_equal(c->position.len, 25);
		assert_memory_equal(c->position.data, k[i].pos.bytes, 25);
		assert_string_equal(c->position_text, k[i].ptext);
		assert_string_equal(c->schema, "shop");
		assert_int_equal(c->n_after, NCOLS);
		assert_string_equal(c->after[0]->name, "id");
		assert_false(c->has_after_packed);
	}
	assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_END);
	clog_reader_close(r);
	buf_free(&b);

	/* a record without txid passes none on */
	buf_free(&k[0].img);
	buf_free(&k[1].img);
	crafted_init(&k[0], 0);
	crafted_init(&k[1], 1);
	k[0].c.txid = NULL;
	k[0].c.has_commit_ts_us = false;
	crafted_lean(&k[1]);
	b = (buf_t) BUF_INIT;
	batch_put_shape(&b);
	batch_put(&b, 0x1a, &k[0].c.base);
	batch_put(&b, 0x1a, &k[1].c.base);
	free(write_frame(dir, &b, 2, &k[0].pos, &k[1].pos));
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, sizeof(err)), CLOG_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_OK);
		assert_null(c->txid);
		assert_false(c->has_commit_ts_us);
		assert_memory_equal(c->position.data, k[i].pos.bytes, 25);
	}
	clog_reader_close(r);
	buf_free(&b);

	/* a record with its own position is a transaction's first: no txid is no txid */
	buf_free(&k[0].img);
	buf_free(&k[1].img);
	crafted_init(&k[0], 0);
	crafted_init(&k[1], 1);
	k[1].c.txid = NULL;
	k[1].c.has_commit_ts_us = false;
	b = (buf_t) BUF_INIT;
	batch_put_shape(&b);
	batch_put(&b, 0x1a, &k[0].c.base);
	batch_put(&b, 0x1a, &k[1].c.base);
	free(write_frame(dir, &b, 2, &k[0].pos, &k[1].pos));
	assert_int_equal(clog_reader_open(dir, NULL, &r, err, sizeof(err)), CLOG_OK);
	assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_OK);
	assert_string_equal(c->txid, "0-1-7");
	assert_int_equal(clog_reader_next(r, &c, err, sizeof(err)), CLOG_OK);
	assert_null(c->txid);
	assert_false(c->has_commit_ts_us);
	clog_reader_close(r);
	buf_free(&b);
	for (int i = 0; i < 3; i++)
		buf_free(&k[i].img);
	test_remove_tree(dir);
}

static void
malformed_packed_records_are_corruption(void **state)
{
	char *dir = test_make_tmpdir("clog-packed");
	crafted_t k[2];
	const uint8_t packed[2] = {0x1a, 0x1a}, text_then_packed[2] = {0x0a, 0x1a};
#define RESET()                                  \
	do {                                     \
		for (int i_ = 0; i_ < 2; i_++) { \
			buf_free(&k[i_].img);    \
			crafted_init(&k[i_], i_); \
		}                                \
	} while (0)
	for (int i = 0; i < 2; i++)
		crafted_init(&k[i], i);

	/* the first record of a batch leaves out its position */
	crafted_lean(&k[0]);
	{
		buf_t b = BUF_INIT;
		batch_put_shape(&b);
		batch_put(&b, 0x1a, &k[0].c.base);
		char *path = write_frame(dir, &b, 1, &k[0].pos, &k[0].pos);
		char err[512];
		uint64_t n;
		assert_int_equal(read_all(dir, &n, err, sizeof(err)), CLOG_CORRUPT);
		assert_non_null(strstr(err, "packed record 0 leaves out its position, which no "
					    "previous record of the batch gives"));
		assert_non_null(strstr(err, path));
		free(path);
		buf_free(&b);
	}
	RESET();

	/* a record with its own position carries its op (nothing to derive it from) */
	k[0].c.has_op = false;
	expect_corrupt(dir, k, packed, 1, "has no op");
	RESET();

	/* a shape with value references outside Batch field 4, or one without them in it */
	shape_form = 1;
	expect_corrupt(dir, k, packed, 1, "has value_refs in Batch field 2");
	RESET();
	shape_form = 2;
	expect_corrupt(dir, k, packed, 1, "lacks value_refs in Batch field 4");
	shape_form = 0;
	RESET();

	/* a second record that leaves out its position and seq after one with no seq */
	k[0].c.has_seq = false;
	crafted_lean(&k[1]);
	k[1].c.has_seq = false;
	expect_corrupt(dir, k, packed, 2, "has no seq");
	RESET();

	/* ... or whose seq does not follow */
	crafted_lean(&k[1]);
	k[1].c.seq = 0;
	position_mysql(&k[1].pos, 1, 5000, POSITION_PHASE_STREAM, 0);
	expect_corrupt(dir, k, packed, 2, "out-of-order position");
	RESET();

	/* ... whose derived position is not the header's last */
	crafted_lean(&k[1]);
	position_mysql(&k[1].pos, 1, 5000, POSITION_PHASE_STREAM, 7);  /* the header's last */
	expect_corrupt(dir, k, packed, 2, "last record's position differs");
	RESET();

	/* ... after a position that is not MySQL's */
	position_pg(&k[0].pos, 0, POSITION_PHASE_STREAM, 0);  /* sorts first */
	k[0].c.position.data = k[0].pos.bytes;
	k[0].c.position.len = k[0].pos.len;
	crafted_lean(&k[1]);
	expect_corrupt(dir, k, packed, 2, "not a MySQL position");
	RESET();

	/* a packed record that is not shaped */
	k[0].c.has_shape = false;
	expect_corrupt(dir, k, packed, 1, "is not shaped");
	RESET();

	/* with Values as well */
	Steward__Value v = STEWARD__VALUE__INIT, *vp[NCOLS];
	v.text = "1";
	for (int i = 0; i < NCOLS; i++)
		vp[i] = &v;
	k[0].c.n_after = NCOLS;
	k[0].c.after = vp;
	expect_corrupt(dir, k, packed, 1, "also has before/after values");
	RESET();

	/* with no image */
	k[0].c.has_after_packed = false;
	expect_corrupt(dir, k, packed, 1, "has no packed image");
	RESET();

	/* a text record (tag 0x0a) with a packed image */
	expect_corrupt(dir, k, text_then_packed, 2, "packed images outside a packed entry");
	RESET();

	/* malformed images: cut short at every byte, or with a byte too many */
	buf_t good = BUF_INIT;
	buf_append(&good, k[0].img.data, k[0].img.len);
	for (size_t len = 0; len < good.len; len++) {
		k[0].c.after_packed.len = len;
		expect_corrupt(dir, k, packed, 1, "packed record 0, after image");
	}
	buf_append_char(&k[0].img, 0);
	k[0].c.after_packed.data = (uint8_t *) k[0].img.data;
	k[0].c.after_packed.len = k[0].img.len;
	expect_corrupt(dir, k, packed, 1, "1 bytes after its 11 values");
	RESET();

	/* a bad before image is named as such */
	k[1].c.has_before_packed = true;
	k[1].c.before_packed.data = (uint8_t *) "\xff\xff";
	k[1].c.before_packed.len = 2;
	expect_corrupt(dir, k, packed, 2, "packed record 1, before image: packed image marks NULL");
	RESET();
	buf_free(&good);

	/* random damage to a good batch's records: corruption or a record, never a crash */
	for (int iter = 0; iter < 3000; iter++) {
		buf_t b = BUF_INIT;
		batch_put_shape(&b);
		size_t start = b.len;
		batch_put(&b, 0x1a, &k[0].c.base);
		crafted_lean(&k[1]);
		batch_put(&b, 0x1a, &k[1].c.base);
		for (int d = 0, nd = 1 + (int) rnd_below(3); d < nd; d++)
			b.data[start + rnd_below(b.len - start)] = (char) rnd();
		free(write_frame(dir, &b, 2, &k[0].pos, &k[1].pos));
		char err[512];
		uint64_t n;
		clog_status_t rc = read_all(dir, &n, err, sizeof(err));
		assert_true(rc == CLOG_END || rc == CLOG_CORRUPT);
		buf_free(&b);
		RESET();
	}
	for (int i = 0; i < 2; i++)
		buf_free(&k[i].img);
#undef RESET
	test_remove_tree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(packed_log_reads_as_the_text_log_of_the_same_rows),
		cmocka_unit_test(left_out_fields_come_from_the_previous_record_of_the_batch),
		cmocka_unit_test(malformed_packed_records_are_corruption),
		cmocka_unit_test(runs_write_what_reserves_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
