/*
 * mysql_stream.c — the binlog stream: replication connection, transaction
 * boundaries, table maps, rows events to change records in the change log.
 *
 * A transaction's rows events are kept (raw, in memory up to
 * TXN_MEM_LIMIT, then in DIR/mysql-txn.spill) until its XID/COMMIT: only
 * then is its end offset — the position every record of it carries — known.
 * Records are encoded straight into the change log's pending batch as the
 * buffered events are decoded (proto/record_encode.h, with the constant
 * parts of each table's records built once per table map), so memory stays
 * bounded for any transaction size.
 *
 * Durability promise, kept in stream_flush: the resume file
 * (DIR/mysql-resume) is rewritten only after clog_writer_flush returned,
 * and names the end of the last transaction whose records were all
 * appended before that flush (file and offset, and on MariaDB the GTID
 * state there).  A restart reads the binlog from there; any record
 * already durable is dropped by the writer as a duplicate, or — when the
 * dump starts by GTID — was folded into the state the dump starts from
 * (mysql_capture.c).  So kill -9 at any moment loses nothing and
 * duplicates nothing.
 *
 * On MariaDB every dump starts by GTID (stream_open), so a reconnect or a
 * restart may land on another server of the topology; positions then keep
 * increasing through their epoch (stream_file_key).
 */
#include "mysql_capture.h"

#include <errmsg.h>
#include <errno.h>
#include <mariadb_rpl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "capture_metrics.h"
#include "exitcodes.h"
#include "log.h"
#include "mysql_prefetch.h"
#include "mysql_resume.h"
#include "packed_ref.h"
#include "record.h"
#include "record_encode.h"
#include "xalloc.h"

#define TXN_MEM_LIMIT (16u * 1024 * 1024)
#define FLUSH_PENDING_BYTES (8u * 1024 * 1024)
#define HEADER_LEN 19
#define RECONNECT_GIVE_UP_S 300

/*
 * A table map and its record encoding parts (proto/record_encode.h), built
 * when the map arrives: its shape, registered with the change log writer
 * (rows whose images hold every column are written as compact records
 * referring to it), and for the other rows (binlog_row_image=MINIMAL or
 * NOBLOB) the self-describing form's head (Change fields 1-6), keys (field
 * 13) and one Value prefix (name, type_id, type_name) per column.
 */
typedef struct table_enc {
	mysql_table_t *t;
	uint32_t shape_id;
	packed_refs_t *refs;           /* the shape's value references (stream_t.shape_refs) */
	buf_t head, keys, prefixes;
	size_t *prefix_off;            /* ncols + 1 offsets into prefixes */
} table_enc_t;

typedef struct stream {
	const mysql_stream_opts_t *o;
	clog_writer_t *w;
	MYSQL *m;
	MARIADB_RPL *rpl;
	mysql_prefetch_t *pf;          /* reads rpl ahead of the loop while streaming */
	unsigned long dump_id;         /* the server's id of m's connection (its dump thread) */
	MYSQL *meta;                   /* information_schema lookups (lazy) */
	char *file;                    /* binlog file being read */
	uint64_t event_end;            /* end offset of the event being handled */
	char *committed_file;          /* resume point: after the last whole transaction */
	uint64_t committed_end;
	bool has_gtid;                 /* MariaDB: gtid is complete; opens position by it */
	mysql_gtid_state_t gtid;       /* GTID state at the committed point */
	mysql_gtid_t txn_gtid;         /* the open transaction's GTID (MariaDB) */
	bool txn_has_gtid;
	uint32_t epoch;                /* of every position written (proto/position.h) */
	uint64_t floor_key, floor_end; /* after an open: what its first position must exceed */
	bool floor_check;
	bool positioned;               /* this dump's first rotate seen: committed_file is the server's */
	char *flushed_file;            /* resume point last written to disk */
	uint64_t flushed_end;
	uint32_t flushed_epoch;
	mysql_gtid_state_t flushed_gtid;
	uint64_t async_ticket;         /* a flush begun, not yet seen done (0: none) */
	char *async_file;              /* the committed position when it began */
	uint64_t async_end;
	mysql_gtid_state_t async_gtid;
	double async_t0;
	table_enc_t **tables;          /* current table maps, by table id */
	size_t ntables;
	char **names_cache_key;        /* "schema.table" whose names came from the catalog */
	mysql_table_t **names_cache;
	size_t nnames;
	bool in_txn, standalone;
	char txid[96];
	buf_t txn;                     /* framed raw events: type(1) len(4) body */
	FILE *spill;
	uint64_t spill_bytes;
	/* value texts of the row being emitted, or its packed images (shaped rows) */
	buf_t text_before, text_after;
	buf_t run;                     /* whole Batch entries of a run of rows (run_rows) */
	mysql_value_t *vals;           /* 2 * MYSQL_MAX_COLUMNS decoded values, reused */
	packed_refs_t **shape_refs;    /* by shape id - 1: shapes are the writer's, shared by maps */
	size_t nshape_refs;
	record_enc_value_t *enc_vals;  /* 2 * enc_cap entries */
	size_t enc_cap;
	struct timespec last_flush;
	char *end_file;                /* --endpos */
	uint64_t end_off;
	uint64_t records;
	uint64_t txn_serial;           /* transactions replayed (commit_info_t.serial) */
	uint64_t last_serial;          /* of the last record appended; 0 after any other record */
	Steward__Op last_op;           /* the last appended row's op, seq and shape (0: none) */
	uint32_t last_seq, last_shape;
} stream_t;

static double
since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double) (now.tv_sec - t->tv_sec) + (double) (now.tv_nsec - t->tv_nsec) / 1e9;
}

/* ---- resume file ---- */

/*
 * Write the resume file at (file, end) with GTID state gtid unless it
 * holds that already.
 */
static int
resume_advance(stream_t *s, const char *file, uint64_t end, const mysql_gtid_state_t *gtid,
	       double t0, char *err, size_t errlen)
{
	char pos_text[600];
	snprintf(pos_text, sizeof pos_text, "%s:%llu", file, (unsigned long long) end);
	capture_metrics_on_flush(capture_metrics_now() - t0, pos_text);
	if (s->flushed_file && !strcmp(s->flushed_file, file) && s->flushed_end == end &&
	    s->flushed_epoch == s->epoch &&
	    (!s->has_gtid || !memcmp(&s->flushed_gtid, gtid, sizeof(*gtid))))
		return STEWARD_EXIT_OK;
	mysql_resume_t r = {(char *) file, end, s->has_gtid, {0, {{0, 0, 0}}}, s->epoch};
	if (s->has_gtid)
		r.gtid = *gtid;
	if (!mysql_resume_save(s->o->data_dir, &r, err, errlen))
		return STEWARD_EXIT_IOERR;
	free(s->flushed_file);
	s->flushed_file = xstrdup(file);
	s->flushed_end = end;
	s->flushed_epoch = s->epoch;
	s->flushed_gtid = *gtid;
	return STEWARD_EXIT_OK;
}

/* Make everything appended durable, then record the committed position. */
static int
stream_flush(stream_t *s, char *err, size_t errlen)
{
	double t0 = capture_metrics_now();
	if (clog_writer_flush(s->w, err, errlen) != CLOG_OK)
		return STEWARD_EXIT_IOERR;
	clock_gettime(CLOCK_MONOTONIC, &s->last_flush);
	s->async_ticket = 0;  /* covered */
	if (!s->committed_file)
		return STEWARD_EXIT_OK;
	return resume_advance(s, s->committed_file, s->committed_end, &s->gtid, t0, err, errlen);
}

/*
 * The flush between transactions while streaming, without stopping
 * decoding for the fdatasync: the frame thread syncs after the batches
 * before it, and the committed position of this moment goes to the resume
 * file once that sync is done (stream_flush_check, at a later commit).
 * One at a time.
 */
static int
stream_flush_begin(stream_t *s, char *err, size_t errlen)
{
	if (s->async_ticket || !s->committed_file)
		return STEWARD_EXIT_OK;
	if (clog_writer_flush_begin(s->w, &s->async_ticket, err, errlen) != CLOG_OK)
		return STEWARD_EXIT_IOERR;
	clock_gettime(CLOCK_MONOTONIC, &s->last_flush);
	free(s->async_file);
	s->async_file = xstrdup(s->committed_file);
	s->async_end = s->committed_end;
	s->async_gtid = s->gtid;
	s->async_t0 = capture_metrics_now();
	return STEWARD_EXIT_OK;
}

static int
stream_flush_check(stream_t *s, char *err, size_t errlen)
{
	if (!s->async_ticket || !clog_writer_flush_done(s->w, s->async_ticket))
		return STEWARD_EXIT_OK;
	s->async_ticket = 0;
	return resume_advance(s, s->async_file, s->async_end, &s->async_gtid, s->async_t0, err,
			      errlen);
}

/* ---- table maps and column names ---- */

static table_enc_t *
table_find(stream_t *s, uint64_t id)
{
	for (size_t i = 0; i < s->ntables; i++)
		if (s->tables[i]->t->table_id == id)
			return s->tables[i];
	return NULL;
}

static void
table_enc_free(table_enc_t *te)
{
	if (!te)
		return;
	mysql_table_free(te->t);
	buf_free(&te->head);
	buf_free(&te->keys);
	buf_free(&te->prefixes);
	free(te->prefix_off);
	free(te);
}

/* Takes ownership of t (freed on error too). */
static table_enc_t *
table_enc_new(stream_t *s, mysql_table_t *t, char *err, size_t errlen)
{
	table_enc_t *te = xcalloc(1, sizeof(*te));
	te->t = t;
	record_enc_head(&te->head, STEWARD_RECORD_VERSION, s->o->src->source_name,
			STEWARD__SOURCE_KIND__SOURCE_KIND_MYSQL, t->schema, t->schema, t->name);
	for (size_t i = 0; i < t->npk; i++) {
		char *name = t->cols[t->pk[i]].name;
		record_enc_keys(&te->keys, &name, 1);
	}
	te->prefix_off = xcalloc(t->ncols + 1, sizeof(size_t));
	for (size_t i = 0; i < t->ncols; i++) {
		te->prefix_off[i] = te->prefixes.len;
		record_enc_value_prefix(&te->prefixes, t->cols[i].name, t->cols[i].type,
					t->cols[i].type_name);
	}
	te->prefix_off[t->ncols] = te->prefixes.len;
	/* the same shape again (a table map per transaction) gets the same id */
	buf_t shape = BUF_INIT;
	record_enc_shape_head(&shape, STEWARD_RECORD_VERSION, s->o->src->source_name,
			      STEWARD__SOURCE_KIND__SOURCE_KIND_MYSQL, t->schema, t->schema, t->name);
	for (size_t i = 0; i < t->npk; i++) {
		char *name = t->cols[t->pk[i]].name;
		record_enc_shape_keys(&shape, &name, 1);
	}
	/* a column of a packed record's shape: the value prefix, then its codec */
	buf_t col = BUF_INIT;
	for (size_t i = 0; i < t->ncols; i++) {
		buf_reset(&col);
		buf_append(&col, te->prefixes.data + te->prefix_off[i],
			   te->prefix_off[i + 1] - te->prefix_off[i]);
		record_enc_column_codec(&col, (Steward__Codec) t->cols[i].codec, t->cols[i].scale);
		record_enc_shape_column(&shape, (const uint8_t *) col.data, col.len);
	}
	buf_free(&col);
	/* rows after the first of a transaction in a batch carry no position text */
	record_enc_shape_position_by_seq(&shape);
	/* packed images code each value against the previous row's (proto/packed_ref.h) */
	record_enc_shape_value_refs(&shape);
	clog_status_t cs = clog_writer_shape(s->w, (const uint8_t *) shape.data, shape.len,
					     &te->shape_id, err, errlen);
	buf_free(&shape);
	if (cs != CLOG_OK) {
		table_enc_free(te);
		return NULL;
	}
	/* a table mapped again under a new id has the same shape: one set of references */
	if (te->shape_id > s->nshape_refs) {
		s->shape_refs = xrealloc(s->shape_refs, te->shape_id * sizeof(*s->shape_refs));
		memset(s->shape_refs + s->nshape_refs, 0,
		       (te->shape_id - s->nshape_refs) * sizeof(*s->shape_refs));
		s->nshape_refs = te->shape_id;
	}
	if (!s->shape_refs[te->shape_id - 1]) {
		uint8_t *codec = xmalloc(t->ncols + 1), *scale = xmalloc(t->ncols + 1);
		for (size_t i = 0; i < t->ncols; i++) {
			codec[i] = (uint8_t) t->cols[i].codec;
			scale[i] = (uint8_t) t->cols[i].scale;
		}
		s->shape_refs[te->shape_id - 1] = xmalloc(sizeof(packed_refs_t));
		packed_refs_init(s->shape_refs[te->shape_id - 1], t->ncols, codec, scale);
		free(codec);
		free(scale);
	}
	te->refs = s->shape_refs[te->shape_id - 1];
	if (s->enc_cap < t->ncols) {
		s->enc_cap = t->ncols;
		s->enc_vals = xrealloc(s->enc_vals, 2 * s->enc_cap * sizeof(*s->enc_vals));
	}
	return te;
}

static bool
table_put(stream_t *s, mysql_table_t *t, char *err, size_t errlen)
{
	table_enc_t *te = table_enc_new(s, t, err, errlen);
	if (!te)
		return false;
	for (size_t i = 0; i < s->ntables; i++)
		if (s->tables[i]->t->table_id == t->table_id) {
			table_enc_free(s->tables[i]);
			s->tables[i] = te;
			return true;
		}
	s->tables = xrealloc(s->tables, (s->ntables + 1) * sizeof(*s->tables));
	s->tables[s->ntables++] = te;
	return true;
}

/* Forget the map of table id `id`, if any. */
static void
table_forget(stream_t *s, uint64_t id)
{
	for (size_t i = 0; i < s->ntables; i++)
		if (s->tables[i]->t->table_id == id) {
			table_enc_free(s->tables[i]);
			s->tables[i] = s->tables[--s->ntables];
			return;
		}
}

/*
 * Forget every table map: table ids are the server's, numbered afresh when
 * it restarts, so after a reconnect an id may name another table.  Every
 * transaction read again carries its own maps.
 */
static void
tables_clear(stream_t *s)
{
	for (size_t i = 0; i < s->ntables; i++)
		table_enc_free(s->tables[i]);
	s->ntables = 0;
}

/*
 * A statement other than DML: forget the cached names of every table it
 * names (mysql_mentions_identifier, the test mysql_conn_ddl_after applies
 * too).  Statements that name no captured table (GRANT, CREATE USER, DDL of
 * other tables) keep the cache, so names learnt before a lost connection
 * still serve the maps read again after it, even if the catalog has moved
 * on since (an ALTER made while the agent was away).
 */
static void
names_cache_forget_named(stream_t *s, const char *q, size_t n)
{
	char *stmt = xstrndup(q, n);
	for (size_t i = 0; i < s->nnames;) {
		if (!mysql_mentions_identifier(stmt, s->names_cache[i]->name)) {
			i++;
			continue;
		}
		free(s->names_cache_key[i]);
		mysql_table_free(s->names_cache[i]);
		s->nnames--;
		s->names_cache_key[i] = s->names_cache_key[s->nnames];
		s->names_cache[i] = s->names_cache[s->nnames];
	}
	free(stmt);
}

static void
names_cache_clear(stream_t *s)
{
	for (size_t i = 0; i < s->nnames; i++) {
		free(s->names_cache_key[i]);
		mysql_table_free(s->names_cache[i]);
	}
	free(s->names_cache_key);
	free(s->names_cache);
	s->names_cache_key = NULL;
	s->names_cache = NULL;
	s->nnames = 0;
}

/*
 * The map carries no names (binlog_row_metadata=MINIMAL): take them from
 * information_schema, cached per table (and shape) until a statement
 * naming the table (names_cache_forget_named).  The cache outlives a lost
 * connection: it was right at the position the stream resumes from.
 * Never attach a value to the wrong column: a column count that disagrees, or a statement naming the table written to the binlog
 * after this map's transaction began (the catalog may already show what it
 * did), is an error (65).  Lost catalog connection: 69, the stream reconnects.
 */
static int
table_name_columns(stream_t *s, mysql_table_t *t, char *err, size_t errlen)
{
	char key[600];
	snprintf(key, sizeof(key), "%s.%s", t->schema, t->name);
	for (size_t i = 0; i < s->nnames; i++) {
		mysql_table_t *c = s->names_cache[i];
		if (strcmp(s->names_cache_key[i], key) || c->ncols != t->ncols)
			continue;
		bool same = true;
		for (size_t k = 0; k < t->ncols; k++)
			same &= c->cols[k].binlog_type == t->cols[k].binlog_type &&
				c->cols[k].meta == t->cols[k].meta;
		if (same) {
			char **names = xcalloc(t->ncols, sizeof(char *));
			for (size_t k = 0; k < t->ncols; k++)
				names[k] = c->cols[k].name;
			mysql_table_set_names(t, names, t->ncols);
			free(names);
			return STEWARD_EXIT_OK;
		}
	}
	if (!s->meta && !(s->meta = mysql_conn_open(s->o->dsn, 30, err, errlen)))
		return STEWARD_EXIT_UNAVAILABLE;
	char schema[520], table[520], sql[1400];  /* names are at most 255 bytes */
	mysql_real_escape_string(s->meta, schema, t->schema, (unsigned long) strlen(t->schema));
	mysql_real_escape_string(s->meta, table, t->name, (unsigned long) strlen(t->name));
	snprintf(sql, sizeof(sql),
		 "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '%s' "
		 "AND TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION", schema, table);
	MYSQL_RES *r = NULL;
	char *ddl_at = NULL;
	int rc = STEWARD_EXIT_DATAERR;
	if (mysql_query(s->meta, sql) != 0 || !(r = mysql_store_result(s->meta))) {
		snprintf(err, errlen, "could not read columns of \"%s\": %s", key, mysql_error(s->meta));
		rc = mysql_conn_error_is_lost(mysql_errno(s->meta)) ? STEWARD_EXIT_UNAVAILABLE
								    : STEWARD_EXIT_FAILURE;
		goto out;
	}
	if (mysql_num_rows(r) != t->ncols) {
		snprintf(err, errlen,
			 "table map of \"%s\" has %zu columns but the catalog now has %llu: cannot "
			 "name its columns safely; set binlog_row_metadata=FULL on the server "
			 "and take a new snapshot (empty --data-dir)",
			 key, t->ncols, (unsigned long long) mysql_num_rows(r));
		goto out;
	}
	rc = mysql_conn_ddl_after(s->meta, s->file, s->event_end, t->name, &ddl_at, err, errlen);
	if (rc != STEWARD_EXIT_OK)
		goto out;
	if (ddl_at) {
		snprintf(err, errlen,
			 "table map of \"%s\" at %s:%llu was written before a statement on that table "
			 "at %s that the catalog may already reflect: with binlog_row_metadata=MINIMAL "
			 "its column names cannot be known; set binlog_row_metadata=FULL on the server "
			 "and take a new snapshot (empty --data-dir)",
			 key, s->file, (unsigned long long) s->event_end, ddl_at);
		rc = STEWARD_EXIT_DATAERR;
		goto out;
	}
	char **names = xcalloc(t->ncols, sizeof(char *));
	MYSQL_ROW row;
	for (size_t k = 0; (row = mysql_fetch_row(r)) != NULL && k < t->ncols; k++)
		names[k] = row[0] ? row[0] : "";
	mysql_table_set_names(t, names, t->ncols);
	free(names);
	s->names_cache_key = xrealloc(s->names_cache_key, (s->nnames + 1) * sizeof(char *));
	s->names_cache = xrealloc(s->names_cache, (s->nnames + 1) * sizeof(mysql_table_t *));
	s->names_cache_key[s->nnames] = xstrdup(key);
	s->names_cache[s->nnames++] = mysql_table_dup(t);
out:
	if (rc == STEWARD_EXIT_UNAVAILABLE) {
		mysql_close(s->meta);
		s->meta = NULL;
	}
	free(ddl_at);
	mysql_free_result(r);
	return rc;
}

/* ---- transaction buffer ---- */

static void
txn_reset(stream_t *s)
{
	buf_reset(&s->txn);
	if (s->spill) {
		fclose(s->spill);
		s->spill = NULL;
		char path[4096];
		snprintf(path, sizeof(path), "%s/mysql-txn.spill", s->o->data_dir);
		unlink(path);
	}
	s->spill_bytes = 0;
	s->in_txn = false;
	s->standalone = false;
	s->txid[0] = '\0';
	s->txn_has_gtid = false;
}

/*
 * The first 8 bytes of the positions of what ends at `end` in the current
 * file.  The first position after an open must sort after the point the
 * stream resumed from; when it does not, this server's binlog coordinates
 * are behind the captured ones (the agent followed a failover by GTID) and
 * the epoch goes up, so positions keep increasing and the change log's
 * duplicate check keeps its meaning.
 */
static uint64_t
stream_file_key(stream_t *s, uint64_t end)
{
	uint64_t file_no = mysql_binlog_file_no(s->file);
	if (s->floor_check) {
		s->floor_check = false;
		uint64_t key = position_mysql_file_key(s->epoch, file_no);
		if (key < s->floor_key || (key == s->floor_key && end <= s->floor_end)) {
			s->epoch++;
			log_warn("capture", "binlog coordinates on this server (%s:%llu) are before the "
				 "captured ones: positions continue under epoch %u", s->file,
				 (unsigned long long) end, s->epoch);
		}
	}
	return position_mysql_file_key(s->epoch, file_no);
}

/* The current transaction ended at `end`: it is the resume point now. */
static void
commit_point(stream_t *s, uint64_t end)
{
	free(s->committed_file);
	s->committed_file = xstrdup(s->file);
	s->committed_end = end;
	if (s->txn_has_gtid && !mysql_gtid_state_put(&s->gtid, &s->txn_gtid))
		s->has_gtid = false;  /* more domains than a state holds: position by file */
}

static bool
txn_add(stream_t *s, uint8_t type, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
	char *err, size_t errlen)
{
	uint8_t hdr[5] = {type};
	uint32_t n = (uint32_t) (alen + blen);
	memcpy(hdr + 1, &n, 4);
	buf_append(&s->txn, hdr, 5);
	buf_append(&s->txn, a, alen);
	if (blen)
		buf_append(&s->txn, b, blen);
	if (s->txn.len < TXN_MEM_LIMIT)
		return true;
	if (!s->spill) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/mysql-txn.spill", s->o->data_dir);
		if (!(s->spill = fopen(path, "w+"))) {
			snprintf(err, errlen, "could not create file \"%s\": %s", path, strerror(errno));
			return false;
		}
	}
	if (fwrite(s->txn.data, 1, s->txn.len, s->spill) != s->txn.len) {
		snprintf(err, errlen, "could not write transaction spill file: %s", strerror(errno));
		return false;
	}
	s->spill_bytes += s->txn.len;
	buf_reset(&s->txn);
	return true;
}

/* ---- records ---- */

/* The encoder's view of one decoded image; returns the number of values. */
static size_t
enc_image(const table_enc_t *te, const mysql_value_t *vals, record_enc_value_t *out)
{
	const mysql_table_t *t = te->t;
	const uint8_t *prefixes = (const uint8_t *) te->prefixes.data;
	size_t k = 0;
	for (size_t i = 0; i < t->ncols; i++) {
		if (!vals[i].present)
			continue;
		record_enc_value_t *v = &out[k++];
		v->prefix = prefixes + te->prefix_off[i];
		v->prefix_len = te->prefix_off[i + 1] - te->prefix_off[i];
		v->kind = vals[i].is_null ? RECORD_ENC_NULL : RECORD_ENC_TEXT;
		v->text = vals[i].text;
		v->len = vals[i].len;
	}
	return k;
}

/* Does the rows event's column bitmap name every column of the table? */
static bool
bitmap_full(const uint8_t *bits, size_t ncols)
{
	for (size_t i = 0; i < ncols; i++)
		if (!(bits[i / 8] & (1u << (i % 8))))
			return false;
	return true;
}

typedef struct commit_info {
	uint64_t serial;   /* distinct for every replayed transaction */
	uint64_t file_no, end;
	int64_t ts_us;
	uint32_t seq;
	position_t pos;    /* the transaction's position; each row sets its seq */
	char ptext[700];   /* position text up to the sequence number: "FILE:END:" */
	size_t ptext_len;
	size_t txid_len;
} commit_info_t;

/*
 * After reserving a row's bytes (status cs): the row's seq is used either
 * way; an appended row is what the next one may derive from.  The caller
 * writes the record when *appended.
 */
static int
reserved(stream_t *s, clog_status_t cs, Steward__Op op, commit_info_t *ci, uint32_t shape,
	 bool *appended)
{
	uint32_t seq = ci->seq++;
	*appended = false;
	if (cs == CLOG_DUPLICATE)
		return STEWARD_EXIT_OK;  /* already durable before a restart */
	if (cs != CLOG_OK)
		return STEWARD_EXIT_IOERR;
	*appended = true;
	s->records++;
	s->last_serial = ci->serial;
	s->last_op = op;
	s->last_seq = seq;
	s->last_shape = shape;
	return STEWARD_EXIT_OK;
}

/*
 * The references a packed row of te is coded against (packed_ref.h): they
 * live within one batch, as a reader keeps them.  They continue when the
 * pending batch holds the shape and rows coded against them; otherwise the
 * row will be its shape's first in its batch (a new one, or the shape not
 * yet in this one), and they start from zero.
 */
static packed_refs_t *
refs_for_row(stream_t *s, const table_enc_t *te)
{
	packed_refs_t *r = te->refs;
	uint64_t gen = clog_writer_shape_batch(s->w, te->shape_id, 0);
	if (gen == 0 || r->batch != gen) {
		packed_refs_reset(r);
		r->batch = 0;
	}
	return r;
}

/*
 * Decode a row's packed images (the before image into one_pk, an update's
 * after image into two_pk), coded against the references unless the row
 * is a duplicate (read again after a restart: the reader never sees it, so
 * it must not move them).  A row coded against continuing references that
 * would not fit in the pending batch starts the next one, coded again
 * against zero references.
 */
static int
decode_packed_row(stream_t *s, const table_enc_t *te, bool update, bool dup, const uint8_t **p,
		  const uint8_t *end, buf_t *one_pk, buf_t *two_pk, char *err, size_t errlen)
{
	const uint8_t *row = *p;
	packed_refs_t *r = dup ? NULL : refs_for_row(s, te);
	for (;;) {
		*p = row;
		buf_reset(one_pk);
		buf_reset(two_pk);
		if (mysql_row_decode_packed(te->t, p, end, r, one_pk, err, errlen) != MYDEC_OK ||
		    (update && mysql_row_decode_packed(te->t, p, end, r, two_pk, err, errlen) !=
				       MYDEC_OK))
			return STEWARD_EXIT_DATAERR;
		/* the record's other fields take far less than 1 KiB */
		if (!r || r->batch == 0 ||
		    clog_writer_shape_batch(s->w, te->shape_id, one_pk->len + two_pk->len + 1024) ==
			    r->batch)
			return STEWARD_EXIT_OK;
		if (clog_writer_batch_end(s->w, err, errlen) != CLOG_OK)
			return STEWARD_EXIT_IOERR;
		packed_refs_reset(r);
		r->batch = 0;
	}
}

/*
 * Append one row change, encoded straight into the change log's pending
 * batch.  A row of a shaped table comes as packed images (before_pk,
 * after_pk: mysql_row_decode_packed, NULL when the image is absent), any
 * other as decoded values (before, after).  *appended is set when it was
 * appended (not a duplicate of a record made durable before a restart).
 */
static int
emit_record(stream_t *s, const table_enc_t *te, Steward__Op op, const mysql_value_t *before,
	    const mysql_value_t *after, const buf_t *before_pk, const buf_t *after_pk,
	    commit_info_t *ci, bool *appended, char *err, size_t errlen)
{
	bool packed = before_pk || after_pk;
	position_t *pos = &ci->pos;
	/*
	 * A packed row whose batch's previous record is of the same
	 * transaction ("FILE:END:" the same) leaves out what it shares with
	 * that record: position text (Shape.position_text_by_seq), txid,
	 * commit time and position (proto/steward.proto, Change.before_packed);
	 * readers rebuild them.  Nearly every row: its images only (op, seq
	 * and shape too where they are not the derived ones), written by the
	 * one-purpose encoder.  The first record of a batch carries everything
	 * (the general path below).
	 */
	if (packed && s->last_serial == ci->serial) {
		/* and what readers derive from that record: its op and shape, its seq + 1 */
		record_enc_packed_row_t r = {
			.has_op = op != s->last_op, .op = op,
			.has_seq = ci->seq != s->last_seq + 1, .seq = ci->seq,
			.has_shape = te->shape_id != s->last_shape, .shape = te->shape_id,
			.before = before_pk ? (const uint8_t *) before_pk->data : NULL,
			.before_len = before_pk ? before_pk->len : 0,
			.after = after_pk ? (const uint8_t *) after_pk->data : NULL,
			.after_len = after_pk ? after_pk->len : 0,
		};
		size_t size = record_encode_packed_row_size(&r);
		if (!clog_writer_batch_starts(s->w, te->shape_id, size)) {
			uint8_t *dst;
			clog_status_t cs = clog_writer_reserve_packed(s->w, pos, te->shape_id, size,
								      &dst, err, errlen);
			int rc = reserved(s, cs, op, ci, te->shape_id, appended);
			if (*appended)
				record_encode_packed_row(&r, dst);
			return rc;
		}
	}
	/* mysql_position_text's form, without a printf per row */
	char *ptext = ci->ptext, *q = ptext + ci->ptext_len, digits[12];
	int nd = 0;
	uint32_t seq = ci->seq;
	do {
		digits[nd++] = (char) ('0' + seq % 10);
		seq /= 10;
	} while (seq);
	while (nd)
		*q++ = digits[--nd];
	/*
	 * Every field set one by one: an initializer would zero the whole
	 * struct first, a `rep stos` that was a third of this function's time.
	 */
	record_enc_change_t c;
	c.head = packed ? NULL : (const uint8_t *) te->head.data;
	c.head_len = packed ? 0 : te->head.len;
	c.row.op = op;
	c.row.txid = s->txid;
	c.row.txid_len = ci->txid_len;
	c.row.has_commit_ts = true;
	c.row.commit_ts_us = ci->ts_us;
	c.row.position = pos->bytes;
	c.row.position_len = pos->len;
	c.row.position_text = ptext;
	c.row.position_text_len = (size_t) (q - ptext);
	c.row.has_seq = true;
	c.row.seq = ci->seq;
	c.keys = packed ? NULL : (const uint8_t *) te->keys.data;
	c.keys_len = packed ? 0 : te->keys.len;
	c.has_shape = packed;
	c.shape = te->shape_id;
	c.before = c.after = NULL;
	c.nbefore = c.nafter = 0;
	c.before_packed = c.after_packed = NULL;
	c.before_packed_len = c.after_packed_len = 0;
	if (before) {
		c.before = s->enc_vals;
		c.nbefore = enc_image(te, before, s->enc_vals);
	}
	if (after) {
		c.after = s->enc_vals + s->enc_cap;
		c.nafter = enc_image(te, after, s->enc_vals + s->enc_cap);
	}
	if (before_pk) {
		c.before_packed = (const uint8_t *) before_pk->data;
		c.before_packed_len = before_pk->len;
	}
	if (after_pk) {
		c.after_packed = (const uint8_t *) after_pk->data;
		c.after_packed_len = after_pk->len;
	}
	size_t size = record_encode_size(&c);
	uint8_t *dst;
	clog_status_t cs = packed ? clog_writer_reserve_packed(s->w, pos, te->shape_id, size, &dst,
							       err, errlen)
				  : clog_writer_reserve(s->w, pos, size, &dst, err, errlen);
	int rc = reserved(s, cs, op, ci, packed ? te->shape_id : 0, appended);
	if (*appended)
		record_encode(&c, dst);
	return rc;
}

/* Append one row change (emit_record); packed images come coded (decode_packed_row). */
static int
emit_row(stream_t *s, const table_enc_t *te, Steward__Op op, const mysql_value_t *before,
	 const mysql_value_t *after, const buf_t *before_pk, const buf_t *after_pk,
	 commit_info_t *ci, bool *appended, char *err, size_t errlen)
{
	position_mysql_set_seq(&ci->pos, ci->seq);
	int rc = emit_record(s, te, op, before, after, before_pk, after_pk, ci, appended, err,
			     errlen);
	/* a packed row's references are the reader's now: of the batch the row went into */
	if ((before_pk || after_pk) && *appended)
		te->refs->batch = clog_writer_shape_batch(s->w, te->shape_id, 0);
	return rc;
}

/*
 * Entry header of a run row (run_rows) with one image: Batch field 3 tag and
 * length, then the image's field tag (21 before, 22 after) and length.  In
 * place when both lengths take one byte (nearly every row); otherwise the
 * image moves up to make room.  The image is at buf[at + 5], len bytes.
 */
static void
run_entry_finish(buf_t *run, size_t at, uint8_t image_tag, size_t len)
{
	size_t rec = 2 + record_varint_len(len) + len;  /* the record: the image field */
	size_t hdr = 1 + record_varint_len(rec) + 2 + record_varint_len(len);
	if (hdr != 5) {
		buf_reserve(run, hdr - 5);
		memmove(run->data + at + hdr, run->data + at + 5, len);
	}
	uint8_t *h = (uint8_t *) run->data + at;
	*h++ = 0x1a;
	h += record_varint_put(h, rec);
	*h++ = image_tag;
	*h++ = 0x01;
	record_varint_put(h, len);
	run->len = at + hdr + len;
}

/*
 * The fast path for the rows of a rows event: a row that continues the
 * pending batch's run — the same transaction, table shape and op, the
 * next seq, its references of this batch — is a record of its images
 * alone (emit_record's short form), so the rows are decoded straight into
 * whole Batch entries in s->run and appended with one
 * clog_writer_append_run.  Stops at the end of the event or at a row that
 * needs emit_record (the batch fills up, or an image is very large: that
 * row starts the next batch).  *taken counts the rows appended.
 */
static int
run_rows(stream_t *s, const table_enc_t *te, const mysql_rows_t *rows, Steward__Op op,
	 commit_info_t *ci, const uint8_t **p, const uint8_t *end, uint64_t *taken, char *err,
	 size_t errlen)
{
	*taken = 0;
	packed_refs_t *r = te->refs;
	if (s->records == 0 || s->last_serial != ci->serial || s->last_shape != te->shape_id ||
	    s->last_op != op || s->last_seq + 1 != ci->seq || r->batch == 0 ||
	    r->batch != clog_writer_shape_batch(s->w, te->shape_id, 0))
		return STEWARD_EXIT_OK;
	size_t room = clog_writer_run_room(s->w, te->shape_id);
	bool update = rows->kind == MYSQL_ROWS_UPDATE;
	uint8_t tag = rows->kind == MYSQL_ROWS_WRITE ? 0xb2 : 0xaa;
	buf_t *run = &s->run;
	buf_reset(run);
	uint32_t n = 0;
	bool big = false;
	while (*p < end && run->len < room) {
		const uint8_t *row = *p;
		size_t at = run->len;
		buf_reserve(run, 5);
		run->len += 5;
		if (mysql_row_decode_packed(te->t, p, end, r, run, err, errlen) != MYDEC_OK)
			return STEWARD_EXIT_DATAERR;
		size_t len = run->len - at - 5;
		if (update) {
			/* two images: the before image moves to the side, the entry is rebuilt */
			buf_t *one = &s->text_before, *two = &s->text_after;
			buf_reset(one);
			buf_reset(two);
			buf_append(one, run->data + at + 5, len);
			if (mysql_row_decode_packed(te->t, p, end, r, two, err, errlen) != MYDEC_OK)
				return STEWARD_EXIT_DATAERR;
			record_enc_packed_row_t e = {
				.before = (const uint8_t *) one->data, .before_len = one->len,
				.after = (const uint8_t *) two->data, .after_len = two->len,
			};
			size_t size = record_encode_packed_row_size(&e);
			big = size > CLOG_RUN_ENTRY_MAX - 16;
			if (!big) {
				run->len = at;
				buf_reserve(run, 1 + 10 + size);
				uint8_t *h = (uint8_t *) run->data + at;
				*h++ = 0x1a;
				h += record_varint_put(h, size);
				h += record_encode_packed_row(&e, h);
				run->len = (size_t) ((char *) h - run->data);
			}
		} else {
			big = len > CLOG_RUN_ENTRY_MAX - 16;
			if (!big)
				run_entry_finish(run, at, tag, len);
		}
		if (big) {
			/* coded against this batch's references: the next batch codes it afresh */
			run->len = at;
			*p = row;
			break;
		}
		n++;
	}
	if (n) {
		ci->seq += n;
		position_mysql_set_seq(&ci->pos, ci->seq - 1);
		if (clog_writer_append_run(s->w, &ci->pos, n, (const uint8_t *) run->data, run->len,
					   err, errlen) != CLOG_OK)
			return STEWARD_EXIT_IOERR;
		s->records += n;
		s->last_seq = ci->seq - 1;
		*taken = n;
	}
	if (big) {
		if (clog_writer_batch_end(s->w, err, errlen) != CLOG_OK)
			return STEWARD_EXIT_IOERR;
		packed_refs_reset(r);
		r->batch = 0;
	}
	return STEWARD_EXIT_OK;
}

/* Decode one buffered rows event and append its rows. */
static int
replay_rows(stream_t *s, uint8_t type, const uint8_t *body, size_t len, commit_info_t *ci,
	    mysql_value_t *vals, size_t nvals, char *err, size_t errlen)
{
	mysql_rows_t rows;
	if (mysql_rows_parse(type, body, len, 8, &rows, err, errlen) != MYDEC_OK)
		return STEWARD_EXIT_DATAERR;
	table_enc_t *te = table_find(s, rows.table_id);
	if (!te) {
		snprintf(err, errlen, "rows event for unknown table id %llu at %s",
			 (unsigned long long) rows.table_id, s->file);
		return STEWARD_EXIT_DATAERR;
	}
	const mysql_table_t *t = te->t;
	if (rows.ncols != t->ncols || 2 * t->ncols > nvals) {
		snprintf(err, errlen, "rows event for \"%s.%s\" has %zu columns but its table map has %zu",
			 t->schema, t->name, rows.ncols, t->ncols);
		return STEWARD_EXIT_DATAERR;
	}
	const uint8_t *p = rows.rows, *end = rows.rows + rows.rows_len;
	mysql_value_t *one = vals, *two = vals + t->ncols;
	Steward__Op op = rows.kind == MYSQL_ROWS_WRITE    ? STEWARD__OP__OP_INSERT
			 : rows.kind == MYSQL_ROWS_DELETE ? STEWARD__OP__OP_DELETE
							  : STEWARD__OP__OP_UPDATE;
	/* compact records when the images hold every column, in the table's order */
	bool shaped = bitmap_full(rows.present, t->ncols) &&
		      (rows.kind != MYSQL_ROWS_UPDATE || bitmap_full(rows.present_after, t->ncols));
	uint64_t appended = 0;
	int rc = STEWARD_EXIT_OK;
	while (p < end) {
		bool ok;
		if (shaped) {
			uint64_t taken;
			rc = run_rows(s, te, &rows, op, ci, &p, end, &taken, err, errlen);
			if (rc != STEWARD_EXIT_OK)
				break;
			appended += taken;
			if (p >= end)
				break;
			/* values go straight into the record's packed images */
			buf_t *one_pk = &s->text_before, *two_pk = &s->text_after;
			position_mysql_set_seq(&ci->pos, ci->seq);
			/* after this run's first record nothing can be a duplicate */
			rc = decode_packed_row(s, te, rows.kind == MYSQL_ROWS_UPDATE,
					       s->records == 0 && clog_writer_would_drop(s->w, &ci->pos),
					       &p, end, one_pk, two_pk, err, errlen);
			if (rc != STEWARD_EXIT_OK)
				break;
			rc = emit_row(s, te, op, NULL, NULL,
				      rows.kind == MYSQL_ROWS_WRITE ? NULL : one_pk,
				      rows.kind == MYSQL_ROWS_WRITE ? one_pk
				      : rows.kind == MYSQL_ROWS_UPDATE ? two_pk : NULL,
				      ci, &ok, err, errlen);
			if (rc != STEWARD_EXIT_OK)
				break;
			appended += ok;
			continue;
		}
		buf_reset(&s->text_before);
		if (mysql_row_decode_buf(t, rows.present, &p, end, &s->text_before, one, err,
					 errlen) != MYDEC_OK) {
			rc = STEWARD_EXIT_DATAERR;
			break;
		}
		switch (rows.kind) {
		case MYSQL_ROWS_WRITE:
			rc = emit_row(s, te, op, NULL, one, NULL, NULL, ci, &ok, err, errlen);
			break;
		case MYSQL_ROWS_DELETE:
			rc = emit_row(s, te, op, one, NULL, NULL, NULL, ci, &ok, err, errlen);
			break;
		default:
			buf_reset(&s->text_after);
			if (mysql_row_decode_buf(t, rows.present_after, &p, end, &s->text_after, two,
						 err, errlen) != MYDEC_OK) {
				rc = STEWARD_EXIT_DATAERR;
				break;
			}
			rc = emit_row(s, te, op, one, two, NULL, NULL, ci, &ok, err, errlen);
			break;
		}
		if (rc != STEWARD_EXIT_OK)
			break;
		appended += ok;
	}
	/* metrics per rows event, not per row */
	capture_metrics_on_append_rows(s->o->src->source_name, t->schema, t->name, op, ci->ts_us,
				       appended);
	return rc;
}

static int
replay_frames(stream_t *s, const uint8_t *p, size_t len, commit_info_t *ci, mysql_value_t *vals,
	      size_t nvals, char *err, size_t errlen)
{
	while (len >= 5) {
		uint32_t n;
		memcpy(&n, p + 1, 4);
		if (n > len - 5) {
			snprintf(err, errlen, "transaction buffer is damaged");
			return STEWARD_EXIT_FAILURE;
		}
		int rc = replay_rows(s, p[0], p + 5, n, ci, vals, nvals, err, errlen);
		if (rc != STEWARD_EXIT_OK)
			return rc;
		p += 5 + n;
		len -= 5 + n;
	}
	return STEWARD_EXIT_OK;
}

/* XID or COMMIT at end offset `end`: the transaction's records go to the log. */
static int
txn_commit(stream_t *s, uint64_t end, uint32_t ts, char *err, size_t errlen)
{
	int rc = STEWARD_EXIT_OK;
	commit_info_t ci = {++s->txn_serial, stream_file_key(s, end), end,
			    (int64_t) ts * 1000000, 0, {0}, "", 0, 0};
	position_mysql(&ci.pos, ci.file_no, end, POSITION_PHASE_STREAM, 0);
	mysql_position_text(s->file, end, POSITION_PHASE_STREAM, 0, ci.ptext, sizeof(ci.ptext) - 12);
	ci.ptext_len = strlen(ci.ptext) - 1;  /* drop the "0": each row appends its own seq */
	ci.txid_len = strlen(s->txid);
	size_t nvals = 2 * MYSQL_MAX_COLUMNS;
	if (!s->vals)
		s->vals = xcalloc(nvals, sizeof(*s->vals));
	mysql_value_t *vals = s->vals;
	if (s->spill) {
		/* replay the spilled part in slices; frames never straddle a slice end */
		if (fflush(s->spill) != 0 || fseek(s->spill, 0, SEEK_SET) != 0) {
			snprintf(err, errlen, "could not read transaction spill file: %s", strerror(errno));
			rc = STEWARD_EXIT_IOERR;
			goto out;
		}
		buf_t chunk = BUF_INIT;
		uint8_t hdr[5];
		while (rc == STEWARD_EXIT_OK && fread(hdr, 1, 5, s->spill) == 5) {
			uint32_t n;
			memcpy(&n, hdr + 1, 4);
			buf_reset(&chunk);
			buf_append(&chunk, hdr, 5);
			buf_reserve(&chunk, n);
			if (fread(chunk.data + 5, 1, n, s->spill) != n) {
				snprintf(err, errlen, "transaction spill file is truncated");
				rc = STEWARD_EXIT_IOERR;
				break;
			}
			chunk.len += n;
			rc = replay_frames(s, (const uint8_t *) chunk.data, chunk.len, &ci, vals, nvals,
					   err, errlen);
		}
		buf_free(&chunk);
		if (rc != STEWARD_EXIT_OK)
			goto out;
	}
	rc = replay_frames(s, (const uint8_t *) s->txn.data, s->txn.len, &ci, vals, nvals, err, errlen);
	if (rc != STEWARD_EXIT_OK)
		goto out;
	commit_point(s, end);
	txn_reset(s);
	capture_metrics_on_commit();
	rc = stream_flush_check(s, err, errlen);
	if (rc == STEWARD_EXIT_OK && (since(&s->last_flush) * 1000 >= s->o->flush_interval_ms ||
				      clog_writer_pending_bytes(s->w) >= FLUSH_PENDING_BYTES))
		rc = stream_flush_begin(s, err, errlen);
out:
	return rc;
}

/* ---- events ---- */

static bool
starts_with_word(const char *s, size_t n, const char *word)
{
	size_t i = 0, wl = strlen(word);
	while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '('))
		i++;
	return n - i >= wl && strncasecmp(s + i, word, wl) == 0 &&
	       (n - i == wl || !((s[i + wl] | 32) >= 'a' && (s[i + wl] | 32) <= 'z'));
}

/* A character of an unquoted identifier: letters, digits, _ $ and any non-ASCII byte. */
static bool
sql_ident_char(char c)
{
	return ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '$' || (unsigned char) c >= 0x80;
}

/*
 * One identifier of a statement at *p (< end): `quoted` (`` doubling a
 * backquote), "quoted" (ANSI_QUOTES) or bare; copied to out.  false if
 * there is none or it does not fit.
 */
static bool
sql_ident(const char **p, const char *end, char *out, size_t outlen)
{
	const char *q = *p;
	size_t n = 0;
	if (q < end && (*q == '`' || *q == '"')) {
		char quote = *q++;
		for (;;) {
			if (q >= end)
				return false;
			if (*q == quote) {
				if (q + 1 < end && q[1] == quote) {
					q++;  /* a doubled quote is one quote character */
				} else {
					q++;
					break;
				}
			}
			if (n + 1 >= outlen)
				return false;
			out[n++] = *q++;
		}
	} else {
		while (q < end && sql_ident_char(*q)) {
			if (n + 1 >= outlen)
				return false;
			out[n++] = *q++;
		}
	}
	if (n == 0)
		return false;
	out[n] = '\0';
	*p = q;
	return true;
}

static const char *
sql_skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

/*
 * TRUNCATE [TABLE] [db.]name: a truncate record (truncated_tables =
 * ["db.name"]) for a captured table, at the end of the statement's event,
 * so consumers empty the table exactly where the source did.  A statement
 * whose table cannot be read is an error: skipping it would leave rows
 * downstream that the source no longer has.
 */
static int
on_truncate(stream_t *s, MARIADB_RPL_EVENT *ev, const char *q, size_t n, char *err,
	    size_t errlen)
{
	const char *p = q, *end = q + n;
	char db[256], name[256];
	p = sql_skip_space(p, end);
	p += strlen("TRUNCATE");
	p = sql_skip_space(p, end);
	if (end - p > 5 && strncasecmp(p, "TABLE", 5) == 0 &&
	    (p + 5 == end || p[5] == ' ' || p[5] == '\n' || p[5] == '\t' || p[5] == '`' ||
	     p[5] == '"' || p[5] == '\r'))
		p = sql_skip_space(p + 5, end);
	bool ok = sql_ident(&p, end, name, sizeof(name));
	if (ok && p < end && *p == '.') {
		memcpy(db, name, strlen(name) + 1);
		p++;
		ok = sql_ident(&p, end, name, sizeof(name));
	} else {
		snprintf(db, sizeof(db), "%.*s", (int) ev->event.query.database.length,
			 ev->event.query.database.str ? ev->event.query.database.str : "");
	}
	if (!ok || !*db) {
		snprintf(err, errlen, "could not read the table of \"%.*s\" in binlog %s at %u",
			 (int) (n > 200 ? 200 : n), q, s->file, ev->next_event_pos);
		return STEWARD_EXIT_DATAERR;
	}
	if (!mysql_source_wants(s->o->src, db, name))
		return STEWARD_EXIT_OK;
	char qualified[520], ptext[700];
	snprintf(qualified, sizeof(qualified), "%s.%s", db, name);
	position_t pos;
	position_mysql(&pos, stream_file_key(s, ev->next_event_pos), ev->next_event_pos,
		       POSITION_PHASE_STREAM, 0);
	mysql_position_text(s->file, ev->next_event_pos, POSITION_PHASE_STREAM, 0, ptext,
			    sizeof(ptext));
	char *tables[1] = {qualified};
	Steward__Change c = STEWARD__CHANGE__INIT;
	c.has_version = true;
	c.version = STEWARD_RECORD_VERSION;
	c.source = (char *) s->o->src->source_name;
	c.has_source_kind = true;
	c.source_kind = STEWARD__SOURCE_KIND__SOURCE_KIND_MYSQL;
	c.database = db;
	c.schema = db;
	c.table = name;
	c.has_op = true;
	c.op = STEWARD__OP__OP_TRUNCATE;
	c.txid = s->txid;
	c.has_commit_ts_us = true;
	c.commit_ts_us = (int64_t) ev->timestamp * 1000000;
	c.has_position = true;
	c.position.data = pos.bytes;
	c.position.len = pos.len;
	c.position_text = ptext;
	c.has_seq = true;
	c.seq = 0;
	c.n_truncated_tables = 1;
	c.truncated_tables = tables;
	clog_status_t cs = clog_writer_append(s->w, &c, err, errlen);
	if (cs == CLOG_DUPLICATE)
		return STEWARD_EXIT_OK;  /* already durable before a restart */
	if (cs != CLOG_OK)
		return STEWARD_EXIT_IOERR;
	s->records++;
	s->last_serial = 0;  /* the next row's batch neighbour is this record */
	capture_metrics_on_append(&c);
	return STEWARD_EXIT_OK;
}

static int
on_query(stream_t *s, MARIADB_RPL_EVENT *ev, char *err, size_t errlen)
{
	const char *q = ev->event.query.statement.str;
	size_t n = ev->event.query.statement.length;
	if (!q)
		return STEWARD_EXIT_OK;
	if (starts_with_word(q, n, "BEGIN")) {
		s->in_txn = true;
		return STEWARD_EXIT_OK;
	}
	if (starts_with_word(q, n, "COMMIT"))
		return txn_commit(s, ev->next_event_pos, ev->timestamp, err, errlen);
	if (starts_with_word(q, n, "ROLLBACK")) {
		txn_reset(s);
		return STEWARD_EXIT_OK;
	}
	static const char *const dml[] = {"INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD"};
	for (size_t i = 0; i < sizeof(dml) / sizeof(dml[0]); i++) {
		if (!starts_with_word(q, n, dml[i]))
			continue;
		const char *db = ev->event.query.database.str ? ev->event.query.database.str : "";
		char dbz[256];
		snprintf(dbz, sizeof(dbz), "%.*s", (int) ev->event.query.database.length, db);
		if (!s->o->src->database || !*s->o->src->database || !strcmp(dbz, s->o->src->database)) {
			snprintf(err, errlen,
				 "statement-format event in binlog %s at %u (database \"%s\"): row changes "
				 "cannot be captured from SQL text; set binlog_format=ROW on the server "
				 "(SET GLOBAL binlog_format = 'ROW') and take a new snapshot",
				 s->file, ev->next_event_pos, dbz);
			return STEWARD_EXIT_DATAERR;
		}
		return STEWARD_EXIT_OK;
	}
	if (starts_with_word(q, n, "TRUNCATE")) {
		int rc = on_truncate(s, ev, q, n, err, errlen);
		if (rc != STEWARD_EXIT_OK)
			return rc;
	}
	/* DDL: the named tables' columns may have changed; standalone groups end here */
	names_cache_forget_named(s, q, n);
	if (!s->in_txn || s->standalone) {
		commit_point(s, ev->next_event_pos);
		txn_reset(s);
	}
	return STEWARD_EXIT_OK;
}

static int
on_table_map(stream_t *s, const uint8_t *body, size_t len, char *err, size_t errlen)
{
	mysql_table_t *t = NULL;
	if (mysql_table_map_parse(body, len, 8, &t, err, errlen) != MYDEC_OK)
		return STEWARD_EXIT_DATAERR;
	if (!mysql_source_wants(s->o->src, t->schema, t->name)) {
		/* its id may have been a captured table's (before a server restart) */
		table_forget(s, t->table_id);
		mysql_table_free(t);
		return STEWARD_EXIT_OK;
	}
	int rc = t->has_names ? STEWARD_EXIT_OK : table_name_columns(s, t, err, errlen);
	if (rc != STEWARD_EXIT_OK) {
		mysql_table_free(t);
		return rc;
	}
	return table_put(s, t, err, errlen) ? STEWARD_EXIT_OK : STEWARD_EXIT_IOERR;
}

static int
on_rows(stream_t *s, MARIADB_RPL_EVENT *ev, const uint8_t *body, size_t len, char *err, size_t errlen)
{
	mysql_rows_t rows;
	unsigned type = ev->event_type;
	if (mysql_rows_parse(type, body, len, 8, &rows, err, errlen) != MYDEC_OK)
		return STEWARD_EXIT_DATAERR;
	if (!table_find(s, rows.table_id))
		return STEWARD_EXIT_OK;  /* a table we do not capture */
	if (!s->in_txn)
		s->in_txn = true;
	if (!rows.compressed)
		return txn_add(s, (uint8_t) type, body, len, NULL, 0, err, errlen) ? STEWARD_EXIT_OK
										   : STEWARD_EXIT_IOERR;
	/* keep the header, substitute the rows the library inflated */
	if (!ev->event.rows.row_data) {
		snprintf(err, errlen, "could not inflate compressed rows event in %s at %u",
			 s->file, ev->next_event_pos);
		return STEWARD_EXIT_DATAERR;
	}
	unsigned plain = type >= 169 ? type - 169 + 30 : type - 166 + 23;
	return txn_add(s, (uint8_t) plain, body, (size_t) (rows.rows - body),
		       ev->event.rows.row_data, ev->event.rows.row_data_size, err, errlen)
		       ? STEWARD_EXIT_OK : STEWARD_EXIT_IOERR;
}

/* use_checksum: the event ends in a CRC32 (the stream's setting when it was read) */
static int
on_event(stream_t *s, MARIADB_RPL_EVENT *ev, bool use_checksum, char *err, size_t errlen)
{
	const uint8_t *raw = ev->raw_data + ev->raw_data_ofs;
	size_t len = ev->event_length;
	size_t crc = use_checksum ? 4 : 0;
	if (len < HEADER_LEN + crc || ev->raw_data_ofs + len > ev->raw_data_size) {
		snprintf(err, errlen, "malformed binlog event in %s (length %zu)", s->file, len);
		return STEWARD_EXIT_DATAERR;
	}
	const uint8_t *body = raw + HEADER_LEN;
	size_t blen = len - HEADER_LEN - crc;
	s->event_end = ev->next_event_pos;
	switch ((int) ev->event_type) {
	case ROTATE_EVENT: {
		/*
		 * Connector/C 3.3 misreads a rotate event that follows a format
		 * description (position and name 8 bytes off): every rotation after
		 * the first file would name a garbage file.  Once the checksum
		 * setting is known, read the body ourselves: position(8) name(rest).
		 */
		uint64_t rpos = ev->event.rotate.position;
		char *name;
		if (use_checksum && blen > 8) {
			rpos = 0;
			for (int i = 7; i >= 0; i--)
				rpos = rpos << 8 | body[i];
			name = xstrndup((const char *) body + 8, blen - 8);
		} else {
			name = xstrndup(ev->event.rotate.filename.str, ev->event.rotate.filename.length);
		}
		if (!*name || mysql_binlog_file_no(name) == 0) {
			snprintf(err, errlen, "rotate event after %s names no binlog file (\"%s\")",
				 s->file ? s->file : "?", name);
			free(name);
			return STEWARD_EXIT_DATAERR;
		}
		free(s->file);
		s->file = name;
		s->positioned = true;
		if (!s->in_txn) {
			free(s->committed_file);
			s->committed_file = xstrdup(name);
			s->committed_end = rpos;
		}
		return STEWARD_EXIT_OK;
	}
	case GTID_EVENT:  /* MariaDB: domain-server-seq; begins a group */
		txn_reset(s);
		s->in_txn = true;
		s->standalone = (ev->event.gtid.flags & FL_STANDALONE) != 0;
		s->txn_gtid = (mysql_gtid_t) {ev->event.gtid.domain_id, ev->server_id,
					      ev->event.gtid.sequence_nr};
		s->txn_has_gtid = true;
		snprintf(s->txid, sizeof(s->txid), "%u-%u-%llu", ev->event.gtid.domain_id,
			 ev->server_id, (unsigned long long) ev->event.gtid.sequence_nr);
		return STEWARD_EXIT_OK;
	case GTID_LOG_EVENT: {  /* MySQL: uuid:n */
		const unsigned char *u = (const unsigned char *) ev->event.gtid_log.source_id;
		txn_reset(s);
		snprintf(s->txid, sizeof(s->txid),
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x:%llu",
			 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
			 u[13], u[14], u[15], (unsigned long long) ev->event.gtid_log.sequence_nr);
		return STEWARD_EXIT_OK;
	}
	case ANONYMOUS_GTID_LOG_EVENT:
		txn_reset(s);
		return STEWARD_EXIT_OK;
	case QUERY_EVENT:
	case QUERY_COMPRESSED_EVENT:
		return on_query(s, ev, err, errlen);
	case XID_EVENT:
		return txn_commit(s, ev->next_event_pos, ev->timestamp, err, errlen);
	case TABLE_MAP_EVENT:
		return on_table_map(s, body, blen, err, errlen);
	case BINLOG_CHECKPOINT_EVENT:  /* written after a file's last transaction */
	case GTID_LIST_EVENT:
		/*
		 * Between transactions.  A dump by GTID begins with a rotate to
		 * offset 4 of the file it starts in and, after that file's first
		 * events, a GTID list whose end offset is where the stream resumes:
		 * that is the committed point (and --endpos there is reached).
		 */
		if (!s->in_txn && s->committed_file && !strcmp(s->committed_file, s->file) &&
		    ev->next_event_pos > s->committed_end)
			s->committed_end = ev->next_event_pos;
		return STEWARD_EXIT_OK;
	default:
		if (mysql_is_rows_event(ev->event_type))
			return on_rows(s, ev, body, blen, err, errlen);
		return STEWARD_EXIT_OK;  /* FDE, heartbeat, GTID list, annotate, ... */
	}
}

/* ---- connection ---- */

/*
 * End the server's dump thread for our connection while the stream is
 * alive.  This also ends the reading thread's read at once (else it waits
 * for the next heartbeat), and the server would otherwise notice the
 * closed connection only when its next heartbeat fails to send (up to a
 * second later): the dump thread would linger in the process list, and an
 * agent started again in that time (same server id) would wait ~100 ms
 * for the server to retire it.  A user may always KILL its own
 * connections.  Best effort: failing here changes nothing captured.
 */
static void
stream_end_dump(stream_t *s)
{
	if (!s->dump_id)
		return;
	char err[256];
	MYSQL *m = s->meta ? s->meta : mysql_conn_open(s->o->dsn, 5, err, sizeof(err));
	if (!m) {
		log_debug("capture", "could not end the server's dump thread: %s", err);
		return;
	}
	char sql[64];
	snprintf(sql, sizeof(sql), "KILL CONNECTION %lu", s->dump_id);
	if (mysql_query(m, sql) != 0)
		log_debug("capture", "could not end the server's dump thread: %s", mysql_error(m));
	if (m != s->meta)
		mysql_close(m);
	s->dump_id = 0;
}

static void
stream_close(stream_t *s)
{
	if (s->pf && !mysql_prefetch_done(s->pf))
		stream_end_dump(s);
	mysql_prefetch_stop(s->pf);  /* before rpl and m: it reads rpl until stopped */
	s->pf = NULL;
	if (s->rpl)
		mariadb_rpl_close(s->rpl);
	s->rpl = NULL;
	if (s->m)
		mysql_close(s->m);
	s->m = NULL;
}

/*
 * Does the server check each event's CRC32 as it reads it from its binlog
 * file before sending it (source_verify_checksum, or master_verify_checksum
 * on MariaDB and older MySQL)?  Unknown counts as no.
 */
static bool
server_verifies_checksums(MYSQL *m)
{
	static const char *const vars[] = {"source_verify_checksum", "master_verify_checksum"};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		char sql[80];
		snprintf(sql, sizeof(sql), "SELECT @@global.%s", vars[i]);
		if (mysql_query(m, sql) != 0)
			continue;  /* this flavour does not have it */
		MYSQL_RES *r = mysql_store_result(m);
		MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
		bool on = row && row[0] && (strcmp(row[0], "1") == 0 || strcasecmp(row[0], "ON") == 0);
		mysql_free_result(r);
		return on;
	}
	return false;
}

/*
 * Have the server start the dump at GTID state s->gtid (MariaDB: the
 * position a replica with master_use_gtid sends), in strict mode, so a
 * server that lacks a transaction already captured refuses instead of
 * skipping ahead.
 */
static int
stream_request_gtid(stream_t *s, const char *state, char *err, size_t errlen)
{
	size_t n = strlen(state);
	char *esc = xmalloc(2 * n + 1), *sql = xmalloc(2 * n + 64);
	mysql_real_escape_string(s->m, esc, state, (unsigned long) n);
	snprintf(sql, 2 * n + 64, "SET @slave_connect_state = '%s'", esc);
	bool ok = mysql_conn_exec(s->m, sql, err, errlen) &&
		  mysql_conn_exec(s->m, "SET @slave_gtid_strict_mode = 1", err, errlen) &&
		  mysql_conn_exec(s->m, "SET @slave_gtid_ignore_duplicates = 0", err, errlen);
	free(esc);
	free(sql);
	return ok ? STEWARD_EXIT_OK : STEWARD_EXIT_FAILURE;
}

/* Open the dump at the committed point: by GTID state when known, else by file and offset. */
static int
stream_open(stream_t *s, char *err, size_t errlen)
{
	const char *file = s->committed_file;
	uint64_t pos = s->committed_end;
	char state[MYSQL_GTID_STATE_TEXT_MAX] = "";
	/* heartbeat every second; a read that sees nothing for 30 s is a lost connection */
	if (!(s->m = mysql_conn_open(s->o->dsn, 30, err, errlen)))
		return STEWARD_EXIT_UNAVAILABLE;
	if (s->has_gtid) {
		mysql_gtid_state_format(&s->gtid, state, sizeof state);
		int rc = stream_request_gtid(s, state, err, errlen);
		if (rc != STEWARD_EXIT_OK)
			return rc;
	}
	static const char *const setup[] = {
		"SET @master_binlog_checksum = @@global.binlog_checksum",
		"SET @source_binlog_checksum = @@global.binlog_checksum",
		"SET @mariadb_slave_capability = 4",
		"SET @master_heartbeat_period = 1000000000",
	};
	for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]); i++)
		(void) mysql_query(s->m, setup[i]);  /* each flavour ignores the other's variables */
	/*
	 * Event checksums detect a damaged binlog file.  A server that verifies
	 * them as it reads its binlog (source/master_verify_checksum=ON) stops
	 * the stream with an error before sending a damaged event, so checking
	 * every event again here (a CRC32 over every byte received) protects
	 * only the connection, which TCP's checksum and — for every remote
	 * host, by default — TLS's authentication already protect.  Otherwise
	 * the reading thread checks each event (mysql_prefetch.h: Connector/C's
	 * own check, done faster) and the stream stops on a mismatch.  See
	 * docs/capture-mysql.md.
	 */
	bool verify = !server_verifies_checksums(s->m);
	s->rpl = mariadb_rpl_init(s->m);
	if (!s->rpl) {
		snprintf(err, errlen, "could not start replication: %s", mysql_error(s->m));
		return STEWARD_EXIT_FAILURE;
	}
	mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_SERVER_ID, (unsigned) s->o->server_id);
	mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_FILENAME, file, strlen(file));
	mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_START, (unsigned long) pos);
	mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_FLAGS, (unsigned) 0);
	mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_VERIFY_CHECKSUM, (unsigned) 0);
	mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_UNCOMPRESS, (unsigned) 1);
	if (mariadb_rpl_open(s->rpl) != 0) {
		snprintf(err, errlen, "could not start binlog stream at %s:%llu: %s", file,
			 (unsigned long long) pos, mysql_error(s->m));
		return mysql_conn_error_is_lost(mysql_errno(s->m)) ? STEWARD_EXIT_UNAVAILABLE
								  : STEWARD_EXIT_FAILURE;
	}
	s->dump_id = mysql_thread_id(s->m);
	if (!(s->pf = mysql_prefetch_start(s->m, s->rpl, verify, &mysql_capture_stop, err,
						  errlen)))
		return STEWARD_EXIT_FAILURE;
	free(s->file);
	s->file = xstrdup(file);  /* a dump by GTID begins with a rotate to the server's own file */
	/* never lowered: a failover's first rotate may have moved the committed point back */
	uint64_t key = position_mysql_file_key(s->epoch, mysql_binlog_file_no(file));
	if (key > s->floor_key || (key == s->floor_key && pos > s->floor_end)) {
		s->floor_key = key;
		s->floor_end = pos;
	}
	s->floor_check = true;
	s->positioned = false;
	if (s->has_gtid)
		log_info("capture", "streaming binlog after GTID %s (%s:%llu) as replica server id %u "
			 "(event checksums verified by %s)", *state ? state : "(none)", file,
			 (unsigned long long) pos, s->o->server_id, verify ? "steward" : "the server");
	else
		log_info("capture", "streaming binlog from %s:%llu as replica server id %u (event "
			 "checksums verified by %s)", file, (unsigned long long) pos, s->o->server_id,
			 verify ? "steward" : "the server");
	capture_metrics_set_state(CAPTURE_STATE_STREAMING, NULL);
	return STEWARD_EXIT_OK;
}

static bool
endpos_reached(const stream_t *s)
{
	if (!s->end_file || !s->committed_file || !s->positioned)
		return false;
	uint64_t a = mysql_binlog_file_no(s->committed_file), b = mysql_binlog_file_no(s->end_file);
	return a > b || (a == b && s->committed_end >= s->end_off);
}

static bool
parse_endpos(stream_t *s, const char *endpos, char *err, size_t errlen)
{
	const char *colon = endpos ? strrchr(endpos, ':') : NULL;
	char *end;
	if (!endpos)
		return true;
	if (!colon || colon == endpos || !colon[1] ||
	    (s->end_off = strtoull(colon + 1, &end, 10), *end)) {
		snprintf(err, errlen, "invalid end position \"%s\": expected FILE:OFFSET, e.g. "
			 "mysql-bin.000003:4177", endpos);
		return false;
	}
	s->end_file = xstrndup(endpos, (size_t) (colon - endpos));
	return true;
}

static int
stream_loop(stream_t *s, char *err, size_t errlen)
{
	MARIADB_RPL_EVENT *ev = NULL;
	int rc = STEWARD_EXIT_OK;
	bool use_checksum = false;
	mysql_prefetch_end_t end;
	while (!mysql_capture_stop) {
		if (endpos_reached(s)) {
			rc = stream_flush(s, err, errlen);
			if (rc == STEWARD_EXIT_OK)
				log_info("capture", "end position %s:%llu reached", s->end_file,
					 (unsigned long long) s->end_off);
			break;
		}
		mysql_prefetch_release(s->pf, ev);
		ev = mysql_prefetch_next(s->pf, &use_checksum, &end);
		if (!ev && end.stopped)
			break;  /* SIGTERM while waiting for an event */
		if (!ev) {
			unsigned e = end.errnum;
			const char *msg = end.msg;
			if (e == CR_ERR_CHECKSUM_VERIFICATION_ERROR || strstr(msg, "crc check") ||
			    strstr(msg, "hecksum")) {
				/* checked by us or by the server (source_verify_checksum): never skip it */
				snprintf(err, errlen,
					 "binlog event after %s:%llu failed its checksum: the server's "
					 "binlog file is damaged (%s); restore the server's binlog or "
					 "start over with an empty --data-dir to take a new snapshot",
					 s->committed_file ? s->committed_file : "?",
					 (unsigned long long) s->committed_end, msg);
				rc = STEWARD_EXIT_DATAERR;
			} else if (e == 0 || mysql_conn_error_is_lost(e)) {
				snprintf(err, errlen, "lost binlog connection at %s:%llu: %s",
					 s->committed_file ? s->committed_file : "?",
					 (unsigned long long) s->committed_end, e ? msg : "end of stream");
				rc = STEWARD_EXIT_UNAVAILABLE;
			} else if (e == 1236 && s->has_gtid) {
				char state[MYSQL_GTID_STATE_TEXT_MAX];
				mysql_gtid_state_format(&s->gtid, state, sizeof state);
				snprintf(err, errlen,
					 "binlog position GTID %s (%s:%llu) is not on this server (%s): "
					 "it lacks transactions already captured (a failover that lost "
					 "them?) or purged the binlog that holds them; point --dsn at a "
					 "server that has them, or start over with an empty --data-dir "
					 "to take a new snapshot", *state ? state : "(none)",
					 s->committed_file ? s->committed_file : "?",
					 (unsigned long long) s->committed_end, msg);
				rc = STEWARD_EXIT_FAILURE;
			} else if (e == 1236 || strstr(msg, "purged") || strstr(msg, "first log file")) {
				snprintf(err, errlen,
					 "binlog position %s:%llu is no longer on the server (%s); the "
					 "binlog was purged before it was captured: start over with an "
					 "empty --data-dir to take a new snapshot",
					 s->committed_file ? s->committed_file : "?",
					 (unsigned long long) s->committed_end, msg);
				rc = STEWARD_EXIT_FAILURE;
			} else {
				snprintf(err, errlen, "could not read binlog at %s: %s (error %u)",
					 s->file ? s->file : "?", msg, e);
				rc = STEWARD_EXIT_FAILURE;
			}
			break;
		}
		rc = on_event(s, ev, use_checksum, err, errlen);
		if (rc != STEWARD_EXIT_OK)
			break;
		if (!s->in_txn && since(&s->last_flush) * 1000 >= s->o->flush_interval_ms) {
			rc = stream_flush(s, err, errlen);
			if (rc != STEWARD_EXIT_OK)
				break;
		}
	}
	mysql_prefetch_release(s->pf, ev);
	return rc;
}

int
mysql_stream_run(const mysql_stream_opts_t *o, clog_writer_t *w, const mysql_stream_start_t *from,
		 char *err, size_t errlen)
{
	stream_t s = {.o = o, .w = w};
	int rc = STEWARD_EXIT_OK;
	double backoff = 0.5;
	struct timespec lost_since = {0, 0};
	clock_gettime(CLOCK_MONOTONIC, &s.last_flush);
	/* a spill file left by a process killed mid-transaction holds nothing we need */
	char spill_path[4096];
	snprintf(spill_path, sizeof(spill_path), "%s/mysql-txn.spill", o->data_dir);
	unlink(spill_path);
	s.committed_file = xstrdup(from->file);
	s.committed_end = from->offset;
	s.epoch = from->epoch;
	if (from->gtid) {
		s.has_gtid = true;
		s.gtid = *from->gtid;
	}
	uint32_t floor_epoch;
	uint64_t floor_file, seq;
	int phase;
	if (position_mysql_parse(&from->floor, &floor_epoch, &floor_file, &s.floor_end, &phase, &seq))
		s.floor_key = position_mysql_file_key(floor_epoch, floor_file);
	if (!parse_endpos(&s, o->endpos, err, errlen)) {
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	for (;;) {
		uint64_t records_at_open = s.records;
		struct timespec opened;
		clock_gettime(CLOCK_MONOTONIC, &opened);
		rc = stream_open(&s, err, errlen);
		if (rc == STEWARD_EXIT_OK) {
			rc = stream_loop(&s, err, errlen);
			if (rc == STEWARD_EXIT_OK)
				break;
			/* a stream that made progress or ran for a while starts a new outage */
			if (s.records > records_at_open || since(&opened) > 30) {
				lost_since.tv_sec = 0;
				backoff = 0.5;
			}
		}
		stream_close(&s);
		if (s.meta) {  /* the catalog connection went with the server */
			mysql_close(s.meta);
			s.meta = NULL;
		}
		txn_reset(&s);  /* the partial transaction is read again from its start */
		tables_clear(&s);
		if (rc == STEWARD_EXIT_UNAVAILABLE && mysql_capture_stop) {
			/* a read cut short by SIGTERM (TLS reads fail on EINTR): a clean stop */
			rc = STEWARD_EXIT_OK;
			err[0] = '\0';
		}
		if (rc != STEWARD_EXIT_UNAVAILABLE || mysql_capture_stop)
			break;
		int frc = stream_flush(&s, err + strlen(err), errlen - strlen(err));
		if (frc != STEWARD_EXIT_OK) {
			rc = frc;
			break;
		}
		if (lost_since.tv_sec == 0)
			clock_gettime(CLOCK_MONOTONIC, &lost_since);
		else if (since(&lost_since) > RECONNECT_GIVE_UP_S)
			break;
		capture_metrics_set_state(CAPTURE_STATE_RECONNECTING, err);
		log_warn("capture", "%s; reconnecting in %.1f s", err, backoff);
		struct timespec ts = {(time_t) backoff, (long) ((backoff - (double) (time_t) backoff) * 1e9)};
		nanosleep(&ts, NULL);
		backoff = backoff * 2 > 10 ? 10 : backoff * 2;
		err[0] = '\0';
	}
	if (rc == STEWARD_EXIT_OK || mysql_capture_stop) {
		char ferr[512];
		int frc = stream_flush(&s, ferr, sizeof(ferr));
		if (frc != STEWARD_EXIT_OK && rc == STEWARD_EXIT_OK) {
			snprintf(err, errlen, "%s", ferr);
			rc = frc;
		}
	}
out:
	stream_close(&s);
	if (s.meta)
		mysql_close(s.meta);
	txn_reset(&s);
	buf_free(&s.txn);
	for (size_t i = 0; i < s.ntables; i++)
		table_enc_free(s.tables[i]);
	free(s.tables);
	names_cache_clear(&s);
	buf_free(&s.text_before);
	buf_free(&s.text_after);
	buf_free(&s.run);
	free(s.vals);
	for (size_t i = 0; i < s.nshape_refs; i++) {
		packed_refs_free(s.shape_refs[i]);
		free(s.shape_refs[i]);
	}
	free(s.shape_refs);
	free(s.enc_vals);
	free(s.file);
	free(s.committed_file);
	free(s.flushed_file);
	free(s.async_file);
	free(s.end_file);
	return rc;
}
