/*
 * pg_record.h — build steward.Change records from decoded pgoutput changes
 * and from snapshot (COPY) rows.
 *
 * Everything a record points to (strings, Value submessages, position
 * bytes) is allocated in the caller's arena or borrowed from the relation
 * and source (type names, column names): the record is valid until the
 * arena is reset or the relation replaced.  Callers append it to the
 * change log and reset the arena per change.
 */
#ifndef STEWARD_CAPTURE_PG_RECORD_H
#define STEWARD_CAPTURE_PG_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "pg_copy.h"
#include "pg_schema.h"
#include "pgoutput.h"
#include "steward.pb-c.h"

typedef struct pgcap_source {
	const char *name;      /* the record's source field */
	const char *database;
} pgcap_source_t;

/* The transaction being decoded (from its Begin message). */
typedef struct pgcap_txn {
	uint64_t final_lsn;    /* commit LSN: the position's first part */
	int64_t commit_ts_us;  /* since 1970 */
	uint32_t xid;
	uint32_t seq;          /* next change's sequence number */
} pgcap_txn_t;

/*
 * Insert, update or delete message m on rel within txn → *c (initialised
 * here).  Position (final_lsn, stream, txn->seq).  False with a message in
 * err when the tuple does not match the relation.
 */
bool pgcap_record_change(Steward__Change *c, arena_t *a, const pgcap_source_t *src,
			 const pgcap_relation_t *rel, const pgoutput_msg_t *m,
			 const pgcap_txn_t *txn, char *err, size_t errlen);

/* Truncate of nrels relations (rels borrowed); table fields name the first. */
void pgcap_record_truncate(Steward__Change *c, arena_t *a, const pgcap_source_t *src,
			   const pgcap_relation_t *const *rels, size_t nrels,
			   const pgcap_txn_t *txn);

/* Logical decoding message; position (lsn, stream, seq). */
void pgcap_record_message(Steward__Change *c, arena_t *a, const pgcap_source_t *src,
			  const pgoutput_msg_t *m, uint64_t lsn, uint32_t seq,
			  const pgcap_txn_t *txn);

/*
 * Snapshot read of one COPY row (fields in rel's column order) at position
 * (consistent_lsn, snapshot, row).
 */
void pgcap_record_snapshot(Steward__Change *c, arena_t *a, const pgcap_source_t *src,
			   const pgcap_relation_t *rel, const pgcopy_field_t *fields,
			   uint64_t consistent_lsn, uint64_t row, int64_t ts_us);

/* Snapshot restart: a truncate of every table at (consistent_lsn, snapshot, 0). */
void pgcap_record_snapshot_reset(Steward__Change *c, arena_t *a, const pgcap_source_t *src,
				 const pgcap_relation_t *const *rels, size_t nrels,
				 uint64_t consistent_lsn, int64_t ts_us);

#endif
