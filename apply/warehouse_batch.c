/*
 * warehouse_batch.c — collapse, stage, merge and commit a batch of changes
 * into warehouse tables; see warehouse_batch.h.
 */
#include "warehouse_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "buf.h"
#include "log.h"
#include "warehouse_merge.h"
#include "warehouse_types.h"
#include "xalloc.h"

/* What is pending for one table. */
typedef struct tpend {
	wh_table_t *table;
	wh_mrow_t **rows;            /* one per distinct key */
	size_t nrows, caprows;
	uint32_t *slots;          /* open addressing: row index + 1, 0 = empty */
	size_t nslots;
	buf_t history;            /* COPY data (text or binary) of history rows */
	size_t nhistory;
	size_t hist_ncols;        /* history data columns the buffered rows have */
	bool hist_ptext;          /* ... and the position text shape (history_ptext) */
	bool hist_bin;            /* ... and are COPY BINARY (else text) */
	wh_bin_t *enc;            /* binary encoder of each history column ... */
	size_t enc_n;             /* ... decided for this many columns */
	unsigned enc_shape;       /* ... and this history_shape */
	bool enc_decided;
	bool enc_ok;              /* every history column has an encoder */
	bool bin_off;             /* a value of this batch the encoders do not take */
	buf_t keys;               /* SCD2: COPY text of the keys touched */
} tpend_t;

struct wh_batch {
	wh_batch_options_t opts;
	wh_schema_t *schema;
	arena_t *arena;
	tpend_t **pend;
	size_t npend;
	size_t count;
	bool in_txn;
	wh_merge_scratch_t scratch;
	buf_t json;
	size_t *idx_after, *idx_before;    /* mirror columns of the images */
	size_t *hidx_after, *hidx_before;  /* history columns of the images */
	size_t idx_cap;
	tpend_t *copying;                  /* table whose history COPY is open on the connection */
	const char **hval;                 /* one history row's typed cells */
	size_t *hlen;
	size_t hcap;
	bool text_copy;                    /* STEWARD_WAREHOUSE_TEXT_COPY: never binary */
};

static wh_status_t before_schema_sql(void *arg, PGconn *conn, char *err, size_t errlen);

wh_batch_t *
wh_batch_create(const wh_batch_options_t *opts, wh_schema_t *schema)
{
	wh_batch_t *b = xcalloc(1, sizeof(*b));
	b->opts = *opts;
	b->schema = schema;
	b->arena = arena_create(1 << 20);
	wh_schema_set_sql_hook(schema, before_schema_sql, b);
	/* Tests load the same rows both ways and compare the tables. */
	const char *tc = getenv("STEWARD_WAREHOUSE_TEXT_COPY");
	b->text_copy = tc && *tc && strcmp(tc, "0") != 0;
	return b;
}

static void
tpend_reset(tpend_t *p)
{
	p->nrows = 0;
	if (p->slots)
		memset(p->slots, 0, p->nslots * sizeof(*p->slots));
	buf_reset(&p->history);
	buf_reset(&p->keys);
	p->nhistory = 0;
}

static void
pend_free_all(wh_batch_t *b)
{
	for (size_t i = 0; i < b->npend; i++) {
		tpend_t *p = b->pend[i];
		free(p->rows);
		free(p->slots);
		buf_free(&p->history);
		buf_free(&p->keys);
		free(p->enc);
		free(p);
	}
	free(b->pend);
	b->pend = NULL;
	b->npend = 0;
}

void
wh_batch_free(wh_batch_t *b)
{
	if (!b)
		return;
	wh_schema_set_sql_hook(b->schema, NULL, NULL);
	pend_free_all(b);
	arena_destroy(b->arena);
	buf_free(&b->json);
	buf_free(&b->scratch.copy);
	buf_free(&b->scratch.sql);
	free(b->idx_after);
	free(b->idx_before);
	free(b->hidx_after);
	free(b->hidx_before);
	free(b->hval);
	free(b->hlen);
	free(b);
}

size_t
wh_batch_count(const wh_batch_t *b)
{
	return b->count;
}

static tpend_t *
pend_for(wh_batch_t *b, wh_table_t *t)
{
	for (size_t i = b->npend; i-- > 0;)
		if (b->pend[i]->table == t)
			return b->pend[i];
	tpend_t *p = xcalloc(1, sizeof(*p));
	p->table = t;
	b->pend = xrealloc(b->pend, (b->npend + 1) * sizeof(*b->pend));
	b->pend[b->npend++] = p;
	return p;
}

/* ---- encoding helpers ---- */

/* A COPY field holding bytea hex of raw bytes: "\\x…" (backslash escaped). */
static void
append_copy_bytea(buf_t *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	buf_reserve(out, 3 + 2 * n);
	char *w = out->data + out->len;
	memcpy(w, "\\\\x", 3);
	w += 3;
	for (size_t i = 0; i < n; i++) {
		*w++ = digits[p[i] >> 4];
		*w++ = digits[p[i] & 15];
	}
	out->len = (size_t) (w - out->data);
	out->data[out->len] = '\0';
}

static void
append_copy_text(buf_t *out, const char *s)
{
	if (!s)
		wh_put(out, "\\N", 2);
	else
		wh_copy_escape(out, s, strlen(s));
}

/* JSON object of an image: {"col": "text" | null}; unchanged columns left out. */
static void
image_json(buf_t *j, const wh_value_t *v, size_t n)
{
	buf_reset(j);
	buf_append_char(j, '{');
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		if (v[i].unchanged)
			continue;
		if (!first)
			buf_append_char(j, ',');
		first = false;
		wh_json_string(j, v[i].name, strlen(v[i].name));
		buf_append_char(j, ':');
		if (v[i].text)
			wh_json_string(j, v[i].text, v[i].len);
		else
			buf_append(j, "null", 4);
	}
	buf_append_char(j, '}');
}

static const wh_value_t *
image_find(const wh_value_t *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

/*
 * JSON array of the key values from image v into j.  False when the image
 * lacks a key column (or there is no key).
 */
static bool
key_json(buf_t *j, const wh_change_t *c, const wh_value_t *v, size_t n)
{
	buf_reset(j);
	if (c->nkey == 0)
		return false;
	buf_append_char(j, '[');
	for (size_t k = 0; k < c->nkey; k++) {
		const wh_value_t *kv = image_find(v, n, c->key[k]);
		if (!kv || kv->unchanged)
			return false;
		if (k)
			buf_append_char(j, ',');
		if (kv->text)
			wh_json_string(j, kv->text, kv->len);
		else
			buf_append(j, "null", 4);
	}
	buf_append_char(j, ']');
	return true;
}

/* ---- mirror collapse ---- */

static uint32_t
hash_bytes(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char) s[i]) * 16777619u;
	return h;
}

static void
slots_grow(tpend_t *p)
{
	size_t n = p->nslots ? p->nslots * 2 : 1024;
	free(p->slots);
	p->slots = xcalloc(n, sizeof(*p->slots));
	p->nslots = n;
	for (size_t r = 0; r < p->nrows; r++) {
		size_t s = p->rows[r]->hash & (n - 1);
		while (p->slots[s])
			s = (s + 1) & (n - 1);
		p->slots[s] = (uint32_t) (r + 1);
	}
}

/* Put row as the latest state of its key, inheriting unchanged columns. */
static void
mirror_put(tpend_t *p, wh_mrow_t *row)
{
	if ((p->nrows + 1) * 2 > p->nslots)
		slots_grow(p);
	size_t mask = p->nslots - 1, s = row->hash & mask;
	for (; p->slots[s]; s = (s + 1) & mask) {
		wh_mrow_t *old = p->rows[p->slots[s] - 1];
		if (old->hash != row->hash || old->keylen != row->keylen ||
		    memcmp(old->key, row->key, row->keylen) != 0)
			continue;
		if (row->deleted && !old->deleted) {
			/* A soft-deleted row keeps the last values this batch knew. */
			for (size_t i = 0; i < old->ncols; i++) {
				if (row->state[i] == WH_CELL_ABSENT && old->state[i] != WH_CELL_UNCHANGED) {
					row->state[i] = old->state[i];
					row->val[i] = old->val[i];
					row->len[i] = old->len[i];
				}
			}
		}
		if (row->partial && !row->deleted && !old->deleted) {
			row->partial = false;
			for (size_t i = 0; i < row->ncols; i++) {
				if (row->state[i] != WH_CELL_UNCHANGED)
					continue;
				if (i < old->ncols && (old->state[i] == WH_CELL_VALUE ||
						       old->state[i] == WH_CELL_NULL)) {
					row->state[i] = old->state[i];
					row->val[i] = old->val[i];
					row->len[i] = old->len[i];
				} else {
					row->partial = true;
				}
			}
		}
		row->fresh = old->fresh;  /* created in this batch, whatever followed */
		p->rows[p->slots[s] - 1] = row;
		return;
	}
	if (p->nrows == p->caprows) {
		p->caprows = p->caprows ? p->caprows * 2 : 256;
		p->rows = xrealloc(p->rows, p->caprows * sizeof(*p->rows));
	}
	p->rows[p->nrows++] = row;
	p->slots[s] = (uint32_t) p->nrows;
}

static wh_mrow_t *
mrow_new(wh_batch_t *b, const wh_table_t *t, const buf_t *key, bool deleted,
	 const wh_value_t *v, const size_t *idx, size_t n, const wh_change_t *c)
{
	wh_mrow_t *r = arena_calloc(b->arena, sizeof(*r));
	r->key = arena_memdup(b->arena, key->data, key->len);
	r->keylen = key->len;
	r->hash = hash_bytes(key->data, key->len);
	r->deleted = deleted;
	/* A key first seen in this batch as an insert or snapshot read is new
	 * to the warehouse too, unless the two disagree (mirror direct path). */
	r->fresh = !deleted && c->nbefore == 0 && c->op_name &&
		   (strcmp(c->op_name, "insert") == 0 || strcmp(c->op_name, "snapshot") == 0);
	r->ncols = t->ncols;
	r->val = arena_calloc(b->arena, t->ncols * sizeof(*r->val));
	r->len = arena_calloc(b->arena, t->ncols * sizeof(*r->len));
	r->state = arena_calloc(b->arena, t->ncols);
	for (size_t i = 0; i < n; i++) {
		size_t j = idx[i];
		if (j >= t->ncols)
			continue;
		if (v[i].unchanged) {
			r->state[j] = WH_CELL_UNCHANGED;
			r->partial = true;
		} else if (!v[i].text) {
			r->state[j] = WH_CELL_NULL;
		} else {
			r->state[j] = WH_CELL_VALUE;
			r->val[j] = arena_memdup(b->arena, v[i].text, v[i].len);
			r->len[j] = v[i].len;
		}
	}
	r->position_text = arena_strdup(b->arena, c->position_text ? c->position_text : "");
	r->commit_ts_us = c->commit_ts_us;
	return r;
}

/* ---- history ---- */

/* COPY text of timestamptz us, or NULL when unknown (0). */
static void
append_copy_ts(buf_t *out, int64_t us)
{
	if (us)
		wh_append_ts(out, us);
	else
		wh_put(out, "\\N", 2);
}

/* The names of unchanged columns as a text[] literal into j ("" if none). */
static void
unchanged_array(buf_t *j, const wh_value_t *v, size_t n)
{
	buf_reset(j);
	for (size_t i = 0; i < n; i++) {
		if (!v[i].unchanged)
			continue;
		buf_append_char(j, j->len ? ',' : '{');
		buf_append_char(j, '"');
		for (const char *s = v[i].name; *s; s++) {
			if (*s == '"' || *s == '\\')
				buf_append_char(j, '\\');
			buf_append_char(j, *s);
		}
		buf_append_char(j, '"');
	}
	if (j->len)
		buf_append_char(j, '}');
}

/*
 * One typed history row: the _steward_ metadata, then the row as the
 * change leaves it (insert, update, snapshot) or as it was (delete: the
 * before image, or just the key), typed like the mirror.  An update's old
 * image goes into _steward_before as JSON; its unchanged TOAST columns are
 * NULL and listed in _steward_unchanged.  hidx maps the image's values to
 * history columns (SIZE_MAX: none).
 */
static void history_row_text(wh_batch_t *b, tpend_t *p, const wh_change_t *c,
			     const wh_value_t *img, size_t nimg);
static bool history_row_bin(wh_batch_t *b, tpend_t *p, const wh_change_t *c,
			    const wh_value_t *img, size_t nimg);

/*
 * Whether p's next history rows are written as COPY BINARY: when every
 * history column has an encoder (decided again whenever the table's
 * history columns change), unless a value of this batch was not in a form
 * the encoders take.
 */
static bool
history_binary(wh_batch_t *b, tpend_t *p)
{
	const wh_table_t *t = p->table;
	if (!p->enc_decided || p->enc_shape != t->history_shape || p->enc_n != t->nhcols) {
		p->enc = xrealloc(p->enc, (t->nhcols ? t->nhcols : 1) * sizeof(*p->enc));
		p->enc_ok = true;
		for (size_t j = 0; j < t->nhcols; j++)
			if ((p->enc[j] = wh_bin_for_type(t->hcols[j].type)) == WH_BIN_NONE)
				p->enc_ok = false;
		p->enc_n = t->nhcols;
		p->enc_shape = t->history_shape;
		p->enc_decided = true;
		log_debug("warehouse", "history rows of %s: COPY %s", t->history_qname,
			  p->enc_ok && !b->text_copy ? "binary" : "text");
	}
	return p->enc_ok && !p->bin_off && !b->text_copy;
}

/*
 * Returns false (nothing written) only when bin and a value has no binary
 * form (history_row_bin): the caller flushes the binary rows and calls
 * again with bin false.
 */
static bool
history_row(wh_batch_t *b, tpend_t *p, const wh_change_t *c, const size_t *hidx, bool bin)
{
	const wh_table_t *t = p->table;
	if (p->nhistory == 0) {
		p->hist_ncols = t->nhcols;
		p->hist_ptext = t->history_ptext;
		p->hist_bin = bin;
	}
	size_t ncols = p->hist_ncols;
	if (ncols > b->hcap) {
		b->hcap = ncols * 2;
		b->hval = xrealloc(b->hval, b->hcap * sizeof(*b->hval));
		b->hlen = xrealloc(b->hlen, b->hcap * sizeof(*b->hlen));
	}
	for (size_t j = 0; j < ncols; j++)
		b->hval[j] = NULL;
	const wh_value_t *img = NULL;
	size_t nimg = 0;
	if (c->op == WH_OP_DELETE) {
		img = c->before;
		nimg = c->nbefore;
	} else if (c->op == WH_OP_UPSERT) {
		img = c->after;
		nimg = c->nafter;
	}
	for (size_t i = 0; i < nimg; i++) {
		size_t j = hidx[i];
		if (j < ncols && !img[i].unchanged && img[i].text) {
			b->hval[j] = img[i].text;
			b->hlen[j] = img[i].len;
		}
	}
	if (bin) {
		if (!history_row_bin(b, p, c, img, nimg))
			return false;
	} else {
		history_row_text(b, p, c, img, nimg);
	}
	p->nhistory++;
	if (b->opts.scd2 && c->op != WH_OP_TRUNCATE && t->nhkey > 0) {
		bool whole = true;
		for (size_t k = 0; k < t->nhkey && whole; k++)
			whole = t->hkey[k] < ncols && b->hval[t->hkey[k]];
		for (size_t k = 0; k < t->nhkey && whole; k++) {
			if (k)
				wh_put_char(&p->keys, '\t');
			wh_copy_escape(&p->keys, b->hval[t->hkey[k]], b->hlen[t->hkey[k]]);
		}
		if (whole)
			wh_put_char(&p->keys, '\n');
	}
	return true;
}

/* The row of history_row's cells (b->hval) as COPY text. */
static void
history_row_text(wh_batch_t *b, tpend_t *p, const wh_change_t *c, const wh_value_t *img,
		 size_t nimg)
{
	buf_t *h = &p->history;
	size_t ncols = p->hist_ncols;
	append_copy_text(h, c->op_name);
	wh_put_char(h, '\t');
	append_copy_text(h, c->source);
	wh_put_char(h, '\t');
	const char *ptext = c->position_text ? c->position_text : "";
	if (p->hist_ptext) {
		/* a table of the earlier shape: the server makes the correlation id */
		append_copy_text(h, ptext);
		wh_put_char(h, '\t');
	}
	append_copy_bytea(h, c->position, c->position_len);
	wh_put_char(h, '\t');
	append_copy_ts(h, c->commit_ts_us);
	wh_put_char(h, '\t');
	append_copy_text(h, c->txid && *c->txid ? c->txid : NULL);
	wh_put_char(h, '\t');
	if (!p->hist_ptext) {
		/* the correlation id, source:position text as on every log line:
		 * the same change gives the same id on every replay */
		append_copy_text(h, c->source ? c->source : "");
		wh_put_char(h, ':');
		append_copy_text(h, ptext);
		wh_put_char(h, '\t');
	}
	if (c->op == WH_OP_UPSERT && c->nbefore > 0) {
		image_json(&b->json, c->before, c->nbefore);
		wh_copy_escape(h, b->json.data, b->json.len);
	} else {
		wh_put(h, "\\N", 2);
	}
	wh_put_char(h, '\t');
	unchanged_array(&b->json, img, c->op == WH_OP_UPSERT ? nimg : 0);
	if (b->json.len)
		wh_copy_escape(h, b->json.data, b->json.len);
	else
		wh_put(h, "\\N", 2);
	if (b->opts.scd2) {
		/* valid_from, valid_to: a truncate row is closed at once; the rest
		 * are closed by the next version of their key (see flush). */
		wh_put_char(h, '\t');
		append_copy_ts(h, c->commit_ts_us);
		wh_put_char(h, '\t');
		if (c->op == WH_OP_TRUNCATE)
			append_copy_ts(h, c->commit_ts_us);
		else
			wh_put(h, "\\N", 2);
	}
	for (size_t j = 0; j < ncols; j++) {
		wh_put_char(h, '\t');
		if (b->hval[j])
			wh_copy_escape(h, b->hval[j], b->hlen[j]);
		else
			wh_put(h, "\\N", 2);
	}
	wh_put_char(h, '\n');
}

/*
 * The same row as COPY BINARY: the metadata from its native values (no
 * timestamp or bytea text for the server to parse), the data columns
 * through the table's encoders.  False, with nothing written, when a value
 * is not in a form its encoder takes (wh_bin_field): the caller writes
 * the row as text instead.  A stream that starts here opens with the
 * binary header.
 */
static bool
history_row_bin(wh_batch_t *b, tpend_t *p, const wh_change_t *c, const wh_value_t *img,
		size_t nimg)
{
	buf_t *h = &p->history;
	size_t ncols = p->hist_ncols, mark = h->len;
	if (h->len == 0 && b->copying != p)
		wh_bin_header(h);
	wh_bin_i16(h, (int) (8 + (b->opts.scd2 ? 2 : 0) + ncols));
	wh_bin_bytes(h, c->op_name, c->op_name ? strlen(c->op_name) : 0);
	wh_bin_bytes(h, c->source, c->source ? strlen(c->source) : 0);
	const char *ptext = c->position_text ? c->position_text : "";
	size_t plen = strlen(ptext);
	if (p->hist_ptext)
		wh_bin_bytes(h, ptext, plen);
	wh_bin_bytes(h, c->position ? (const char *) c->position : "", c->position_len);
	if (c->commit_ts_us)
		wh_bin_ts(h, c->commit_ts_us);
	else
		wh_bin_i32(h, -1);
	wh_bin_bytes(h, c->txid && *c->txid ? c->txid : NULL, c->txid ? strlen(c->txid) : 0);
	if (!p->hist_ptext) {
		const char *src = c->source ? c->source : "";
		size_t slen = strlen(src);
		wh_bin_i32(h, (int32_t) (slen + 1 + plen));
		wh_put(h, src, slen);
		wh_put_char(h, ':');
		wh_put(h, ptext, plen);
	}
	if (c->op == WH_OP_UPSERT && c->nbefore > 0) {
		image_json(&b->json, c->before, c->nbefore);
		wh_bin_bytes(h, b->json.data, b->json.len);
	} else {
		wh_bin_i32(h, -1);
	}
	/* _steward_unchanged text[]: one dimension, no NULLs, elements of type text */
	size_t nunch = 0;
	for (size_t i = 0; c->op == WH_OP_UPSERT && i < nimg; i++)
		nunch += img[i].unchanged;
	if (nunch) {
		size_t at = h->len;
		wh_bin_i32(h, 0);  /* length, set below */
		wh_bin_i32(h, 1);
		wh_bin_i32(h, 0);
		wh_bin_i32(h, 25);  /* TEXTOID */
		wh_bin_i32(h, (int32_t) nunch);
		wh_bin_i32(h, 1);
		for (size_t i = 0; i < nimg; i++)
			if (img[i].unchanged)
				wh_bin_bytes(h, img[i].name, strlen(img[i].name));
		uint32_t n = (uint32_t) (h->len - at - 4);
		unsigned char *w = (unsigned char *) h->data + at;
		w[0] = (unsigned char) (n >> 24), w[1] = (unsigned char) (n >> 16);
		w[2] = (unsigned char) (n >> 8), w[3] = (unsigned char) n;
	} else {
		wh_bin_i32(h, -1);
	}
	if (b->opts.scd2) {
		/* valid_from, valid_to as in history_row_text */
		if (c->commit_ts_us)
			wh_bin_ts(h, c->commit_ts_us);
		else
			wh_bin_i32(h, -1);
		if (c->op == WH_OP_TRUNCATE && c->commit_ts_us)
			wh_bin_ts(h, c->commit_ts_us);
		else
			wh_bin_i32(h, -1);
	}
	for (size_t j = 0; j < ncols; j++) {
		if (!b->hval[j]) {
			wh_bin_i32(h, -1);
		} else if (!wh_bin_field(p->enc[j], b->hval[j], b->hlen[j], h)) {
			h->len = mark;
			if (h->data)
				h->data[mark] = '\0';
			return false;
		}
	}
	return true;
}

/* ---- SQL plumbing ---- */

static wh_status_t
ensure_txn(wh_batch_t *b, PGconn *conn, char *err, size_t errlen)
{
	if (b->in_txn)
		return WH_OK;
	wh_status_t st = wh_exec(conn, "BEGIN", "could not begin a warehouse transaction", err,
				 errlen);
	if (st == WH_OK)
		b->in_txn = true;
	return st;
}

/* The COPY statement of p's history rows (with the columns they have). */
static void
history_copy_sql(wh_batch_t *b, const tpend_t *p, buf_t *sql)
{
	const wh_table_t *t = p->table;
	buf_reset(sql);
	buf_printf(sql, "COPY %s (_steward_op, _steward_source, %s, _steward_before,"
			" _steward_unchanged%s",
		   t->history_qname,
		   p->hist_ptext ? "_steward_position_text, _steward_position, _steward_commit_ts,"
				   " _steward_txid"
				 : "_steward_position, _steward_commit_ts, _steward_txid,"
				   " _steward_correlation_id",
		   b->opts.scd2 ? ", _steward_valid_from, _steward_valid_to" : "");
	for (size_t j = 0; j < p->hist_ncols; j++)
		buf_printf(sql, ", %s", t->hcols[j].ident);
	buf_append_str(sql, p->hist_bin ? ") FROM STDIN (FORMAT binary)" : ") FROM STDIN");
}

/*
 * History rows are streamed: once a table has HISTORY_STREAM_BYTES of
 * rows encoded, a COPY into its history table is opened and stays open
 * across wh_batch_add calls, so the server parses and stores rows while
 * the next ones are encoded instead of after the whole batch.  Anything
 * else that needs the connection (DDL, the catalog, another table, the
 * mirror, the commit) ends the COPY first: copy_end, also run by the
 * schema's hook.  Rows still commit with the batch's transaction.
 */
#define HISTORY_STREAM_BYTES (256 * 1024)

static wh_status_t
copy_send(PGconn *conn, const buf_t *data, char *err, size_t errlen)
{
	const size_t chunk = 1 << 20;
	for (size_t off = 0; off < data->len; off += chunk) {
		size_t n = data->len - off < chunk ? data->len - off : chunk;
		if (PQputCopyData(conn, data->data + off, (int) n) != 1)
			return wh_pg_error(conn, NULL, "could not copy into history table", err,
					   errlen);
	}
	return WH_OK;
}

/* End the open history COPY (if any) after sending its last rows. */
static wh_status_t
copy_end(wh_batch_t *b, PGconn *conn, char *err, size_t errlen)
{
	tpend_t *p = b->copying;
	if (!p)
		return WH_OK;
	b->copying = NULL;
	if (p->hist_bin)
		wh_bin_i16(&p->history, -1);  /* the binary trailer */
	wh_status_t st = copy_send(conn, &p->history, err, errlen);
	buf_reset(&p->history);
	if (PQputCopyEnd(conn, st == WH_OK ? NULL : "aborted") != 1 && st == WH_OK)
		st = wh_pg_error(conn, NULL, "could not copy into history table", err, errlen);
	PGresult *res;
	while ((res = PQgetResult(conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && st == WH_OK)
			st = wh_pg_error(conn, res, "could not copy into history table", err, errlen);
		PQclear(res);
	}
	return st;
}

/* Send p's encoded rows into the open COPY of its history table, opening it. */
static wh_status_t
history_stream(wh_batch_t *b, PGconn *conn, tpend_t *p, char *err, size_t errlen)
{
	wh_status_t st;
	if (b->copying != p) {
		if ((st = copy_end(b, conn, err, errlen)) != WH_OK)
			return st;
		history_copy_sql(b, p, &b->scratch.sql);
		PGresult *res = PQexec(conn, b->scratch.sql.data);
		if (PQresultStatus(res) != PGRES_COPY_IN) {
			st = wh_pg_error(conn, res, "could not copy into history table", err, errlen);
			PQclear(res);
			return st;
		}
		PQclear(res);
		b->copying = p;
		log_debug("warehouse", "streaming history rows into %s", p->table->history_qname);
	}
	st = copy_send(conn, &p->history, err, errlen);
	buf_reset(&p->history);
	return st;
}

static wh_status_t flush_history(wh_batch_t *b, PGconn *conn, tpend_t *p, char *err,
				 size_t errlen);

/*
 * The schema's hook: it is about to run a statement.  That may widen a
 * column, and binary rows are encoded for the column's type: send the
 * binary rows buffered so far while their types still hold.
 */
static wh_status_t
before_schema_sql(void *arg, PGconn *conn, char *err, size_t errlen)
{
	wh_batch_t *b = arg;
	wh_status_t st = copy_end(b, conn, err, errlen);
	for (size_t i = 0; i < b->npend && st == WH_OK; i++)
		if (b->pend[i]->nhistory > 0 && b->pend[i]->hist_bin)
			st = flush_history(b, conn, b->pend[i], err, errlen);
	return st;
}

static wh_status_t
flush_history(wh_batch_t *b, PGconn *conn, tpend_t *p, char *err, size_t errlen)
{
	wh_table_t *t = p->table;
	wh_status_t st = WH_OK;
	buf_t *sql = &b->scratch.sql;
	if (b->copying == p) {
		st = copy_end(b, conn, err, errlen);  /* sends the rest */
	} else {
		if ((st = copy_end(b, conn, err, errlen)) != WH_OK)
			return st;
		if (p->history.len > 0) {
			if (p->hist_bin)
				wh_bin_i16(&p->history, -1);  /* the binary trailer */
			history_copy_sql(b, p, sql);
			st = wh_copy_in(conn, sql->data, &p->history,
					"could not copy into history table", NULL, err, errlen);
		}
	}
	buf_reset(&p->history);
	p->nhistory = 0;
	if (st != WH_OK || !b->opts.scd2 || p->keys.len == 0 || t->nhkey == 0)
		return st;
	/* Close the versions this batch superseded: each open row of a touched
	 * key ends where the next one (by source position) begins; a delete
	 * ends its key's history.  Keys compare as the typed key columns. */
	buf_t cols = BUF_INIT, xcols = BUF_INIT;
	for (size_t k = 0; k < t->nhkey; k++) {
		const char *id = t->hcols[t->hkey[k]].ident;
		buf_printf(&cols, "%s%s", k ? ", " : "", id);
		buf_printf(&xcols, "%sx.%s", k ? ", " : "", id);
	}
	char keys[32];
	snprintf(keys, sizeof(keys), "_steward_keys_%u", ++b->scratch.stage_seq);
	buf_reset(sql);
	buf_printf(sql, "CREATE TEMP TABLE %s ON COMMIT DROP AS SELECT %s FROM %s WITH NO DATA",
		   keys, cols.data, t->history_qname);
	if ((st = wh_exec(conn, sql->data, "could not create key staging table", err, errlen)))
		goto out;
	buf_reset(sql);
	buf_printf(sql, "COPY %s FROM STDIN", keys);
	st = wh_copy_in(conn, sql->data, &p->keys, "could not copy keys", NULL, err, errlen);
	buf_reset(&p->keys);
	if (st)
		goto out;
	buf_reset(sql);
	buf_printf(sql,
		   "UPDATE %s h SET _steward_valid_to = n.next_from FROM ("
		   " SELECT x.ctid AS id, lead(x._steward_valid_from) OVER"
		   "   (PARTITION BY %s ORDER BY x._steward_position) AS next_from"
		   " FROM %s x WHERE x._steward_valid_to IS NULL"
		   "   AND (%s) IN (SELECT %s FROM %s)) n"
		   " WHERE h.ctid = n.id AND n.next_from IS NOT NULL;"
		   "UPDATE %s SET _steward_valid_to = _steward_valid_from"
		   " WHERE _steward_op = 'delete' AND _steward_valid_to IS NULL"
		   " AND (%s) IN (SELECT %s FROM %s)",
		   t->history_qname, xcols.data, t->history_qname, xcols.data, cols.data, keys,
		   t->history_qname, cols.data, cols.data, keys);
	st = wh_exec(conn, sql->data, "could not close history versions", err, errlen);
out:
	buf_free(&cols);
	buf_free(&xcols);
	return st;
}

static wh_status_t
flush_table(wh_batch_t *b, PGconn *conn, tpend_t *p, char *err, size_t errlen)
{
	wh_status_t st = WH_OK;
	if (p->nrows > 0 && (st = copy_end(b, conn, err, errlen)) != WH_OK)
		return st;
	if (p->nrows > 0 && (st = wh_mirror_flush(conn, p->table, p->rows, p->nrows,
						  b->opts.hard_delete, &b->scratch, err,
						  errlen)) != WH_OK)
		return st;
	if (p->nhistory > 0 && (st = flush_history(b, conn, p, err, errlen)) != WH_OK)
		return st;
	tpend_reset(p);
	return WH_OK;
}

/* ---- public ---- */

static wh_status_t
add_truncate(wh_batch_t *b, PGconn *conn, const wh_change_t *c, char *err, size_t errlen)
{
	wh_table_t *t = NULL;
	wh_status_t st = copy_end(b, conn, err, errlen);
	if (st != WH_OK)
		return st;
	st = wh_schema_lookup(conn, b->schema, c->target, &t, err, errlen);
	if (st != WH_OK || !t)
		return st;  /* never seen: nothing to truncate */
	tpend_t *p = pend_for(b, t);
	if ((st = flush_table(b, conn, p, err, errlen)) != WH_OK)
		return st;
	buf_t ts = BUF_INIT;
	if (c->commit_ts_us)
		wh_append_ts(&ts, c->commit_ts_us);
	const char *params[2] = {c->commit_ts_us ? ts.data : NULL,
				 c->position_text ? c->position_text : ""};
	buf_t *sql = &b->scratch.sql;
	buf_reset(sql);
	PGresult *res = NULL;
	if ((b->opts.modes & WH_MODE_MIRROR) && t->has_mirror) {
		/* DELETE rather than TRUNCATE: MVCC-safe for concurrent readers. */
		if (b->opts.hard_delete)
			buf_printf(sql, "DELETE FROM %s", t->mirror_qname);
		else
			buf_printf(sql, "UPDATE %s SET _steward_deleted = true,"
					" _steward_deleted_at = $1::timestamptz, _steward_position = $2,"
					" _steward_commit_ts = $1::timestamptz WHERE NOT _steward_deleted",
				   t->mirror_qname);
		res = PQexecParams(conn, sql->data, b->opts.hard_delete ? 0 : 2, NULL, params, NULL,
				   NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			st = wh_pg_error(conn, res, "could not truncate mirror table", err, errlen);
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	if ((b->opts.modes & WH_MODE_HISTORY) && t->has_history) {
		if ((st = wh_schema_history_check(b->schema, t, err, errlen)) != WH_OK)
			goto out;
		if (b->opts.scd2) {
			buf_reset(sql);
			buf_printf(sql, "UPDATE %s SET _steward_valid_to = $1::timestamptz"
					" WHERE _steward_valid_to IS NULL",
				   t->history_qname);
			res = PQexecParams(conn, sql->data, 1, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_COMMAND_OK) {
				st = wh_pg_error(conn, res, "could not close history versions", err,
						 errlen);
				goto out;
			}
		}
		if (!history_row(b, p, c, NULL, history_binary(b, p)))
			history_row(b, p, c, NULL, false);  /* no data values: not reached */
	}
out:
	PQclear(res);
	buf_free(&ts);
	return st;
}

wh_status_t
wh_batch_add(wh_batch_t *b, PGconn *conn, const wh_change_t *c, char *err, size_t errlen)
{
	wh_status_t st = ensure_txn(b, conn, err, errlen);
	if (st != WH_OK)
		return st;
	if (c->op == WH_OP_TRUNCATE) {
		st = add_truncate(b, conn, c, err, errlen);
		if (st == WH_OK)
			b->count++;
		return st;
	}
	size_t need = c->nafter > c->nbefore ? c->nafter : c->nbefore;
	if (need > b->idx_cap) {
		b->idx_cap = need * 2;
		b->idx_after = xrealloc(b->idx_after, b->idx_cap * sizeof(size_t));
		b->idx_before = xrealloc(b->idx_before, b->idx_cap * sizeof(size_t));
		b->hidx_after = xrealloc(b->hidx_after, b->idx_cap * sizeof(size_t));
		b->hidx_before = xrealloc(b->hidx_before, b->idx_cap * sizeof(size_t));
	}
	wh_table_t *t = NULL;
	wh_colmap_t mmap = {b->idx_after, b->idx_before};
	wh_colmap_t hmap = {b->hidx_after, b->hidx_before};
	st = wh_schema_prepare(conn, b->schema, c, &t, &mmap, &hmap, err, errlen);
	if (st != WH_OK)
		return st;
	tpend_t *p = pend_for(b, t);
	bool deleted = c->op == WH_OP_DELETE;
	if (b->opts.modes & WH_MODE_HISTORY) {
		/* Rows buffered before a column was added lack it: send them with
		 * the columns they have. */
		bool bin = history_binary(b, p);
		const size_t *hidx = deleted ? b->hidx_before : b->hidx_after;
		if (p->nhistory > 0 &&
		    (p->hist_ncols != t->nhcols || p->hist_ptext != t->history_ptext ||
		     p->hist_bin != bin) &&
		    (st = flush_history(b, conn, p, err, errlen)) != WH_OK)
			return st;
		if (!history_row(b, p, c, hidx, bin)) {
			/* A value the encoders do not take ("infinity", "1e3"): this
			 * table's rows go as text for the rest of the batch, and the
			 * server reads (or rejects) the value as it always did. */
			p->bin_off = true;
			if (p->nhistory > 0 && (st = flush_history(b, conn, p, err, errlen)) != WH_OK)
				return st;
			history_row(b, p, c, hidx, false);
		}
		if (p->history.len >= HISTORY_STREAM_BYTES &&
		    (st = history_stream(b, conn, p, err, errlen)) != WH_OK)
			return st;
	}
	if (!(b->opts.modes & WH_MODE_MIRROR) || !t->has_mirror) {
		b->count++;
		return WH_OK;
	}
	buf_t key = BUF_INIT;
	const wh_value_t *img = deleted ? c->before : c->after;
	size_t nimg = deleted ? c->nbefore : c->nafter;
	const size_t *idx = deleted ? b->idx_before : b->idx_after;
	bool haskey = key_json(&key, c, img, nimg);
	if (!haskey && !deleted && c->nbefore)
		haskey = key_json(&key, c, c->before, c->nbefore);
	if ((b->opts.modes & WH_MODE_MIRROR) && t->has_mirror && haskey) {
		if (!deleted && c->nbefore) {
			/* An update that changed the key: the old key is gone. */
			buf_t oldkey = BUF_INIT;
			if (key_json(&oldkey, c, c->before, c->nbefore) &&
			    (oldkey.len != key.len || memcmp(oldkey.data, key.data, key.len) != 0))
				mirror_put(p, mrow_new(b, t, &oldkey, true, c->before, b->idx_before,
						       c->nbefore, c));
			buf_free(&oldkey);
		}
		mirror_put(p, mrow_new(b, t, &key, deleted, img, idx, nimg, c));
	} else if ((b->opts.modes & WH_MODE_MIRROR) && t->has_mirror) {
		log_warn("warehouse", "change at %s:%s to %s has no key value: not in the mirror",
			 c->source, c->position_text ? c->position_text : "", t->base);
	}
	buf_free(&key);
	b->count++;
	return WH_OK;
}

wh_status_t
wh_batch_pause(wh_batch_t *b, PGconn *conn, char *err, size_t errlen)
{
	return copy_end(b, conn, err, errlen);
}

static void
batch_reset(wh_batch_t *b)
{
	for (size_t i = 0; i < b->npend; i++) {
		tpend_reset(b->pend[i]);
		b->pend[i]->bin_off = false;
	}
	arena_reset(b->arena);
	b->count = 0;
	b->in_txn = false;
	b->scratch.stage_seq = 0;
	b->scratch.txn++;
}

wh_status_t
wh_batch_commit(wh_batch_t *b, PGconn *conn, const wh_progress_t *progress, size_t nprogress,
		char *err, size_t errlen)
{
	wh_status_t st = WH_OK;
	PGresult *res = NULL;
	char *sql = NULL;
	if (!b->in_txn && nprogress == 0)
		return WH_OK;
	if ((st = ensure_txn(b, conn, err, errlen)) != WH_OK)
		goto out;
	if ((st = copy_end(b, conn, err, errlen)) != WH_OK)
		goto out;
	for (size_t i = 0; i < b->npend; i++)
		if ((st = flush_table(b, conn, b->pend[i], err, errlen)) != WH_OK)
			goto out;
	/* The positions commit with the rows they produced: this is the
	 * exactly-once promise (see the header). */
	sql = xasprintf("INSERT INTO %s.%s AS s (source, position, position_text, log_dir,"
			" changes, applied_at) VALUES ($1, $2, $3, $4, $5, now())"
			" ON CONFLICT (source) DO UPDATE SET position = EXCLUDED.position,"
			" position_text = EXCLUDED.position_text, log_dir = EXCLUDED.log_dir,"
			" changes = s.changes + EXCLUDED.changes, applied_at = now()",
			wh_schema_qname(b->schema), WH_STATE_TABLE);
	for (size_t i = 0; i < nprogress; i++) {
		char count[32];
		snprintf(count, sizeof(count), "%llu", (unsigned long long) progress[i].changes);
		const char *params[5] = {progress[i].source, (const char *) progress[i].position,
					 progress[i].position_text, progress[i].log_dir, count};
		int lens[5] = {0, (int) progress[i].position_len, 0, 0, 0};
		int formats[5] = {0, 1, 0, 0, 0};
		res = PQexecParams(conn, sql, 5, NULL, params, lens, formats, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			st = wh_pg_error(conn, res, "could not store the applied position", err, errlen);
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	if ((st = wh_exec(conn, "COMMIT", "could not commit the warehouse transaction", err,
			  errlen)) != WH_OK)
		goto out;
	batch_reset(b);
out:
	PQclear(res);
	free(sql);
	return st;
}

void
wh_batch_abort(wh_batch_t *b, PGconn *conn)
{
	if (b->copying && conn && PQstatus(conn) == CONNECTION_OK) {
		/* Leave COPY mode first: the server rejects the rows it has. */
		PGresult *res;
		PQputCopyEnd(conn, "batch aborted");
		while ((res = PQgetResult(conn)) != NULL)
			PQclear(res);
	}
	b->copying = NULL;
	if (b->in_txn && conn && PQstatus(conn) == CONNECTION_OK) {
		PGresult *res = PQexec(conn, "ROLLBACK");
		PQclear(res);
	}
	batch_reset(b);
	pend_free_all(b);
	wh_schema_invalidate(b->schema);
}
