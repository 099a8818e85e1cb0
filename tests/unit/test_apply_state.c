/*
 * test_apply_state.c — the apply state store: one transaction for cursor,
 * golden, crosswalk and outbox; rollback leaves nothing; reopen sees what
 * was committed; ambiguous identities are refused; outbox order and DLQ.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "apply_dlq.h"
#include "state.h"

typedef struct fixture {
	char dir[64];
	char path[96];
	apply_state_t *s;
} fixture_t;

static int
setup(void **state)
{
	fixture_t *f = calloc(1, sizeof *f);
	strcpy(f->dir, "/tmp/test_apply_state.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/state.db", f->dir);
	char err[256];
	if (apply_state_open(f->path, &f->s, err, sizeof err) != APPLY_OK) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture_t *f = *state;
	apply_state_close(f->s);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void
reopen(fixture_t *f)
{
	char err[256];
	apply_state_close(f->s);
	assert_int_equal(apply_state_open(f->path, &f->s, err, sizeof err), APPLY_OK);
}

/* One change's worth of writes, as the apply loop makes them. */
static void
apply_one_change(apply_state_t *s, uint64_t lsn, const char *golden, const char *key)
{
	char err[256];
	position_t pos;
	position_pg(&pos, lsn, POSITION_PHASE_STREAM, 0);
	assert_int_equal(apply_state_cursor_set(s, "erp", &pos, err, sizeof err), APPLY_OK);
	assert_int_equal(apply_state_golden_put(s, "customer", "C-1", golden, 1, err, sizeof err),
			 APPLY_OK);
	assert_int_equal(apply_state_xwalk_put(s, "customer", "C-1", "erp", "C-1", err, sizeof err),
			 APPLY_OK);
	apply_outbox_row_t row = {0};
	row.entity = "customer";
	row.entity_id = "C-1";
	row.target = "crm";
	row.idem_key = (char *) key;
	row.request = "{\"method\":\"PATCH\"}";
	row.source = "erp";
	row.pos = pos;
	row.created_ms = 1;
	assert_int_equal(apply_state_outbox_add(s, &row, NULL, NULL, err, sizeof err), APPLY_OK);
}

static void
test_committed_change_survives_reopen(void **state)
{
	fixture_t *f = *state;
	char err[256];
	assert_int_equal(apply_state_schema_version(f->s), APPLY_STATE_SCHEMA_VERSION);
	assert_int_equal(apply_state_begin(f->s, err, sizeof err), APPLY_OK);
	apply_one_change(f->s, 100, "{\"name\":\"Acme\"}", "k1");
	assert_int_equal(apply_state_commit(f->s, err, sizeof err), APPLY_OK);

	reopen(f);
	position_t pos, want;
	position_pg(&want, 100, POSITION_PHASE_STREAM, 0);
	assert_int_equal(apply_state_cursor_get(f->s, "erp", &pos, err, sizeof err), APPLY_OK);
	assert_int_equal(position_cmp(&pos, &want), 0);
	char *g = NULL;
	assert_int_equal(apply_state_golden_get(f->s, "customer", "C-1", &g, err, sizeof err),
			 APPLY_OK);
	assert_string_equal(g, "{\"name\":\"Acme\"}");
	free(g);
	int64_t n;
	assert_int_equal(apply_state_outbox_count(f->s, "crm", &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 1);
	assert_int_equal(apply_state_schema_version(f->s), APPLY_STATE_SCHEMA_VERSION);
}

static void
test_rolled_back_change_leaves_nothing(void **state)
{
	fixture_t *f = *state;
	char err[256];
	assert_int_equal(apply_state_begin(f->s, err, sizeof err), APPLY_OK);
	apply_one_change(f->s, 100, "{\"name\":\"Acme\"}", "k1");
	assert_int_equal(apply_state_commit(f->s, err, sizeof err), APPLY_OK);

	assert_int_equal(apply_state_begin(f->s, err, sizeof err), APPLY_OK);
	apply_one_change(f->s, 200, "{\"name\":\"Acme 2\"}", "k2");
	apply_state_rollback(f->s);
	assert_false(apply_state_in_txn(f->s));

	position_t pos, want;
	position_pg(&want, 100, POSITION_PHASE_STREAM, 0);
	assert_int_equal(apply_state_cursor_get(f->s, "erp", &pos, err, sizeof err), APPLY_OK);
	assert_int_equal(position_cmp(&pos, &want), 0);
	char *g = NULL;
	assert_int_equal(apply_state_golden_get(f->s, "customer", "C-1", &g, err, sizeof err),
			 APPLY_OK);
	assert_string_equal(g, "{\"name\":\"Acme\"}");
	free(g);
	int64_t n;
	assert_int_equal(apply_state_outbox_count(f->s, NULL, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 1);
}

static void
test_uncommitted_change_is_gone_after_crash(void **state)
{
	fixture_t *f = *state;
	char err[256];
	/* A child process opens a transaction and dies without committing
	 * (what kill -9 does to the apply service mid-change). */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		apply_state_t *s;
		if (apply_state_open(f->path, &s, err, sizeof err) != APPLY_OK)
			_exit(2);
		if (apply_state_begin(s, err, sizeof err) != APPLY_OK)
			_exit(3);
		position_t pos;
		position_pg(&pos, 999, POSITION_PHASE_STREAM, 0);
		apply_state_cursor_set(s, "erp", &pos, err, sizeof err);
		apply_state_golden_put(s, "customer", "C-9", "{}", 1, err, sizeof err);
		_exit(0);  /* no commit, no close */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	reopen(f);
	position_t pos;
	assert_int_equal(apply_state_cursor_get(f->s, "erp", &pos, err, sizeof err), APPLY_OK);
	assert_int_equal(pos.len, 0);
	char *g = NULL;
	assert_int_equal(apply_state_golden_get(f->s, "customer", "C-9", &g, err, sizeof err),
			 APPLY_NOT_FOUND);
	assert_null(g);
}

static void
test_ambiguous_identity_is_refused(void **state)
{
	fixture_t *f = *state;
	char err[256];
	apply_state_t *s = f->s;
	assert_int_equal(apply_state_xwalk_put(s, "customer", "C-1", "crm", "001A", err, sizeof err),
			 APPLY_OK);
	/* Same mapping again: fine. */
	assert_int_equal(apply_state_xwalk_put(s, "customer", "C-1", "crm", "001A", err, sizeof err),
			 APPLY_OK);
	/* Same canonical id, another CRM key. */
	assert_int_equal(apply_state_xwalk_put(s, "customer", "C-1", "crm", "001B", err, sizeof err),
			 APPLY_CONFLICT);
	assert_non_null(strstr(err, "ambiguous identity"));
	/* Same CRM key, another canonical id. */
	assert_int_equal(apply_state_xwalk_put(s, "customer", "C-2", "crm", "001A", err, sizeof err),
			 APPLY_CONFLICT);
	/* Same key in another entity or system is a different identity. */
	assert_int_equal(apply_state_xwalk_put(s, "invoice", "C-2", "crm", "001A", err, sizeof err),
			 APPLY_OK);
	assert_int_equal(apply_state_xwalk_put(s, "customer", "C-2", "billing", "001A", err,
					       sizeof err), APPLY_OK);
	char *v = NULL;
	assert_int_equal(apply_state_xwalk_key(s, "customer", "C-1", "crm", &v, err, sizeof err),
			 APPLY_OK);
	assert_string_equal(v, "001A");
	free(v);
	assert_int_equal(apply_state_xwalk_canonical(s, "customer", "billing", "001A", &v, err,
						     sizeof err), APPLY_OK);
	assert_string_equal(v, "C-2");
	free(v);
	assert_int_equal(apply_state_xwalk_key(s, "customer", "C-3", "crm", &v, err, sizeof err),
			 APPLY_NOT_FOUND);
}

static void
add_row(apply_state_t *s, const char *entity_id, const char *target, const char *key,
	int64_t next_ms)
{
	char err[256];
	apply_outbox_row_t row = {0};
	row.entity = "customer";
	row.entity_id = (char *) entity_id;
	row.target = (char *) target;
	row.idem_key = (char *) key;
	row.request = "{}";
	row.next_attempt_ms = next_ms;
	bool added;
	assert_int_equal(apply_state_outbox_add(s, &row, NULL, &added, err, sizeof err), APPLY_OK);
	assert_true(added);
}

static void
test_outbox_hands_out_one_row_per_entity_in_order(void **state)
{
	fixture_t *f = *state;
	char err[256];
	apply_state_t *s = f->s;
	add_row(s, "C-1", "crm", "a1", 0);
	add_row(s, "C-1", "crm", "a2", 0);
	add_row(s, "C-2", "crm", "b1", 0);
	add_row(s, "C-1", "billing", "c1", 0);
	add_row(s, "C-3", "crm", "d1", 5000);  /* not due yet */

	/* Replaying a change does not queue it twice. */
	apply_outbox_row_t dup = {0};
	dup.entity = "customer";
	dup.entity_id = "C-1";
	dup.target = "crm";
	dup.idem_key = "a1";
	dup.request = "{}";
	bool added = true;
	int64_t id;
	assert_int_equal(apply_state_outbox_add(s, &dup, &id, &added, err, sizeof err), APPLY_OK);
	assert_false(added);
	assert_int_equal(id, 1);

	apply_outbox_row_t *rows;
	size_t n;
	assert_int_equal(apply_state_outbox_due(s, 1000, 100, &rows, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 3);
	assert_string_equal(rows[0].idem_key, "a1");
	assert_string_equal(rows[1].idem_key, "b1");
	assert_string_equal(rows[2].idem_key, "c1");
	int64_t first = rows[0].id;
	apply_state_outbox_rows_free(rows, n);

	/* A failed head keeps the entity's later rows waiting behind it. */
	assert_int_equal(apply_state_outbox_reschedule(s, first, 1, 3000, "503", err, sizeof err),
			 APPLY_OK);
	assert_int_equal(apply_state_outbox_due(s, 1000, 100, &rows, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].idem_key, "b1");
	apply_state_outbox_rows_free(rows, n);

	assert_int_equal(apply_state_outbox_due(s, 3000, 100, &rows, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 3);
	assert_string_equal(rows[0].idem_key, "a1");
	assert_int_equal(rows[0].attempts, 1);
	assert_string_equal(rows[0].last_error, "503");
	apply_state_outbox_rows_free(rows, n);

	assert_int_equal(apply_state_outbox_done(s, first, err, sizeof err), APPLY_OK);
	assert_int_equal(apply_state_outbox_due(s, 3000, 100, &rows, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 3);
	assert_string_equal(rows[0].idem_key, "a2");
	apply_state_outbox_rows_free(rows, n);
	assert_int_equal(apply_state_outbox_due(s, 9000, 1, &rows, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 1);
	apply_state_outbox_rows_free(rows, n);
}

static void
test_dead_letters_keep_request_response_and_state(void **state)
{
	fixture_t *f = *state;
	char err[256];
	apply_state_t *s = f->s;
	apply_dlq_entry_t e = {0};
	e.time_ms = 1234;
	e.entity = "invoice";
	e.entity_id = "INV-1";
	e.target = "billing";
	e.reason = "bad request (400)";
	e.request = "{\"amount\":\"x\"}";
	e.response = "{\"error\":{\"message\":\"Invalid amount\"}}";
	e.source = "erp";
	position_pg(&e.pos, 77, POSITION_PHASE_STREAM, 2);
	int64_t id1, id2;
	assert_int_equal(apply_state_dlq_add(s, &e, &id1, err, sizeof err), APPLY_OK);
	e.reason = "missing reference: customer C-9 in billing";
	assert_int_equal(apply_state_dlq_add(s, &e, &id2, err, sizeof err), APPLY_OK);

	reopen(f);
	s = f->s;
	apply_dlq_entry_t *list;
	size_t n;
	assert_int_equal(apply_state_dlq_list(s, "open", 10, &list, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].reason, "bad request (400)");
	assert_string_equal(list[0].response, "{\"error\":{\"message\":\"Invalid amount\"}}");
	assert_int_equal(position_cmp(&list[0].pos, &e.pos), 0);
	apply_state_dlq_free(list, n);

	assert_int_equal(apply_state_dlq_set_state(s, id1, "dropped", err, sizeof err), APPLY_OK);
	assert_int_equal(apply_state_dlq_set_state(s, 999, "dropped", err, sizeof err),
			 APPLY_NOT_FOUND);
	assert_int_equal(apply_state_dlq_list(s, "open", 10, &list, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].id, id2);
	apply_state_dlq_free(list, n);
	assert_int_equal(apply_state_dlq_list(s, NULL, 10, &list, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 2);
	apply_state_dlq_free(list, n);

	apply_dlq_entry_t got;
	assert_int_equal(apply_state_dlq_get(s, id1, &got, err, sizeof err), APPLY_OK);
	assert_string_equal(got.state, "dropped");
	assert_string_equal(got.request, "{\"amount\":\"x\"}");
	apply_state_dlq_clear(&got);
	assert_int_equal(apply_state_dlq_get(s, 12345, &got, err, sizeof err), APPLY_NOT_FOUND);
}

static void
test_conflicts_and_checkpoints_are_recorded(void **state)
{
	fixture_t *f = *state;
	char err[256];
	apply_state_t *s = f->s;
	assert_int_equal(apply_state_conflict_add(s, 1, "customer", "C-1", "email", "billing",
						  "fill_if_empty", "x@y.test", err, sizeof err),
			 APPLY_OK);
	int64_t n;
	assert_int_equal(apply_state_conflict_count(s, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 1);
	position_t p, got;
	position_mysql(&p, 3, 4567, POSITION_PHASE_STREAM, 1);
	assert_int_equal(apply_state_checkpoint_get(s, "crm", &got, err, sizeof err), APPLY_OK);
	assert_int_equal(got.len, 0);
	assert_int_equal(apply_state_checkpoint_set(s, "crm", &p, err, sizeof err), APPLY_OK);
	assert_int_equal(apply_state_checkpoint_get(s, "crm", &got, err, sizeof err), APPLY_OK);
	assert_int_equal(position_cmp(&p, &got), 0);
}

static void
test_transaction_misuse_is_reported(void **state)
{
	fixture_t *f = *state;
	char err[256];
	assert_int_equal(apply_state_commit(f->s, err, sizeof err), APPLY_PERMANENT);
	assert_int_equal(apply_state_begin(f->s, err, sizeof err), APPLY_OK);
	assert_int_equal(apply_state_begin(f->s, err, sizeof err), APPLY_PERMANENT);
	apply_state_rollback(f->s);
	apply_state_rollback(f->s);  /* harmless without a transaction */
	assert_int_equal(apply_state_begin(f->s, err, sizeof err), APPLY_OK);
	assert_int_equal(apply_state_commit(f->s, err, sizeof err), APPLY_OK);
}

static void
test_newer_schema_is_refused(void **state)
{
	fixture_t *f = *state;
	char err[256];
	apply_state_close(f->s);
	f->s = NULL;
	char cmd[256];
	snprintf(cmd, sizeof cmd, "sqlite3 '%s' 'PRAGMA user_version = 99' 2>/dev/null", f->path);
	if (system(cmd) != 0)
		skip();
	assert_int_equal(apply_state_open(f->path, &f->s, err, sizeof err), APPLY_PERMANENT);
	assert_non_null(strstr(err, "newer"));
}

static void
test_dead_letter_retry_requeues_once(void **state)
{
	fixture_t *f = *state;
	char err[256], key[IDEM_KEY_LEN + 1];
	apply_state_t *s = f->s;
	apply_dlq_entry_t e = {0};
	e.time_ms = 1;
	e.entity = "customer";
	e.entity_id = "erp:C1";
	e.target = "crm";
	e.reason = "unprocessable (422)";
	e.request = "{\"method\":\"PATCH\"}";
	e.idem_key = "k1";
	e.source = "erp";
	position_pg(&e.pos, 5, POSITION_PHASE_STREAM, 0);
	int64_t id, outbox_id = 0, queued = 0;
	assert_int_equal(apply_state_dlq_add(s, &e, &id, err, sizeof err), APPLY_OK);

	assert_int_equal(apply_dlq_retry(s, id, 100, &outbox_id, key, err, sizeof err), APPLY_OK);
	assert_true(outbox_id > 0);
	assert_int_equal(strlen(key), IDEM_KEY_LEN);
	assert_int_equal(apply_state_outbox_count(s, "crm", &queued, err, sizeof err), APPLY_OK);
	assert_int_equal(queued, 1);
	apply_dlq_entry_t got;
	assert_int_equal(apply_state_dlq_get(s, id, &got, err, sizeof err), APPLY_OK);
	assert_string_equal(got.state, "retried");
	apply_state_dlq_clear(&got);

	/* A second retry is refused and changes nothing; an unknown id is not found. */
	assert_int_equal(apply_dlq_retry(s, id, 200, NULL, NULL, err, sizeof err), APPLY_CONFLICT);
	assert_non_null(strstr(err, "retried"));
	assert_int_equal(apply_dlq_retry(s, 424242, 200, NULL, NULL, err, sizeof err), APPLY_NOT_FOUND);
	assert_int_equal(apply_state_outbox_count(s, "crm", &queued, err, sizeof err), APPLY_OK);
	assert_int_equal(queued, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_committed_change_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rolled_back_change_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uncommitted_change_is_gone_after_crash, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ambiguous_identity_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_hands_out_one_row_per_entity_in_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_letter_retry_requeues_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_letters_keep_request_response_and_state,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflicts_and_checkpoints_are_recorded, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_transaction_misuse_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
