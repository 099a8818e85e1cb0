/*
 * clog.c — the change log: segment files of zstd-compressed, CRC32C-checked
 * frames, each holding one packed steward.Batch.  Writer (append, flush,
 * torn-tail recovery), reader (tailing iteration from a position), reader
 * checkpoints and retention.  The byte layout and the guarantees are in
 * proto/clog.h and docs/change-log.md.
 */
#include "clog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "arena.h"
#include "log.h"
#include "xalloc.h"

/* ---- frame header layout (see clog.h) ---- */

#define FRAME_HDR_LEN 96
#define FRAME_MAGIC "STWF"
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

#define SEGMENT_NAME_DIGITS 20
#define DEFAULT_SEGMENT_BYTES (64u * 1024 * 1024)
#define DEFAULT_BATCH_RAW_BYTES (1024u * 1024)
#define SCAN_CHUNK (1024u * 1024)
#define CHECKPOINT_MAGIC "steward-checkpoint 1"

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

/* protobuf-c allocations follow the project's out-of-memory policy. */
static void *
pbc_alloc(void *data, size_t size)
{
	(void) data;
	return xmalloc(size ? size : 1);
}

static void
pbc_free(void *data, void *p)
{
	(void) data;
	free(p);
}

static ProtobufCAllocator pbc_allocator = {pbc_alloc, pbc_free, NULL};

/* Records handed out by a reader live in its arena, reset per record. */
static void *
pbc_arena_alloc(void *data, size_t size)
{
	return arena_alloc(data, size ? size : 1);
}

static void
pbc_arena_free(void *data, void *p)
{
	(void) data;
	(void) p;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
	       (uint32_t) p[3] << 24;
}

/* Fill hdr[0..96) for a frame; the CRC needs the payload and is set later. */
static void
frame_header_build(uint8_t *hdr, uint8_t compression, uint32_t payload_len,
		   uint32_t raw_len, uint32_t count, const position_t *first,
		   const position_t *last)
{
	memset(hdr, 0, FRAME_HDR_LEN);
	memcpy(hdr + OFF_MAGIC, FRAME_MAGIC, 4);
	hdr[OFF_VERSION] = FRAME_VERSION;
	hdr[OFF_COMP] = compression;
	put_le32(hdr + OFF_PAYLOAD_LEN, payload_len);
	put_le32(hdr + OFF_RAW_LEN, raw_len);
	put_le32(hdr + OFF_COUNT, count);
	hdr[OFF_FIRST] = first->len;
	memcpy(hdr + OFF_FIRST + 1, first->bytes, first->len);
	hdr[OFF_LAST] = last->len;
	memcpy(hdr + OFF_LAST + 1, last->bytes, last->len);
}

static size_t
payload_len_max(void)
{
	return ZSTD_compressBound(CLOG_MAX_RAW);
}

/* Decode and sanity-check a header; false with the reason in why. */
static bool
frame_header_parse(const uint8_t *hdr, frame_hdr_t *h, char *why, size_t whylen)
{
	static const uint8_t zero[8];
	if (memcmp(hdr + OFF_MAGIC, FRAME_MAGIC, 4) != 0) {
		snprintf(why, whylen, "bad frame magic");
		return false;
	}
	if (hdr[OFF_VERSION] != FRAME_VERSION) {
		snprintf(why, whylen, "unsupported frame version %u", hdr[OFF_VERSION]);
		return false;
	}
	h->compression = hdr[OFF_COMP];
	if (h->compression != FRAME_COMP_NONE && h->compression != FRAME_COMP_ZSTD) {
		snprintf(why, whylen, "unknown compression %u", h->compression);
		return false;
	}
	if (memcmp(hdr + 6, zero, 2) != 0 || memcmp(hdr + 86, zero, 2) != 0 ||
	    memcmp(hdr + 92, zero, 4) != 0) {
		snprintf(why, whylen, "reserved header bytes are not zero");
		return false;
	}
	h->payload_len = get_le32(hdr + OFF_PAYLOAD_LEN);
	h->raw_len = get_le32(hdr + OFF_RAW_LEN);
	h->count = get_le32(hdr + OFF_COUNT);
	h->crc = get_le32(hdr + OFF_CRC);
	if (h->raw_len > CLOG_MAX_RAW) {
		snprintf(why, whylen, "raw length %" PRIu32 " exceeds the cap of %u bytes",
			 h->raw_len, CLOG_MAX_RAW);
		return false;
	}
	if (h->payload_len > payload_len_max()) {
		snprintf(why, whylen, "payload length %" PRIu32 " is too large", h->payload_len);
		return false;
	}
	if (h->count == 0) {
		snprintf(why, whylen, "frame holds no records");
		return false;
	}
	if (hdr[OFF_FIRST] == 0 || hdr[OFF_FIRST] > POSITION_MAX ||
	    hdr[OFF_LAST] == 0 || hdr[OFF_LAST] > POSITION_MAX) {
		snprintf(why, whylen, "bad position length in frame header");
		return false;
	}
	position_set(&h->first, hdr + OFF_FIRST + 1, hdr[OFF_FIRST]);
	position_set(&h->last, hdr + OFF_LAST + 1, hdr[OFF_LAST]);
	if (position_cmp(&h->first, &h->last) > 0) {
		snprintf(why, whylen, "first position is after last position");
		return false;
	}
	return true;
}

/* pread exactly n bytes unless EOF comes first; bytes read, or -1. */
static ssize_t
pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *) buf + done, n - done, (off_t) (off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		done += (size_t) r;
	}
	return (ssize_t) done;
}

static bool
write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = write(fd, (const char *) buf + done, n - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		done += (size_t) r;
	}
	return true;
}

static void
grow(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t c = *cap ? *cap : 4096;
	while (c < need)
		c *= 2;
	*p = xrealloc(*p, c);
	*cap = c;
}

/*
 * Read and check the frame at off in a file of size bytes.  On FRAME_OK
 * *h is filled and (when payload is not NULL) the payload is in *payload.
 * With check_crc false only the header is read (for quick walks).
 */
static frame_status_t
frame_read(int fd, uint64_t off, uint64_t size, bool check_crc, frame_hdr_t *h,
	   uint8_t **payload, size_t *payload_cap, char *why, size_t whylen)
{
	uint8_t hdr[FRAME_HDR_LEN];
	if (off > size || size - off < FRAME_HDR_LEN) {
		snprintf(why, whylen, "frame header cut short (%" PRIu64 " of %d bytes)",
			 off > size ? 0 : size - off, FRAME_HDR_LEN);
		return FRAME_SHORT;
	}
	ssize_t n = pread_full(fd, hdr, FRAME_HDR_LEN, off);
	if (n < 0) {
		snprintf(why, whylen, "could not read: %s", strerror(errno));
		return FRAME_IOERR;
	}
	if (n < FRAME_HDR_LEN) {
		snprintf(why, whylen, "frame header cut short");
		return FRAME_SHORT;
	}
	if (!frame_header_parse(hdr, h, why, whylen))
		return FRAME_BAD;
	uint64_t avail = size - off - FRAME_HDR_LEN;
	if (h->payload_len > avail) {
		snprintf(why, whylen, "frame cut short (%" PRIu64 " of %" PRIu32 " payload bytes)",
			 avail, h->payload_len);
		return FRAME_SHORT;
	}
	if (!check_crc)
		return FRAME_OK;
	grow(payload, payload_cap, h->payload_len ? h->payload_len : 1);
	n = pread_full(fd, *payload, h->payload_len, off + FRAME_HDR_LEN);
	if (n < 0) {
		snprintf(why, whylen, "could not read: %s", strerror(errno));
		return FRAME_IOERR;
	}
	if ((size_t) n < h->payload_len) {
		snprintf(why, whylen, "frame cut short");
		return FRAME_SHORT;
	}
	uint32_t crc = clog_crc32c(0, hdr, CRC_COVERED);
	crc = clog_crc32c(crc, *payload, h->payload_len);
	if (crc != h->crc) {
		snprintf(why, whylen, "checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")",
			 h->crc, crc);
		return FRAME_BAD;
	}
	return FRAME_OK;
}

/*
 * Is there a whole, checksummed frame starting anywhere in (from, size)?
 * This tells a torn tail (nothing valid after the bad bytes) from
 * corruption in the middle of a segment.
 */
static bool
valid_frame_after(int fd, uint64_t from, uint64_t size)
{
	uint8_t *chunk = xmalloc(SCAN_CHUNK);
	uint8_t *payload = NULL;
	size_t payload_cap = 0;
	bool found = false;
	uint64_t pos = from + 1;
	while (!found && pos + FRAME_HDR_LEN <= size) {
		size_t want = size - pos < SCAN_CHUNK ? (size_t) (size - pos) : SCAN_CHUNK;
		ssize_t n = pread_full(fd, chunk, want, pos);
		if (n < 4)
			break;
		for (size_t i = 0; i + 4 <= (size_t) n && !found; i++) {
			if (memcmp(chunk + i, FRAME_MAGIC, 4) != 0)
				continue;
			frame_hdr_t h;
			char why[160];
			if (frame_read(fd, pos + i, size, true, &h, &payload, &payload_cap, why,
				       sizeof(why)) == FRAME_OK)
				found = true;
		}
		/* Overlap by 3 bytes so a magic split across chunks is seen. */
		pos += (uint64_t) n > 3 ? (uint64_t) n - 3 : 1;
	}
	free(payload);
	free(chunk);
	return found;
}

/* ---- segment files ---- */

static char *
segment_path(const char *segdir, uint64_t seq)
{
	return xasprintf("%s/%020" PRIu64 ".seg", segdir, seq);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return (x > y) - (x < y);
}

static bool
parse_segment_name(const char *name, uint64_t *seq)
{
	uint64_t v = 0;
	for (int i = 0; i < SEGMENT_NAME_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (uint64_t) (name[i] - '0');
	}
	if (strcmp(name + SEGMENT_NAME_DIGITS, ".seg") != 0)
		return false;
	*seq = v;
	return true;
}

/*
 * Sorted sequence numbers of DIR/segments/NNN.seg into *out (caller frees).
 * A missing directory is an empty list.
 */
static clog_status_t
segment_list(const char *segdir, uint64_t **out, size_t *n, char *err, size_t errlen)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(segdir);
	if (d == NULL) {
		if (errno == ENOENT)
			return CLOG_OK;
		snprintf(err, errlen, "could not open directory \"%s\": %s", segdir, strerror(errno));
		return CLOG_ERROR;
	}
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t seq;
		if (!parse_segment_name(de->d_name, &seq))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		(*out)[(*n)++] = seq;
	}
	closedir(d);
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), cmp_u64);
	return CLOG_OK;
}

static bool
fsync_dir(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "could not fsync directory \"%s\": %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	return true;
}

/* mkdir -p for one path; false with err set. */
static bool
make_dirs(const char *path, char *err, size_t errlen)
{
	char *p = xstrdup(path);
	bool ok = true;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char save = *s;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "could not create directory \"%s\": %s", p, strerror(errno));
			ok = false;
			break;
		}
		*s = save;
		if (save == '\0')
			break;
	}
	free(p);
	return ok;
}

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

/*
 * Walk every frame of a segment.  A bad frame followed by a valid one is
 * CLOG_CORRUPT; a bad or short tail is reported in out->tail (the caller
 * decides whether that is a torn tail or corruption).  Frame positions must
 * increase strictly.
 */
static clog_status_t
segment_walk(const char *path, bool check_crc, seg_walk_t *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "could not open change log segment \"%s\": %s", path,
			 strerror(errno));
		return CLOG_ERROR;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "could not stat change log segment \"%s\": %s", path,
			 strerror(errno));
		close(fd);
		return CLOG_ERROR;
	}
	out->size = (uint64_t) st.st_size;
	uint8_t *payload = NULL;
	size_t payload_cap = 0;
	clog_status_t rc = CLOG_OK;
	uint64_t off = 0;
	while (off < out->size) {
		frame_hdr_t h;
		char why[160];
		frame_status_t fs = frame_read(fd, off, out->size, check_crc, &h, &payload,
					       &payload_cap, why, sizeof(why));
		if (fs == FRAME_IOERR) {
			snprintf(err, errlen, "could not read change log segment \"%s\" at offset %" PRIu64 ": %s",
				 path, off, why);
			rc = CLOG_ERROR;
			break;
		}
		if (fs == FRAME_OK && out->has_frames && position_cmp(&h.first, &out->last) <= 0) {
			snprintf(why, sizeof(why), "frame positions do not increase");
			fs = FRAME_BAD;
		}
		if (fs != FRAME_OK) {
			if (valid_frame_after(fd, off, out->size)) {
				snprintf(err, errlen,
					 "change log segment \"%s\" is corrupt at offset %" PRIu64 ": %s",
					 path, off, why);
				rc = CLOG_CORRUPT;
			} else {
				out->tail = true;
				snprintf(out->tail_why, sizeof(out->tail_why), "%s", why);
			}
			break;
		}
		if (!out->has_frames)
			out->first = h.first;
		out->has_frames = true;
		out->last = h.last;
		out->frames++;
		out->records += h.count;
		out->raw_bytes += h.raw_len;
		off += FRAME_HDR_LEN + (uint64_t) h.payload_len;
		out->valid_end = off;
	}
	free(payload);
	close(fd);
	return rc;
}

/* ---- writer ---- */

struct clog_writer {
	char *dir;
	char *segdir;
	clog_options_t opts;
	int lock_fd;
	int seg_fd;               /* current segment, -1 before the first frame */
	uint64_t seg_seq;         /* its sequence number (0 = none yet) */
	uint64_t seg_size;        /* bytes in it, all whole frames */
	char *seg_path;
	bool need_dir_sync;       /* a segment was created since the last flush */
	uint64_t unsynced_bytes;  /* written but not fdatasync'd */
	bool failed;              /* an fsync failed: the page cache state is unknown */
	position_t last_pos;      /* last appended (pending or written) */
	position_t durable_pos;   /* last made durable */
	/* pending batch: a packed steward.Batch built in place */
	uint8_t *raw;
	size_t raw_len, raw_cap;
	uint32_t count;
	position_t first_pending;
	ZSTD_CCtx *cctx;
	uint8_t *frame;           /* header + compressed payload, reused */
	size_t frame_cap;
};

static clog_status_t
writer_failed(const clog_writer_t *w, char *err, size_t errlen)
{
	snprintf(err, errlen, "change log \"%s\" is unusable after an earlier fsync failure; "
		 "reopen it", w->dir);
	return CLOG_ERROR;
}

/* Seal the current segment (durably) and create the next one. */
static clog_status_t
writer_roll(clog_writer_t *w, char *err, size_t errlen)
{
	if (w->seg_fd >= 0) {
		/* A sealed segment must hold only whole frames before its successor exists. */
		if (fdatasync(w->seg_fd) != 0) {
			snprintf(err, errlen, "could not fdatasync change log segment \"%s\": %s",
				 w->seg_path, strerror(errno));
			w->failed = true;
			return CLOG_ERROR;
		}
		w->unsynced_bytes = 0;
		close(w->seg_fd);
		w->seg_fd = -1;
	}
	char *path = segment_path(w->segdir, w->seg_seq + 1);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "could not create change log segment \"%s\": %s", path,
			 strerror(errno));
		free(path);
		return CLOG_ERROR;
	}
	free(w->seg_path);
	w->seg_path = path;
	w->seg_fd = fd;
	w->seg_seq++;
	w->seg_size = 0;
	w->need_dir_sync = true;
	log_debug("clog", "created change log segment \"%s\"", path);
	return CLOG_OK;
}

/* Compress the pending batch and write it as one frame (no fsync). */
static clog_status_t
writer_write_frame(clog_writer_t *w, char *err, size_t errlen)
{
	if (w->count == 0)
		return CLOG_OK;
	size_t bound = ZSTD_compressBound(w->raw_len);
	grow(&w->frame, &w->frame_cap, FRAME_HDR_LEN + bound);
	size_t clen = ZSTD_compress2(w->cctx, w->frame + FRAME_HDR_LEN, bound, w->raw, w->raw_len);
	if (ZSTD_isError(clen)) {
		snprintf(err, errlen, "could not compress change log frame: %s",
			 ZSTD_getErrorName(clen));
		return CLOG_ERROR;
	}
	size_t frame_len = FRAME_HDR_LEN + clen;
	if (w->seg_fd < 0 ||
	    (w->seg_size > 0 && w->seg_size + frame_len > w->opts.segment_bytes)) {
		clog_status_t rc = writer_roll(w, err, errlen);
		if (rc != CLOG_OK)
			return rc;
	}
	frame_header_build(w->frame, FRAME_COMP_ZSTD, (uint32_t) clen, (uint32_t) w->raw_len,
			   w->count, &w->first_pending, &w->last_pos);
	uint32_t crc = clog_crc32c(0, w->frame, CRC_COVERED);
	crc = clog_crc32c(crc, w->frame + FRAME_HDR_LEN, clen);
	put_le32(w->frame + OFF_CRC, crc);
	/* One write per frame: readers see a growing frame as cut short, never garbage. */
	if (!write_full(w->seg_fd, w->frame, frame_len)) {
		int saved = errno;
		/* Leave only whole frames behind so a retry (e.g. after disk full) is clean. */
		if (ftruncate(w->seg_fd, (off_t) w->seg_size) != 0)
			w->failed = true;
		snprintf(err, errlen, "could not write to change log segment \"%s\": %s",
			 w->seg_path, strerror(saved));
		return CLOG_ERROR;
	}
	w->seg_size += frame_len;
	w->unsynced_bytes += frame_len;
	w->raw_len = 0;
	w->count = 0;
	return CLOG_OK;
}

/*
 * Find the last position in the log and truncate a torn tail of the last
 * segment.  Leaves w->seg_* describing the last segment (opened for append).
 */
static clog_status_t
writer_recover(clog_writer_t *w, char *err, size_t errlen)
{
	uint64_t *segs;
	size_t nsegs;
	clog_status_t rc = segment_list(w->segdir, &segs, &nsegs, err, errlen);
	if (rc != CLOG_OK)
		return rc;
	for (size_t i = nsegs; i-- > 0;) {
		char *path = segment_path(w->segdir, segs[i]);
		seg_walk_t sw;
		bool is_last = i == nsegs - 1;
		rc = segment_walk(path, true, &sw, err, errlen);
		if (rc == CLOG_OK && sw.tail) {
			if (is_last) {
				log_warn("clog", "truncating torn tail of change log segment \"%s\" at offset %" PRIu64
					 " (%" PRIu64 " bytes dropped): %s",
					 path, sw.valid_end, sw.size - sw.valid_end, sw.tail_why);
				int fd = open(path, O_WRONLY | O_CLOEXEC);
				if (fd < 0 || ftruncate(fd, (off_t) sw.valid_end) != 0 || fsync(fd) != 0) {
					snprintf(err, errlen, "could not truncate change log segment \"%s\" at offset %" PRIu64 ": %s",
						 path, sw.valid_end, strerror(errno));
					rc = CLOG_ERROR;
				}
				if (fd >= 0)
					close(fd);
			} else {
				snprintf(err, errlen,
					 "change log segment \"%s\" is corrupt at offset %" PRIu64 ": %s",
					 path, sw.valid_end, sw.tail_why);
				rc = CLOG_CORRUPT;
			}
		}
		if (rc == CLOG_OK && is_last) {
			w->seg_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
			if (w->seg_fd < 0) {
				snprintf(err, errlen, "could not open change log segment \"%s\": %s",
					 path, strerror(errno));
				rc = CLOG_ERROR;
			} else {
				w->seg_seq = segs[i];
				w->seg_size = sw.valid_end;
				w->seg_path = xstrdup(path);
			}
		}
		free(path);
		if (rc != CLOG_OK)
			break;
		if (sw.has_frames) {
			w->last_pos = sw.last;
			break;
		}
	}
	free(segs);
	w->durable_pos = w->last_pos;
	return rc;
}

clog_status_t
clog_writer_open(const char *dir, const clog_options_t *opts, clog_writer_t **out,
		 char *err, size_t errlen)
{
	clog_writer_t *w = xcalloc(1, sizeof(*w));
	clog_status_t rc = CLOG_ERROR;
	w->lock_fd = -1;
	w->seg_fd = -1;
	w->dir = xstrdup(dir);
	w->segdir = xasprintf("%s/segments", dir);
	w->opts.segment_bytes = opts && opts->segment_bytes ? opts->segment_bytes : DEFAULT_SEGMENT_BYTES;
	w->opts.batch_raw_bytes = opts && opts->batch_raw_bytes ? opts->batch_raw_bytes : DEFAULT_BATCH_RAW_BYTES;
	w->opts.zstd_level = opts && opts->zstd_level ? opts->zstd_level : 1;
	if (w->opts.batch_raw_bytes > CLOG_MAX_RAW / 2)
		w->opts.batch_raw_bytes = CLOG_MAX_RAW / 2;
	if (w->opts.zstd_level < ZSTD_minCLevel() || w->opts.zstd_level > ZSTD_maxCLevel()) {
		snprintf(err, errlen, "zstd level %d is out of range (%d..%d)", w->opts.zstd_level,
			 ZSTD_minCLevel(), ZSTD_maxCLevel());
		goto out;
	}

	char *readers = xasprintf("%s/readers", dir);
	bool made = make_dirs(dir, err, errlen) && make_dirs(w->segdir, err, errlen) &&
		    make_dirs(readers, err, errlen);
	free(readers);
	if (!made)
		goto out;

	char *lock_path = xasprintf("%s/LOCK", dir);
	w->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (w->lock_fd < 0) {
		snprintf(err, errlen, "could not open lock file \"%s\": %s", lock_path, strerror(errno));
		free(lock_path);
		goto out;
	}
	if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "change log \"%s\" is locked by another writer", dir);
		else
			snprintf(err, errlen, "could not lock \"%s\": %s", lock_path, strerror(errno));
		free(lock_path);
		goto out;
	}
	free(lock_path);

	w->cctx = ZSTD_createCCtx();
	if (w->cctx == NULL) {
		snprintf(err, errlen, "could not create zstd compression context");
		goto out;
	}
	size_t zr = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->opts.zstd_level);
	if (!ZSTD_isError(zr))
		zr = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1);
	if (!ZSTD_isError(zr))
		zr = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 0);  /* CRC32C covers it */
	if (ZSTD_isError(zr)) {
		snprintf(err, errlen, "could not configure zstd: %s", ZSTD_getErrorName(zr));
		goto out;
	}
	rc = writer_recover(w, err, errlen);
	if (rc != CLOG_OK)
		goto out;
	/* The segment directory may be new, or a truncation may have happened. */
	if (!fsync_dir(w->segdir, err, errlen) || !fsync_dir(dir, err, errlen)) {
		rc = CLOG_ERROR;
		goto out;
	}
	*out = w;
	return CLOG_OK;
out:
	clog_writer_close(w);
	return rc == CLOG_OK ? CLOG_ERROR : rc;
}

bool
clog_writer_last_position(const clog_writer_t *w, position_t *out)
{
	*out = w->durable_pos;
	return w->durable_pos.len > 0;
}

/* Append a protobuf varint; returns bytes written (at most 10). */
static size_t
put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t) v;
	return n;
}

clog_status_t
clog_writer_append(clog_writer_t *w, const Steward__Change *change, char *err, size_t errlen)
{
	if (w->failed)
		return writer_failed(w, err, errlen);
	position_t pos;
	if (!change->has_position || change->position.len == 0 ||
	    !position_set(&pos, change->position.data, change->position.len)) {
		snprintf(err, errlen, "change for table \"%s\" has no valid position (length %zu)",
			 change->table ? change->table : "", change->has_position ? change->position.len : 0);
		return CLOG_ERROR;
	}
	if (position_cmp(&pos, &w->last_pos) <= 0)
		return CLOG_DUPLICATE;

	size_t size = protobuf_c_message_get_packed_size(&change->base);
	size_t entry = 1 + 10 + size;  /* tag + varint length (at most) + message */
	if (entry > CLOG_MAX_RAW) {
		snprintf(err, errlen, "change for table \"%s\" is too large (%zu bytes packed)",
			 change->table ? change->table : "", size);
		return CLOG_ERROR;
	}
	if (w->raw_len + entry > CLOG_MAX_RAW) {
		clog_status_t rc = writer_write_frame(w, err, errlen);
		if (rc != CLOG_OK)
			return rc;
	}
	grow(&w->raw, &w->raw_cap, w->raw_len + entry);
	/* Batch field 1 (changes), wire type 2: packed straight into the frame buffer. */
	uint8_t *p = w->raw + w->raw_len;
	*p++ = 0x0a;
	p += put_varint(p, size);
	size_t packed = protobuf_c_message_pack(&change->base, p);
	w->raw_len = (size_t) (p - w->raw) + packed;
	if (w->count == 0)
		w->first_pending = pos;
	w->count++;
	w->last_pos = pos;
	if (w->raw_len >= w->opts.batch_raw_bytes)
		return writer_write_frame(w, err, errlen);
	return CLOG_OK;
}

clog_status_t
clog_writer_flush(clog_writer_t *w, char *err, size_t errlen)
{
	if (w->failed)
		return writer_failed(w, err, errlen);
	clog_status_t rc = writer_write_frame(w, err, errlen);
	if (rc != CLOG_OK)
		return rc;
	if (w->unsynced_bytes > 0) {
		if (fdatasync(w->seg_fd) != 0) {
			/* After a failed fsync the kernel may have dropped dirty pages: never retry. */
			snprintf(err, errlen, "could not fdatasync change log segment \"%s\": %s",
				 w->seg_path, strerror(errno));
			w->failed = true;
			return CLOG_ERROR;
		}
		w->unsynced_bytes = 0;
	}
	if (w->need_dir_sync) {
		if (!fsync_dir(w->segdir, err, errlen)) {
			w->failed = true;
			return CLOG_ERROR;
		}
		w->need_dir_sync = false;
	}
	/* The durability promise of clog.h is kept here: everything appended is synced. */
	w->durable_pos = w->last_pos;
	return CLOG_OK;
}

size_t
clog_writer_pending_bytes(const clog_writer_t *w)
{
	return w->raw_len + (size_t) w->unsynced_bytes;
}

void
clog_writer_close(clog_writer_t *w)
{
	if (w == NULL)
		return;
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	if (w->lock_fd >= 0)
		close(w->lock_fd);  /* releases the flock */
	ZSTD_freeCCtx(w->cctx);
	free(w->raw);
	free(w->frame);
	free(w->seg_path);
	free(w->segdir);
	free(w->dir);
	free(w);
}

/* ---- frame payloads ---- */

/*
 * Decompress a checked frame's payload.  *data points at the packed Batch
 * (in *raw, or in payload itself when uncompressed).  false with the reason
 * in why when the payload does not match the header; raw_len is trusted
 * only after checking it against zstd's own content size, and the output
 * buffer is never larger than raw_len (<= CLOG_MAX_RAW).
 */
static bool
frame_inflate(ZSTD_DCtx *dctx, const frame_hdr_t *h, const uint8_t *payload, uint8_t **raw,
	      size_t *raw_cap, const uint8_t **data, char *why, size_t whylen)
{
	if (h->compression != FRAME_COMP_ZSTD) {
		if (h->payload_len != h->raw_len) {
			snprintf(why, whylen, "uncompressed payload length %" PRIu32 " differs from raw length %" PRIu32,
				 h->payload_len, h->raw_len);
			return false;
		}
		*data = payload;
		return true;
	}
	unsigned long long content = ZSTD_getFrameContentSize(payload, h->payload_len);
	if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN) {
		snprintf(why, whylen, "payload is not a zstd frame with a content size");
		return false;
	}
	if (content != h->raw_len) {
		snprintf(why, whylen, "zstd content size %llu does not match raw length %" PRIu32,
			 content, h->raw_len);
		return false;
	}
	grow(raw, raw_cap, h->raw_len ? h->raw_len : 1);
	size_t n = ZSTD_decompressDCtx(dctx, *raw, h->raw_len, payload, h->payload_len);
	if (ZSTD_isError(n)) {
		snprintf(why, whylen, "could not decompress payload: %s", ZSTD_getErrorName(n));
		return false;
	}
	if (n != h->raw_len) {
		snprintf(why, whylen, "payload decompressed to %zu bytes, header says %" PRIu32, n,
			 h->raw_len);
		return false;
	}
	*data = *raw;
	return true;
}

/*
 * Cursor over the records of a decompressed Batch: each is a field-1
 * entry (tag 0x0a, varint length, packed Change), unpacked one at a time
 * so a reader never holds a whole batch of decoded records.
 */
typedef struct batch_cursor {
	const uint8_t *data;
	size_t len;
	size_t pos;
	uint32_t index;        /* records returned so far */
	const frame_hdr_t *hdr;
	position_t prev;       /* position of the previous record */
} batch_cursor_t;

static void
batch_cursor_init(batch_cursor_t *bc, const frame_hdr_t *h, const uint8_t *data)
{
	memset(bc, 0, sizeof(*bc));
	bc->data = data;
	bc->len = h->raw_len;
	bc->hdr = h;
}

/*
 * Next record of the batch into *out, allocated with alloc.  Returns 1 for
 * a record, 0 at the end (after checking the count), -1 on a malformed
 * batch with the reason in why.  Positions must increase and lie within
 * the header's [first, last].
 */
static int
batch_cursor_next(batch_cursor_t *bc, ProtobufCAllocator *alloc, Steward__Change **out,
		  position_t *pos, char *why, size_t whylen)
{
	if (bc->pos == bc->len) {
		if (bc->index != bc->hdr->count) {
			snprintf(why, whylen, "frame holds %" PRIu32 " records, header says %" PRIu32,
				 bc->index, bc->hdr->count);
			return -1;
		}
		return 0;
	}
	if (bc->data[bc->pos] != 0x0a) {
		snprintf(why, whylen, "unexpected field tag 0x%02x in batch at byte %zu",
			 bc->data[bc->pos], bc->pos);
		return -1;
	}
	size_t p = bc->pos + 1;
	uint64_t mlen = 0;
	int shift = 0;
	for (;;) {
		if (p >= bc->len || shift > 63) {
			snprintf(why, whylen, "bad record length in batch at byte %zu", bc->pos);
			return -1;
		}
		uint8_t b = bc->data[p++];
		mlen |= (uint64_t) (b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	if (mlen > bc->len - p) {
		snprintf(why, whylen, "record %" PRIu32 " overruns the batch", bc->index);
		return -1;
	}
	Steward__Change *c = steward__change__unpack(alloc, (size_t) mlen, bc->data + p);
	if (c == NULL) {
		snprintf(why, whylen, "could not decode record %" PRIu32 " of the batch", bc->index);
		return -1;
	}
	if (!c->has_position || c->position.len == 0 ||
	    !position_set(pos, c->position.data, c->position.len) ||
	    (bc->index > 0 && position_cmp(pos, &bc->prev) <= 0) ||
	    position_cmp(pos, &bc->hdr->first) < 0 || position_cmp(pos, &bc->hdr->last) > 0 ||
	    (bc->index == 0 && position_cmp(pos, &bc->hdr->first) != 0)) {
		snprintf(why, whylen, "record %" PRIu32 " has a missing or out-of-order position",
			 bc->index);
		steward__change__free_unpacked(c, alloc);
		return -1;
	}
	if (bc->index + 1 == bc->hdr->count && position_cmp(pos, &bc->hdr->last) != 0) {
		snprintf(why, whylen, "last record's position differs from the frame header");
		steward__change__free_unpacked(c, alloc);
		return -1;
	}
	bc->prev = *pos;
	bc->pos = p + (size_t) mlen;
	bc->index++;
	*out = c;
	return 1;
}

/* ---- reader ---- */


struct clog_reader {
	char *dir;
	char *segdir;
	position_t after;      /* everything <= after has been returned or skipped */
	uint64_t seg_seq;      /* current segment, 0 = none yet */
	char *seg_path;
	int seg_fd;
	uint64_t off;          /* offset of the next frame to read */
	uint8_t *payload;
	size_t payload_cap;
	uint8_t *raw;
	size_t raw_cap;
	ZSTD_DCtx *dctx;
	/* The frame being handed out (r->off stays at its start until done). */
	bool in_frame;
	frame_hdr_t hdr;
	uint64_t frame_end;
	batch_cursor_t cursor;
	arena_t *arena;        /* the record last returned */
	ProtobufCAllocator arena_alloc;
};

clog_status_t
clog_reader_open(const char *dir, const position_t *after, clog_reader_t **out,
		 char *err, size_t errlen)
{
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "change log directory \"%s\" does not exist", dir);
		return CLOG_ERROR;
	}
	clog_reader_t *r = xcalloc(1, sizeof(*r));
	r->dir = xstrdup(dir);
	r->segdir = xasprintf("%s/segments", dir);
	r->seg_fd = -1;
	if (after)
		r->after = *after;
	r->arena = arena_create(64 * 1024);
	r->arena_alloc = (ProtobufCAllocator) {pbc_arena_alloc, pbc_arena_free, r->arena};
	r->dctx = ZSTD_createDCtx();
	if (r->dctx == NULL) {
		snprintf(err, errlen, "could not create zstd decompression context");
		clog_reader_close(r);
		return CLOG_ERROR;
	}
	*out = r;
	return CLOG_OK;
}

/* Smallest segment after the current one; 0 if none.  CLOG_ERROR on I/O. */
static clog_status_t
reader_next_segment(clog_reader_t *r, uint64_t *next, char *err, size_t errlen)
{
	uint64_t *segs;
	size_t n;
	*next = 0;
	clog_status_t rc = segment_list(r->segdir, &segs, &n, err, errlen);
	if (rc != CLOG_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (segs[i] > r->seg_seq) {
			*next = segs[i];
			break;
		}
	}
	free(segs);
	return CLOG_OK;
}

/* Switch to segment seq; a segment removed meanwhile (gc) is skipped by the caller. */
static clog_status_t
reader_open_segment(clog_reader_t *r, uint64_t seq, char *err, size_t errlen)
{
	char *path = segment_path(r->segdir, seq);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		snprintf(err, errlen, "could not open change log segment \"%s\": %s", path,
			 strerror(errno));
		free(path);
		return CLOG_ERROR;
	}
	if (r->seg_fd >= 0)
		close(r->seg_fd);
	free(r->seg_path);
	r->seg_fd = fd;
	r->seg_path = path;
	r->seg_seq = seq;
	r->off = 0;
	return CLOG_OK;
}

static clog_status_t
reader_corrupt(clog_reader_t *r, const char *why, char *err, size_t errlen)
{
	snprintf(err, errlen, "change log segment \"%s\" is corrupt at offset %" PRIu64 ": %s",
		 r->seg_path, r->off, why);
	return CLOG_CORRUPT;
}

clog_status_t
clog_reader_next(clog_reader_t *r, const Steward__Change **change, char *err, size_t errlen)
{
	for (;;) {
		while (r->in_frame) {
			Steward__Change *c;
			position_t p;
			char why[200];
			arena_reset(r->arena);
			int n = batch_cursor_next(&r->cursor, &r->arena_alloc, &c, &p, why, sizeof(why));
			if (n < 0)
				return reader_corrupt(r, why, err, errlen);
			if (n == 0) {
				r->in_frame = false;
				r->off = r->frame_end;
				break;
			}
			if (position_cmp(&p, &r->after) <= 0)
				continue;  /* before the start position */
			r->after = p;
			*change = c;
			return CLOG_OK;
		}

		if (r->seg_fd < 0) {
			uint64_t next;
			clog_status_t rc = reader_next_segment(r, &next, err, errlen);
			if (rc != CLOG_OK)
				return rc;
			if (next == 0)
				return CLOG_END;
			rc = reader_open_segment(r, next, err, errlen);
			if (rc != CLOG_OK)
				return rc;
			if (r->seg_fd < 0)
				continue;  /* removed by gc meanwhile: take the next one */
		}

		frame_hdr_t h;
		char why[200];
		struct stat st;
		frame_status_t fs = FRAME_SHORT;
		uint64_t size = 0;
		uint64_t next = 0;
		/*
		 * Try the frame; if it is not whole, look for a later segment first
		 * and then look again: the writer finishes a segment before it
		 * creates the next, so a segment seen as sealed has its final size.
		 */
		for (int attempt = 0; attempt < 2; attempt++) {
			if (attempt == 1) {
				clog_status_t rc = reader_next_segment(r, &next, err, errlen);
				if (rc != CLOG_OK)
					return rc;
			}
			if (fstat(r->seg_fd, &st) != 0) {
				snprintf(err, errlen, "could not stat change log segment \"%s\": %s",
					 r->seg_path, strerror(errno));
				return CLOG_ERROR;
			}
			size = (uint64_t) st.st_size;
			if (r->off == size) {
				fs = FRAME_SHORT;
				snprintf(why, sizeof(why), "end of segment");
			} else {
				fs = frame_read(r->seg_fd, r->off, size, true, &h, &r->payload,
						&r->payload_cap, why, sizeof(why));
			}
			if (fs == FRAME_OK || fs == FRAME_IOERR)
				break;
		}
		if (fs == FRAME_IOERR) {
			snprintf(err, errlen, "could not read change log segment \"%s\" at offset %" PRIu64 ": %s",
				 r->seg_path, r->off, why);
			return CLOG_ERROR;
		}
		if (fs != FRAME_OK) {
			if (r->off == size && next != 0) {
				clog_status_t rc = reader_open_segment(r, next, err, errlen);
				if (rc != CLOG_OK)
					return rc;
				continue;
			}
			if (next != 0)
				return reader_corrupt(r, why, err, errlen);  /* sealed segment */
			if (r->off < size && valid_frame_after(r->seg_fd, r->off, size))
				return reader_corrupt(r, why, err, errlen);
			return CLOG_END;  /* a frame still being written (or a torn tail) */
		}
		uint64_t frame_end = r->off + FRAME_HDR_LEN + (uint64_t) h.payload_len;
		if (position_cmp(&h.last, &r->after) <= 0) {
			r->off = frame_end;  /* wholly before the start position */
			continue;
		}
		const uint8_t *data;
		if (!frame_inflate(r->dctx, &h, r->payload, &r->raw, &r->raw_cap, &data, why,
				   sizeof(why)))
			return reader_corrupt(r, why, err, errlen);
		r->hdr = h;
		r->frame_end = frame_end;
		batch_cursor_init(&r->cursor, &r->hdr, data);
		r->in_frame = true;
	}
}

void
clog_reader_where(const clog_reader_t *r, char *out, size_t outlen)
{
	if (r->seg_path == NULL)
		snprintf(out, outlen, "change log \"%s\" before the first segment", r->dir);
	else
		snprintf(out, outlen, "change log segment \"%s\" offset %" PRIu64, r->seg_path, r->off);
}

void
clog_reader_close(clog_reader_t *r)
{
	if (r == NULL)
		return;
	if (r->seg_fd >= 0)
		close(r->seg_fd);
	arena_destroy(r->arena);
	ZSTD_freeDCtx(r->dctx);
	free(r->payload);
	free(r->raw);
	free(r->seg_path);
	free(r->segdir);
	free(r->dir);
	free(r);
}

/* ---- checkpoints ---- */

static bool
checkpoint_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 200 || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

clog_status_t
clog_checkpoint_save(const char *dir, const char *name, const position_t *pos,
		     char *err, size_t errlen)
{
	if (!checkpoint_name_ok(name)) {
		snprintf(err, errlen, "invalid reader name \"%s\" (letters, digits, '_', '-', '.')", name);
		return CLOG_ERROR;
	}
	char *readers = xasprintf("%s/readers", dir);
	char *path = xasprintf("%s/%s", readers, name);
	char *tmp = xasprintf("%s/.%s.tmp", readers, name);
	clog_status_t rc = CLOG_ERROR;
	int fd = -1;
	char hex[2 * POSITION_MAX + 1];
	position_hex(pos, hex, sizeof(hex));
	char *text = xasprintf(CHECKPOINT_MAGIC " %s\n", hex);

	if (!make_dirs(readers, err, errlen))
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !write_full(fd, text, strlen(text)) || fsync(fd) != 0) {
		snprintf(err, errlen, "could not write checkpoint file \"%s\": %s", tmp, strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	/* Rename is atomic: a crash leaves the old checkpoint or the new one. */
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "could not rename \"%s\" to \"%s\": %s", tmp, path, strerror(errno));
		goto out;
	}
	if (!fsync_dir(readers, err, errlen))
		goto out;
	rc = CLOG_OK;
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	free(text);
	free(tmp);
	free(path);
	free(readers);
	return rc;
}

clog_status_t
clog_checkpoint_load(const char *dir, const char *name, position_t *pos, char *err,
		     size_t errlen)
{
	if (!checkpoint_name_ok(name)) {
		snprintf(err, errlen, "invalid reader name \"%s\" (letters, digits, '_', '-', '.')", name);
		return CLOG_ERROR;
	}
	char *path = xasprintf("%s/readers/%s", dir, name);
	clog_status_t rc = CLOG_ERROR;
	char text[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			rc = CLOG_END;
		} else {
			snprintf(err, errlen, "could not open checkpoint file \"%s\": %s", path,
				 strerror(errno));
		}
		goto out;
	}
	ssize_t n = pread_full(fd, text, sizeof(text) - 1, 0);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "could not read checkpoint file \"%s\": %s", path, strerror(errno));
		goto out;
	}
	text[n] = '\0';
	size_t mlen = strlen(CHECKPOINT_MAGIC);
	char *nl = strchr(text, '\n');
	if (strncmp(text, CHECKPOINT_MAGIC " ", mlen + 1) != 0 || nl == NULL) {
		snprintf(err, errlen, "checkpoint file \"%s\" is corrupt", path);
		rc = CLOG_CORRUPT;
		goto out;
	}
	*nl = '\0';
	if (!position_from_hex(pos, text + mlen + 1)) {
		snprintf(err, errlen, "checkpoint file \"%s\" is corrupt: bad position", path);
		rc = CLOG_CORRUPT;
		goto out;
	}
	rc = CLOG_OK;
out:
	free(path);
	return rc;
}

clog_status_t
clog_checkpoint_list(const char *dir, char ***names, size_t *n, char *err, size_t errlen)
{
	*names = NULL;
	*n = 0;
	char *readers = xasprintf("%s/readers", dir);
	DIR *d = opendir(readers);
	if (d == NULL) {
		clog_status_t rc = CLOG_OK;
		if (errno != ENOENT) {
			snprintf(err, errlen, "could not open directory \"%s\": %s", readers,
				 strerror(errno));
			rc = CLOG_ERROR;
		}
		free(readers);
		return rc;
	}
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!checkpoint_name_ok(de->d_name))
			continue;  /* ".", "..", and ".NAME.tmp" of an interrupted save */
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*names = xrealloc(*names, cap * sizeof(**names));
		}
		(*names)[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	free(readers);
	return CLOG_OK;
}

void
clog_checkpoint_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* ---- retention ---- */

clog_status_t
clog_gc(const char *dir, size_t *removed, char *err, size_t errlen)
{
	if (removed)
		*removed = 0;
	char **names;
	size_t nnames;
	clog_status_t rc = clog_checkpoint_list(dir, &names, &nnames, err, errlen);
	if (rc != CLOG_OK)
		return rc;
	if (nnames == 0)
		return CLOG_OK;  /* no reader has said what it consumed: keep everything */
	position_t min = {0};
	bool have_min = false;
	for (size_t i = 0; i < nnames && rc == CLOG_OK; i++) {
		position_t p;
		clog_status_t lr = clog_checkpoint_load(dir, names[i], &p, err, errlen);
		if (lr == CLOG_END)
			continue;  /* removed meanwhile */
		if (lr != CLOG_OK) {
			rc = lr;
			break;
		}
		if (!have_min || position_cmp(&p, &min) < 0)
			min = p;
		have_min = true;
	}
	clog_checkpoint_list_free(names, nnames);
	if (rc != CLOG_OK || !have_min)
		return rc;

	char *segdir = xasprintf("%s/segments", dir);
	uint64_t *segs;
	size_t nsegs;
	rc = segment_list(segdir, &segs, &nsegs, err, errlen);
	if (rc != CLOG_OK) {
		free(segdir);
		return rc;
	}
	/*
	 * Only segments before the last one holding a frame are sealed for
	 * this purpose: the writer finds its last position in that one.
	 */
	size_t last_nonempty = nsegs;
	for (size_t i = nsegs; i-- > 0;) {
		char *path = segment_path(segdir, segs[i]);
		struct stat st;
		bool nonempty = stat(path, &st) == 0 && st.st_size > 0;
		free(path);
		if (nonempty) {
			last_nonempty = i;
			break;
		}
	}
	size_t count = 0;
	for (size_t i = 0; i < last_nonempty && i + 1 < nsegs; i++) {
		char *path = segment_path(segdir, segs[i]);
		seg_walk_t sw;
		rc = segment_walk(path, false, &sw, err, errlen);
		if (rc == CLOG_OK && sw.tail) {
			snprintf(err, errlen, "change log segment \"%s\" is corrupt at offset %" PRIu64 ": %s",
				 path, sw.valid_end, sw.tail_why);
			rc = CLOG_CORRUPT;
		}
		bool consumed = rc == CLOG_OK && (!sw.has_frames || position_cmp(&sw.last, &min) <= 0);
		if (consumed) {
			if (unlink(path) != 0) {
				snprintf(err, errlen, "could not remove change log segment \"%s\": %s", path,
					 strerror(errno));
				rc = CLOG_ERROR;
			} else {
				log_debug("clog", "removed consumed change log segment \"%s\"", path);
				count++;
			}
		}
		free(path);
		if (!consumed)
			break;  /* later segments hold later positions */
	}
	if (count > 0 && rc == CLOG_OK && !fsync_dir(segdir, err, errlen))
		rc = CLOG_ERROR;
	if (removed)
		*removed = count;
	free(segs);
	free(segdir);
	return rc;
}

uint64_t
clog_size_bytes(const char *dir)
{
	char *segdir = xasprintf("%s/segments", dir);
	uint64_t *segs;
	size_t n;
	char err[256];
	uint64_t total = 0;
	if (segment_list(segdir, &segs, &n, err, sizeof(err)) == CLOG_OK) {
		for (size_t i = 0; i < n; i++) {
			char *path = segment_path(segdir, segs[i]);
			struct stat st;
			if (stat(path, &st) == 0)
				total += (uint64_t) st.st_size;
			free(path);
		}
		free(segs);
	}
	free(segdir);
	return total;
}

/* ---- whole-log scan (verify, stats) ---- */

/* Decompress and decode every record of a checked frame. */
static bool
scan_decode(ZSTD_DCtx *dctx, const frame_hdr_t *h, const uint8_t *payload, uint8_t **raw,
	    size_t *raw_cap, char *why, size_t whylen)
{
	const uint8_t *data;
	if (!frame_inflate(dctx, h, payload, raw, raw_cap, &data, why, whylen))
		return false;
	batch_cursor_t bc;
	batch_cursor_init(&bc, h, data);
	for (;;) {
		Steward__Change *c;
		position_t p;
		int n = batch_cursor_next(&bc, &pbc_allocator, &c, &p, why, whylen);
		if (n <= 0)
			return n == 0;
		steward__change__free_unpacked(c, &pbc_allocator);
	}
}

clog_status_t
clog_scan(const char *dir, bool deep, clog_scan_t *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	char *segdir = xasprintf("%s/segments", dir);
	uint64_t *segs = NULL;
	size_t nsegs = 0;
	uint8_t *payload = NULL, *raw = NULL;
	size_t payload_cap = 0, raw_cap = 0;
	ZSTD_DCtx *dctx = NULL;
	int fd = -1;
	char *path = NULL;
	position_t prev = {0};
	clog_status_t rc;
	struct stat st;

	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "change log directory \"%s\" does not exist", dir);
		rc = CLOG_ERROR;
		goto out;
	}
	rc = segment_list(segdir, &segs, &nsegs, err, errlen);
	if (rc != CLOG_OK)
		goto out;
	dctx = ZSTD_createDCtx();
	if (dctx == NULL) {
		snprintf(err, errlen, "could not create zstd decompression context");
		rc = CLOG_ERROR;
		goto out;
	}
	for (size_t i = 0; i < nsegs && rc == CLOG_OK; i++) {
		bool is_last = i == nsegs - 1;
		free(path);
		path = segment_path(segdir, segs[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;  /* removed by a concurrent gc */
			snprintf(err, errlen, "could not open change log segment \"%s\": %s", path,
				 strerror(errno));
			rc = CLOG_ERROR;
			break;
		}
		if (fstat(fd, &st) != 0) {
			snprintf(err, errlen, "could not stat change log segment \"%s\": %s", path,
				 strerror(errno));
			rc = CLOG_ERROR;
			break;
		}
		uint64_t size = (uint64_t) st.st_size;
		if (out->segments == 0)
			out->first_segment = segs[i];
		out->last_segment = segs[i];
		out->segments++;
		out->bytes += size;
		uint64_t off = 0;
		while (off < size) {
			frame_hdr_t h;
			char why[200];
			frame_status_t fs = frame_read(fd, off, size, deep, &h, &payload, &payload_cap,
						       why, sizeof(why));
			if (fs == FRAME_IOERR) {
				snprintf(err, errlen, "could not read change log segment \"%s\" at offset %" PRIu64 ": %s",
					 path, off, why);
				rc = CLOG_ERROR;
				break;
			}
			if (fs == FRAME_OK && position_cmp(&h.first, &prev) <= 0) {
				snprintf(why, sizeof(why), "frame positions do not increase");
				fs = FRAME_BAD;
			}
			if (fs == FRAME_OK && deep && !scan_decode(dctx, &h, payload, &raw, &raw_cap,
								    why, sizeof(why)))
				fs = FRAME_BAD;
			if (fs != FRAME_OK) {
				if (is_last && !valid_frame_after(fd, off, size)) {
					out->torn_tail = true;
					snprintf(out->tail, sizeof(out->tail),
						 "segment \"%s\" offset %" PRIu64 ": %s", path, off, why);
				} else {
					snprintf(err, errlen,
						 "change log segment \"%s\" is corrupt at offset %" PRIu64 ": %s",
						 path, off, why);
					rc = CLOG_CORRUPT;
				}
				break;
			}
			if (out->frames == 0)
				out->first = h.first;
			out->last = h.last;
			prev = h.last;
			out->frames++;
			out->records += h.count;
			out->raw_bytes += h.raw_len;
			off += FRAME_HDR_LEN + (uint64_t) h.payload_len;
		}
		close(fd);
		fd = -1;
	}
out:
	if (fd >= 0)
		close(fd);
	ZSTD_freeDCtx(dctx);
	free(payload);
	free(raw);
	free(path);
	free(segs);
	free(segdir);
	return rc;
}
