/*
 * pgoutput.c — bounds-checked decoder for pgoutput protocol v1 messages;
 * see pgoutput.h.  Wire layouts are quoted per message below (all integers
 * big-endian, strings NUL-terminated).
 */
#include "pgoutput.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* A read cursor over the message; the first failure sticks. */
typedef struct reader {
	const uint8_t *buf;
	size_t len;
	size_t off;
	bool failed;
	char *err;
	size_t errlen;
} reader_t;

static bool
need(reader_t *r, size_t n, const char *what)
{
	if (r->failed)
		return false;
	if (r->len - r->off < n) {
		snprintf(r->err, r->errlen,
			 "truncated pgoutput message: %s needs %zu bytes at offset %zu, %zu left",
			 what, n, r->off, r->len - r->off);
		r->failed = true;
		return false;
	}
	return true;
}

static uint8_t
get_u8(reader_t *r, const char *what)
{
	if (!need(r, 1, what))
		return 0;
	return r->buf[r->off++];
}

static uint16_t
get_u16(reader_t *r, const char *what)
{
	if (!need(r, 2, what))
		return 0;
	const uint8_t *p = r->buf + r->off;
	r->off += 2;
	return (uint16_t) ((uint16_t) p[0] << 8 | p[1]);
}

static uint32_t
get_u32(reader_t *r, const char *what)
{
	if (!need(r, 4, what))
		return 0;
	const uint8_t *p = r->buf + r->off;
	r->off += 4;
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t
get_u64(reader_t *r, const char *what)
{
	uint64_t hi = get_u32(r, what);
	uint64_t lo = get_u32(r, what);
	return hi << 32 | lo;
}

/* A NUL-terminated string inside the buffer; "" on failure. */
static const char *
get_str(reader_t *r, const char *what)
{
	if (r->failed)
		return "";
	const uint8_t *start = r->buf + r->off;
	const uint8_t *nul = memchr(start, '\0', r->len - r->off);
	if (nul == NULL) {
		snprintf(r->err, r->errlen,
			 "truncated pgoutput message: %s at offset %zu is not NUL-terminated",
			 what, r->off);
		r->failed = true;
		return "";
	}
	r->off += (size_t) (nul - start) + 1;
	return (const char *) start;
}

static void
fail(reader_t *r, const char *fmt_what, unsigned value)
{
	if (r->failed)
		return;
	snprintf(r->err, r->errlen, "invalid pgoutput message: %s 0x%02x at offset %zu",
		 fmt_what, value, r->off ? r->off - 1 : 0);
	r->failed = true;
}

/*
 * TupleData: Int16 ncols, then per column Byte1 kind:
 *   'n' NULL, 'u' unchanged TOAST (no data), 't' text / 'b' binary followed
 *   by Int32 length and that many bytes.
 */
static void
get_tuple(reader_t *r, arena_t *arena, pgoutput_tuple_t *t)
{
	t->ncols = get_u16(r, "tuple column count");
	t->values = NULL;
	if (r->failed)
		return;
	/* Each column takes at least one byte: reject absurd counts before allocating. */
	if (t->ncols > r->len - r->off) {
		need(r, t->ncols, "tuple columns");
		return;
	}
	t->values = arena_calloc(arena, (size_t) t->ncols * sizeof(*t->values) + 1);
	for (uint16_t i = 0; i < t->ncols && !r->failed; i++) {
		pgoutput_value_t *v = &t->values[i];
		v->kind = (char) get_u8(r, "tuple column kind");
		switch (v->kind) {
		case 'n':
		case 'u':
			break;
		case 't':
		case 'b':
			v->len = get_u32(r, "tuple value length");
			if (need(r, v->len, "tuple value")) {
				v->data = (const char *) r->buf + r->off;
				r->off += v->len;
			}
			break;
		default:
			fail(r, "tuple column kind", (unsigned char) v->kind);
		}
	}
}

static void
parse_begin(reader_t *r, pgoutput_msg_t *m)
{
	/* Int64 final LSN, Int64 commit timestamp, Int32 xid */
	m->u.begin.final_lsn = get_u64(r, "begin final LSN");
	m->u.begin.commit_ts = (int64_t) get_u64(r, "begin commit timestamp");
	m->u.begin.xid = get_u32(r, "begin xid");
}

static void
parse_commit(reader_t *r, pgoutput_msg_t *m)
{
	/* Int8 flags (unused, 0), Int64 commit LSN, Int64 end LSN, Int64 commit timestamp */
	m->u.commit.flags = get_u8(r, "commit flags");
	m->u.commit.commit_lsn = get_u64(r, "commit LSN");
	m->u.commit.end_lsn = get_u64(r, "commit end LSN");
	m->u.commit.commit_ts = (int64_t) get_u64(r, "commit timestamp");
}

static void
parse_origin(reader_t *r, pgoutput_msg_t *m)
{
	/* Int64 commit LSN on the origin server, String origin name */
	m->u.origin.commit_lsn = get_u64(r, "origin LSN");
	m->u.origin.name = get_str(r, "origin name");
}

static void
parse_relation(reader_t *r, arena_t *arena, pgoutput_msg_t *m)
{
	/*
	 * Int32 relation OID, String namespace ("" = pg_catalog), String
	 * relation name, Int8 replica identity, Int16 column count, then per
	 * column: Int8 flags (1 = key), String name, Int32 type OID, Int32 typmod.
	 */
	m->u.relation.relid = get_u32(r, "relation OID");
	m->u.relation.nspname = get_str(r, "relation namespace");
	m->u.relation.relname = get_str(r, "relation name");
	m->u.relation.replident = (char) get_u8(r, "relation replica identity");
	m->u.relation.ncols = get_u16(r, "relation column count");
	m->u.relation.cols = NULL;
	if (r->failed)
		return;
	/* A column takes at least 10 bytes. */
	if ((size_t) m->u.relation.ncols * 10 > r->len - r->off) {
		need(r, (size_t) m->u.relation.ncols * 10, "relation columns");
		return;
	}
	m->u.relation.cols = arena_calloc(arena, (size_t) m->u.relation.ncols *
						 sizeof(pgoutput_column_t) + 1);
	for (uint16_t i = 0; i < m->u.relation.ncols && !r->failed; i++) {
		pgoutput_column_t *c = &m->u.relation.cols[i];
		c->flags = get_u8(r, "column flags");
		c->name = get_str(r, "column name");
		c->type_oid = get_u32(r, "column type OID");
		c->typmod = (int32_t) get_u32(r, "column typmod");
	}
}

static void
parse_type(reader_t *r, pgoutput_msg_t *m)
{
	/* Int32 type OID, String namespace, String type name */
	m->u.type.type_oid = get_u32(r, "type OID");
	m->u.type.nspname = get_str(r, "type namespace");
	m->u.type.typname = get_str(r, "type name");
}

static void
parse_change(reader_t *r, arena_t *arena, pgoutput_msg_t *m)
{
	/*
	 * Insert: Int32 relid, 'N', TupleData.
	 * Update: Int32 relid, optional ('K' | 'O') TupleData, 'N' TupleData.
	 * Delete: Int32 relid, ('K' | 'O') TupleData.
	 */
	memset(&m->u.change, 0, sizeof(m->u.change));
	m->u.change.relid = get_u32(r, "relation OID");
	uint8_t tag = get_u8(r, "tuple tag");
	if (r->failed)
		return;
	if (m->type != PGOUTPUT_INSERT && (tag == 'K' || tag == 'O')) {
		m->u.change.old_kind = (char) tag;
		get_tuple(r, arena, &m->u.change.old_tuple);
		if (m->type == PGOUTPUT_DELETE)
			return;
		tag = get_u8(r, "new tuple tag");
	} else if (m->type == PGOUTPUT_DELETE) {
		fail(r, "delete tuple tag", tag);
		return;
	}
	if (tag != 'N') {
		fail(r, "new tuple tag", tag);
		return;
	}
	get_tuple(r, arena, &m->u.change.new_tuple);
}

static void
parse_truncate(reader_t *r, arena_t *arena, pgoutput_msg_t *m)
{
	/* Int32 relation count, Int8 options, Int32 relation OID per relation */
	uint32_t n = get_u32(r, "truncate relation count");
	m->u.truncate.options = get_u8(r, "truncate options");
	m->u.truncate.nrelids = 0;
	m->u.truncate.relids = NULL;
	if (r->failed)
		return;
	if (n > (r->len - r->off) / 4) {
		need(r, (size_t) n * 4, "truncate relation OIDs");
		return;
	}
	m->u.truncate.relids = arena_alloc(arena, (size_t) n * 4 + 1);
	for (uint32_t i = 0; i < n; i++)
		m->u.truncate.relids[i] = get_u32(r, "truncate relation OID");
	m->u.truncate.nrelids = n;
}

static void
parse_message(reader_t *r, pgoutput_msg_t *m)
{
	/* Int8 flags, Int64 LSN, String prefix, Int32 length, Byte[length] content */
	m->u.message.flags = get_u8(r, "message flags");
	m->u.message.lsn = get_u64(r, "message LSN");
	m->u.message.prefix = get_str(r, "message prefix");
	m->u.message.len = get_u32(r, "message length");
	m->u.message.content = NULL;
	if (need(r, m->u.message.len, "message content")) {
		m->u.message.content = (const char *) r->buf + r->off;
		r->off += m->u.message.len;
	}
}

pgoutput_status_t
pgoutput_parse(const uint8_t *buf, size_t len, arena_t *arena, pgoutput_msg_t *out,
	       char *err, size_t errlen)
{
	reader_t r = {buf, len, 0, false, err, errlen};
	memset(out, 0, sizeof(*out));
	if (len == 0 || buf == NULL) {
		snprintf(err, errlen, "empty pgoutput message");
		return PGOUTPUT_ERROR;
	}
	out->type = (char) get_u8(&r, "message type");
	switch (out->type) {
	case PGOUTPUT_BEGIN:
		parse_begin(&r, out);
		break;
	case PGOUTPUT_COMMIT:
		parse_commit(&r, out);
		break;
	case PGOUTPUT_ORIGIN:
		parse_origin(&r, out);
		break;
	case PGOUTPUT_RELATION:
		parse_relation(&r, arena, out);
		break;
	case PGOUTPUT_TYPE:
		parse_type(&r, out);
		break;
	case PGOUTPUT_INSERT:
	case PGOUTPUT_UPDATE:
	case PGOUTPUT_DELETE:
		parse_change(&r, arena, out);
		break;
	case PGOUTPUT_TRUNCATE:
		parse_truncate(&r, arena, out);
		break;
	case PGOUTPUT_MESSAGE:
		parse_message(&r, out);
		break;
	default:
		snprintf(err, errlen,
			 "unsupported pgoutput message type 0x%02x (protocol version 1 expected)",
			 (unsigned char) out->type);
		return PGOUTPUT_ERROR;
	}
	if (r.failed)
		return PGOUTPUT_ERROR;
	if (r.off != len) {
		snprintf(err, errlen, "invalid pgoutput %s message: %zu trailing bytes at offset %zu",
			 pgoutput_type_name(out->type), len - r.off, r.off);
		return PGOUTPUT_ERROR;
	}
	return PGOUTPUT_OK;
}

const char *
pgoutput_type_name(char type)
{
	switch (type) {
	case PGOUTPUT_BEGIN: return "begin";
	case PGOUTPUT_COMMIT: return "commit";
	case PGOUTPUT_ORIGIN: return "origin";
	case PGOUTPUT_RELATION: return "relation";
	case PGOUTPUT_TYPE: return "type";
	case PGOUTPUT_INSERT: return "insert";
	case PGOUTPUT_UPDATE: return "update";
	case PGOUTPUT_DELETE: return "delete";
	case PGOUTPUT_TRUNCATE: return "truncate";
	case PGOUTPUT_MESSAGE: return "message";
	default: return "unknown";
	}
}
