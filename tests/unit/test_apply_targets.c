/*
 * test_apply_targets.c — the targets file: the example loads and means what
 * it says; every mistake is reported with its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apply_targets.h"
#include "rules.h"

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

static rules_t *
load_rules(void)
{
	rules_t *r = NULL;
	rules_diags_t d = RULES_DIAGS_INIT;
	assert_int_equal(rules_load(example("estate.yaml"), &r, &d), RULES_OK);
	rules_diags_free(&d);
	return r;
}

static void
test_example_targets_file_loads(void **st)
{
	(void) st;
	rules_t *r = load_rules();
	apply_targets_t *t = NULL;
	char err[512];
	assert_int_equal(apply_targets_load(example("targets.yaml"), r, &t, err, sizeof err),
			 APPLY_OK);
	int crm = rules_system_find(r, "crm"), customer = rules_entity_find(r, "customer");
	const apply_target_system_t *s = apply_targets_system(t, crm);
	assert_non_null(s);
	assert_string_equal(s->token_env, "STEWARD_EMULATOR_TOKEN");
	assert_true(s->rate_limit > 0);
	const apply_target_entity_t *e = apply_targets_entity(t, crm, customer);
	assert_non_null(e);
	assert_true(e->ops[APPLY_OP_UPSERT].present);
	assert_string_equal(e->ops[APPLY_OP_UPSERT].method, "PATCH");
	assert_non_null(strstr(e->ops[APPLY_OP_UPSERT].url, "ExternalId__c/{customer_no}"));
	assert_string_equal(e->id_json, "/id");
	const apply_target_field_t *f =
		apply_target_entity_field(e, rules_field_find(r, customer, "credit_limit"));
	assert_non_null(f);
	assert_string_equal(f->json_name, "Credit_Limit__c");
	assert_int_equal(f->type, TEMPLATE_JSON_NUMBER);
	assert_null(apply_target_entity_field(e, rules_field_find(r, customer, "name")));
	/* The CRM's Case: upsert by the support desk's ticket id, status only. */
	const apply_target_entity_t *c = apply_targets_entity(t, crm, rules_entity_find(r, "case"));
	assert_non_null(c);
	assert_non_null(strstr(c->ops[APPLY_OP_UPSERT].url, "Case/ExternalId__c/{id:support}"));
	const apply_target_field_t *cs =
		apply_target_entity_field(c, rules_field_find(r, rules_entity_find(r, "case"), "status"));
	assert_non_null(cs);
	assert_string_equal(cs->json_name, "Status");
	apply_targets_free(t);
	rules_free(r);
}

static const struct bad {
	const char *yaml;
	const char *expect;  /* substring of the message, with the line */
} bad_files[] = {
	{"version: 1\nsystems:\n  nosuch:\n    base_url: http://x\n",
	 "t.yaml:3: unknown system \"nosuch\""},
	{"version: 1\nsystems:\n  crm:\n    entities:\n      customer:\n"
	 "        update: { method: PATCH, url: \"/a/{id:crm}\" }\n",
	 "t.yaml:4: system \"crm\" needs a base_url"},
	{"version: 1\nsystems:\n  crm:\n    base_url: http://x\n    entities:\n      customer:\n"
	 "        update: { method: FETCH, url: \"/a\" }\n",
	 "t.yaml:7: \"method\" must be POST"},
	{"version: 1\nsystems:\n  crm:\n    base_url: http://x\n    entities:\n      customer:\n"
	 "        update: { method: PATCH, url: \"/a/{id:crm\" }\n",
	 "t.yaml:7: bad url template"},
	{"version: 1\nsystems:\n  crm:\n    base_url: http://x\n    entities:\n      customer:\n"
	 "        update: { method: PATCH, url: \"/a\" }\n        body:\n          nosuch: X\n",
	 "t.yaml:9: entity \"customer\" has no field \"nosuch\""},
	{"version: 1\nsystems:\n  crm:\n    base_url: http://x\n    entities:\n      customer:\n"
	 "        create: { method: POST, url: \"/a\" }\n",
	 "does not say where the new id is"},
	{"version: 1\nsystems:\n  crm:\n    base_url: ftp://x\n", "t.yaml:4: \"base_url\" must start"},
	{"version: 1\nsystems:\n  crm:\n    base_url: http://x\n    rate_limit: lots\n",
	 "t.yaml:5: \"rate_limit\" must be a number"},
	{"version: 1\nsystems:\n  crm:\n    base_url: http://x\n    colour: blue\n",
	 "t.yaml:5: unknown key \"colour\""},
	{"version: 2\nsystems: {}\n", "t.yaml:1: unsupported version"},
	{"version: 1\nsystems:\n  crm: [\n", "t.yaml:"},
	{"version: 1\nsystems:\n  crm:\n    base_url: http://x\n    entities:\n      nosuch: {}\n",
	 "t.yaml:6: unknown entity \"nosuch\""},
};

static void
test_targets_errors_name_the_line(void **st)
{
	(void) st;
	rules_t *r = load_rules();
	for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
		apply_targets_t *t = (apply_targets_t *) 1;
		char err[512] = "";
		apply_status_t s = apply_targets_load_string(bad_files[i].yaml, strlen(bad_files[i].yaml),
							     "t.yaml", r, &t, err, sizeof err);
		if (s != APPLY_PERMANENT || !strstr(err, bad_files[i].expect))
			fail_msg("case %zu: status %d, message \"%s\", expected \"%s\"", i, (int) s,
				 err, bad_files[i].expect);
		assert_null(t);
	}
	rules_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_targets_file_loads),
		cmocka_unit_test(test_targets_errors_name_the_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
