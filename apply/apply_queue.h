/*
 * apply_queue.h — the outbox worker's in-memory view of the outbox: one
 * FIFO per (target, entity, entity id), and a ready list of the FIFOs'
 * heads that may be sent.  Replaces a scan of the whole outbox per poll
 * with O(1) work per row; the state store stays the truth (rows enter the
 * queue after they are committed, leave it after their removal is).
 *
 * Order: only a FIFO's head is ever on the ready list, so one entity's
 * writes reach a target in queue (source) order.  Single-threaded.
 */
#ifndef STEWARD_APPLY_APPLY_QUEUE_H
#define STEWARD_APPLY_APPLY_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

typedef struct apply_queue apply_queue_t;
typedef struct apply_qrow apply_qrow_t;

struct apply_qrow {
	apply_outbox_row_t row;   /* owned */
	/* private */
	apply_qrow_t *next_same;  /* FIFO of the same (target, entity, id) */
	apply_qrow_t *rprev, *rnext;  /* ready list */
	struct apply_qgroup *group;
	bool ready;               /* on the ready list */
};

apply_queue_t *apply_queue_new(void);
void apply_queue_free(apply_queue_t *q);  /* accepts NULL */

/* Append a row (ids must grow); takes ownership of its strings and zeroes
 * *row.  A row whose FIFO was empty goes to the ready list's tail. */
void apply_queue_push(apply_queue_t *q, apply_outbox_row_t *row);
/* Rows held. */
size_t apply_queue_len(const apply_queue_t *q);
/* The highest id pushed (0 when none). */
int64_t apply_queue_last_id(const apply_queue_t *q);

/* The ready list, oldest first; valid until the next call that changes it. */
apply_qrow_t *apply_queue_first(apply_queue_t *q);
apply_qrow_t *apply_queue_next(apply_qrow_t *r);

/* Take a head off the ready list while it is in flight (it stays its
 * FIFO's head, so nothing behind it is sent). */
void apply_queue_hold(apply_queue_t *q, apply_qrow_t *r);
/* Put a held head back on the ready list's tail (to be sent again). */
void apply_queue_release(apply_queue_t *q, apply_qrow_t *r);
/* Remove a head (delivered or dead-lettered) and free it; the next row of
 * its FIFO, if any, goes to the ready list's tail. */
void apply_queue_remove(apply_queue_t *q, apply_qrow_t *r);

#endif
