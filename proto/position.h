/*
 * position.h — source positions: opaque bytes, totally ordered by memcmp
 * within one source.
 *
 * Each source kind builds positions so that byte order equals commit order
 * and every change has a distinct position; deduplication ("skip anything
 * <= the last durable position") relies on both.
 *
 * PostgreSQL (17 bytes):
 *   [0..8)   commit LSN, big-endian (the Begin message's final_lsn;
 *            for snapshot reads, the slot's consistent point)
 *   [8]      phase: 0 = snapshot read, 1 = streamed change
 *   [9..17)  sequence, big-endian: within the transaction (streamed) or the
 *            row counter over the whole snapshot (snapshot reads)
 *   text:    "%X/%X:%llu" (lsn:seq), prefixed "snapshot:" for snapshot reads
 *
 * MySQL/MariaDB (25 bytes):
 *   [0..2)   epoch, big-endian: 0, raised each time the agent follows a
 *            failover to a server whose binlog coordinates sort before the
 *            captured ones (so positions keep increasing across servers)
 *   [2..8)   binlog file number (suffix of mysql-bin.NNNNNN), big-endian
 *   [8..16)  offset of the transaction's end (XID/COMMIT event end_log_pos)
 *   [16]     phase: 0 = snapshot read, 1 = streamed change
 *   [17..25) sequence within the transaction / snapshot, big-endian
 *   text:    "file:offset:seq" (plus " gtid=…" in the record's txid)
 */
#ifndef STEWARD_PROTO_POSITION_H
#define STEWARD_PROTO_POSITION_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define POSITION_MAX 32

typedef struct position {
	uint8_t len;                  /* 0 = "no position" (before everything) */
	uint8_t bytes[POSITION_MAX];
} position_t;

#define POSITION_PHASE_SNAPSHOT 0
#define POSITION_PHASE_STREAM 1

/*
 * <0, 0, >0 as memcmp; a shorter prefix sorts first; len 0 sorts first.
 * Inline, eight bytes at a time: the change log's writer compares every
 * record's position with the last one's.
 */
static inline int
position_cmp(const position_t *a, const position_t *b)
{
	size_t n = a->len < b->len ? a->len : b->len, i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;
		memcpy(&x, a->bytes + i, 8);
		memcpy(&y, b->bytes + i, 8);
		if (x != y) {
			x = be64toh(x);  /* positions compare as big-endian bytes */
			y = be64toh(y);
			return x < y ? -1 : 1;
		}
	}
	for (; i < n; i++)
		if (a->bytes[i] != b->bytes[i])
			return a->bytes[i] < b->bytes[i] ? -1 : 1;
	return (a->len > b->len) - (a->len < b->len);
}
/* Copy raw bytes (len <= POSITION_MAX) into a position; false if too long. */
bool position_set(position_t *p, const uint8_t *bytes, size_t len);

void position_pg(position_t *p, uint64_t lsn, int phase, uint64_t seq);
/* Decode a PostgreSQL position; false if p is not 17 bytes. */
bool position_pg_parse(const position_t *p, uint64_t *lsn, int *phase, uint64_t *seq);

/* The first 8 bytes of a MySQL position: epoch and binlog file number. */
#define POSITION_MYSQL_EPOCH_SHIFT 48
static inline uint64_t
position_mysql_file_key(uint32_t epoch, uint64_t file_no)
{
	return (uint64_t) epoch << POSITION_MYSQL_EPOCH_SHIFT |
	       (file_no & ((UINT64_C(1) << POSITION_MYSQL_EPOCH_SHIFT) - 1));
}

/* file_key: position_mysql_file_key(epoch, file number) (a plain file number is epoch 0). */
void position_mysql(position_t *p, uint64_t file_key, uint64_t offset, int phase, uint64_t seq);
/* Replace the sequence number of a position_mysql position (bytes [17..25)) in place. */
static inline void
position_mysql_set_seq(position_t *p, uint64_t seq)
{
	for (int i = 7; i >= 0; i--, seq >>= 8)
		p->bytes[17 + i] = (uint8_t) seq;
}
/* Decode a MySQL position; false if p is not 25 bytes.  epoch may be NULL. */
bool position_mysql_parse(const position_t *p, uint32_t *epoch, uint64_t *file_no,
			  uint64_t *offset, int *phase, uint64_t *seq);

/* Lower-case hex of the bytes into out (2*len+1); for debugging and dumps. */
void position_hex(const position_t *p, char *out, size_t outlen);
/* Parse position_hex output; false on bad input. */
bool position_from_hex(position_t *p, const char *hex);

#endif
