/*
 * warehouse_feed.h — the reading half of the warehouse apply: one thread
 * reads the change logs, decodes each record and converts it into
 * wh_change_t (warehouse_rows.h), a batch at a time, while the caller
 * writes the previous batch into the warehouse.
 *
 * The feed never touches the warehouse: which changes are already applied,
 * the rows and the applied positions all stay with the caller, which owns
 * the connection.  A chunk is exactly the input of one warehouse
 * transaction, so exactly-once is the caller's argument as before (rows
 * and positions commit together); the feed only moves reading off the
 * caller's thread.  At most one finished chunk waits for the caller, so
 * at most three chunks exist (being read, waiting, being written).
 */
#ifndef STEWARD_APPLY_WAREHOUSE_FEED_H
#define STEWARD_APPLY_WAREHOUSE_FEED_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "clog.h"
#include "position.h"
#include "warehouse_rows.h"

/*
 * Records per chunk at most.  Small chunks keep the writer busy from the
 * first moment (it does not wait for a whole batch to be read) and the
 * memory small; a batch is as many chunks as it takes.
 */
#define WH_FEED_CHUNK 4096

/* One change log record: its position and the changes it became. */
typedef struct wh_record {
	size_t log;                /* index into the feed's logs */
	const char *source;        /* never NULL */
	const char *position_text; /* never NULL */
	position_t position;
	size_t first, n;           /* its changes: chunk->changes[first .. first + n) */
} wh_record_t;

/* Up to WH_FEED_CHUNK records, owned by the feed until wh_feed_release. */
typedef struct wh_chunk {
	wh_record_t *records;
	size_t nrecords;
	wh_change_t *changes;
	size_t nchanges;
	bool caught_up;            /* every log was at its end when the chunk closed */
	bool last;                 /* the feed ends after this chunk */
	bool ends_batch;           /* commit after this chunk: the batch is full, or the
				      logs are caught up, or this is the last chunk */
	int rc;                    /* STEWARD_EXIT_OK, or the read failure that ended the feed
				      (after these records); err says why */
	char err[1024];
	struct wh_chunk_priv *priv;
} wh_chunk_t;

typedef struct wh_feed_config {
	clog_reader_t **readers;   /* one per log, opened by the caller; borrowed and
				      read only by the feed thread until wh_feed_stop */
	size_t nlogs;
	size_t batch_records;      /* records per warehouse transaction; chunks are
				      smaller and a batch is one or more chunks */
	bool once;                 /* end (last = true) when every log is at its end */
	int poll_ms;               /* tailing: wait when every log is at its end */
	volatile sig_atomic_t *stop;  /* set by a signal handler of the caller's thread:
					 the feed ends after its current chunk.  Read
					 only on the caller's thread, by wh_feed_next */
} wh_feed_config_t;

typedef struct wh_feed wh_feed_t;

/* Start the reader thread; cfg is copied (its readers array is borrowed). */
wh_feed_t *wh_feed_start(const wh_feed_config_t *cfg);

/*
 * The next chunk, waiting for it (and passing a stop on to the reader
 * thread meanwhile).  Valid until wh_feed_release; the caller releases
 * every chunk it takes.  After a chunk with last set, do not call again.
 */
wh_chunk_t *wh_feed_next(wh_feed_t *f);
void wh_feed_release(wh_feed_t *f, wh_chunk_t *c);

/* Stop the thread (it drops what it was reading), join it and free the
 * feed and its chunks.  Accepts NULL.  The readers stay the caller's. */
void wh_feed_stop(wh_feed_t *f);

#endif
