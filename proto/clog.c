/*
 * clog.c — the change log's writer (append into a batch packed in place,
 * compressed frames, flush with fdatasync, torn-tail recovery on open) and
 * reader (whole checksummed frames only, one record at a time, tailing a
 * live log).  Layout and guarantees: proto/clog.h, docs/change-log.md.
 * Frames and segments: clog_frame.c; checkpoints and gc: clog_retention.c.
 */
#include "clog_frame.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "arena.h"
#include "log.h"
#include "record_encode.h"
#include "xalloc.h"

#define DEFAULT_SEGMENT_BYTES (64u * 1024 * 1024)
#define DEFAULT_BATCH_RAW_BYTES (1024u * 1024)

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

/* ---- writer ---- */

/* A packed steward.Batch being built or written, and its records' positions. */
/* Batches queued for the frame thread at most. */
#define JOBS 3

typedef struct batch {
	uint8_t *raw;
	size_t raw_len, raw_cap;
	uint32_t count;
	position_t first, last;
	uint64_t sync_ticket;     /* clog_writer_flush_begin's: sync after writing it (0: no) */
	position_t sync_pos;      /* the last position appended when that was asked */
} batch_t;

/*
 * A registered shape: the packed steward.Shape without its id (the id is
 * the index + 1), and the batch it was last written into.
 */
typedef struct shape_ent {
	uint8_t *bytes;
	size_t len;
	uint64_t hash;
	uint64_t batch_gen;       /* == writer's batch_gen: already in the pending batch */
	uint8_t tag;              /* its Batch entry: 0x12 (field 2), 0x22 (4: value_refs) */
} shape_ent_t;

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
	batch_t cur;
	uint64_t batch_gen;       /* counts pending batches begun; 0 = none yet */
	shape_ent_t *shapes;      /* registered shapes, id = index + 1 */
	size_t nshapes;
	/*
	 * Full batches are compressed, checksummed and written in order by the
	 * frame thread while the caller fills the next one; up to JOBS wait
	 * for it, so a caller that outpaces it for a while (the two share the
	 * machine's cores with the source) does not stop at every batch.  Under
	 * lock: jobs, job_head, job_count, job_failed, job_rc, job_err, stop.
	 * While job_count > 0 the thread alone touches the segment fields,
	 * unsynced_bytes and failed; the caller waits for it (writer_wait)
	 * before it touches them.  A slot past the queued ones holds an
	 * emptied buffer that the next submit swaps with the pending batch.
	 */
	batch_t jobs[JOBS];
	size_t job_head, job_count;
	bool job_failed;           /* the head job failed: kept for a retry by the caller */
	clog_status_t job_rc;
	char job_err[512];
	uint64_t sync_asked;       /* clog_writer_flush_begin tickets handed out (caller's) */
	uint64_t sync_done;        /* under lock: the last ticket whose sync completed */
	position_t sync_done_pos;  /* under lock: what that sync made durable */
	bool stop;
	bool thread_started;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t inflight_bytes;   /* raw bytes of the queued jobs (atomic), for pending_bytes */
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
			__atomic_store_n(&w->failed, true, __ATOMIC_RELAXED);
			return CLOG_ERROR;
		}
		__atomic_store_n(&w->unsynced_bytes, 0, __ATOMIC_RELAXED);
		close(w->seg_fd);
		w->seg_fd = -1;
	}
	char *path = clog_segment_path(w->segdir, w->seg_seq + 1);
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
writer_write_frame(clog_writer_t *w, batch_t *b, char *err, size_t errlen)
{
	if (b->count == 0)
		return CLOG_OK;
	size_t bound = ZSTD_compressBound(b->raw_len);
	clog_grow(&w->frame, &w->frame_cap, FRAME_HDR_LEN + bound);
	size_t clen = ZSTD_compress2(w->cctx, w->frame + FRAME_HDR_LEN, bound, b->raw, b->raw_len);
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
	clog_frame_header_build(w->frame, FRAME_COMP_ZSTD, (uint32_t) clen, (uint32_t) b->raw_len,
				b->count, &b->first, &b->last);
	uint32_t crc = clog_crc32c(0, w->frame, CRC_COVERED);
	crc = clog_crc32c(crc, w->frame + FRAME_HDR_LEN, clen);
	clog_put_le32(w->frame + OFF_CRC, crc);
	/* One write per frame: readers see a growing frame as cut short, never garbage. */
	if (!clog_write_full(w->seg_fd, w->frame, frame_len)) {
		int saved = errno;
		/* Leave only whole frames behind so a retry (e.g. after disk full) is clean. */
		if (ftruncate(w->seg_fd, (off_t) w->seg_size) != 0)
			__atomic_store_n(&w->failed, true, __ATOMIC_RELAXED);
		snprintf(err, errlen, "could not write to change log segment \"%s\": %s",
			 w->seg_path, strerror(saved));
		return CLOG_ERROR;
	}
	w->seg_size += frame_len;
	__atomic_add_fetch(&w->unsynced_bytes, frame_len, __ATOMIC_RELAXED);
	b->raw_len = 0;
	b->count = 0;
	return CLOG_OK;
}

/*
 * Make everything written so far durable: fdatasync of the segment and,
 * after a segment was created, fsync of the directory.  A failure leaves
 * the writer refusing all further work (the kernel may have dropped the
 * dirty pages: never retry).  Only the thread writing frames calls it.
 */
static clog_status_t
writer_sync(clog_writer_t *w, char *err, size_t errlen)
{
	if (__atomic_load_n(&w->unsynced_bytes, __ATOMIC_RELAXED) > 0) {
		if (fdatasync(w->seg_fd) != 0) {
			snprintf(err, errlen, "could not fdatasync change log segment \"%s\": %s",
				 w->seg_path, strerror(errno));
			__atomic_store_n(&w->failed, true, __ATOMIC_RELAXED);
			return CLOG_ERROR;
		}
		__atomic_store_n(&w->unsynced_bytes, 0, __ATOMIC_RELAXED);
	}
	if (w->need_dir_sync) {
		if (!clog_fsync_dir(w->segdir, err, errlen)) {
			__atomic_store_n(&w->failed, true, __ATOMIC_RELAXED);
			return CLOG_ERROR;
		}
		w->need_dir_sync = false;
	}
	return CLOG_OK;
}

/*
 * The head job b (raw_len bytes) is written, and synced if it asked to
 * be: record what its sync made durable and take it off the queue.  The
 * caller holds lock.
 */
static void
job_done(clog_writer_t *w, batch_t *b, size_t raw_len)
{
	if (b->sync_ticket) {
		w->sync_done = b->sync_ticket;
		w->sync_done_pos = b->sync_pos;
		b->sync_ticket = 0;
	}
	w->job_head = (w->job_head + 1) % JOBS;
	w->job_count--;
	__atomic_sub_fetch(&w->inflight_bytes, raw_len, __ATOMIC_RELAXED);
}

/* The frame thread: write the queued batches in order; keep a failed one for a retry. */
static void *
writer_thread(void *arg)
{
	clog_writer_t *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while ((w->job_count == 0 || w->job_failed) && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->job_count == 0 || w->job_failed)
			break;
		batch_t *b = &w->jobs[w->job_head];  /* the caller leaves queued slots alone */
		size_t raw_len = b->raw_len;
		pthread_mutex_unlock(&w->lock);
		char err[512];
		clog_status_t rc = writer_write_frame(w, b, err, sizeof err);
		if (rc == CLOG_OK && b->sync_ticket)
			rc = writer_sync(w, err, sizeof err);  /* clog_writer_flush_begin asked for it */
		pthread_mutex_lock(&w->lock);
		w->job_rc = rc;
		if (rc != CLOG_OK) {
			snprintf(w->job_err, sizeof w->job_err, "%s", err);
			w->job_failed = true;
		} else {
			job_done(w, b, raw_len);
		}
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/*
 * Wait until the frame thread has written every queued batch; a batch it
 * failed to write is retried here, in order, with those after it (e.g.
 * after a disk full).  CLOG_OK when no earlier batch is left unwritten.
 */
static clog_status_t
writer_wait(clog_writer_t *w, char *err, size_t errlen)
{
	if (!w->thread_started)
		return CLOG_OK;
	pthread_mutex_lock(&w->lock);
	while (w->job_count > 0 && !w->job_failed)
		pthread_cond_wait(&w->cond, &w->lock);
	bool retry = w->job_failed;
	if (retry)
		snprintf(err, errlen, "%s", w->job_err);
	pthread_mutex_unlock(&w->lock);
	if (!retry)
		return CLOG_OK;
	if (w->failed)
		return CLOG_ERROR;
	/* the thread is idle while job_failed: its queue is ours until we clear it */
	while (w->job_count > 0) {
		batch_t *b = &w->jobs[w->job_head];
		size_t raw_len = b->raw_len;
		if (writer_write_frame(w, b, err, errlen) != CLOG_OK)
			return CLOG_ERROR;
		if (b->sync_ticket && writer_sync(w, err, errlen) != CLOG_OK)
			return CLOG_ERROR;
		pthread_mutex_lock(&w->lock);
		job_done(w, b, raw_len);
		pthread_mutex_unlock(&w->lock);
	}
	pthread_mutex_lock(&w->lock);
	w->job_failed = false;
	w->job_rc = CLOG_OK;
	pthread_mutex_unlock(&w->lock);
	return CLOG_OK;
}

/* Queue the full pending batch for the frame thread and start a new one. */
static clog_status_t
writer_submit(clog_writer_t *w, char *err, size_t errlen)
{
	if (!w->thread_started) {
		if (pthread_create(&w->thread, NULL, writer_thread, w) != 0)
			return writer_write_frame(w, &w->cur, err, errlen);  /* write it here */
		w->thread_started = true;
	}
	pthread_mutex_lock(&w->lock);
	while (w->job_count == JOBS && !w->job_failed)
		pthread_cond_wait(&w->cond, &w->lock);
	bool failed = w->job_failed;
	pthread_mutex_unlock(&w->lock);
	if (failed) {
		clog_status_t rc = writer_wait(w, err, errlen);  /* retries, or reports */
		if (rc != CLOG_OK)
			return rc;
	}
	pthread_mutex_lock(&w->lock);
	size_t slot = (w->job_head + w->job_count) % JOBS;
	batch_t done = w->cur;
	w->cur = w->jobs[slot];  /* a written (or never used) buffer, emptied and reused */
	w->cur.raw_len = 0;
	w->cur.count = 0;
	w->cur.sync_ticket = 0;
	w->jobs[slot] = done;
	w->job_count++;
	__atomic_add_fetch(&w->inflight_bytes, done.raw_len, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
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
	clog_status_t rc = clog_segment_list(w->segdir, &segs, &nsegs, err, errlen);
	if (rc != CLOG_OK)
		return rc;
	for (size_t i = nsegs; i-- > 0;) {
		char *path = clog_segment_path(w->segdir, segs[i]);
		seg_walk_t sw;
		bool is_last = i == nsegs - 1;
		rc = clog_segment_walk(path, true, &sw, err, errlen);
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
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
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
	bool made = clog_make_dirs(dir, err, errlen) && clog_make_dirs(w->segdir, err, errlen) &&
		    clog_make_dirs(readers, err, errlen);
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
	if (!clog_fsync_dir(w->segdir, err, errlen) || !clog_fsync_dir(dir, err, errlen)) {
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

/*
 * Make room for one packed Change of `size` bytes at `pos` in the pending
 * batch (writing the batch as a frame first when it is full) and count it.
 * A shaped record's shape (sh, id) goes in first when this batch lacks it.
 * *dst receives where the record's bytes go.
 */
static clog_status_t
batch_reserve(clog_writer_t *w, const position_t *pos, size_t size, shape_ent_t *sh,
	      uint32_t shape_id, uint8_t tag, const char *what, uint8_t **dst, char *err,
	      size_t errlen)
{
	if (__atomic_load_n(&w->failed, __ATOMIC_RELAXED))
		return writer_failed(w, err, errlen);
	if (position_cmp(pos, &w->last_pos) <= 0)
		return CLOG_DUPLICATE;
	size_t entry = 1 + 10 + size;  /* tag + varint length (at most) + message */
	/* a shape entry: tag + length + id field (tag, varint) + the registered bytes */
	size_t shape_entry = sh ? 1 + 10 + 1 + 5 + sh->len : 0;
	if (entry + shape_entry > CLOG_MAX_RAW) {
		snprintf(err, errlen, "change for table \"%s\" is too large (%zu bytes packed)",
			 what, size);
		return CLOG_ERROR;
	}
	batch_t *b = &w->cur;
	if (b->raw_len > 0 &&
	    (b->raw_len >= w->opts.batch_raw_bytes ||
	     b->raw_len + entry + shape_entry > CLOG_MAX_RAW)) {
		clog_status_t rc = writer_submit(w, err, errlen);
		if (rc != CLOG_OK)
			return rc;
	}
	if (b->raw_len == 0)
		w->batch_gen++;  /* a new batch holds no shape yet, whatever went before */
	clog_grow(&b->raw, &b->raw_cap, b->raw_len + entry + shape_entry);
	uint8_t *p = b->raw + b->raw_len;
	if (sh && sh->batch_gen != w->batch_gen) {
		/* Batch field 2 (shapes): Shape.id (field 1, varint) then the registered fields. */
		size_t body = 1 + record_varint_len(shape_id) + sh->len;
		*p++ = sh->tag;
		p += record_varint_put(p, body);
		*p++ = 0x08;
		p += record_varint_put(p, shape_id);
		memcpy(p, sh->bytes, sh->len);
		p += sh->len;
		sh->batch_gen = w->batch_gen;
	}
	/* Batch field 1 (changes) or 3 (packed), wire type 2: straight into the frame buffer. */
	*p++ = tag;
	p += record_varint_put(p, size);
	*dst = p;
	b->raw_len = (size_t) (p - b->raw) + size;
	if (b->count == 0)
		b->first = *pos;
	b->count++;
	b->last = *pos;
	w->last_pos = *pos;
	return CLOG_OK;
}

clog_status_t
clog_writer_append(clog_writer_t *w, const Steward__Change *change, char *err, size_t errlen)
{
	position_t pos;
	if (!change->has_position || change->position.len == 0 ||
	    !position_set(&pos, change->position.data, change->position.len)) {
		snprintf(err, errlen, "change for table \"%s\" has no valid position (length %zu)",
			 change->table ? change->table : "", change->has_position ? change->position.len : 0);
		return CLOG_ERROR;
	}
	if (__atomic_load_n(&w->failed, __ATOMIC_RELAXED))
		return writer_failed(w, err, errlen);
	if (position_cmp(&pos, &w->last_pos) <= 0)
		return CLOG_DUPLICATE;
	size_t size = protobuf_c_message_get_packed_size(&change->base);
	uint8_t *dst;
	clog_status_t rc = batch_reserve(w, &pos, size, NULL, 0, 0x0a,
					 change->table ? change->table : "", &dst, err, errlen);
	if (rc != CLOG_OK)
		return rc;
	protobuf_c_message_pack(&change->base, dst);
	return CLOG_OK;
}

/* The test batch_reserve makes before it hands a batch on; see clog.h. */
bool
clog_writer_batch_starts(const clog_writer_t *w, uint32_t shape_id, size_t size)
{
	const batch_t *b = &w->cur;
	if (b->raw_len == 0 || b->raw_len >= w->opts.batch_raw_bytes)
		return true;
	/* as batch_reserve counts it: room for the shape whether or not it is written */
	size_t shape_entry = 0;
	if (shape_id > 0 && shape_id <= w->nshapes)
		shape_entry = 1 + 10 + 1 + 5 + w->shapes[shape_id - 1].len;
	return b->raw_len + 1 + 10 + size + shape_entry > CLOG_MAX_RAW;
}

uint64_t
clog_writer_shape_batch(const clog_writer_t *w, uint32_t shape_id, size_t size)
{
	if (shape_id == 0 || shape_id > w->nshapes ||
	    w->shapes[shape_id - 1].batch_gen != w->batch_gen ||
	    clog_writer_batch_starts(w, shape_id, size))
		return 0;
	return w->batch_gen;
}

bool
clog_writer_would_drop(const clog_writer_t *w, const position_t *pos)
{
	return position_cmp(pos, &w->last_pos) <= 0;
}

size_t
clog_writer_run_room(const clog_writer_t *w, uint32_t shape_id)
{
	const batch_t *b = &w->cur;
	/* as batch_reserve decides: an entry starting below batch_raw_bytes stays */
	if (shape_id == 0 || shape_id > w->nshapes ||
	    w->shapes[shape_id - 1].batch_gen != w->batch_gen || b->raw_len == 0 ||
	    b->raw_len >= w->opts.batch_raw_bytes ||
	    w->opts.batch_raw_bytes + CLOG_RUN_ENTRY_MAX > CLOG_MAX_RAW)
		return 0;
	return w->opts.batch_raw_bytes - b->raw_len;
}

clog_status_t
clog_writer_append_run(clog_writer_t *w, const position_t *last, uint32_t n,
		       const uint8_t *entries, size_t len, char *err, size_t errlen)
{
	if (__atomic_load_n(&w->failed, __ATOMIC_RELAXED))
		return writer_failed(w, err, errlen);
	if (n == 0)
		return CLOG_OK;
	if (w->cur.raw_len == 0 || position_cmp(last, &w->last_pos) <= 0) {
		snprintf(err, errlen, "run of %" PRIu32 " records does not continue the pending batch",
			 n);
		return CLOG_ERROR;
	}
	batch_t *b = &w->cur;
	clog_grow(&b->raw, &b->raw_cap, b->raw_len + len);
	memcpy(b->raw + b->raw_len, entries, len);
	b->raw_len += len;
	b->count += n;
	b->last = *last;
	w->last_pos = *last;
	return CLOG_OK;
}

clog_status_t
clog_writer_batch_end(clog_writer_t *w, char *err, size_t errlen)
{
	if (__atomic_load_n(&w->failed, __ATOMIC_RELAXED))
		return writer_failed(w, err, errlen);
	return w->cur.raw_len > 0 ? writer_submit(w, err, errlen) : CLOG_OK;
}

clog_status_t
clog_writer_reserve(clog_writer_t *w, const position_t *pos, size_t size, uint8_t **dst,
		    char *err, size_t errlen)
{
	if (pos->len == 0) {
		snprintf(err, errlen, "change has no position");
		return CLOG_ERROR;
	}
	return batch_reserve(w, pos, size, NULL, 0, 0x0a, "", dst, err, errlen);
}

/* FNV-1a: shapes are looked up by their bytes. */
static uint64_t
shape_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

clog_status_t
clog_writer_shape(clog_writer_t *w, const uint8_t *shape, size_t len, uint32_t *id, char *err,
		  size_t errlen)
{
	uint64_t h = shape_hash(shape, len);
	/* linear: called once per table map, and a source has few table shapes */
	for (size_t i = w->nshapes; i-- > 0;) {
		shape_ent_t *e = &w->shapes[i];
		if (e->hash == h && e->len == len && memcmp(e->bytes, shape, len) == 0) {
			*id = (uint32_t) (i + 1);
			return CLOG_OK;
		}
	}
	if (len > CLOG_MAX_RAW / 4 || w->nshapes >= UINT32_MAX - 1) {
		snprintf(err, errlen, "table shape of %zu bytes cannot be registered (%zu shapes)",
			 len, w->nshapes);
		return CLOG_ERROR;
	}
	w->shapes = xrealloc(w->shapes, (w->nshapes + 1) * sizeof(*w->shapes));
	shape_ent_t *e = &w->shapes[w->nshapes++];
	e->bytes = xmalloc(len ? len : 1);
	if (len)
		memcpy(e->bytes, shape, len);
	e->len = len;
	e->hash = h;
	e->batch_gen = 0;
	/* Batch field 4 for a shape with value_refs, so readers from before them stop there */
	Steward__Shape *sh = steward__shape__unpack(NULL, len, shape);
	e->tag = sh && sh->has_value_refs && sh->value_refs ? 0x22 : 0x12;
	if (sh)
		steward__shape__free_unpacked(sh, NULL);
	*id = (uint32_t) w->nshapes;
	return CLOG_OK;
}

static clog_status_t
reserve_shaped(clog_writer_t *w, const position_t *pos, uint32_t shape_id, uint8_t tag,
	       size_t size, uint8_t **dst, char *err, size_t errlen)
{
	if (pos->len == 0) {
		snprintf(err, errlen, "change has no position");
		return CLOG_ERROR;
	}
	if (shape_id == 0 || shape_id > w->nshapes) {
		snprintf(err, errlen, "change refers to unregistered shape %" PRIu32, shape_id);
		return CLOG_ERROR;
	}
	return batch_reserve(w, pos, size, &w->shapes[shape_id - 1], shape_id, tag, "", dst, err,
			     errlen);
}

clog_status_t
clog_writer_reserve_shaped(clog_writer_t *w, const position_t *pos, uint32_t shape_id,
			   size_t size, uint8_t **dst, char *err, size_t errlen)
{
	return reserve_shaped(w, pos, shape_id, 0x0a, size, dst, err, errlen);
}

clog_status_t
clog_writer_reserve_packed(clog_writer_t *w, const position_t *pos, uint32_t shape_id,
			   size_t size, uint8_t **dst, char *err, size_t errlen)
{
	return reserve_shaped(w, pos, shape_id, 0x1a, size, dst, err, errlen);
}

clog_status_t
clog_writer_flush(clog_writer_t *w, char *err, size_t errlen)
{
	/* the frame thread is idle after writer_wait: the segment fields are ours */
	clog_status_t rc = writer_wait(w, err, errlen);
	if (w->failed)
		return writer_failed(w, err, errlen);
	if (rc != CLOG_OK)
		return rc;
	rc = writer_write_frame(w, &w->cur, err, errlen);
	if (rc != CLOG_OK)
		return rc;
	rc = writer_sync(w, err, errlen);
	if (rc != CLOG_OK)
		return rc;
	/* The durability promise of clog.h is kept here: everything appended is synced. */
	w->durable_pos = w->last_pos;
	pthread_mutex_lock(&w->lock);
	w->sync_done = w->sync_asked;  /* every ticket handed out is covered */
	w->sync_done_pos = w->last_pos;
	pthread_mutex_unlock(&w->lock);
	return CLOG_OK;
}

clog_status_t
clog_writer_flush_begin(clog_writer_t *w, uint64_t *ticket, char *err, size_t errlen)
{
	if (__atomic_load_n(&w->failed, __ATOMIC_RELAXED))
		return writer_failed(w, err, errlen);
	/* the pending batch goes to the frame thread now, however full, with the sync after it */
	w->cur.sync_ticket = ++w->sync_asked;
	w->cur.sync_pos = w->last_pos;
	*ticket = w->cur.sync_ticket;
	clog_status_t rc = writer_submit(w, err, errlen);
	if (rc == CLOG_OK && !w->thread_started)
		rc = clog_writer_flush(w, err, errlen);  /* no frame thread: synchronously */
	return rc;
}

bool
clog_writer_flush_done(clog_writer_t *w, uint64_t ticket)
{
	pthread_mutex_lock(&w->lock);
	bool done = w->sync_done >= ticket;
	position_t pos = w->sync_done_pos;
	pthread_mutex_unlock(&w->lock);
	if (done && position_cmp(&pos, &w->durable_pos) > 0)
		w->durable_pos = pos;
	return done;
}

size_t
clog_writer_pending_bytes(const clog_writer_t *w)
{
	return w->cur.raw_len + (size_t) __atomic_load_n(&w->inflight_bytes, __ATOMIC_RELAXED) +
	       (size_t) __atomic_load_n(&w->unsynced_bytes, __ATOMIC_RELAXED);
}

void
clog_writer_close(clog_writer_t *w)
{
	if (w == NULL)
		return;
	if (w->thread_started) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	if (w->lock_fd >= 0)
		close(w->lock_fd);  /* releases the flock */
	ZSTD_freeCCtx(w->cctx);
	free(w->cur.raw);
	for (size_t i = 0; i < JOBS; i++)
		free(w->jobs[i].raw);
	for (size_t i = 0; i < w->nshapes; i++)
		free(w->shapes[i].bytes);
	free(w->shapes);
	free(w->frame);
	free(w->seg_path);
	free(w->segdir);
	free(w->dir);
	free(w);
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
	clog_status_t rc = clog_segment_list(r->segdir, &segs, &n, err, errlen);
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
	char *path = clog_segment_path(r->segdir, seq);
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
			int n = clog_batch_cursor_next(&r->cursor, &r->arena_alloc, &c, &p, why, sizeof(why));
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
				fs = clog_frame_read(r->seg_fd, r->off, size, true, &h, &r->payload,
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
			if (r->off < size && clog_valid_frame_after(r->seg_fd, r->off, size))
				return reader_corrupt(r, why, err, errlen);
			return CLOG_END;  /* a frame still being written (or a torn tail) */
		}
		uint64_t frame_end = r->off + FRAME_HDR_LEN + (uint64_t) h.payload_len;
		if (position_cmp(&h.last, &r->after) <= 0) {
			r->off = frame_end;  /* wholly before the start position */
			continue;
		}
		const uint8_t *data;
		if (!clog_frame_inflate(r->dctx, &h, r->payload, &r->raw, &r->raw_cap, &data, why,
				   sizeof(why)))
			return reader_corrupt(r, why, err, errlen);
		r->hdr = h;
		r->frame_end = frame_end;
		clog_batch_cursor_init(&r->cursor, &r->hdr, data);  /* frees the last frame's shapes */
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
	clog_batch_cursor_destroy(&r->cursor);
	arena_destroy(r->arena);
	ZSTD_freeDCtx(r->dctx);
	free(r->payload);
	free(r->raw);
	free(r->seg_path);
	free(r->segdir);
	free(r->dir);
	free(r);
}
