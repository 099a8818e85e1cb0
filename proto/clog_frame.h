/*
 * clog_frame.h — internals shared by the change log's modules (not part of
 * the contract; that is proto/clog.h): the frame header layout, reading
 * and checking frames and segments, and decoding a frame's batch.
 *
 * Modules: clog_frame.c (this), clog.c (writer and reader),
 * clog_retention.c (checkpoints, gc, whole-log scan).
 */
#ifndef STEWARD_PROTO_CLOG_FRAME_H
#define STEWARD_PROTO_CLOG_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zstd.h>

#include "buf.h"
#include "clog.h"
#include "packed_ref.h"
#include "value_text.h"

/* Frame header layout; see the table in proto/clog.h. */
#define FRAME_HDR_LEN 96
#define FRAME_MAGIC "STWF"
/*
 * Still 1 with shapes in the batch: a reader from before shapes then
 * stops at such a frame as corrupt ("unexpected field tag 0x12"), loudly,
 * and a writer from before keeps it; a new version would look to both like
 * a torn tail, which the old writer truncates.
 */
#define FRAME_VERSION 1
#define FRAME_COMP_NONE 0
#define FRAME_COMP_ZSTD 1
#define OFF_MAGIC 0        /* [0..4)   "STWF" */
#define OFF_VERSION 4      /* [4]      frame format version */
#define OFF_COMP 5         /* [5]      compression */
#define OFF_PAYLOAD_LEN 8  /* [8..12)  payload_len */
#define OFF_RAW_LEN 12     /* [12..16) raw_len */
#define OFF_COUNT 16       /* [16..20) records in the batch */
#define OFF_FIRST 20       /* [20] len, [21..53) bytes */
#define OFF_LAST 53        /* [53] len, [54..86) bytes */
#define OFF_CRC 88         /* [88..92) CRC32C of [0..88) + payload */
#define CRC_COVERED 88

typedef struct frame_hdr {
	uint8_t compression;
	uint32_t payload_len;
	uint32_t raw_len;
	uint32_t count;
	uint32_t crc;
	position_t first;
	position_t last;
} frame_hdr_t;

typedef enum frame_status {
	FRAME_OK,
	FRAME_SHORT,  /* fewer bytes than the frame needs: cut short or in progress */
	FRAME_BAD,    /* bad header or checksum */
	FRAME_IOERR,
} frame_status_t;

/* Result of walking one segment's frames. */
typedef struct seg_walk {
	uint64_t frames;
	uint64_t records;
	uint64_t raw_bytes;
	uint64_t valid_end;   /* offset just past the last good frame */
	uint64_t size;        /* file size seen */
	bool has_frames;
	position_t first;     /* of the first frame */
	position_t last;      /* of the last good frame */
	bool tail;            /* bad or short bytes after valid_end, nothing valid after */
	char tail_why[160];
} seg_walk_t;

/* A Shape of the batch being read, by its id. */
typedef struct batch_shape {
	uint32_t id;
	Steward__Shape *shape;  /* clog_pbc_allocator */
	packed_refs_t *refs;    /* Shape.value_refs: its images' references; else NULL */
} batch_shape_t;

/*
 * Cursor over the records of a decompressed Batch: each is a field-1
 * entry (tag 0x0a, varint length, packed Change) or a field-3 one (tag
 * 0x1a, a packed record: typed images, and maybe no txid, commit time or
 * position of its own), unpacked one at a time so a reader never holds a
 * whole batch of decoded records; field-2 entries (Shapes) are kept for
 * the frame's life and fill in the shaped records that follow.
 * Zero-initialise before the first clog_batch_cursor_init;
 * clog_batch_cursor_release frees the shapes.
 */
typedef struct batch_cursor {
	const uint8_t *data;
	size_t len;
	size_t pos;
	uint32_t index;        /* records returned so far */
	const frame_hdr_t *hdr;
	position_t prev;       /* position of the previous record */
	batch_shape_t *shapes;
	size_t nshapes, shapes_cap;
	size_t last_shape;     /* index of the shape used last (most batches use one) */
	bool last_shaped;      /* the record returned last borrows a shape's strings */
	/* position_text of the previous record, and the one being derived from it */
	char *ptext, *ptext_next;
	size_t ptext_len, ptext_cap, ptext_next_cap;
	bool has_ptext;
	bool last_ptext_derived;  /* the record returned last borrows ptext */
	/* the previous record's txid and commit time, for packed records that leave them out */
	char *ptxid;
	size_t ptxid_cap;
	bool has_ptxid;
	bool has_pcommit;
	int64_t pcommit;
	/* the previous record's op, seq and shape id, for packed records that leave them out */
	bool has_pop, has_pseq, has_pshape;
	Steward__Op pop;
	uint32_t pseq, pshape;
	/* a packed record's value texts, before they are copied into its Values */
	buf_t vtext;
	buf_t plain;           /* an image of a value_refs shape in its plain coding */
	value_text_slot_t *slots;
	size_t slots_cap;
} batch_cursor_t;

/* protobuf-c allocations through xmalloc (the project's OOM policy). */
extern ProtobufCAllocator clog_pbc_allocator;

void clog_put_le32(uint8_t *p, uint32_t v);

/* Fill hdr[0..96) for a frame; the CRC needs the payload and is set later. */
void clog_frame_header_build(uint8_t *hdr, uint8_t compression, uint32_t payload_len,
			     uint32_t raw_len, uint32_t count, const position_t *first,
			     const position_t *last);
/* Decode and sanity-check a header; false with the reason in why. */
bool clog_frame_header_parse(const uint8_t *hdr, frame_hdr_t *h, char *why, size_t whylen);

/* pread exactly n bytes unless EOF comes first; bytes read, or -1 (errno). */
ssize_t clog_pread_full(int fd, void *buf, size_t n, uint64_t off);
/* write all n bytes, retrying short writes; false on error (errno). */
bool clog_write_full(int fd, const void *buf, size_t n);
/* Grow *p (xrealloc) to at least need bytes. */
void clog_grow(uint8_t **p, size_t *cap, size_t need);

/*
 * Read and check the frame at off in a file of size bytes.  On FRAME_OK
 * *h is filled and, with check_crc, the payload is in *payload (grown as
 * needed, owned by the caller).  Without check_crc only the header is read.
 */
frame_status_t clog_frame_read(int fd, uint64_t off, uint64_t size, bool check_crc,
			       frame_hdr_t *h, uint8_t **payload, size_t *payload_cap,
			       char *why, size_t whylen);
/*
 * Is there a whole, checksummed frame starting anywhere in (from, size)?
 * Tells a torn tail (nothing valid after the bad bytes) from corruption.
 */
bool clog_valid_frame_after(int fd, uint64_t from, uint64_t size);

/* "SEGDIR/NNNNNNNNNNNNNNNNNNNN.seg", newly allocated. */
char *clog_segment_path(const char *segdir, uint64_t seq);
/* Sorted sequence numbers of the segments in segdir (*out: caller frees); none if missing. */
clog_status_t clog_segment_list(const char *segdir, uint64_t **out, size_t *n, char *err,
				size_t errlen);
/*
 * Walk every frame of a segment (with or without checksums).  A bad frame
 * followed by a valid one is CLOG_CORRUPT; a bad or short tail is reported
 * in out->tail for the caller to judge.  Frame positions must increase.
 */
clog_status_t clog_segment_walk(const char *path, bool check_crc, seg_walk_t *out, char *err,
				size_t errlen);

bool clog_fsync_dir(const char *path, char *err, size_t errlen);
/* mkdir -p; false with err set. */
bool clog_make_dirs(const char *path, char *err, size_t errlen);

/*
 * Decompress a checked frame's payload.  *data points at the packed Batch
 * (in *raw, or in payload itself when uncompressed).  false with the reason
 * in why when the payload does not match the header; raw_len is trusted
 * only after checking it against zstd's own content size, and the output
 * buffer is never larger than raw_len (<= CLOG_MAX_RAW).
 */
bool clog_frame_inflate(ZSTD_DCtx *dctx, const frame_hdr_t *h, const uint8_t *payload,
			uint8_t **raw, size_t *raw_cap, const uint8_t **data, char *why,
			size_t whylen);

/* Start on a frame's batch; frees the shapes of the previous one. */
void clog_batch_cursor_init(batch_cursor_t *bc, const frame_hdr_t *h, const uint8_t *data);
/* Free the shapes of the current batch (records filled from them die too). */
void clog_batch_cursor_release(batch_cursor_t *bc);
/* Release and free everything the cursor holds (it may be initialised again). */
void clog_batch_cursor_destroy(batch_cursor_t *bc);
/*
 * Next record of the batch into *out, allocated with alloc (free it with
 * clog_batch_record_free before the next call: a shaped record's source,
 * schema, table, key and value names point into the cursor's shape, owned
 * by the cursor until the next init or release).  A packed record comes
 * out as its text form would: plain Values (text, or is_null), no packed
 * bytes, and, when it leaves out its position, that position and the txid
 * and commit_ts_us it leaves out filled from the previous record of the
 * batch (position with its sequence number replaced by the record's seq),
 * all allocated with alloc; one with its own position has only the txid
 * and commit time it carries, as its text form.  Returns 1 for
 * a record, 0 at the end (after checking the count), -1 on a malformed
 * batch with the reason in why: bad entries, an unknown shape id, a shape
 * defined twice, a shaped record with its own fields 1-6/13 or value
 * names, an image whose value count is not the shape's column count, a
 * record that leaves out a position_text (Shape.position_text_by_seq) or
 * (packed) a position that no previous record of the batch gives, a
 * packed record that is not shaped, has Values or no packed image, packed
 * images outside a packed entry, or malformed packed bytes
 * (value_text_packed).  Positions must increase and lie within the
 * header's [first, last].
 */
int clog_batch_cursor_next(batch_cursor_t *bc, ProtobufCAllocator *alloc, Steward__Change **out,
			   position_t *pos, char *why, size_t whylen);

/*
 * Free a record returned by the last clog_batch_cursor_next with the same
 * allocator, leaving out what it borrows from a shape.  An arena allocator
 * whose free does nothing may skip this.
 */
void clog_batch_record_free(const batch_cursor_t *bc, Steward__Change *c,
			    ProtobufCAllocator *alloc);

#endif
