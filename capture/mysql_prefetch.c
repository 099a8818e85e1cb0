/*
 * mysql_prefetch.c — the binlog reading thread; see mysql_prefetch.h.
 *
 * One mutex guards a ring of read events and a stack of spare ones (events
 * handed back, reused so that Connector/C keeps their memory).  The ring
 * is bounded: a reader far ahead of the decoder waits rather than holding
 * the backlog in memory.
 */
#include "mysql_prefetch.h"

#include <errmsg.h>
#include <errno.h>
#include <libdeflate.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xalloc.h"

/* Events read ahead: enough to cover a decoder's pause, ~1 MB of rows events. */
#define RING 128

typedef struct item {
	MARIADB_RPL_EVENT *ev;
	bool use_checksum;
} item_t;

struct mysql_prefetch {
	MYSQL *m;
	MARIADB_RPL *rpl;
	bool verify;
	volatile int *stop;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	item_t ring[RING];
	size_t head, count;
	MARIADB_RPL_EVENT *spare[RING + 2];
	size_t nspare;
	bool done;   /* the thread has ended; end says why */
	bool quit;   /* the thread is asked to end */
	mysql_prefetch_end_t end;
};

/*
 * The event's CRC32 against its bytes, where Connector/C would check it:
 * the stream has checksums, the stored one is not 0, and the event is not
 * an artificial ROTATE (for which the library makes the checksum up).
 * libdeflate's CRC-32 is zlib's polynomial, with carry-less multiplication.
 */
static bool
event_crc_ok(const MARIADB_RPL_EVENT *ev, bool use_checksum, char *msg, size_t msglen)
{
	if (!use_checksum || ev->raw_data_size < ev->raw_data_ofs + 4)
		return true;
	if (ev->event_type == ROTATE_EVENT && ev->timestamp == 0 &&
	    (ev->flags & LOG_EVENT_ARTIFICIAL_F))
		return true;
	const uint8_t *start = ev->raw_data + ev->raw_data_ofs;
	const uint8_t *crc = ev->raw_data + ev->raw_data_size - 4;
	uint32_t stored = (uint32_t) crc[0] | (uint32_t) crc[1] << 8 | (uint32_t) crc[2] << 16 |
			  (uint32_t) crc[3] << 24;
	if (stored == 0)
		return true;
	uint32_t computed = libdeflate_crc32(0, start, (size_t) (crc - start));
	if (computed == stored)
		return true;
	snprintf(msg, msglen, "the CRC32 of the event ending at %u (type %d) is %08x, its bytes' %08x",
		 ev->next_event_pos, (int) ev->event_type, stored, computed);
	return false;
}

static void *
prefetch_thread(void *arg)
{
	mysql_prefetch_t *pf = arg;
	for (;;) {
		pthread_mutex_lock(&pf->mu);
		while (pf->count == RING && !pf->quit)
			pthread_cond_wait(&pf->not_full, &pf->mu);
		bool quit = pf->quit;
		MARIADB_RPL_EVENT *ev = pf->nspare ? pf->spare[--pf->nspare] : NULL;
		pthread_mutex_unlock(&pf->mu);
		if (quit) {
			mariadb_free_rpl_event(ev);
			break;
		}
		/* on failure Connector/C has released ev itself */
		MARIADB_RPL_EVENT *got = mariadb_rpl_fetch(pf->rpl, ev);
		char crc_msg[200];
		bool crc_bad = got && pf->verify &&
			       !event_crc_ok(got, pf->rpl->use_checksum, crc_msg, sizeof(crc_msg));
		if (crc_bad) {
			mariadb_free_rpl_event(got);
			got = NULL;
		}
		pthread_mutex_lock(&pf->mu);
		if (crc_bad) {
			pf->end.errnum = CR_ERR_CHECKSUM_VERIFICATION_ERROR;
			snprintf(pf->end.msg, sizeof(pf->end.msg), "%s", crc_msg);
			pf->done = true;
			pthread_cond_signal(&pf->not_empty);
			pthread_mutex_unlock(&pf->mu);
			break;
		}
		if (!got) {
			unsigned e = mysql_errno(pf->m);
			const char *msg = mysql_error(pf->m);
			if (mariadb_rpl_errno(pf->rpl) != 0) {  /* the library's own error, e.g. a checksum */
				e = mariadb_rpl_errno(pf->rpl);
				msg = mariadb_rpl_error(pf->rpl);
			}
			pf->end.errnum = e;
			snprintf(pf->end.msg, sizeof(pf->end.msg), "%s", msg ? msg : "");
			pf->done = true;
			pthread_cond_signal(&pf->not_empty);
			pthread_mutex_unlock(&pf->mu);
			break;
		}
		pf->ring[(pf->head + pf->count) % RING] = (item_t) {got, pf->rpl->use_checksum};
		pf->count++;
		pthread_cond_signal(&pf->not_empty);
		pthread_mutex_unlock(&pf->mu);
	}
	return NULL;
}

mysql_prefetch_t *
mysql_prefetch_start(MYSQL *m, MARIADB_RPL *rpl, bool verify, volatile int *stop, char *err,
		     size_t errlen)
{
	mysql_prefetch_t *pf = xcalloc(1, sizeof(*pf));
	pf->m = m;
	pf->rpl = rpl;
	pf->verify = verify;
	pf->stop = stop;
	pthread_mutex_init(&pf->mu, NULL);
	pthread_cond_init(&pf->not_empty, NULL);
	pthread_cond_init(&pf->not_full, NULL);
	/* signals go to the caller's thread, whose loop watches *stop */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&pf->thread, NULL, prefetch_thread, pf);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "could not start the binlog reading thread: %s", strerror(rc));
		pthread_mutex_destroy(&pf->mu);
		pthread_cond_destroy(&pf->not_empty);
		pthread_cond_destroy(&pf->not_full);
		free(pf);
		return NULL;
	}
	return pf;
}

MARIADB_RPL_EVENT *
mysql_prefetch_next(mysql_prefetch_t *pf, bool *use_checksum, mysql_prefetch_end_t *end)
{
	pthread_mutex_lock(&pf->mu);
	while (pf->count == 0 && !pf->done) {
		if (*pf->stop) {
			pthread_mutex_unlock(&pf->mu);
			memset(end, 0, sizeof(*end));
			end->stopped = true;
			return NULL;
		}
		/* a signal does not end a condition wait: look at *stop every 100 ms */
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 100 * 1000 * 1000;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&pf->not_empty, &pf->mu, &t);
	}
	if (pf->count == 0) {
		*end = pf->end;
		pthread_mutex_unlock(&pf->mu);
		return NULL;
	}
	item_t it = pf->ring[pf->head];
	pf->head = (pf->head + 1) % RING;
	pf->count--;
	pthread_cond_signal(&pf->not_full);
	pthread_mutex_unlock(&pf->mu);
	*use_checksum = it.use_checksum;
	return it.ev;
}

void
mysql_prefetch_release(mysql_prefetch_t *pf, MARIADB_RPL_EVENT *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&pf->mu);
	if (pf->nspare < sizeof(pf->spare) / sizeof(pf->spare[0])) {
		pf->spare[pf->nspare++] = ev;
		ev = NULL;
	}
	pthread_mutex_unlock(&pf->mu);
	mariadb_free_rpl_event(ev);
}

bool
mysql_prefetch_done(mysql_prefetch_t *pf)
{
	pthread_mutex_lock(&pf->mu);
	bool done = pf->done;
	pthread_mutex_unlock(&pf->mu);
	return done;
}

void
mysql_prefetch_stop(mysql_prefetch_t *pf)
{
	if (!pf)
		return;
	pthread_mutex_lock(&pf->mu);
	pf->quit = true;
	pthread_cond_broadcast(&pf->not_full);
	pthread_mutex_unlock(&pf->mu);
	/*
	 * A read in progress ends by itself: the server sends a heartbeat at
	 * least every second, or ends the dump (the caller's KILL).  Nothing
	 * here touches the connection: the reading thread may be tearing it
	 * down after a failed read.
	 */
	pthread_join(pf->thread, NULL);
	for (size_t i = 0; i < pf->count; i++)
		mariadb_free_rpl_event(pf->ring[(pf->head + i) % RING].ev);
	for (size_t i = 0; i < pf->nspare; i++)
		mariadb_free_rpl_event(pf->spare[i]);
	pthread_mutex_destroy(&pf->mu);
	pthread_cond_destroy(&pf->not_empty);
	pthread_cond_destroy(&pf->not_full);
	free(pf);
}
