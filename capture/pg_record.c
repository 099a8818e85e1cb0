/*
 * pg_record.c — steward.Change records from pgoutput changes and COPY
 * rows; see pg_record.h.
 */
#include "pg_record.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "position.h"
#include "record.h"

static void
record_init(Steward__Change *c, const pgcap_source_t *src, const pgcap_relation_t *rel,
	    Steward__Op op)
{
	steward__change__init(c);
	c->has_version = 1;
	c->version = STEWARD_RECORD_VERSION;
	c->source = (char *) src->name;
	c->has_source_kind = 1;
	c->source_kind = STEWARD__SOURCE_KIND__SOURCE_KIND_POSTGRESQL;
	c->database = (char *) src->database;
	if (rel) {
		c->schema = rel->schema;
		c->table = rel->table;
	}
	c->has_op = 1;
	c->op = op;
}

static void
set_position(Steward__Change *c, arena_t *a, uint64_t lsn, int phase, uint64_t seq)
{
	position_t p;
	position_pg(&p, lsn, phase, seq);
	c->has_position = 1;
	c->position.len = p.len;
	c->position.data = arena_memdup(a, p.bytes, p.len);
	char text[80];
	snprintf(text, sizeof(text), "%s%X/%X:%" PRIu64,
		 phase == POSITION_PHASE_SNAPSHOT ? "snapshot:" : "", (unsigned) (lsn >> 32),
		 (unsigned) lsn, seq);
	c->position_text = arena_strdup(a, text);
}

static void
set_txn(Steward__Change *c, arena_t *a, const pgcap_txn_t *txn)
{
	char xid[16];
	snprintf(xid, sizeof(xid), "%u", txn->xid);
	c->txid = arena_strdup(a, xid);
	c->has_commit_ts_us = 1;
	c->commit_ts_us = txn->commit_ts_us;
	c->has_seq = 1;
	c->seq = txn->seq;
}

static void
set_keys(Steward__Change *c, arena_t *a, const pgcap_relation_t *rel)
{
	size_t n = 0;
	for (size_t i = 0; i < rel->ncols; i++)
		n += rel->cols[i].key;
	c->key = arena_alloc(a, (n + 1) * sizeof(char *));
	c->n_key = 0;
	for (size_t i = 0; i < rel->ncols; i++)
		if (rel->cols[i].key)
			c->key[c->n_key++] = rel->cols[i].name;
}

static Steward__Value *
new_value(arena_t *a, const pgcap_column_t *col)
{
	Steward__Value *v = arena_alloc(a, sizeof(*v));
	steward__value__init(v);
	v->name = col->name;
	v->has_type_id = 1;
	v->type_id = col->type_oid;
	v->type_name = (char *) col->type_name;
	return v;
}

/* Binary values are not requested (binary 'false'); keep any as bytea-style hex. */
static char *
hex_text(arena_t *a, const char *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *out = arena_alloc(a, 2 * len + 3);
	out[0] = '\\';
	out[1] = 'x';
	for (size_t i = 0; i < len; i++) {
		out[2 + 2 * i] = hex[(unsigned char) data[i] >> 4];
		out[3 + 2 * i] = hex[(unsigned char) data[i] & 15];
	}
	out[2 + 2 * len] = '\0';
	return out;
}

/* Image from a tuple; key_only keeps just the replica identity columns ('K'). */
static bool
image_from_tuple(Steward__Change *c, arena_t *a, const pgcap_relation_t *rel,
		 const pgoutput_tuple_t *t, bool key_only, bool before, char *err, size_t errlen)
{
	if (t->ncols > rel->ncols) {
		snprintf(err, errlen,
			 "change to table \"%s.%s\" has %u columns but its relation message "
			 "described %zu",
			 rel->schema, rel->table, t->ncols, rel->ncols);
		return false;
	}
	Steward__Value **vals = arena_alloc(a, ((size_t) t->ncols + 1) * sizeof(*vals));
	size_t n = 0;
	for (size_t i = 0; i < t->ncols; i++) {
		const pgcap_column_t *col = &rel->cols[i];
		const pgoutput_value_t *pv = &t->values[i];
		if (key_only && !col->key)
			continue;
		Steward__Value *v = new_value(a, col);
		switch (pv->kind) {
		case 'n':
			v->has_is_null = 1;
			v->is_null = 1;
			break;
		case 'u':
			v->has_unchanged = 1;
			v->unchanged = 1;
			if (!before) {
				if (c->unchanged == NULL)
					c->unchanged = arena_alloc(a, (rel->ncols + 1) * sizeof(char *));
				c->unchanged[c->n_unchanged++] = col->name;
			}
			break;
		case 'b':
			v->text = hex_text(a, pv->data, pv->len);
			break;
		default:
			v->text = arena_strndup(a, pv->data, pv->len);
		}
		vals[n++] = v;
	}
	if (before) {
		c->before = vals;
		c->n_before = n;
	} else {
		c->after = vals;
		c->n_after = n;
	}
	return true;
}

bool
pgcap_record_change(Steward__Change *c, arena_t *a, const pgcap_source_t *src,
		    const pgcap_relation_t *rel, const pgoutput_msg_t *m, const pgcap_txn_t *txn,
		    char *err, size_t errlen)
{
	Steward__Op op = m->type == PGOUTPUT_INSERT ? STEWARD__OP__OP_INSERT
			 : m->type == PGOUTPUT_UPDATE ? STEWARD__OP__OP_UPDATE
						      : STEWARD__OP__OP_DELETE;
	record_init(c, src, rel, op);
	set_position(c, a, txn->final_lsn, POSITION_PHASE_STREAM, txn->seq);
	set_txn(c, a, txn);
	set_keys(c, a, rel);
	if (m->u.change.old_kind &&
	    !image_from_tuple(c, a, rel, &m->u.change.old_tuple, m->u.change.old_kind == 'K',
			      true, err, errlen))
		return false;
	if (m->type != PGOUTPUT_DELETE &&
	    !image_from_tuple(c, a, rel, &m->u.change.new_tuple, false, false, err, errlen))
		return false;
	return true;
}

static void
set_truncated(Steward__Change *c, arena_t *a, const pgcap_relation_t *const *rels, size_t nrels)
{
	c->truncated_tables = arena_alloc(a, (nrels + 1) * sizeof(char *));
	c->n_truncated_tables = nrels;
	for (size_t i = 0; i < nrels; i++) {
		size_t l = strlen(rels[i]->schema) + strlen(rels[i]->table) + 2;
		char *name = arena_alloc(a, l);
		snprintf(name, l, "%s.%s", rels[i]->schema, rels[i]->table);
		c->truncated_tables[i] = name;
	}
}

void
pgcap_record_truncate(Steward__Change *c, arena_t *a, const pgcap_source_t *src,
		      const pgcap_relation_t *const *rels, size_t nrels, const pgcap_txn_t *txn)
{
	record_init(c, src, nrels ? rels[0] : NULL, STEWARD__OP__OP_TRUNCATE);
	set_position(c, a, txn->final_lsn, POSITION_PHASE_STREAM, txn->seq);
	set_txn(c, a, txn);
	set_truncated(c, a, rels, nrels);
}

void
pgcap_record_message(Steward__Change *c, arena_t *a, const pgcap_source_t *src,
		     const pgoutput_msg_t *m, uint64_t lsn, uint32_t seq, const pgcap_txn_t *txn)
{
	record_init(c, src, NULL, STEWARD__OP__OP_MESSAGE);
	set_position(c, a, lsn, POSITION_PHASE_STREAM, seq);
	if (txn) {
		set_txn(c, a, txn);
	} else {
		c->has_seq = 1;
		c->seq = seq;
	}
	c->message_prefix = (char *) m->u.message.prefix;
	c->has_message_content = 1;
	c->message_content.len = m->u.message.len;
	c->message_content.data = (uint8_t *) m->u.message.content;
}

void
pgcap_record_snapshot(Steward__Change *c, arena_t *a, const pgcap_source_t *src,
		      const pgcap_relation_t *rel, const pgcopy_field_t *fields,
		      uint64_t consistent_lsn, uint64_t row, int64_t ts_us)
{
	record_init(c, src, rel, STEWARD__OP__OP_SNAPSHOT_READ);
	set_position(c, a, consistent_lsn, POSITION_PHASE_SNAPSHOT, row);
	c->has_commit_ts_us = 1;
	c->commit_ts_us = ts_us;
	set_keys(c, a, rel);
	Steward__Value **vals = arena_alloc(a, (rel->ncols + 1) * sizeof(*vals));
	for (size_t i = 0; i < rel->ncols; i++) {
		Steward__Value *v = new_value(a, &rel->cols[i]);
		if (fields[i].is_null) {
			v->has_is_null = 1;
			v->is_null = 1;
		} else {
			v->text = fields[i].text;
		}
		vals[i] = v;
	}
	c->after = vals;
	c->n_after = rel->ncols;
}

void
pgcap_record_snapshot_reset(Steward__Change *c, arena_t *a, const pgcap_source_t *src,
			    const pgcap_relation_t *const *rels, size_t nrels,
			    uint64_t consistent_lsn, int64_t ts_us)
{
	record_init(c, src, nrels ? rels[0] : NULL, STEWARD__OP__OP_TRUNCATE);
	set_position(c, a, consistent_lsn, POSITION_PHASE_SNAPSHOT, 0);
	c->has_commit_ts_us = 1;
	c->commit_ts_us = ts_us;
	set_truncated(c, a, rels, nrels);
}
