/*
 * test_apply_service.c — the apply service without HTTP: identity
 * resolution through the crosswalk (keys, links, match keys, ambiguity),
 * and the batch transaction (cursor + golden + crosswalk + outbox together,
 * deduplication on re-read and restart), using the example rules and
 * targets, hand-built change logs and a temporary SQLite state store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "apply_identity.h"
#include "apply_service.h"
#include "clog.h"
#include "record.h"
#include "rules.h"
#include "state.h"
#include "xalloc.h"

/* docs/examples of this source tree (the test data directory is tests/data). */
static const char *
example(const char *name)
{
	static char path[4][512];
	static int next;
	char *p = path[next++ % 4];
	snprintf(p, sizeof path[0], "%s", STEWARD_TEST_DATA);
	char *t = strstr(p, "/tests/data");
	if (t)
		*t = '\0';
	snprintf(p + strlen(p), sizeof path[0] - strlen(p), "/docs/examples/%s", name);
	return p;
}

static char tmpdir[256];

static rules_t *
load_rules(void)
{
	rules_t *r = NULL;
	rules_diags_t d = RULES_DIAGS_INIT;
	assert_int_equal(rules_load(example("estate.yaml"), &r, &d), RULES_OK);
	rules_diags_free(&d);
	return r;
}

/* A change record from the log dump JSON format; pos from (file/lsn, seq). */
static Steward__Change *
change(const char *source, const char *table, const char *op, uint64_t n, const char *key,
       const char *after)
{
	position_t p;
	if (strcmp(source, "erp") == 0 || strcmp(source, "support") == 0)
		position_pg(&p, 0x1000 + n, POSITION_PHASE_STREAM, 0);
	else
		position_mysql(&p, 1, 1000 + n, POSITION_PHASE_STREAM, 0);
	char hex[2 * POSITION_MAX + 1], err[256];
	position_hex(&p, hex, sizeof hex);
	char *json = xasprintf("{\"source\":\"%s\",\"table\":\"%s\",\"op\":\"%s\",\"pos\":\"%llu\","
			       "\"pos_hex\":\"%s\",\"commit_ts\":\"2026-01-01T00:00:00Z\","
			       "\"key\":{\"%s\":\"x\"},\"before\":null,\"after\":%s}",
			       source, table, op, (unsigned long long) n, hex, key, after);
	Steward__Change *c = record_from_json(json, err, sizeof err);
	if (!c)
		fail_msg("bad test record: %s", err);
	free(json);
	return c;
}

static void
append(const char *dir, Steward__Change *c)
{
	clog_writer_t *w = NULL;
	char err[256];
	assert_int_equal(clog_writer_open(dir, NULL, &w, err, sizeof err), CLOG_OK);
	assert_int_equal(clog_writer_append(w, c, err, sizeof err), CLOG_OK);
	assert_int_equal(clog_writer_flush(w, err, sizeof err), CLOG_OK);
	clog_writer_close(w);
	record_free(c);
}

static int
setup(void **state)
{
	(void) state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_apply_service.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static apply_state_t *
open_state(const char *name)
{
	char path[320], err[256];
	apply_state_t *s = NULL;
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	assert_int_equal(apply_state_open(path, &s, err, sizeof err), APPLY_OK);
	return s;
}

static void
map(const rules_t *r, Steward__Change *c, rules_mapped_t *m)
{
	char err[256];
	assert_int_equal(rules_map(r, c, m, err, sizeof err), RULES_MAP_OK);
}

/* ---- identity ---- */

static void
test_identity_new_entity_gets_deterministic_id(void **st)
{
	(void) st;
	rules_t *r = load_rules();
	apply_state_t *s = open_state("id1.db");
	rules_mapped_t *m = rules_mapped_new();
	Steward__Change *c = change("crm", "crm.accounts", "insert", 1, "id",
				    "{\"id\":\"001A\",\"name\":\"Acme\",\"status\":\"active\"}");
	map(r, c, m);
	char *id = NULL, err[256];
	bool is_new = false;
	assert_int_equal(apply_identity_resolve(s, r, m, &id, &is_new, err, sizeof err), APPLY_OK);
	assert_true(is_new);
	assert_string_equal(id, "crm:001A");
	free(id);
	record_free(c);
	rules_mapped_free(m);
	apply_state_close(s);
	rules_free(r);
}

static void
test_identity_found_by_link_then_key(void **st)
{
	(void) st;
	rules_t *r = load_rules();
	apply_state_t *s = open_state("id2.db");
	char err[256], *id = NULL;
	bool is_new;
	assert_int_equal(apply_state_xwalk_put(s, "customer", "crm:001A", "crm", "001A", err,
					       sizeof err), APPLY_OK);
	rules_mapped_t *m = rules_mapped_new();
	/* The ERP row names the CRM account: found through the link. */
	Steward__Change *c = change("erp", "public.customers", "insert", 1, "customer_no",
				    "{\"customer_no\":\"C100\",\"name\":\"Acme\","
				    "\"crm_account_id\":\"001A\",\"blocked\":\"f\"}");
	map(r, c, m);
	assert_int_equal(apply_identity_resolve(s, r, m, &id, &is_new, err, sizeof err), APPLY_OK);
	assert_false(is_new);
	assert_string_equal(id, "crm:001A");
	free(id);
	record_free(c);
	rules_mapped_free(m);
	apply_state_close(s);
	rules_free(r);
}

static void
test_identity_two_claims_are_ambiguous_never_guessed(void **st)
{
	(void) st;
	rules_t *r = load_rules();
	apply_state_t *s = open_state("id3.db");
	char err[256], *id = NULL;
	bool is_new;
	/* ERP customer C100 is entity A; CRM account 001B is entity B. */
	assert_int_equal(apply_state_xwalk_put(s, "customer", "erp:C100", "erp", "C100", err,
					       sizeof err), APPLY_OK);
	assert_int_equal(apply_state_xwalk_put(s, "customer", "crm:001B", "crm", "001B", err,
					       sizeof err), APPLY_OK);
	rules_mapped_t *m = rules_mapped_new();
	Steward__Change *c = change("erp", "public.customers", "update", 2, "customer_no",
				    "{\"customer_no\":\"C100\",\"name\":\"Acme\","
				    "\"crm_account_id\":\"001B\",\"blocked\":\"f\"}");
	map(r, c, m);
	assert_int_equal(apply_identity_resolve(s, r, m, &id, &is_new, err, sizeof err),
			 APPLY_CONFLICT);
	assert_null(id);
	assert_non_null(strstr(err, "ambiguous identity"));
	assert_non_null(strstr(err, "erp:C100"));
	assert_non_null(strstr(err, "crm:001B"));
	record_free(c);
	rules_mapped_free(m);
	apply_state_close(s);
	rules_free(r);
}

static void
test_identity_match_key_attaches_new_system_record(void **st)
{
	(void) st;
	rules_t *r = load_rules();
	apply_state_t *s = open_state("id4.db");
	char err[256], *id = NULL;
	bool is_new;
	rules_mapped_t *m = rules_mapped_new();
	Steward__Change *c = change("crm", "crm.accounts", "insert", 1, "id",
				    "{\"id\":\"001A\",\"name\":\"Acme\",\"email\":\" Ann@Example.com\","
				    "\"status\":\"active\"}");
	map(r, c, m);
	assert_int_equal(apply_identity_resolve(s, r, m, &id, &is_new, err, sizeof err), APPLY_OK);
	rules_golden_t *g = rules_golden_new(r, m->entity);
	rules_golden_set_key(g, m->system, m->key);
	assert_int_equal(apply_identity_record(s, r, m, g, id, err, sizeof err), APPLY_OK);
	free(id);
	rules_golden_free(g);
	record_free(c);
	/* An ERP customer with no link but the same e-mail is the same entity. */
	c = change("erp", "public.customers", "insert", 1, "customer_no",
		   "{\"customer_no\":\"C7\",\"name\":\"Acme\",\"email\":\"ann@example.com\","
		   "\"blocked\":\"f\"}");
	map(r, c, m);
	assert_int_equal(apply_identity_resolve(s, r, m, &id, &is_new, err, sizeof err), APPLY_OK);
	assert_false(is_new);
	assert_string_equal(id, "crm:001A");
	free(id);
	record_free(c);
	/* A second CRM account with that e-mail is not guessed to be it. */
	c = change("crm", "crm.accounts", "insert", 2, "id",
		   "{\"id\":\"001Z\",\"name\":\"Other\",\"email\":\"ann@example.com\","
		   "\"status\":\"active\"}");
	map(r, c, m);
	assert_int_equal(apply_identity_resolve(s, r, m, &id, &is_new, err, sizeof err),
			 APPLY_CONFLICT);
	assert_non_null(strstr(err, "ambiguous identity"));
	record_free(c);
	rules_mapped_free(m);
	apply_state_close(s);
	rules_free(r);
}

/* ---- the batch transaction ---- */

static int64_t
count_outbox(apply_state_t *s, const char *target)
{
	int64_t n = -1;
	char err[256];
	assert_int_equal(apply_state_outbox_count(s, target, &n, err, sizeof err), APPLY_OK);
	return n;
}

static void
test_batch_commits_cursor_golden_and_outbox_together(void **st)
{
	(void) st;
	char crm[320], erp[320], db[320], err[512];
	snprintf(crm, sizeof crm, "%s/log-crm", tmpdir);
	snprintf(erp, sizeof erp, "%s/log-erp", tmpdir);
	snprintf(db, sizeof db, "%s/batch.db", tmpdir);
	setenv("STEWARD_EMULATOR_TOKEN", "test-token", 1);
	/* CRM creates an account with its customer number ... */
	append(crm, change("crm", "crm.accounts", "insert", 1, "id",
			   "{\"id\":\"001A\",\"external_id\":\"C100\",\"name\":\"Acme\","
			   "\"email\":\"ann@example.com\",\"status\":\"active\"}"));
	/* ... the ERP row appears (linked to the account) and its credit limit changes. */
	append(erp, change("erp", "public.customers", "insert", 1, "customer_no",
			   "{\"customer_no\":\"C100\",\"name\":\"Acme\",\"email\":\"ann@example.com\","
			   "\"crm_account_id\":\"001A\",\"blocked\":\"f\"}"));
	append(erp, change("erp", "public.customers", "update", 2, "customer_no",
			   "{\"customer_no\":\"C100\",\"name\":\"Acme\",\"email\":\"ann@example.com\","
			   "\"crm_account_id\":\"001A\",\"credit_limit\":\"7000.00\",\"blocked\":\"f\"}"));
	/* A billing customer for an ERP number nobody created: billing may not create. */
	append(crm, change("billing", "billing.customers", "insert", 2, "id",
			   "{\"id\":\"cus_1\",\"erp_customer_no\":\"C999\",\"name\":\"Ghost\"}"));
	const char *logs[] = {crm, erp};
	apply_service_config_t cfg = {
		.log_dirs = logs, .nlogs = 2,
		.rules_path = example("estate.yaml"),
		.targets_path = example("targets.yaml"),
		.state_path = db,
		.no_deliver = true,
		.batch = 100,
	};
	apply_service_t *svc = NULL;
	assert_int_equal(apply_service_open(&cfg, &svc, err, sizeof err), APPLY_OK);
	size_t n = 0;
	assert_int_equal(apply_service_ingest(svc, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 4);

	apply_state_t *s = open_state("batch.db");
	/* One entity, reached through the CRM key and the ERP's link. */
	char *json = NULL;
	assert_int_equal(apply_state_golden_get(s, "customer", "crm:001A", &json, err, sizeof err),
			 APPLY_OK);
	assert_non_null(strstr(json, "\"erp\":\"C100\""));
	assert_non_null(strstr(json, "7000"));
	free(json);
	char *key = NULL;
	assert_int_equal(apply_state_xwalk_key(s, "customer", "crm:001A", "erp", &key, err,
					       sizeof err), APPLY_OK);
	assert_string_equal(key, "C100");
	free(key);
	/* The CRM's new customer goes to the ERP; the ERP's credit limit to the CRM. */
	assert_int_equal(count_outbox(s, "erp"), 1);
	assert_int_equal(count_outbox(s, "crm"), 1);
	apply_outbox_row_t *rows = NULL;
	size_t nrows = 0;
	assert_int_equal(apply_state_outbox_due(s, INT64_MAX, 10, &rows, &nrows, err, sizeof err),
			 APPLY_OK);
	assert_int_equal(nrows, 2);
	for (size_t i = 0; i < nrows; i++) {
		json_t *intent = json_loads(rows[i].request, 0, NULL);
		assert_non_null(intent);
		assert_string_equal(json_string_value(json_object_get(intent, "id")), "crm:001A");
		if (strcmp(rows[i].target, "crm") == 0)
			assert_string_equal(json_string_value(json_object_get(
				json_object_get(intent, "fields"), "credit_limit")), "7000");
		else
			assert_string_equal(json_string_value(json_object_get(intent, "op")), "create");
		assert_int_equal(strlen(rows[i].idem_key), 64);
		json_decref(intent);
	}
	apply_state_outbox_rows_free(rows, nrows);
	/* The unauthorized create is a dead letter with its reason. */
	apply_dlq_entry_t *e = NULL;
	size_t ne = 0;
	assert_int_equal(apply_state_dlq_list(s, "open", 10, &e, &ne, err, sizeof err), APPLY_OK);
	assert_int_equal(ne, 1);
	assert_non_null(strstr(e[0].reason, "unauthorized create"));
	apply_state_dlq_free(e, ne);
	/* Both cursors moved in that transaction. */
	position_t cur;
	char name[400], abs[300];
	assert_non_null(realpath(erp, abs));
	snprintf(name, sizeof name, "log:%s", abs);
	assert_int_equal(apply_state_cursor_get(s, name, &cur, err, sizeof err), APPLY_OK);
	assert_int_equal(cur.len, 17);

	/* Re-reading finds nothing new; a restarted service queues nothing twice. */
	assert_int_equal(apply_service_ingest(svc, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 0);
	apply_service_close(svc);
	assert_int_equal(apply_service_open(&cfg, &svc, err, sizeof err), APPLY_OK);
	assert_int_equal(apply_service_ingest(svc, &n, err, sizeof err), APPLY_OK);
	assert_int_equal(n, 0);
	apply_service_close(svc);
	assert_int_equal(count_outbox(s, NULL), 2);

	/* A replay from the start reprocesses the range and queues nothing new:
	 * the same changes give the same keys, or are recognised as applied. */
	char hex[2 * POSITION_MAX + 1];
	position_t first;
	position_mysql(&first, 1, 1001, POSITION_PHASE_STREAM, 0);
	position_hex(&first, hex, sizeof hex);
	cfg.replay_from = hex;
	assert_int_equal(apply_service_open(&cfg, &svc, err, sizeof err), APPLY_OK);
	assert_int_equal(apply_service_ingest(svc, &n, err, sizeof err), APPLY_OK);
	assert_true(n >= 2);
	apply_service_close(svc);
	assert_int_equal(count_outbox(s, NULL), 2);
	apply_state_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity_new_entity_gets_deterministic_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_found_by_link_then_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_two_claims_are_ambiguous_never_guessed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_match_key_attaches_new_system_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_commits_cursor_golden_and_outbox_together, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
