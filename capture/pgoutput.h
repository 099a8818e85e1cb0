/*
 * pgoutput.h — decoder for PostgreSQL's pgoutput logical replication
 * protocol, version 1 ("Logical Replication Message Formats" in the
 * PostgreSQL manual), from byte buffers.  Pure: no I/O, no libpq.
 *
 * One call decodes one message: the payload of an XLogData ('w') message
 * of the replication stream, starting at the message type byte.  Every
 * read is bounds-checked; truncated input, trailing bytes and unknown
 * types are reported as PGOUTPUT_ERROR with a message, never a crash.
 *
 * Ownership: strings and tuple values point into the caller's buffer
 * (borrowed: valid while the buffer is).  Names are NUL-terminated in the
 * wire format, so they can be used as C strings; tuple values are counted
 * (data, len) and not terminated.  Arrays (columns, values, relation ids)
 * are allocated in the caller's arena and valid until its next reset.
 */
#ifndef STEWARD_CAPTURE_PGOUTPUT_H
#define STEWARD_CAPTURE_PGOUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

typedef enum pgoutput_status {
	PGOUTPUT_OK = 0,
	PGOUTPUT_ERROR = 1,   /* malformed or unsupported message; text in err */
} pgoutput_status_t;

/* Message type bytes. */
enum {
	PGOUTPUT_BEGIN = 'B',
	PGOUTPUT_COMMIT = 'C',
	PGOUTPUT_ORIGIN = 'O',
	PGOUTPUT_RELATION = 'R',
	PGOUTPUT_TYPE = 'Y',
	PGOUTPUT_INSERT = 'I',
	PGOUTPUT_UPDATE = 'U',
	PGOUTPUT_DELETE = 'D',
	PGOUTPUT_TRUNCATE = 'T',
	PGOUTPUT_MESSAGE = 'M',
};

/* Relation column flag: part of the replica identity key. */
#define PGOUTPUT_COLUMN_KEY 1
/* Truncate options. */
#define PGOUTPUT_TRUNCATE_CASCADE 1
#define PGOUTPUT_TRUNCATE_RESTART_IDENTITY 2
/* Message flags: transactional. */
#define PGOUTPUT_MESSAGE_TRANSACTIONAL 1

/* Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01. */
#define PGOUTPUT_EPOCH_OFFSET_US INT64_C(946684800000000)

typedef struct pgoutput_value {
	char kind;          /* 'n' NULL, 'u' unchanged TOAST, 't' text, 'b' binary */
	uint32_t len;       /* 't'/'b' only */
	const char *data;   /* 't'/'b' only; borrowed, not NUL-terminated */
} pgoutput_value_t;

typedef struct pgoutput_tuple {
	uint16_t ncols;
	pgoutput_value_t *values;  /* arena */
} pgoutput_tuple_t;

typedef struct pgoutput_column {
	uint8_t flags;       /* PGOUTPUT_COLUMN_KEY */
	const char *name;
	uint32_t type_oid;
	int32_t typmod;
} pgoutput_column_t;

typedef struct pgoutput_msg {
	char type;  /* one of the PGOUTPUT_* type bytes */
	union {
		struct {
			uint64_t final_lsn;   /* the commit record's LSN */
			int64_t commit_ts;    /* microseconds since 2000-01-01 */
			uint32_t xid;
		} begin;
		struct {
			uint8_t flags;
			uint64_t commit_lsn;
			uint64_t end_lsn;     /* end of the commit record: what to ack */
			int64_t commit_ts;
		} commit;
		struct {
			uint64_t commit_lsn;
			const char *name;
		} origin;
		struct {
			uint32_t relid;
			const char *nspname;  /* "" means pg_catalog */
			const char *relname;
			char replident;       /* 'd', 'n', 'f', 'i' */
			uint16_t ncols;
			pgoutput_column_t *cols;  /* arena */
		} relation;
		struct {
			uint32_t type_oid;
			const char *nspname;
			const char *typname;
		} type;
		struct {
			uint32_t relid;
			char old_kind;        /* 0 none, 'K' key only, 'O' old tuple */
			pgoutput_tuple_t old_tuple;
			pgoutput_tuple_t new_tuple;  /* empty for delete */
		} change;  /* insert, update, delete */
		struct {
			uint8_t options;      /* PGOUTPUT_TRUNCATE_* */
			uint32_t nrelids;
			uint32_t *relids;     /* arena */
		} truncate;
		struct {
			uint8_t flags;        /* PGOUTPUT_MESSAGE_TRANSACTIONAL */
			uint64_t lsn;
			const char *prefix;
			uint32_t len;
			const char *content;  /* borrowed, not NUL-terminated */
		} message;
	} u;
} pgoutput_msg_t;

/*
 * Decode one pgoutput v1 message of len bytes.  On PGOUTPUT_OK *out is
 * filled (see the ownership note above); on PGOUTPUT_ERROR err says what
 * is wrong and at which byte offset, and *out is unspecified.
 */
pgoutput_status_t pgoutput_parse(const uint8_t *buf, size_t len, arena_t *arena,
				 pgoutput_msg_t *out, char *err, size_t errlen);

/* "begin", "commit", … for a type byte; "unknown" otherwise. */
const char *pgoutput_type_name(char type);

#endif
