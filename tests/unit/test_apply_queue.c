/*
 * test_apply_queue.c — the outbox worker's in-memory queue: one entity's
 * rows are handed out one at a time in id order, different entities in
 * parallel, a held row blocks its entity, a released row comes back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apply_queue.h"
#include "xalloc.h"

static void
push(apply_queue_t *q, int64_t id, const char *target, const char *entity_id)
{
	apply_outbox_row_t r = {0};
	r.id = id;
	r.entity = xstrdup("customer");
	r.entity_id = xstrdup(entity_id);
	r.target = xstrdup(target);
	r.idem_key = xasprintf("k%lld", (long long) id);
	r.request = xstrdup("{}");
	apply_queue_push(q, &r);
	assert_null(r.entity);  /* moved */
}

/* The ids on the ready list, in order, into out (at most n); returns the count. */
static size_t
ready_ids(apply_queue_t *q, int64_t *out, size_t n)
{
	size_t k = 0;
	for (apply_qrow_t *r = apply_queue_first(q); r && k < n; r = apply_queue_next(r))
		out[k++] = r->row.id;
	return k;
}

static void
test_one_entity_in_order_others_in_parallel(void **state)
{
	(void) state;
	apply_queue_t *q = apply_queue_new();
	push(q, 1, "erp", "A");
	push(q, 2, "erp", "A");
	push(q, 3, "erp", "B");
	push(q, 4, "crm", "A");  /* another target: its own FIFO */
	push(q, 5, "erp", "A");
	assert_int_equal(apply_queue_len(q), 5);
	assert_int_equal(apply_queue_last_id(q), 5);
	int64_t ids[8];
	assert_int_equal(ready_ids(q, ids, 8), 3);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 3);
	assert_int_equal(ids[2], 4);

	/* In flight: off the ready list, and A's next row still waits. */
	apply_qrow_t *a1 = apply_queue_first(q);
	apply_queue_hold(q, a1);
	assert_int_equal(ready_ids(q, ids, 8), 2);
	assert_int_equal(ids[0], 3);

	/* A failed attempt comes back (behind the others); nothing overtakes it. */
	apply_queue_release(q, a1);
	assert_int_equal(ready_ids(q, ids, 8), 3);
	assert_int_equal(ids[2], 1);

	/* Delivered: A's next row becomes ready. */
	apply_queue_remove(q, a1);
	assert_int_equal(ready_ids(q, ids, 8), 3);
	assert_int_equal(ids[2], 2);
	apply_qrow_t *r = apply_queue_first(q);
	while (r && r->row.id != 2)
		r = apply_queue_next(r);
	assert_non_null(r);
	apply_queue_remove(q, r);
	assert_int_equal(ready_ids(q, ids, 8), 3);
	assert_int_equal(ids[2], 5);
	assert_int_equal(apply_queue_len(q), 3);
	apply_queue_free(q);
}

static void
test_many_entities_grow_and_drain(void **state)
{
	(void) state;
	apply_queue_t *q = apply_queue_new();
	char id[32];
	for (int i = 1; i <= 5000; i++) {
		snprintf(id, sizeof id, "E%d", i % 1000);
		push(q, i, "erp", id);
	}
	int64_t last = 0;
	size_t n = 0;
	/* Drain: each removal hands out the entity's next row, ids grow per entity. */
	int64_t seen[1000] = {0};
	while (apply_queue_first(q)) {
		apply_qrow_t *r = apply_queue_first(q);
		int e = atoi(r->row.entity_id + 1);
		assert_true(r->row.id > seen[e]);
		seen[e] = r->row.id;
		last = r->row.id;
		apply_queue_remove(q, r);
		n++;
	}
	assert_int_equal(n, 5000);
	assert_int_equal(apply_queue_len(q), 0);
	(void) last;
	apply_queue_free(q);
	apply_queue_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_entity_in_order_others_in_parallel),
		cmocka_unit_test(test_many_entities_grow_and_drain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
