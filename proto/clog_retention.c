/*
 * clog_retention.c — reader checkpoints (small files written atomically),
 * removal of consumed segments, and the whole-log scan behind `steward log
 * verify` and `steward log stats`.  Contracts: proto/clog.h.
 */
#include "clog_frame.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "log.h"
#include "xalloc.h"

#define CHECKPOINT_MAGIC "steward-checkpoint 1"

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

	if (!clog_make_dirs(readers, err, errlen))
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !clog_write_full(fd, text, strlen(text)) || fsync(fd) != 0) {
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
	if (!clog_fsync_dir(readers, err, errlen))
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
	ssize_t n = clog_pread_full(fd, text, sizeof(text) - 1, 0);
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
	rc = clog_segment_list(segdir, &segs, &nsegs, err, errlen);
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
		char *path = clog_segment_path(segdir, segs[i]);
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
		char *path = clog_segment_path(segdir, segs[i]);
		seg_walk_t sw;
		rc = clog_segment_walk(path, false, &sw, err, errlen);
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
	if (count > 0 && rc == CLOG_OK && !clog_fsync_dir(segdir, err, errlen))
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
	if (clog_segment_list(segdir, &segs, &n, err, sizeof(err)) == CLOG_OK) {
		for (size_t i = 0; i < n; i++) {
			char *path = clog_segment_path(segdir, segs[i]);
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
	if (!clog_frame_inflate(dctx, h, payload, raw, raw_cap, &data, why, whylen))
		return false;
	batch_cursor_t bc = {0};
	clog_batch_cursor_init(&bc, h, data);
	int n;
	for (;;) {
		Steward__Change *c;
		position_t p;
		n = clog_batch_cursor_next(&bc, &clog_pbc_allocator, &c, &p, why, whylen);
		if (n <= 0)
			break;
		clog_batch_record_free(&bc, c, &clog_pbc_allocator);
	}
	clog_batch_cursor_destroy(&bc);
	return n == 0;
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
	rc = clog_segment_list(segdir, &segs, &nsegs, err, errlen);
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
		path = clog_segment_path(segdir, segs[i]);
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
			frame_status_t fs = clog_frame_read(fd, off, size, deep, &h, &payload, &payload_cap,
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
				if (is_last && !clog_valid_frame_after(fd, off, size)) {
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
