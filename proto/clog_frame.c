/*
 * clog_frame.c — the change log's frames and segments: building and
 * checking frame headers, reading frames with their CRC32C, telling a torn
 * tail from corruption, listing and walking segment files, and decoding a
 * frame's batch one record at a time.  Layout: proto/clog.h.
 */
#include "clog_frame.h"

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

#include "xalloc.h"

#define SEGMENT_NAME_DIGITS 20
#define SCAN_CHUNK (1024u * 1024)

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

ProtobufCAllocator clog_pbc_allocator = {pbc_alloc, pbc_free, NULL};

void
clog_put_le32(uint8_t *p, uint32_t v)
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
void
clog_frame_header_build(uint8_t *hdr, uint8_t compression, uint32_t payload_len,
			uint32_t raw_len, uint32_t count, const position_t *first,
			const position_t *last)
{
	memset(hdr, 0, FRAME_HDR_LEN);
	memcpy(hdr + OFF_MAGIC, FRAME_MAGIC, 4);
	hdr[OFF_VERSION] = FRAME_VERSION;
	hdr[OFF_COMP] = compression;
	clog_put_le32(hdr + OFF_PAYLOAD_LEN, payload_len);
	clog_put_le32(hdr + OFF_RAW_LEN, raw_len);
	clog_put_le32(hdr + OFF_COUNT, count);
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
bool
clog_frame_header_parse(const uint8_t *hdr, frame_hdr_t *h, char *why, size_t whylen)
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
ssize_t
clog_pread_full(int fd, void *buf, size_t n, uint64_t off)
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

bool
clog_write_full(int fd, const void *buf, size_t n)
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

void
clog_grow(uint8_t **p, size_t *cap, size_t need)
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
frame_status_t
clog_frame_read(int fd, uint64_t off, uint64_t size, bool check_crc, frame_hdr_t *h,
	   uint8_t **payload, size_t *payload_cap, char *why, size_t whylen)
{
	uint8_t hdr[FRAME_HDR_LEN];
	if (off > size || size - off < FRAME_HDR_LEN) {
		snprintf(why, whylen, "frame header cut short (%" PRIu64 " of %d bytes)",
			 off > size ? 0 : size - off, FRAME_HDR_LEN);
		return FRAME_SHORT;
	}
	ssize_t n = clog_pread_full(fd, hdr, FRAME_HDR_LEN, off);
	if (n < 0) {
		snprintf(why, whylen, "could not read: %s", strerror(errno));
		return FRAME_IOERR;
	}
	if (n < FRAME_HDR_LEN) {
		snprintf(why, whylen, "frame header cut short");
		return FRAME_SHORT;
	}
	if (!clog_frame_header_parse(hdr, h, why, whylen))
		return FRAME_BAD;
	uint64_t avail = size - off - FRAME_HDR_LEN;
	if (h->payload_len > avail) {
		snprintf(why, whylen, "frame cut short (%" PRIu64 " of %" PRIu32 " payload bytes)",
			 avail, h->payload_len);
		return FRAME_SHORT;
	}
	if (!check_crc)
		return FRAME_OK;
	clog_grow(payload, payload_cap, h->payload_len ? h->payload_len : 1);
	n = clog_pread_full(fd, *payload, h->payload_len, off + FRAME_HDR_LEN);
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
bool
clog_valid_frame_after(int fd, uint64_t from, uint64_t size)
{
	uint8_t *chunk = xmalloc(SCAN_CHUNK);
	uint8_t *payload = NULL;
	size_t payload_cap = 0;
	bool found = false;
	uint64_t pos = from + 1;
	while (!found && pos + FRAME_HDR_LEN <= size) {
		size_t want = size - pos < SCAN_CHUNK ? (size_t) (size - pos) : SCAN_CHUNK;
		ssize_t n = clog_pread_full(fd, chunk, want, pos);
		if (n < 4)
			break;
		for (size_t i = 0; i + 4 <= (size_t) n && !found; i++) {
			if (memcmp(chunk + i, FRAME_MAGIC, 4) != 0)
				continue;
			frame_hdr_t h;
			char why[160];
			if (clog_frame_read(fd, pos + i, size, true, &h, &payload, &payload_cap, why,
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

char *
clog_segment_path(const char *segdir, uint64_t seq)
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
clog_status_t
clog_segment_list(const char *segdir, uint64_t **out, size_t *n, char *err, size_t errlen)
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

bool
clog_fsync_dir(const char *path, char *err, size_t errlen)
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
bool
clog_make_dirs(const char *path, char *err, size_t errlen)
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

/*
 * Walk every frame of a segment.  A bad frame followed by a valid one is
 * CLOG_CORRUPT; a bad or short tail is reported in out->tail (the caller
 * decides whether that is a torn tail or corruption).  Frame positions must
 * increase strictly.
 */
clog_status_t
clog_segment_walk(const char *path, bool check_crc, seg_walk_t *out, char *err, size_t errlen)
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
		frame_status_t fs = clog_frame_read(fd, off, out->size, check_crc, &h, &payload,
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
			if (clog_valid_frame_after(fd, off, out->size)) {
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

/*
 * Decompress a checked frame's payload.  *data points at the packed Batch
 * (in *raw, or in payload itself when uncompressed).  false with the reason
 * in why when the payload does not match the header; raw_len is trusted
 * only after checking it against zstd's own content size, and the output
 * buffer is never larger than raw_len (<= CLOG_MAX_RAW).
 */
bool
clog_frame_inflate(ZSTD_DCtx *dctx, const frame_hdr_t *h, const uint8_t *payload, uint8_t **raw,
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
	clog_grow(raw, raw_cap, h->raw_len ? h->raw_len : 1);
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

void
clog_batch_cursor_release(batch_cursor_t *bc)
{
	for (size_t i = 0; i < bc->nshapes; i++) {
		steward__shape__free_unpacked(bc->shapes[i].shape, &clog_pbc_allocator);
		packed_refs_free(bc->shapes[i].refs);
		free(bc->shapes[i].refs);
	}
	bc->nshapes = 0;
	bc->last_shape = 0;
	bc->last_shaped = false;
}

void
clog_batch_cursor_destroy(batch_cursor_t *bc)
{
	clog_batch_cursor_release(bc);
	free(bc->shapes);
	free(bc->ptext);
	free(bc->ptext_next);
	free(bc->ptxid);
	buf_free(&bc->vtext);
	buf_free(&bc->plain);
	free(bc->slots);
	memset(bc, 0, sizeof(*bc));
}

void
clog_batch_cursor_init(batch_cursor_t *bc, const frame_hdr_t *h, const uint8_t *data)
{
	clog_batch_cursor_release(bc);
	bc->has_ptext = false;
	bc->last_ptext_derived = false;
	bc->has_ptxid = false;
	bc->has_pcommit = false;
	bc->data = data;
	bc->len = h->raw_len;
	bc->pos = 0;
	bc->index = 0;
	bc->has_pop = bc->has_pseq = bc->has_pshape = false;
	bc->hdr = h;
	memset(&bc->prev, 0, sizeof(bc->prev));
}

/* Length of the entry whose tag is at bc->pos; *body: where its bytes start.  false if bad. */
static bool
entry_len(const batch_cursor_t *bc, size_t *body, uint64_t *mlen)
{
	size_t p = bc->pos + 1;
	uint64_t n = 0;
	int shift = 0;
	for (;;) {
		if (p >= bc->len || shift > 63)
			return false;
		uint8_t b = bc->data[p++];
		n |= (uint64_t) (b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	if (n > bc->len - p)
		return false;
	*body = p;
	*mlen = n;
	return true;
}

/* Unpack the Shape entry at bc->pos and keep it for the rest of the batch. */
static bool
shape_add(batch_cursor_t *bc, size_t body, size_t mlen, bool refs_entry, char *why, size_t whylen)
{
	Steward__Shape *sh = steward__shape__unpack(&clog_pbc_allocator, mlen, bc->data + body);
	if (sh == NULL || !sh->has_id) {
		snprintf(why, whylen, "could not decode the shape at byte %zu of the batch", bc->pos);
		if (sh)
			steward__shape__free_unpacked(sh, &clog_pbc_allocator);
		return false;
	}
	for (size_t i = 0; i < bc->nshapes; i++) {
		if (bc->shapes[i].id == sh->id) {
			snprintf(why, whylen, "shape %" PRIu32 " is defined twice in the batch", sh->id);
			steward__shape__free_unpacked(sh, &clog_pbc_allocator);
			return false;
		}
	}
	if (bc->nshapes == bc->shapes_cap) {
		bc->shapes_cap = bc->shapes_cap ? 2 * bc->shapes_cap : 8;
		bc->shapes = xrealloc(bc->shapes, bc->shapes_cap * sizeof(*bc->shapes));
	}
	packed_refs_t *refs = NULL;
	bool value_refs = sh->has_value_refs && sh->value_refs;
	if (value_refs != refs_entry) {
		snprintf(why, whylen, "shape %" PRIu32 " at byte %zu of the batch %s value_refs in "
			 "Batch field %d", sh->id, bc->pos, value_refs ? "has" : "lacks",
			 refs_entry ? 4 : 2);
		steward__shape__free_unpacked(sh, &clog_pbc_allocator);
		return false;
	}
	if (value_refs) {
		/* references start at zero: a shape is defined once per batch, before its rows */
		size_t n = sh->n_columns;
		uint8_t *codec = xmalloc(n + 1), *scale = xmalloc(n + 1);
		for (size_t i = 0; i < n; i++) {
			const Steward__Column *col = sh->columns[i];
			int cd = col->has_codec ? (int) col->codec : STEWARD__CODEC__CODEC_TEXT;
			codec[i] = (uint8_t) (cd >= 0 && cd <= 255 ? cd : 255);  /* 255: unknown */
			/* an absent scale is 0; one past any codec's range stays out of range */
			scale[i] = (uint8_t) (!col->has_scale ? 0 : col->scale <= 255 ? col->scale : 255);
		}
		refs = xmalloc(sizeof(*refs));
		packed_refs_init(refs, n, codec, scale);
		free(codec);
		free(scale);
	}
	bc->shapes[bc->nshapes++] = (batch_shape_t) {sh->id, sh, refs};
	return true;
}

static const Steward__Shape *
shape_find(batch_cursor_t *bc, uint32_t id)
{
	if (bc->last_shape < bc->nshapes && bc->shapes[bc->last_shape].id == id)
		return bc->shapes[bc->last_shape].shape;
	for (size_t i = 0; i < bc->nshapes; i++) {
		if (bc->shapes[i].id == id) {
			bc->last_shape = i;
			return bc->shapes[i].shape;
		}
	}
	return NULL;
}

/* A shaped image holds no value or one per shape column, none of them self-describing. */
static bool
shape_image_ok(const Steward__Shape *sh, Steward__Value *const *vals, size_t n)
{
	if (n != 0 && n != sh->n_columns)
		return false;
	for (size_t i = 0; i < n; i++)
		if (vals[i]->name || vals[i]->has_type_id || vals[i]->type_name)
			return false;
	return true;
}

static void
shape_fill_image(const Steward__Shape *sh, Steward__Value **vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const Steward__Column *col = sh->columns[i];
		vals[i]->name = col->name;
		vals[i]->has_type_id = col->has_type_id;
		vals[i]->type_id = col->type_id;
		vals[i]->type_name = col->type_name;
	}
}

/*
 * Check a shaped record against its shape; the record is filled in later
 * (shape_fill), after every other check, so a rejected record owns all it
 * points at.
 */
static const Steward__Shape *
shape_check(batch_cursor_t *bc, const Steward__Change *c, char *why, size_t whylen)
{
	const Steward__Shape *sh = shape_find(bc, c->shape);
	if (sh == NULL) {
		snprintf(why, whylen, "record %" PRIu32 " refers to shape %" PRIu32
			 ", which the batch does not define before it", bc->index, c->shape);
		return NULL;
	}
	if (c->has_version || c->source || c->has_source_kind || c->database || c->schema ||
	    c->table || c->n_key) {
		snprintf(why, whylen, "shaped record %" PRIu32 " carries its own table fields",
			 bc->index);
		return NULL;
	}
	if (!shape_image_ok(sh, c->before, c->n_before) || !shape_image_ok(sh, c->after, c->n_after)) {
		snprintf(why, whylen, "shaped record %" PRIu32 " has %zu/%zu values for shape %" PRIu32
			 " of %zu columns (or values naming their column)",
			 bc->index, c->n_before, c->n_after, c->shape, sh->n_columns);
		return NULL;
	}
	return sh;
}

static void
text_grow(char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	*cap = need < 64 ? 64 : 2 * need;
	*p = xrealloc(*p, *cap);
}

/*
 * The previous record's position_text up to and including its last ':',
 * then seq in decimal, into bc->ptext_next; false if there is no previous
 * text with a ':'.
 */
static bool
ptext_derive(batch_cursor_t *bc, uint32_t seq)
{
	if (!bc->has_ptext)
		return false;
	size_t plen = bc->ptext_len;
	while (plen > 0 && bc->ptext[plen - 1] != ':')
		plen--;
	if (plen == 0)
		return false;
	text_grow(&bc->ptext_next, &bc->ptext_next_cap, plen + 12);
	memcpy(bc->ptext_next, bc->ptext, plen);
	char digits[12];
	int nd = 0;
	do {
		digits[nd++] = (char) ('0' + seq % 10);
		seq /= 10;
	} while (seq);
	while (nd)
		bc->ptext_next[plen++] = digits[--nd];
	bc->ptext_next[plen] = '\0';
	return true;
}

/*
 * Remember the record's position_text for the next record; a derived one
 * (in ptext_next) becomes the record's, owned by the cursor.
 */
static void
ptext_keep(batch_cursor_t *bc, Steward__Change *c, bool derived)
{
	if (derived) {
		char *t = bc->ptext;
		size_t cap = bc->ptext_cap;
		bc->ptext = bc->ptext_next;
		bc->ptext_cap = bc->ptext_next_cap;
		bc->ptext_next = t;
		bc->ptext_next_cap = cap;
		bc->ptext_len = strlen(bc->ptext);
		c->position_text = bc->ptext;
		bc->last_ptext_derived = true;
	} else if (c->position_text) {
		size_t n = strlen(c->position_text);
		text_grow(&bc->ptext, &bc->ptext_cap, n + 1);
		memcpy(bc->ptext, c->position_text, n + 1);
		bc->ptext_len = n;
	}
	bc->has_ptext = c->position_text != NULL;
}

/* The record as its self-describing form reads; pointers borrowed from sh. */
static void
shape_fill(const Steward__Shape *sh, Steward__Change *c)
{
	c->has_version = sh->has_version;
	c->version = sh->version;
	c->source = sh->source;
	c->has_source_kind = sh->has_source_kind;
	c->source_kind = sh->source_kind;
	c->database = sh->database;
	c->schema = sh->schema;
	c->table = sh->table;
	c->n_key = sh->n_key;
	c->key = sh->key;
	shape_fill_image(sh, c->before, c->n_before);
	shape_fill_image(sh, c->after, c->n_after);
	c->has_shape = false;
	c->shape = 0;
}

/* Remember the record's txid and commit time for the packed records after it. */
static void
txn_keep(batch_cursor_t *bc, const Steward__Change *c, bool txid_derived)
{
	if (!txid_derived && c->txid) {
		size_t n = strlen(c->txid);
		text_grow(&bc->ptxid, &bc->ptxid_cap, n + 1);
		memcpy(bc->ptxid, c->txid, n + 1);
	}
	bc->has_ptxid = c->txid != NULL;
	bc->has_pcommit = c->has_commit_ts_us;
	bc->pcommit = c->commit_ts_us;
}

/*
 * Check a packed record's entry-level rules and decode its images into
 * bc->vtext and bc->slots (before's slots first, then after's); the record
 * itself is not touched, so a rejected one still owns all it points at.
 */
static bool
packed_decode(batch_cursor_t *bc, const Steward__Shape *sh, const Steward__Change *c, char *why,
	      size_t whylen)
{
	if (c->n_before || c->n_after) {
		snprintf(why, whylen, "packed record %" PRIu32 " also has before/after values",
			 bc->index);
		return false;
	}
	if (!c->has_before_packed && !c->has_after_packed) {
		snprintf(why, whylen, "packed record %" PRIu32 " has no packed image", bc->index);
		return false;
	}
	size_t n = sh->n_columns;
	if (bc->slots_cap < 2 * n) {
		bc->slots_cap = 2 * n < 64 ? 64 : 2 * n;
		bc->slots = xrealloc(bc->slots, bc->slots_cap * sizeof(*bc->slots));
	}
	buf_reset(&bc->vtext);
	const ProtobufCBinaryData *img[2] = {&c->before_packed, &c->after_packed};
	const bool has[2] = {c->has_before_packed, c->has_after_packed};
	packed_refs_t *refs = NULL;
	for (size_t i = 0; i < bc->nshapes; i++)
		if (bc->shapes[i].shape == sh)
			refs = bc->shapes[i].refs;
	for (int k = 0; k < 2; k++) {
		char vwhy[200];
		const uint8_t *bytes = img[k]->data;
		size_t len = img[k]->len;
		if (has[k] && refs) {
			buf_reset(&bc->plain);
			if (!packed_refs_decode(refs, bytes, len, &bc->plain, vwhy, sizeof(vwhy))) {
				snprintf(why, whylen, "packed record %" PRIu32 ", %s image: %s",
					 bc->index, k ? "after" : "before", vwhy);
				return false;
			}
			bytes = (const uint8_t *) bc->plain.data;
			len = bc->plain.len;
		}
		if (has[k] && !value_text_packed(sh, bytes, len, &bc->vtext,
						 bc->slots + k * n, vwhy, sizeof(vwhy))) {
			snprintf(why, whylen, "packed record %" PRIu32 ", %s image: %s", bc->index,
				 k ? "after" : "before", vwhy);
			return false;
		}
	}
	return true;
}

/* One image's Values from the slots packed_decode filled, allocated with alloc. */
static void
packed_image(const batch_cursor_t *bc, const value_text_slot_t *slots, size_t n,
	     ProtobufCAllocator *alloc, Steward__Value ***vals, size_t *nvals)
{
	*vals = NULL;
	*nvals = 0;
	if (n == 0)
		return;
	Steward__Value **v = alloc->alloc(alloc->allocator_data, n * sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		v[i] = alloc->alloc(alloc->allocator_data, sizeof(**v));
		steward__value__init(v[i]);
		if (slots[i].is_null) {
			v[i]->has_is_null = true;
			v[i]->is_null = true;
		} else {
			char *t = alloc->alloc(alloc->allocator_data, slots[i].len + 1);
			memcpy(t, bc->vtext.data + slots[i].off, slots[i].len + 1);
			v[i]->text = t;
		}
	}
	*vals = v;
	*nvals = n;
}

/*
 * Give a decoded packed record its text form: Values instead of packed
 * bytes (freed with alloc), and the transaction fields it leaves out.  A
 * record that leaves out its position is a later row of the previous
 * record's transaction: a txid or commit time it leaves out is that
 * record's too.  One with a position of its own has only what it carries,
 * as its text form would (a transaction without a GTID after one with it
 * reads as it was written).
 */
static void
packed_fill(batch_cursor_t *bc, const Steward__Shape *sh, Steward__Change *c,
	    ProtobufCAllocator *alloc, const position_t *pos, bool *txid_derived)
{
	size_t n = sh->n_columns;
	if (c->has_before_packed) {
		packed_image(bc, bc->slots, n, alloc, &c->before, &c->n_before);
		if (c->before_packed.data)
			alloc->free(alloc->allocator_data, c->before_packed.data);
		c->before_packed = (ProtobufCBinaryData) {0, NULL};
		c->has_before_packed = false;
	}
	if (c->has_after_packed) {
		packed_image(bc, bc->slots + n, n, alloc, &c->after, &c->n_after);
		if (c->after_packed.data)
			alloc->free(alloc->allocator_data, c->after_packed.data);
		c->after_packed = (ProtobufCBinaryData) {0, NULL};
		c->has_after_packed = false;
	}
	*txid_derived = false;
	if (c->has_position)
		return;  /* a transaction's first row: a txid or commit time it lacks, it has not */
	c->position.data = alloc->alloc(alloc->allocator_data, pos->len);
	memcpy(c->position.data, pos->bytes, pos->len);
	c->position.len = pos->len;
	c->has_position = true;
	if (c->txid == NULL && bc->has_ptxid) {
		size_t tl = strlen(bc->ptxid);
		c->txid = alloc->alloc(alloc->allocator_data, tl + 1);
		memcpy(c->txid, bc->ptxid, tl + 1);
		*txid_derived = true;
	}
	if (!c->has_commit_ts_us && bc->has_pcommit) {
		c->has_commit_ts_us = true;
		c->commit_ts_us = bc->pcommit;
	}
}

void
clog_batch_record_free(const batch_cursor_t *bc, Steward__Change *c, ProtobufCAllocator *alloc)
{
	if (c == NULL)
		return;
	if (bc->last_ptext_derived)
		c->position_text = NULL;  /* the cursor's */
	if (bc->last_shaped) {
		/* hand the shape's strings back before protobuf-c frees what the record owns */
		c->source = c->database = c->schema = c->table = NULL;
		c->n_key = 0;
		c->key = NULL;
		Steward__Value **imgs[2] = {c->before, c->after};
		size_t ns[2] = {c->n_before, c->n_after};
		for (int k = 0; k < 2; k++)
			for (size_t i = 0; i < ns[k]; i++)
				imgs[k][i]->name = imgs[k][i]->type_name = NULL;
	}
	steward__change__free_unpacked(c, alloc);
}

/*
 * Next record of the batch into *out, allocated with alloc.  Returns 1 for
 * a record, 0 at the end (after checking the count), -1 on a malformed
 * batch with the reason in why.  Positions must increase and lie within
 * the header's [first, last].
 */
int
clog_batch_cursor_next(batch_cursor_t *bc, ProtobufCAllocator *alloc, Steward__Change **out,
		       position_t *pos, char *why, size_t whylen)
{
	bc->last_shaped = false;
	bc->last_ptext_derived = false;
	size_t p;
	uint64_t mlen;
	for (;;) {
		if (bc->pos == bc->len) {
			if (bc->index != bc->hdr->count) {
				snprintf(why, whylen, "frame holds %" PRIu32 " records, header says %" PRIu32,
					 bc->index, bc->hdr->count);
				return -1;
			}
			return 0;
		}
		uint8_t tag = bc->data[bc->pos];
		if (tag != 0x0a && tag != 0x12 && tag != 0x1a && tag != 0x22) {
			snprintf(why, whylen, "unexpected field tag 0x%02x in batch at byte %zu", tag,
				 bc->pos);
			return -1;
		}
		bool is_shape = tag == 0x12 || tag == 0x22;
		if (!entry_len(bc, &p, &mlen)) {
			if (!is_shape)
				snprintf(why, whylen, "record %" PRIu32 " overruns the batch", bc->index);
			else
				snprintf(why, whylen, "bad shape length in batch at byte %zu", bc->pos);
			return -1;
		}
		if (!is_shape)
			break;
		if (!shape_add(bc, p, (size_t) mlen, tag == 0x22, why, whylen))
			return -1;
		bc->pos = p + (size_t) mlen;
	}
	bool packed = bc->data[bc->pos] == 0x1a;
	Steward__Change *c = steward__change__unpack(alloc, (size_t) mlen, bc->data + p);
	if (c == NULL) {
		snprintf(why, whylen, "could not decode %srecord %" PRIu32 " of the batch",
			 packed ? "packed (tag 0x1a) " : "", bc->index);
		return -1;
	}
	const Steward__Shape *sh = NULL;
	if (packed && !c->has_position && bc->index > 0) {
		/*
		 * A later row of the previous record's transaction: the op and
		 * shape it leaves out are the previous record's, its seq the
		 * previous one's + 1 (steward.proto, Change.before_packed).
		 */
		if (!c->has_op && bc->has_pop) {
			c->has_op = true;
			c->op = bc->pop;
		}
		if (!c->has_seq && bc->has_pseq) {
			c->has_seq = true;
			c->seq = bc->pseq + 1;
		}
		if (!c->has_shape && bc->has_pshape) {
			c->has_shape = true;
			c->shape = bc->pshape;
		}
	}
	/* what the record after this one may leave out (as read, before the shape is filled in) */
	bool has_op = c->has_op, has_seq = c->has_seq, has_shape = c->has_shape;
	Steward__Op op = c->op;
	uint32_t seq = c->seq, shape = c->shape;
	if (packed && !c->has_op) {
		snprintf(why, whylen, "packed (tag 0x1a) record %" PRIu32 " has no op", bc->index);
		goto bad;
	}
	if (packed && !c->has_shape) {
		snprintf(why, whylen, "packed (tag 0x1a) record %" PRIu32 " is not shaped", bc->index);
		goto bad;
	}
	if (!packed && (c->has_before_packed || c->has_after_packed)) {
		snprintf(why, whylen, "record %" PRIu32 " has packed images outside a packed entry",
			 bc->index);
		goto bad;
	}
	if (c->has_shape && !(sh = shape_check(bc, c, why, whylen)))
		goto bad;
	if (packed && !packed_decode(bc, sh, c, why, whylen))
		goto bad;
	if (packed && !c->has_position) {
		/* the previous record's, this record's seq in place of its own (a MySQL position) */
		if (bc->index == 0) {
			snprintf(why, whylen, "packed record %" PRIu32 " leaves out its position, "
				 "which no previous record of the batch gives", bc->index);
			goto bad;
		}
		if (!c->has_seq || bc->prev.len != 25) {
			snprintf(why, whylen, "packed record %" PRIu32 " leaves out its position, "
				 "but %s", bc->index, c->has_seq ? "the previous one is not a MySQL "
				 "position" : "has no seq to derive it with");
			goto bad;
		}
		*pos = bc->prev;
		position_mysql_set_seq(pos, c->seq);
	} else if (!c->has_position || c->position.len == 0 ||
		   !position_set(pos, c->position.data, c->position.len)) {
		pos->len = 0;
	}
	if (pos->len == 0 ||
	    (bc->index > 0 && position_cmp(pos, &bc->prev) <= 0) ||
	    position_cmp(pos, &bc->hdr->first) < 0 || position_cmp(pos, &bc->hdr->last) > 0 ||
	    (bc->index == 0 && position_cmp(pos, &bc->hdr->first) != 0)) {
		snprintf(why, whylen, "record %" PRIu32 " has a missing or out-of-order position",
			 bc->index);
		goto bad;
	}
	if (bc->index + 1 == bc->hdr->count && position_cmp(pos, &bc->hdr->last) != 0) {
		snprintf(why, whylen, "last record's position differs from the frame header");
		goto bad;
	}
	bool derived = false;
	if (sh && sh->position_text_by_seq && c->position_text == NULL) {
		if (!c->has_seq || !ptext_derive(bc, c->seq)) {
			snprintf(why, whylen, "shaped record %" PRIu32 " leaves out its position text, "
				 "which no previous record of the batch gives", bc->index);
			goto bad;
		}
		derived = true;
	}
	bool txid_derived = false;
	if (packed)
		packed_fill(bc, sh, c, alloc, pos, &txid_derived);
	if (sh) {
		shape_fill(sh, c);
		bc->last_shaped = true;
	}
	ptext_keep(bc, c, derived);
	txn_keep(bc, c, txid_derived);
	bc->has_pop = has_op;
	bc->pop = op;
	bc->has_pseq = has_seq;
	bc->pseq = seq;
	bc->has_pshape = has_shape;
	bc->pshape = shape;
	bc->prev = *pos;
	bc->pos = p + (size_t) mlen;
	bc->index++;
	*out = c;
	return 1;
bad:
	steward__change__free_unpacked(c, alloc);
	return -1;
}
