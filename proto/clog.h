/*
 * clog.h — the change log: durable, compressed, checksummed batches of
 * change records in segment files.  The embedded transport between a
 * capture agent (one writer per data directory) and its readers (apply,
 * `steward log dump`).
 *
 * On disk (all integers little-endian), DIR/segments/NNNNNNNNNNNNNNNNNNNN.seg
 * where N is the segment's sequence number (20 digits, so names sort):
 *
 *   segment = frame*
 *   frame   = header(96 bytes) payload(payload_len bytes)
 *   header:
 *     [0..4)    magic "STWF"
 *     [4]       frame format version (1)
 *     [5]       compression: 0 = none, 1 = zstd
 *     [6..8)    reserved, zero
 *     [8..12)   payload_len: bytes that follow the header
 *     [12..16)  raw_len: bytes after decompression (capped at CLOG_MAX_RAW)
 *     [16..20)  count: records in the batch
 *     [20]      first position length, [21..53) first position bytes
 *     [53]      last position length,  [54..86) last position bytes
 *     [86..88)  reserved, zero
 *     [88..92)  CRC32C of header bytes [0..88) followed by the payload
 *     [92..96)  reserved, zero
 *   payload: zstd frame of a packed steward.Batch (proto/steward.proto):
 *     a sequence of field-1 entries (a packed Change, "record"), field-2
 *     entries (a packed Shape) and field-3 entries (a packed record:
 *     typed values, transaction fields shared with the record before it)
 *     in the order written; a shaped record's Shape precedes it in the
 *     same batch, so every frame is self-contained.  Readers hand out
 *     shaped and packed records filled in from their shape and batch: the
 *     same Steward__Change as the self-describing form.  Batches without
 *     shapes are byte for byte what they always were.
 *
 * Durability promise: when clog_writer_flush returns CLOG_OK, every record
 * appended before it is on stable storage (write + fdatasync of the segment,
 * fsync of the directory when a segment was created).  Capture acknowledges
 * a source position only after that.
 *
 * Recovery: clog_writer_open detects a torn tail in the last segment (a
 * frame cut short, or a bad frame after which no valid frame follows) and
 * truncates it, logging file and offset.  A bad frame followed by valid
 * ones, or any bad frame in a sealed segment, is corruption: reported with
 * file and offset (CLOG_CORRUPT) and never skipped.
 */
#ifndef STEWARD_PROTO_CLOG_H
#define STEWARD_PROTO_CLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "position.h"
#include "steward.pb-c.h"

#define CLOG_MAX_RAW (256u * 1024 * 1024)  /* decompressed frame cap */

typedef enum clog_status {
	CLOG_OK = 0,
	CLOG_END = 1,        /* reader: no more durable records right now */
	CLOG_DUPLICATE = 2,  /* writer: position <= last durable one; skipped */
	CLOG_ERROR = 3,      /* I/O or usage error; message in err */
	CLOG_CORRUPT = 4,    /* checksum/format error; err names file and offset */
} clog_status_t;

typedef struct clog_options {
	size_t segment_bytes;    /* roll to a new segment past this (default 64 MiB) */
	size_t batch_raw_bytes;  /* compress a frame when this much is pending (default 1 MiB) */
	int zstd_level;          /* default 1 */
} clog_options_t;

/* ---- writer: one per data directory (guarded by an flock on DIR/LOCK) ---- */

typedef struct clog_writer clog_writer_t;

/*
 * Open or create the log in dir (created if missing), recovering a torn
 * tail.  opts may be NULL for defaults.  On CLOG_OK *out is owned by the
 * caller (clog_writer_close).  CLOG_ERROR if another writer holds the lock.
 */
clog_status_t clog_writer_open(const char *dir, const clog_options_t *opts,
			       clog_writer_t **out, char *err, size_t errlen);

/* Last durable position, false if the log is empty. */
bool clog_writer_last_position(const clog_writer_t *w, position_t *out);

/*
 * Queue one change.  The change's position must be greater than every
 * position appended before; a position <= the last appended one returns
 * CLOG_DUPLICATE and is dropped (this is how a restarted capture agent
 * deduplicates a re-sent transaction).  When the pending batch reaches
 * batch_raw_bytes it is written as a frame, but not fsync'd: nothing is
 * durable until clog_writer_flush.  The change is borrowed for the call.
 */
clog_status_t clog_writer_append(clog_writer_t *w, const Steward__Change *change,
				 char *err, size_t errlen);

/*
 * Queue one change the caller packs itself (proto/record_encode.h): the
 * record at position pos takes exactly size bytes.  On CLOG_OK *dst points
 * at size bytes of the pending batch; write the packed steward.Change there
 * before the next call on w (the record already counts as appended).
 * Positions, CLOG_DUPLICATE and batching as clog_writer_append.
 */
clog_status_t clog_writer_reserve(clog_writer_t *w, const position_t *pos, size_t size,
				  uint8_t **dst, char *err, size_t errlen);

/*
 * Register a shape: shape/len are a packed steward.Shape without its id
 * (record_enc_shape_head/keys/column in proto/record_encode.h); copied.
 * *id receives the id to pass to clog_writer_reserve_shaped; the same
 * bytes always get the same id, so registering a table's shape again (at
 * every table map) costs a lookup and no batch space.  Shapes are kept
 * for the writer's life.
 */
clog_status_t clog_writer_shape(clog_writer_t *w, const uint8_t *shape, size_t len,
				uint32_t *id, char *err, size_t errlen);

/*
 * clog_writer_reserve for a shaped record (Change.shape = shape_id, see
 * proto/steward.proto): the writer writes the shape into the pending
 * batch first when the batch does not hold it yet.  size is the packed
 * record's size; the shape's bytes are not part of it.
 */
clog_status_t clog_writer_reserve_shaped(clog_writer_t *w, const position_t *pos,
					 uint32_t shape_id, size_t size, uint8_t **dst, char *err,
					 size_t errlen);

/*
 * clog_writer_reserve_shaped for a packed record (Batch field 3; its
 * images are Change.before_packed/after_packed, and it may leave out what
 * the previous record of its batch gives: proto/steward.proto).
 */
clog_status_t clog_writer_reserve_packed(clog_writer_t *w, const position_t *pos,
					 uint32_t shape_id, size_t size, uint8_t **dst, char *err,
					 size_t errlen);

/*
 * Would a record of size bytes (packed) of shape shape_id (0: none),
 * reserved next, be the first of its batch (the pending batch is empty,
 * or full and handed on first)?  A record that leaves out what the
 * previous record of its batch implies (Shape.position_text_by_seq, a
 * packed record's left-out transaction fields) must not be.
 */
bool clog_writer_batch_starts(const clog_writer_t *w, uint32_t shape_id, size_t size);

/*
 * The pending batch's generation (a number never reused by this writer)
 * when it holds shape shape_id's definition and a record of size bytes of
 * that shape, reserved next, would go into it; 0 otherwise (the record
 * would define the shape, here or as the first of a new batch).  Writers
 * of references that live within one batch (proto/packed_ref.h) check it.
 */
uint64_t clog_writer_shape_batch(const clog_writer_t *w, uint32_t shape_id, size_t size);

/* Would a record at pos be dropped as a duplicate (pos <= the last appended)? */
bool clog_writer_would_drop(const clog_writer_t *w, const position_t *pos);

/*
 * Runs: compact packed records written by the caller as whole Batch
 * entries (field 3: tag 0x1a, varint length, record), then appended at
 * once — the fast path for the rows of one rows event, which would
 * otherwise pay a reserve per row.
 *
 * clog_writer_run_room: how many bytes of entries may be appended to the
 * pending batch as one run for shape shape_id: an entry that starts
 * within that many bytes lands exactly where clog_writer_reserve_packed
 * would have put it (the batch holds the shape and is not yet full).  0
 * when the next record would start a batch or define the shape: reserve
 * it the usual way.  An entry must not exceed CLOG_RUN_ENTRY_MAX bytes.
 *
 * clog_writer_append_run: append n such entries (len bytes in all, the
 * first one starting within the room asked for just before); *last is the
 * position of the last one, and every position of the run sorts after
 * whatever was appended before it (the caller's promise; *last is
 * checked).  Copies the bytes.
 */
#define CLOG_RUN_ENTRY_MAX (64u * 1024)
size_t clog_writer_run_room(const clog_writer_t *w, uint32_t shape_id);
clog_status_t clog_writer_append_run(clog_writer_t *w, const position_t *last, uint32_t n,
				     const uint8_t *entries, size_t len, char *err, size_t errlen);

/* Hand the pending batch on now (when it holds anything): the next record starts a new one. */
clog_status_t clog_writer_batch_end(clog_writer_t *w, char *err, size_t errlen);

/*
 * Start making everything appended so far durable without waiting: the
 * pending batch, however full, goes to the frame thread, which writes it
 * after the batches queued before it and then syncs (as clog_writer_flush
 * does).  *ticket identifies the request for clog_writer_flush_done.
 * Errors of the sync are reported by the next append or flush, and the
 * ticket is then never done.
 */
clog_status_t clog_writer_flush_begin(clog_writer_t *w, uint64_t *ticket, char *err,
				      size_t errlen);

/*
 * Is everything appended before clog_writer_flush_begin gave ticket
 * durable?  (A later clog_writer_flush covers every earlier ticket.)
 */
bool clog_writer_flush_done(clog_writer_t *w, uint64_t ticket);

/* Write any pending batch and make everything appended durable. */
clog_status_t clog_writer_flush(clog_writer_t *w, char *err, size_t errlen);

/* Bytes appended but not yet durable (for flush decisions and metrics). */
size_t clog_writer_pending_bytes(const clog_writer_t *w);

/* Flushes nothing: call clog_writer_flush first.  Accepts NULL. */
void clog_writer_close(clog_writer_t *w);

/* ---- reader: any number, concurrent with the writer ---- */

typedef struct clog_reader clog_reader_t;

/*
 * Iterate records with position > *after (from the start if after is NULL
 * or has len 0).  The reader sees only whole, checksummed frames; a frame
 * still being written is CLOG_END, not corruption.
 */
clog_status_t clog_reader_open(const char *dir, const position_t *after,
			       clog_reader_t **out, char *err, size_t errlen);

/*
 * Next record.  CLOG_OK: *change is owned by the reader and valid until the
 * next call or close.  CLOG_END: caught up; call again later to tail the
 * log.  CLOG_CORRUPT: err names segment file and byte offset; the reader
 * stays at that frame (it never skips).
 */
clog_status_t clog_reader_next(clog_reader_t *r, const Steward__Change **change,
			       char *err, size_t errlen);

/* Where the next call to clog_reader_next will read (for messages). */
void clog_reader_where(const clog_reader_t *r, char *out, size_t outlen);

void clog_reader_close(clog_reader_t *r);  /* accepts NULL */

/* ---- reader checkpoints and retention ---- */

/* Durably record that reader `name` has consumed everything <= *pos. */
clog_status_t clog_checkpoint_save(const char *dir, const char *name,
				   const position_t *pos, char *err, size_t errlen);
/* CLOG_END if the reader has no checkpoint. */
clog_status_t clog_checkpoint_load(const char *dir, const char *name,
				   position_t *pos, char *err, size_t errlen);

/*
 * Remove sealed segments whose every record is <= every reader's
 * checkpoint.  With no checkpoint at all nothing is removed.  *removed
 * (may be NULL) receives the number of segment files deleted.
 */
clog_status_t clog_gc(const char *dir, size_t *removed, char *err, size_t errlen);

/* Total bytes of segment files (for metrics). */
uint64_t clog_size_bytes(const char *dir);

/*
 * Names of the readers with a checkpoint.  On CLOG_OK *names is a new array
 * of *n new strings; free with clog_checkpoint_list_free.
 */
clog_status_t clog_checkpoint_list(const char *dir, char ***names, size_t *n,
				   char *err, size_t errlen);
void clog_checkpoint_list_free(char **names, size_t n);

/* ---- whole-log scan (`steward log verify`, `steward log stats`) ---- */

typedef struct clog_scan {
	uint64_t segments;       /* segment files */
	uint64_t first_segment;  /* sequence numbers of the first and last */
	uint64_t last_segment;
	uint64_t frames;
	uint64_t records;
	uint64_t bytes;          /* segment file bytes */
	uint64_t raw_bytes;      /* batch bytes before compression */
	position_t first, last;  /* of the first and last record (len 0 if none) */
	bool torn_tail;          /* incomplete last frame (being written, or torn) */
	char tail[512];          /* where and why, when torn_tail */
} clog_scan_t;

/*
 * Walk every frame of the log.  deep: check every checksum, decompress and
 * decode every batch and check record positions against the header (what
 * `log verify` does); otherwise read the frame headers only.  An incomplete
 * or bad tail of the last segment with nothing valid after it is not an
 * error (the writer may be mid-frame, or will truncate it on open): it is
 * reported in torn_tail.  CLOG_CORRUPT names the segment file and offset.
 */
clog_status_t clog_scan(const char *dir, bool deep, clog_scan_t *out,
			char *err, size_t errlen);

/* ---- helpers ---- */

/* CRC32C (Castagnoli) of data, continuing from crc (start with 0). */
uint32_t clog_crc32c(uint32_t crc, const void *data, size_t len);

#endif
