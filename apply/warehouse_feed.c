/*
 * warehouse_feed.c — the change log reader thread of the warehouse apply:
 * records → wh_change_t in chunks, one chunk ahead of the writer; see
 * warehouse_feed.h.
 */
#include "warehouse_feed.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "exitcodes.h"
#include "warehouse_types.h"
#include "xalloc.h"

/* ---- chunk storage ----
 *
 * A bump allocator whose blocks are kept when a chunk is reused: a chunk
 * holds a whole batch (tens of MB), and returning that to malloc after
 * every batch made the kernel zero fresh pages for the next one (a fifth
 * of the reader's time).  Strings are not aligned, to keep chunks small.
 */

#define STORE_BLOCK (4u << 20)

typedef struct store_block {
	struct store_block *next;
	size_t cap, used;
	char data[];
} store_block_t;

typedef struct store {
	store_block_t *head, *cur;
} store_t;

static void *
store_alloc(store_t *st, size_t n, size_t align)
{
	store_block_t *b = st->cur;
	for (;;) {
		if (b) {
			size_t off = (b->used + align - 1) & ~(align - 1);
			if (off + n <= b->cap) {
				b->used = off + n;
				return b->data + off;
			}
			if (b->next) {
				b = st->cur = b->next;
				continue;
			}
		}
		size_t cap = n + align > STORE_BLOCK ? n + align : STORE_BLOCK;
		store_block_t *nb = xmalloc(sizeof(*nb) + cap);
		nb->next = NULL;
		nb->cap = cap;
		nb->used = 0;
		if (b)
			b->next = nb;
		else
			st->head = nb;
		b = st->cur = nb;
	}
}

static char *
store_strndup(store_t *st, const char *s, size_t n)
{
	char *d = store_alloc(st, n + 1, 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static char *
store_strdup(store_t *st, const char *s)
{
	return store_strndup(st, s, strlen(s));
}

static void
store_reset(store_t *st)
{
	for (store_block_t *b = st->head; b; b = b->next)
		b->used = 0;
	st->cur = st->head;
}

static void
store_free(store_t *st)
{
	while (st->head) {
		store_block_t *b = st->head;
		st->head = b->next;
		free(b);
	}
	st->cur = NULL;
}

/* ---- record → wh_change_t ---- */

static uint32_t
name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return h;
}

#define TYPE_CACHE_SLOTS 1024

typedef struct type_entry {
	char *source_type;  /* NULL = empty slot */
	int kind;
	wh_type_t type;
} type_entry_t;

/* Converts records; used by the feed thread only. */
typedef struct adapter {
	type_entry_t *types;        /* cache: mapping a type string parses it */
	size_t ntypes;
	const type_entry_t **last;  /* last[i]: the entry of the i-th value last time */
	const char **last_name;     /* last_name[i]: the i-th value's name last time */
	size_t nlast;
	char **names;               /* interned column names (open addressing) */
	size_t nnames, capnames;
	buf_t conv;
} adapter_t;

static void
adapter_init(adapter_t *a)
{
	memset(a, 0, sizeof(*a));
	a->types = xcalloc(TYPE_CACHE_SLOTS, sizeof(*a->types));
}

static void
adapter_free(adapter_t *a)
{
	for (size_t i = 0; i < TYPE_CACHE_SLOTS; i++)
		free(a->types[i].source_type);
	free(a->types);
	for (size_t i = 0; i < a->capnames; i++)
		free(a->names[i]);
	free(a->names);
	free(a->last);
	free(a->last_name);
	buf_free(&a->conv);
}

/*
 * The warehouse type of a source type, from the cache.  NULL when the
 * cache is full (more than 512 distinct types): the caller maps into
 * *spare.
 */
static const type_entry_t *
adapter_type(adapter_t *a, int kind, const char *source_type)
{
	uint32_t h = 2166136261u ^ (uint32_t) kind;
	for (const char *p = source_type; *p; p++)
		h = (h ^ (unsigned char) *p) * 16777619u;
	size_t s = h & (TYPE_CACHE_SLOTS - 1);
	for (size_t probe = 0; probe < TYPE_CACHE_SLOTS; probe++, s = (s + 1) & (TYPE_CACHE_SLOTS - 1)) {
		type_entry_t *e = &a->types[s];
		if (!e->source_type) {
			if (a->ntypes * 2 > TYPE_CACHE_SLOTS)
				return NULL;
			e->source_type = xstrdup(source_type);
			e->kind = kind;
			wh_type_map((Steward__SourceKind) kind, source_type, &e->type);
			a->ntypes++;
			return e;
		}
		if (e->kind == kind && strcmp(e->source_type, source_type) == 0)
			return e;
	}
	return NULL;
}

/*
 * One stable copy of name for the adapter's life: chunks still in flight
 * point at it, so nothing is ever freed before adapter_free.
 */
static const char *
adapter_intern(adapter_t *a, const char *name)
{
	if ((a->nnames + 1) * 2 > a->capnames) {
		size_t cap = a->capnames ? a->capnames * 2 : 256;
		char **names = xcalloc(cap, sizeof(*names));
		for (size_t i = 0; i < a->capnames; i++) {
			if (!a->names[i])
				continue;
			size_t s = name_hash(a->names[i]) & (cap - 1);
			while (names[s])
				s = (s + 1) & (cap - 1);
			names[s] = a->names[i];
		}
		free(a->names);
		a->names = names;
		a->capnames = cap;
	}
	size_t s = name_hash(name) & (a->capnames - 1);
	for (; a->names[s]; s = (s + 1) & (a->capnames - 1))
		if (strcmp(a->names[s], name) == 0)
			return a->names[s];
	a->names[s] = xstrdup(name);
	a->nnames++;
	return a->names[s];
}

/*
 * Values of one image, copied into arena (the record is transient).  Names
 * and types point at the adapter's interned strings and type cache, which
 * live as long as the feed; *stable becomes false when one does not.
 */
static wh_value_t *
adapter_values(adapter_t *a, store_t *arena, int kind, Steward__Value *const *src, size_t n,
	       char *const *unchanged, size_t nunchanged, size_t *nout, bool *stable)
{
	wh_value_t *v = store_alloc(arena, (n + nunchanged + 1) * sizeof(*v), 8);
	if (n > a->nlast) {
		a->last = xrealloc(a->last, n * sizeof(*a->last));
		a->last_name = xrealloc(a->last_name, n * sizeof(*a->last_name));
		memset(a->last + a->nlast, 0, (n - a->nlast) * sizeof(*a->last));
		memset(a->last_name + a->nlast, 0, (n - a->nlast) * sizeof(*a->last_name));
		a->nlast = n;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const Steward__Value *sv = src[i];
		const char *stype = sv->type_name ? sv->type_name : "";
		/* Records of one table repeat their column types in the same
		 * order: one strcmp against the last entry at this position. */
		const type_entry_t *e = a->last[i];
		if (!e || e->kind != kind || strcmp(e->source_type, stype) != 0) {
			e = adapter_type(a, kind, stype);
			a->last[i] = e;
		}
		const wh_type_t *t;
		wh_type_t *spare = NULL;
		if (e) {
			t = &e->type;
		} else {
			spare = store_alloc(arena, sizeof(*spare), 8);
			wh_type_map((Steward__SourceKind) kind, stype, spare);
			t = spare;
			*stable = false;
		}
		/* Names repeat too: keep one copy per position for the feed's
		 * life instead of one per value. */
		const char *name = sv->name ? sv->name : "";
		if (!a->last_name[i] || strcmp(a->last_name[i], name) != 0)
			a->last_name[i] = adapter_intern(a, name);
		v[k].name = a->last_name[i];
		v[k].type = t->name;
		v[k].text = NULL;
		v[k].len = 0;
		v[k].unchanged = false;
		if (sv->has_unchanged && sv->unchanged) {
			v[k].unchanged = true;
		} else if (!(sv->has_is_null && sv->is_null)) {
			const char *text = sv->text ? sv->text : "";
			const char *res;
			size_t reslen;
			bool is_null;
			wh_value_convert(t->conv, text, strlen(text), &a->conv, &res, &reslen, &is_null);
			if (!is_null) {
				v[k].text = store_strndup(arena, res, reslen);
				v[k].len = reslen;
			}
		}
		k++;
	}
	/* TOASTed columns the source listed but did not include as values. */
	for (size_t u = 0; u < nunchanged && n > 0; u++) {
		bool present = false;
		for (size_t i = 0; i < k && !present; i++)
			present = strcmp(v[i].name, unchanged[u]) == 0;
		if (!present) {
			v[k].name = adapter_intern(a, unchanged[u]);
			v[k].type = "text";
			v[k].text = NULL;
			v[k].len = 0;
			v[k].unchanged = true;
			k++;
		}
	}
	*nout = k;
	return v;
}

static const char *
arena_str_or(store_t *arena, const char *s, const char *dflt)
{
	return s ? store_strdup(arena, s) : dflt;
}

/* Fill *out from record c for table (schema, table), copying into arena. */
static void
adapter_change(adapter_t *a, store_t *arena, const Steward__Change *c, const char *schema,
	       const char *table, wh_change_t *out)
{
	int kind = c->has_source_kind ? (int) c->source_kind : 0;
	char target[WH_NAME_MAX + 1];
	memset(out, 0, sizeof(*out));
	wh_table_name(c->source, schema, c->database, table, "", target);
	out->target = store_strdup(arena, target);
	out->source = arena_str_or(arena, c->source, "");
	out->position_text = arena_str_or(arena, c->position_text, "");
	if (c->has_position) {
		uint8_t *pos = store_alloc(arena, c->position.len ? c->position.len : 1, 1);
		memcpy(pos, c->position.data, c->position.len);
		out->position = pos;
		out->position_len = c->position.len;
	}
	out->txid = c->txid ? store_strdup(arena, c->txid) : NULL;
	out->commit_ts_us = c->has_commit_ts_us ? c->commit_ts_us : 0;
	if (c->n_key) {
		const char **key = store_alloc(arena, c->n_key * sizeof(*key), 8);
		for (size_t k = 0; k < c->n_key; k++)
			key[k] = arena_str_or(arena, c->key[k], "");
		out->key = key;
		out->nkey = c->n_key;
	}
	switch (c->op) {
	case STEWARD__OP__OP_DELETE:
		out->op = WH_OP_DELETE;
		out->op_name = "delete";
		break;
	case STEWARD__OP__OP_TRUNCATE:
		out->op = WH_OP_TRUNCATE;
		out->op_name = "truncate";
		return;
	case STEWARD__OP__OP_UPDATE:
		out->op = WH_OP_UPSERT;
		out->op_name = "update";
		break;
	case STEWARD__OP__OP_SNAPSHOT_READ:
		out->op = WH_OP_UPSERT;
		out->op_name = "snapshot";
		break;
	default:
		out->op = WH_OP_UPSERT;
		out->op_name = "insert";
		break;
	}
	out->stable_names = true;
	out->before = adapter_values(a, arena, kind, c->before, c->n_before, NULL, 0, &out->nbefore,
				     &out->stable_names);
	out->after = adapter_values(a, arena, kind, c->after, c->n_after, c->unchanged,
				    c->n_unchanged, &out->nafter, &out->stable_names);
}

/* ---- chunks ---- */

struct wh_chunk_priv {
	store_t store;
	size_t caprecords, capchanges;
	wh_chunk_t *next_spare;
};

static wh_chunk_t *
chunk_new(void)
{
	wh_chunk_t *c = xcalloc(1, sizeof(*c));
	c->priv = xcalloc(1, sizeof(*c->priv));
	return c;
}

static void
chunk_free(wh_chunk_t *c)
{
	if (!c)
		return;
	store_free(&c->priv->store);
	free(c->priv);
	free(c->records);
	free(c->changes);
	free(c);
}

static void
chunk_reset(wh_chunk_t *c)
{
	store_reset(&c->priv->store);
	c->nrecords = c->nchanges = 0;
	c->caught_up = c->last = c->ends_batch = false;
	c->rc = STEWARD_EXIT_OK;
	c->err[0] = '\0';
}

static wh_change_t *
chunk_change(wh_chunk_t *c)
{
	if (c->nchanges == c->priv->capchanges) {
		c->priv->capchanges = c->priv->capchanges ? c->priv->capchanges * 2 : 1024;
		c->changes = xrealloc(c->changes, c->priv->capchanges * sizeof(*c->changes));
	}
	return &c->changes[c->nchanges++];
}

/* Append record rec of log i to chunk ch. */
static void
chunk_add(adapter_t *a, wh_chunk_t *ch, size_t log, const Steward__Change *rec)
{
	store_t *arena = &ch->priv->store;
	if (ch->nrecords == ch->priv->caprecords) {
		ch->priv->caprecords = ch->priv->caprecords ? ch->priv->caprecords * 2 : 1024;
		ch->records = xrealloc(ch->records, ch->priv->caprecords * sizeof(*ch->records));
	}
	wh_record_t *r = &ch->records[ch->nrecords++];
	memset(r, 0, sizeof(*r));
	r->log = log;
	if (rec->has_position)
		position_set(&r->position, rec->position.data, rec->position.len);
	r->first = ch->nchanges;
	if (rec->op == STEWARD__OP__OP_TRUNCATE) {
		size_t n = rec->n_truncated_tables;
		for (size_t i = 0; i < (n ? n : 1); i++) {
			char schema[256] = "";
			const char *table = rec->table;
			if (n) {
				const char *q = rec->truncated_tables[i], *dot = strchr(q, '.');
				snprintf(schema, sizeof(schema), "%.*s", dot ? (int) (dot - q) : 0, q);
				table = dot ? dot + 1 : q;
			} else {
				snprintf(schema, sizeof(schema), "%s", rec->schema ? rec->schema : "");
			}
			adapter_change(a, arena, rec, schema, table, chunk_change(ch));
		}
	} else if (rec->op != STEWARD__OP__OP_MESSAGE && rec->table && *rec->table) {
		adapter_change(a, arena, rec, rec->schema, rec->table, chunk_change(ch));
	}
	r->n = ch->nchanges - r->first;
	/* Share the strings of the record's first change when there is one. */
	if (r->n) {
		r->source = ch->changes[r->first].source;
		r->position_text = ch->changes[r->first].position_text;
	} else {
		r->source = arena_str_or(arena, rec->source, "");
		r->position_text = arena_str_or(arena, rec->position_text, "");
	}
}

/* ---- the thread and its one-slot queue ---- */

struct wh_feed {
	wh_feed_config_t cfg;
	adapter_t adapter;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	wh_chunk_t *ready;         /* finished, waiting for the writer */
	wh_chunk_t *spare;         /* released chunks for reuse */
	bool quit;                 /* the writer is going away */
	bool stopping;             /* the writer saw *cfg.stop (atomic: the reader polls it) */
};

static bool
stop_requested(const wh_feed_t *f)
{
	/* Not *cfg.stop itself: a signal handler on the writer's thread sets
	 * that, and only that thread may read it (wh_feed_next forwards it). */
	return __atomic_load_n(&f->stopping, __ATOMIC_RELAXED);
}

/*
 * A chunk to fill, once the slot is empty: reading starts only when the
 * writer has taken the previous chunk, so at most two exist (one being
 * written, one being read or waiting).  NULL on quit.
 */
static wh_chunk_t *
feed_take_spare(wh_feed_t *f)
{
	pthread_mutex_lock(&f->mu);
	while (f->ready && !f->quit)
		pthread_cond_wait(&f->cond, &f->mu);
	if (f->quit) {
		pthread_mutex_unlock(&f->mu);
		return NULL;
	}
	wh_chunk_t *c = f->spare;
	if (c)
		f->spare = c->priv->next_spare;
	pthread_mutex_unlock(&f->mu);
	if (!c)
		c = chunk_new();
	chunk_reset(c);
	return c;
}

/* Hand c to the writer, waiting while the slot is full; false on quit. */
static bool
feed_push(wh_feed_t *f, wh_chunk_t *c)
{
	pthread_mutex_lock(&f->mu);
	while (f->ready && !f->quit)
		pthread_cond_wait(&f->cond, &f->mu);
	bool ok = !f->quit;
	if (ok) {
		f->ready = c;
		pthread_cond_broadcast(&f->cond);
	}
	pthread_mutex_unlock(&f->mu);
	if (!ok)
		chunk_free(c);
	return ok;
}

static bool
feed_quitting(wh_feed_t *f)
{
	pthread_mutex_lock(&f->mu);
	bool q = f->quit;
	pthread_mutex_unlock(&f->mu);
	return q;
}

/* Wait ms while tailing, waking early for stop or quit. */
static void
feed_sleep(wh_feed_t *f, int ms)
{
	while (ms > 0 && !stop_requested(f) && !feed_quitting(f)) {
		int step = ms < 50 ? ms : 50;
		struct timespec ts = {0, (long) step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void *
feed_main(void *arg)
{
	wh_feed_t *f = arg;
	const wh_feed_config_t *cfg = &f->cfg;
	/* carry[i]: a record of log i read ahead to learn whether a full chunk
	 * ended the log; the reader keeps it valid until log i is read again. */
	const Steward__Change **carry = xcalloc(cfg->nlogs, sizeof(*carry));
	size_t in_batch = 0;  /* records of the batch in earlier chunks */
	for (;;) {
		wh_chunk_t *ch = feed_take_spare(f);
		if (!ch)
			break;
		size_t limit = cfg->batch_records - in_batch;
		if (limit > WH_FEED_CHUNK)
			limit = WH_FEED_CHUNK;
		bool all_caught_up = true;
		for (size_t i = 0; i < cfg->nlogs && ch->rc == STEWARD_EXIT_OK; i++) {
			bool caught_up = false;
			while (ch->nrecords < limit && !stop_requested(f)) {
				const Steward__Change *rec = carry[i];
				carry[i] = NULL;
				clog_status_t cs = rec ? CLOG_OK
						       : clog_reader_next(cfg->readers[i], &rec, ch->err,
									  sizeof(ch->err));
				if (cs == CLOG_END) {
					caught_up = true;
					break;
				}
				if (cs != CLOG_OK) {
					ch->rc = cs == CLOG_CORRUPT ? STEWARD_EXIT_DATAERR
								    : STEWARD_EXIT_IOERR;
					break;
				}
				chunk_add(&f->adapter, ch, i, rec);
			}
			if (!caught_up && !carry[i] && ch->rc == STEWARD_EXIT_OK && !stop_requested(f)) {
				/* The chunk is full: read one record ahead, so that the
				 * chunk that empties a log says so (it ends the batch,
				 * and its commit is the synchronous one).  A failure
				 * here shows again on the next read (the reader never
				 * skips). */
				char perr[256];
				const Steward__Change *rec;
				clog_status_t cs = clog_reader_next(cfg->readers[i], &rec, perr,
								    sizeof(perr));
				if (cs == CLOG_END)
					caught_up = true;
				else if (cs == CLOG_OK)
					carry[i] = rec;
			}
			if (!caught_up)
				all_caught_up = false;
		}
		ch->caught_up = all_caught_up;
		ch->last = ch->rc != STEWARD_EXIT_OK || stop_requested(f) ||
			   (cfg->once && all_caught_up);
		in_batch += ch->nrecords;
		ch->ends_batch = ch->last || all_caught_up || in_batch >= cfg->batch_records;
		if (ch->ends_batch)
			in_batch = 0;
		if (ch->nrecords == 0 && !ch->last) {
			/* Nothing new: keep tailing. */
			pthread_mutex_lock(&f->mu);
			ch->priv->next_spare = f->spare;
			f->spare = ch;
			pthread_mutex_unlock(&f->mu);
			feed_sleep(f, cfg->poll_ms);
			if (feed_quitting(f))
				break;
			continue;
		}
		bool last = ch->last;
		if (!feed_push(f, ch) || last)
			break;
	}
	free(carry);
	return NULL;
}

wh_feed_t *
wh_feed_start(const wh_feed_config_t *cfg)
{
	wh_feed_t *f = xcalloc(1, sizeof(*f));
	f->cfg = *cfg;
	if (f->cfg.batch_records == 0)
		f->cfg.batch_records = 1;
	adapter_init(&f->adapter);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cond, NULL);
	if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
		fprintf(stderr, "fatal: could not start the warehouse reader thread\n");
		abort();  /* the project's policy for exhausted resources (xalloc.h) */
	}
	return f;
}

wh_chunk_t *
wh_feed_next(wh_feed_t *f)
{
	pthread_mutex_lock(&f->mu);
	for (;;) {
		if (f->cfg.stop && *f->cfg.stop)
			__atomic_store_n(&f->stopping, true, __ATOMIC_RELAXED);
		if (f->ready)
			break;
		/* Wake now and then to pass a stop on while the reader tails. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&f->cond, &f->mu, &ts);
	}
	wh_chunk_t *c = f->ready;
	f->ready = NULL;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
	return c;
}

void
wh_feed_release(wh_feed_t *f, wh_chunk_t *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&f->mu);
	c->priv->next_spare = f->spare;
	f->spare = c;
	pthread_mutex_unlock(&f->mu);
}

void
wh_feed_stop(wh_feed_t *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->quit = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thread, NULL);
	chunk_free(f->ready);
	while (f->spare) {
		wh_chunk_t *c = f->spare;
		f->spare = c->priv->next_spare;
		chunk_free(c);
	}
	adapter_free(&f->adapter);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cond);
	free(f);
}
