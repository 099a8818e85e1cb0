/*
 * test_rules.c — the ownership rules: loading, every validation error with
 * its line, mapping transforms, each decision kind, golden records, and
 * the explain output (golden files in tests/unit/data/rules/).
 */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "rules.h"

/*
 * Fixtures live beside this file (tests/unit/data/rules) and the shipped
 * examples in docs/examples; both are found from this file's own path.
 */
static char *
src_path(const char *rel)
{
	static char paths[8][512];
	static int next;
	char *p = paths[next++ % 8];
	const char *slash = strrchr(__FILE__, '/');
	int dirlen = slash ? (int)(slash - __FILE__) : 1;
	snprintf(p, 512, "%.*s/%s", dirlen, slash ? __FILE__ : ".", rel);
	return p;
}

#define RULES_DATA src_path("data/rules")

/* ---- helpers --------------------------------------------------------- */

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	buf_t b = BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	if (b.data == NULL)
		buf_append_str(&b, "");
	return buf_steal(&b);
}

static rules_t *
load_estate(void)
{
	char *text = slurp(src_path("../../docs/examples/estate.yaml"));
	assert_non_null(text);
	rules_diags_t d = RULES_DIAGS_INIT;
	rules_t *r = NULL;
	assert_int_equal(rules_load_string(text, strlen(text), "estate.yaml", &r, &d), RULES_OK);
	rules_diags_free(&d);
	free(text);
	return r;
}

/* Load text expecting problems; returns the diagnostics (caller frees). */
static rules_status_t
load_text(const char *text, rules_diags_t *d)
{
	rules_t *r = NULL;
	rules_status_t st = rules_load_string(text, strlen(text), "t.yaml", &r, d);
	rules_free(r);
	return st;
}

static bool
has_diag(const rules_diags_t *d, int line, const char *needle)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->items[i].line == line && strstr(d->items[i].message, needle))
			return true;
	return false;
}

static void
print_diags(const rules_diags_t *d)
{
	buf_t b = BUF_INIT;
	rules_diags_format(d, &b);
	fprintf(stderr, "%s", b.data ? b.data : "(no diagnostics)\n");
	buf_free(&b);
}

#define assert_diag(d, line, needle)                                                 \
	do {                                                                         \
		if (!has_diag(d, line, needle)) {                                    \
			print_diags(d);                                              \
			fail_msg("no diagnostic at line %d containing \"%s\"", line, needle); \
		}                                                                    \
	} while (0)

/* A change built on the stack. */
struct tchange {
	Steward__Change c;
	Steward__Value vals[2][16];
	Steward__Value *ptrs[2][16];
	uint8_t pos[8];
};

static void
tc_init(struct tchange *t, const char *source, const char *schema, const char *table, Steward__Op op,
	uint64_t pos)
{
	memset(t, 0, sizeof(*t));
	Steward__Change init = STEWARD__CHANGE__INIT;
	t->c = init;
	t->c.source = (char *)source;
	t->c.schema = (char *)schema;
	t->c.table = (char *)table;
	t->c.has_op = true;
	t->c.op = op;
	for (int i = 0; i < 8; i++)
		t->pos[i] = (uint8_t)(pos >> (56 - 8 * i));
	t->c.has_position = true;
	t->c.position.data = t->pos;
	t->c.position.len = 8;
	t->c.has_commit_ts_us = true;
	t->c.commit_ts_us = (int64_t)pos * 1000;
	t->c.after = t->ptrs[0];
	t->c.before = t->ptrs[1];
}

static void
tc_col(struct tchange *t, int img, const char *col, const char *text)
{
	size_t *n = img == 0 ? &t->c.n_after : &t->c.n_before;
	Steward__Value init = STEWARD__VALUE__INIT;
	Steward__Value *v = &t->vals[img][*n];
	*v = init;
	v->name = (char *)col;
	v->has_is_null = true;
	v->is_null = text == NULL;
	v->text = (char *)text;
	t->ptrs[img][(*n)++] = v;
}

#define AFTER(t, col, text) tc_col(t, 0, col, text)
#define BEFORE(t, col, text) tc_col(t, 1, col, text)

static const rules_field_decision_t *
fdec(const rules_t *r, const rules_decision_t *d, int entity, const char *field)
{
	int f = rules_field_find(r, entity, field);
	for (size_t i = 0; i < d->nfields; i++)
		if (d->fields[i].field == f)
			return &d->fields[i];
	fail_msg("no decision for field %s", field);
	return NULL;
}

static const rules_target_set_t *
tset(const rules_t *r, const rules_decision_t *d, const char *system)
{
	int s = rules_system_find(r, system);
	for (size_t i = 0; i < d->ntargets; i++)
		if (d->targets[i].system == s)
			return &d->targets[i];
	return NULL;
}

/* A golden customer C001 as the estate would hold it after a first sync. */
static rules_golden_t *
estate_customer(const rules_t *r)
{
	char err[256];
	rules_golden_t *g = rules_golden_from_json(r,
		"{\"entity\":\"customer\",\"exists\":true,\"keys\":{\"erp\":\"C001\",\"crm\":\"001A\",\"billing\":\"cus_1\"},"
		"\"seen\":{\"erp\":\"0000000000000010\",\"crm\":\"0000000000000010\",\"billing\":\"0000000000000010\"},"
		"\"fields\":{\"customer_no\":{\"value\":\"C001\",\"owner\":\"erp\"},"
		"\"name\":{\"value\":\"Acme\",\"owner\":\"crm\"},\"email\":{\"value\":null,\"owner\":\"crm\"},"
		"\"phone\":{\"value\":\"+49 30 1234\",\"owner\":\"crm\"},\"status\":{\"value\":\"active\",\"owner\":\"crm\"},"
		"\"credit_limit\":{\"value\":\"5000\",\"owner\":\"erp\"},\"blocked\":{\"value\":\"false\",\"owner\":\"erp\"}}}",
		err, sizeof err);
	if (g == NULL)
		fail_msg("golden: %s", err);
	return g;
}

struct fixture {
	rules_t *r;
	rules_mapped_t *m;
	rules_decision_t *d;
	rules_golden_t *g;
	int customer;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	fx->r = load_estate();
	fx->m = rules_mapped_new();
	fx->d = rules_decision_new();
	fx->customer = rules_entity_find(fx->r, "customer");
	fx->g = estate_customer(fx->r);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	rules_golden_free(fx->g);
	rules_decision_free(fx->d);
	rules_mapped_free(fx->m);
	rules_free(fx->r);
	free(fx);
	return 0;
}

static void
map_ok(struct fixture *fx, struct tchange *t)
{
	char err[256];
	rules_map_status_t st = rules_map(fx->r, &t->c, fx->m, err, sizeof err);
	if (st != RULES_MAP_OK)
		fail_msg("rules_map: %d %s", st, err);
}

/* ---- loading and validation ------------------------------------------- */

static void
every_shipped_example_passes_rules_check(void **state)
{
	glob_t gl;
	assert_int_equal(glob(src_path("../../docs/examples/*.yaml"), 0, NULL, &gl), 0);
	assert_true(gl.gl_pathc >= 1);
	size_t nrules = 0;
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		/* docs/examples also holds other configuration (the apply targets
		 * file); a rules file is one with a top-level ownership: section. */
		char *text = slurp(gl.gl_pathv[i]);
		bool is_rules = text && (strncmp(text, "ownership:", 10) == 0 || strstr(text, "\nownership:"));
		free(text);
		if (!is_rules)
			continue;
		nrules++;
		rules_diags_t d = RULES_DIAGS_INIT;
		rules_status_t st = rules_check(gl.gl_pathv[i], &d);
		if (st != RULES_OK || d.n != 0) {
			print_diags(&d);
			fail_msg("%s does not pass rules check cleanly", gl.gl_pathv[i]);
		}
		rules_diags_free(&d);
	}
	assert_true(nrules >= 1);
	globfree(&gl);
}

static void
estate_example_declares_the_demo_domain(void **state)
{
	rules_t *r = load_estate();
	assert_int_equal(rules_nsystems(r), 4);
	const char *entities[] = {"customer", "product", "invoice", "subscription", "payment", "case"};
	for (size_t i = 0; i < 6; i++)
		assert_true(rules_entity_find(r, entities[i]) >= 0);
	int cust = rules_entity_find(r, "customer");
	assert_int_equal(rules_field_type(r, cust, rules_field_find(r, cust, "credit_limit")), RULES_TYPE_DECIMAL);
	int inv = rules_entity_find(r, "invoice");
	assert_int_equal(rules_field_ref_entity(r, inv, rules_field_find(r, inv, "customer")), cust);
	/* Writes to the CRM go to external_id, the column that feeds customer_no there. */
	assert_string_equal(rules_target_column(r, rules_system_find(r, "crm"), cust,
						rules_field_find(r, cust, "customer_no")), "external_id");
	assert_string_equal(rules_target_table(r, rules_system_find(r, "billing"), cust), "billing.customers");
	rules_free(r);
}

static void
broken_file_reports_every_error_with_its_line(void **state)
{
	rules_diags_t d = RULES_DIAGS_INIT;
	rules_t *r = NULL;
	assert_int_equal(rules_load(src_path("data/rules/bad.yaml"), &r, &d), RULES_INVALID);
	assert_null(r);
	assert_diag(&d, 8, "unknown type \"strng\"");
	assert_diag(&d, 8, "field customer.phone has no owner");
	assert_diag(&d, 11, "unknown system \"sap\"");
	assert_diag(&d, 19, "type mismatch: cast to integer");
	assert_diag(&d, 20, "\"exited\" is not one of the values");
	assert_diag(&d, 21, "unknown field \"nickname\"");
	assert_diag(&d, 25, "fallback \"crm\" is the owner itself");
	assert_diag(&d, 29, "incomplete conditions");
	assert_diag(&d, 30, "overlapping conditions: status = \"churned\"");
	assert_diag(&d, 33, "target crm receives customer.name, which it owns");
	assert_diag(&d, 36, "unknown system \"erpp\"");
	assert_int_equal(d.nerrors, 11);
	/* Every error carries a hint and a column. */
	for (size_t i = 0; i < d.n; i++) {
		assert_non_null(d.items[i].hint);
		assert_true(d.items[i].col > 0);
	}
	buf_t b = BUF_INIT;
	rules_diags_format(&d, &b);
	assert_non_null(strstr(b.data, "bad.yaml:11:19: error: unknown system \"sap\"\n  hint: "));
	buf_free(&b);
	rules_diags_free(&d);
}

static const char *const base_yaml =
	"systems: [a, b, c]\n"                                   /* 1 */
	"entities:\n"                                            /* 2 */
	"  thing:\n"                                             /* 3 */
	"    fields:\n"                                          /* 4 */
	"      name: string\n"                                   /* 5 */
	"      size: integer\n"                                  /* 6 */
	"      state: { type: string, values: [on, off] }\n"     /* 7 */
	"sources:\n"                                             /* 8 */
	"  - { system: a, table: s.t, entity: thing, key: id, fields: { name: n, size: sz, state: st } }\n" /* 9 */
	"  - { system: b, table: s.t, entity: thing, key: id, fields: { name: n, size: sz, state: st } }\n" /* 10 */
	"  - { system: c, table: s.t, entity: thing, key: id, fields: { name: n, size: sz, state: st } }\n"; /* 11 */

static void
check_snippet(const char *rest, int line, const char *needle)
{
	char text[4096];
	snprintf(text, sizeof text, "%s%s", base_yaml, rest);
	rules_diags_t d = RULES_DIAGS_INIT;
	assert_int_equal(load_text(text, &d), RULES_INVALID);
	assert_diag(&d, line, needle);
	rules_diags_free(&d);
}

static void
field_without_owner_is_reported_at_the_field(void **state)
{
	check_snippet("ownership:\n  thing: { name: a, state: a }\n", 6, "field thing.size has no owner");
}

static void
conditions_that_leave_a_state_without_owner_are_reported(void **state)
{
	check_snippet("ownership:\n"
		      "  thing:\n"
		      "    \"*\": a\n"
		      "    size:\n"
		      "      - { owner: b, when: { state: on } }\n"     /* 16 */
		      "      - { owner: c, when: { state: [off] } }\n", /* 17 */
		      17, "has no owner when state is null");
	/* A non-enumerated condition field can never be complete. */
	check_snippet("ownership:\n"
		      "  thing:\n"
		      "    \"*\": a\n"
		      "    size:\n"
		      "      - { owner: b, when: { name: x } }\n", 16, "has no owner when no condition holds");
}

static void
overlapping_conditions_are_reported_at_the_second(void **state)
{
	check_snippet("ownership:\n"
		      "  thing:\n"
		      "    \"*\": a\n"
		      "    size:\n"
		      "      - { owner: b, when: { state: [on, off] } }\n"
		      "      - { owner: c, when: { state: [off, ~] } }\n"
		      "      - a\n",
		      17, "overlapping conditions: state = \"off\"");
	check_snippet("ownership:\n"
		      "  thing:\n"
		      "    \"*\": a\n"
		      "    size:\n"
		      "      - c\n"
		      "      - { owner: b, when: { state: on } }\n",
		      17, "unreachable ownership entry");
}

static void
transform_type_mismatches_are_reported(void **state)
{
	check_snippet("  - { system: a, table: s.u, entity: thing, key: id, fields: { size: { constant: big } } }\n"
		      "ownership: { thing: { \"*\": a } }\n", 12, "type mismatch: constant \"big\" is not a valid integer");
	check_snippet("  - { system: a, table: s.u, entity: thing, key: id, fields: { size: { concat: [x, y] } } }\n"
		      "ownership: { thing: { \"*\": a } }\n", 12, "type mismatch: concatenation produces a string");
	check_snippet("  - { system: a, table: s.u, entity: thing, key: id, fields: { size: { column: x, map: { A: one } } } }\n"
		      "ownership: { thing: { \"*\": a } }\n", 12, "mapped value \"one\" is not a valid integer");
}

static void
target_receiving_its_own_field_is_reported(void **state)
{
	check_snippet("ownership: { thing: { \"*\": a, size: b } }\n"
		      "targets:\n"
		      "  - { system: b, entity: thing, fields: [name, size] }\n", 14,
		      "target b receives thing.size, which it owns");
}

static void
unknown_names_and_keys_are_reported(void **state)
{
	check_snippet("ownership: { thing: { \"*\": a, colour: b } }\n", 12, "unknown field \"colour\" of entity thing");
	check_snippet("ownership: { thingy: { \"*\": a } }\n", 12, "unknown entity \"thingy\"");
	check_snippet("ownership: { thing: { \"*\": { ownr: a } } }\n", 12, "unknown key \"ownr\"");
	check_snippet("ownership: { thing: { \"*\": a } }\ntargts: []\n", 13, "unknown key \"targts\"");
}

static void
text_that_is_not_yaml_is_unreadable(void **state)
{
	rules_diags_t d = RULES_DIAGS_INIT;
	assert_int_equal(load_text("systems: [a, b\nentities: {\n", &d), RULES_UNREADABLE);
	assert_true(d.n == 1 && d.items[0].line > 0);
	assert_non_null(strstr(d.items[0].message, "not valid YAML"));
	rules_diags_free(&d);
	assert_int_equal(load_text("- just\n- a list\n", &d), RULES_UNREADABLE);
	rules_diags_free(&d);
	assert_int_equal(rules_check(src_path("data/rules/does-not-exist.yaml"), &d), RULES_UNREADABLE);
	rules_diags_free(&d);
}

/* ---- mapping ------------------------------------------------------------ */

static void
mapping_canonicalizes_values_and_collects_links(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	tc_init(&t, "erp", "public", "customers", STEWARD__OP__OP_INSERT, 100);
	AFTER(&t, "customer_no", "C002");
	AFTER(&t, "name", "Beta");
	AFTER(&t, "email", NULL);
	AFTER(&t, "credit_limit", "7500.50");
	AFTER(&t, "blocked", "t");
	AFTER(&t, "crm_account_id", "001B");
	AFTER(&t, "billing_customer_id", NULL);
	map_ok(fx, &t);
	rules_mapped_t *m = fx->m;
	int c = fx->customer;
	assert_int_equal(m->entity, c);
	assert_string_equal(m->key, "C002");
	assert_string_equal(m->values[rules_field_find(fx->r, c, "credit_limit")], "7500.5");
	assert_string_equal(m->values[rules_field_find(fx->r, c, "blocked")], "true");
	assert_true(m->present[rules_field_find(fx->r, c, "email")]);
	assert_null(m->values[rules_field_find(fx->r, c, "email")]);
	assert_false(m->present[rules_field_find(fx->r, c, "phone")]);
	assert_int_equal(m->nlinks, 1);
	assert_int_equal(m->links[0].system, rules_system_find(fx->r, "crm"));
	assert_string_equal(m->links[0].key, "001B");
}

static void
update_maps_only_the_columns_it_changed(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	tc_init(&t, "crm", "crm", "accounts", STEWARD__OP__OP_UPDATE, 100);
	AFTER(&t, "id", "001A");
	AFTER(&t, "name", "Acme GmbH");
	AFTER(&t, "phone", "+49 30 1234");
	BEFORE(&t, "id", "001A");
	BEFORE(&t, "name", "Acme");
	BEFORE(&t, "phone", "+49 30 1234");
	map_ok(fx, &t);
	assert_true(fx->m->present[rules_field_find(fx->r, fx->customer, "name")]);
	assert_false(fx->m->present[rules_field_find(fx->r, fx->customer, "phone")]);
}

static void
one_table_feeds_two_entities(void **state)
{
	struct fixture *fx = *state;
	char err[256];
	struct tchange t;
	tc_init(&t, "billing", "billing", "payments", STEWARD__OP__OP_INSERT, 100);
	AFTER(&t, "id", "pay_1");
	AFTER(&t, "customer_id", "cus_1");
	AFTER(&t, "invoice_no", "INV-7");
	AFTER(&t, "amount", "120.00");
	AFTER(&t, "currency", "EUR");
	AFTER(&t, "status", "succeeded");
	AFTER(&t, "paid_at", "2026-03-01 10:00:00.000000");
	map_ok(fx, &t);
	int pay = rules_entity_find(fx->r, "payment");
	assert_int_equal(fx->m->entity, pay);
	assert_string_equal(fx->m->values[rules_field_find(fx->r, pay, "invoice")], "erp:INV-7");
	assert_string_equal(fx->m->values[rules_field_find(fx->r, pay, "customer")], "billing:cus_1");
	assert_string_equal(fx->m->values[rules_field_find(fx->r, pay, "paid_at")], "2026-03-01T10:00:00Z");
	assert_int_equal(fx->m->nrefs, 2);
	assert_int_equal(rules_map_next(fx->r, &t.c, fx->m, err, sizeof err), RULES_MAP_OK);
	int inv = rules_entity_find(fx->r, "invoice");
	assert_int_equal(fx->m->entity, inv);
	assert_string_equal(fx->m->key, "INV-7");
	assert_string_equal(fx->m->values[rules_field_find(fx->r, inv, "status")], "paid");
	assert_int_equal(rules_map_next(fx->r, &t.c, fx->m, err, sizeof err), RULES_MAP_SKIP);
}

static void
unmapped_tables_and_null_keys_are_skipped(void **state)
{
	struct fixture *fx = *state;
	char err[256];
	struct tchange t;
	tc_init(&t, "erp", "public", "ledger", STEWARD__OP__OP_INSERT, 100);
	AFTER(&t, "id", "1");
	assert_int_equal(rules_map(fx->r, &t.c, fx->m, err, sizeof err), RULES_MAP_SKIP);
	tc_init(&t, "crm", "crm", "accounts", STEWARD__OP__OP_INSERT, 100);
	AFTER(&t, "name", "x");
	assert_int_equal(rules_map(fx->r, &t.c, fx->m, err, sizeof err), RULES_MAP_ERROR);
	assert_non_null(strstr(err, "key column id"));
}

static void
match_keys_are_normalized(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	tc_init(&t, "crm", "crm", "accounts", STEWARD__OP__OP_INSERT, 100);
	AFTER(&t, "id", "001C");
	AFTER(&t, "name", "Gamma");
	AFTER(&t, "email", "  Ann.Lee@Example.COM ");
	map_ok(fx, &t);
	buf_t b = BUF_INIT;
	assert_int_equal(rules_match_keys(fx->r, fx->m, &b), 1);
	assert_string_equal(b.data, "email:ann.lee@example.com");
	buf_free(&b);
}

static void
values_are_canonical_across_databases(void **state)
{
	rules_t *r = load_estate();
	int inv = rules_entity_find(r, "invoice");
	rules_mapped_t *m = rules_mapped_new();
	struct tchange t;
	char err[256];
	tc_init(&t, "erp", "public", "invoices", STEWARD__OP__OP_INSERT, 5);
	AFTER(&t, "invoice_no", "INV-1");
	AFTER(&t, "issued_at", "2026-03-01 12:00:00+02");
	AFTER(&t, "amount", "0100.10");
	AFTER(&t, "due_date", "2026-04-01");
	assert_int_equal(rules_map(r, &t.c, m, err, sizeof err), RULES_MAP_OK);
	assert_string_equal(m->values[rules_field_find(r, inv, "issued_at")], "2026-03-01T10:00:00Z");
	assert_string_equal(m->values[rules_field_find(r, inv, "amount")], "100.1");
	assert_string_equal(m->values[rules_field_find(r, inv, "due_date")], "2026-04-01");
	tc_init(&t, "erp", "public", "invoices", STEWARD__OP__OP_INSERT, 6);
	AFTER(&t, "invoice_no", "INV-1");
	AFTER(&t, "amount", "ten");
	assert_int_equal(rules_map(r, &t.c, m, err, sizeof err), RULES_MAP_ERROR);
	assert_non_null(strstr(err, "not a valid decimal"));
	rules_mapped_free(m);
	rules_free(r);
}

/* ---- decisions ------------------------------------------------------------ */

static void
owner_change_is_accepted_and_sent_to_every_target_but_the_owner(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	tc_init(&t, "crm", "crm", "accounts", STEWARD__OP__OP_UPDATE, 100);
	AFTER(&t, "id", "001A");
	AFTER(&t, "name", "Acme GmbH");
	map_ok(fx, &t);
	rules_resolve(fx->r, fx->g, fx->m, fx->d);
	assert_int_equal(fx->d->outcome, RULES_OUTCOME_APPLIED);
	const rules_field_decision_t *fd = fdec(fx->r, fx->d, fx->customer, "name");
	assert_int_equal(fd->verdict, RULES_ACCEPTED);
	assert_string_equal(fd->rule->id, "ownership.customer.*");
	assert_true(fd->rule->line > 0);
	assert_non_null(tset(fx->r, fx->d, "erp"));
	assert_non_null(tset(fx->r, fx->d, "billing"));
	assert_null(tset(fx->r, fx->d, "crm")); /* never back to the owner */
	assert_int_equal(fx->d->nwrites, 2);
	for (size_t i = 0; i < fx->d->nwrites; i++) {
		assert_string_equal(fx->d->writes[i].value, "Acme GmbH");
		assert_int_equal(fx->d->writes[i].kind, RULES_WRITE_PROPAGATE);
	}
	rules_golden_apply(fx->r, fx->g, fx->m, fx->d);
	int name = rules_field_find(fx->r, fx->customer, "name");
	assert_string_equal(fx->g->fields[name].value, "Acme GmbH");
	assert_int_equal(fx->g->fields[name].owner, rules_system_find(fx->r, "crm"));
	assert_int_equal(fx->g->fields[name].commit_ts_us, 100000);
}

static void
our_write_coming_back_is_an_echo_with_no_writes(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	tc_init(&t, "erp", "public", "customers", STEWARD__OP__OP_UPDATE, 100);
	AFTER(&t, "customer_no", "C001");
	AFTER(&t, "name", "Acme");
	map_ok(fx, &t);
	rules_resolve(fx->r, fx->g, fx->m, fx->d);
	assert_int_equal(fx->d->outcome, RULES_OUTCOME_ECHO);
	assert_int_equal(fdec(fx->r, fx->d, fx->customer, "name")->verdict, RULES_ECHO);
	assert_int_equal(fx->d->nwrites, 0);
	assert_int_equal(fx->d->ntargets, 0);
}

static void
non_owner_change_is_a_conflict_and_the_owner_value_is_restored(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	tc_init(&t, "crm", "crm", "accounts", STEWARD__OP__OP_UPDATE, 100);
	AFTER(&t, "id", "001A");
	AFTER(&t, "credit_limit", "9000.00");
	map_ok(fx, &t);
	rules_resolve(fx->r, fx->g, fx->m, fx->d);
	assert_int_equal(fx->d->outcome, RULES_OUTCOME_CONFLICT);
	const rules_field_decision_t *fd = fdec(fx->r, fx->d, fx->customer, "credit_limit");
	assert_int_equal(fd->verdict, RULES_CONFLICT);
	assert_int_equal(fd->owner, rules_system_find(fx->r, "erp"));
	assert_string_equal(fd->rule->id, "ownership.customer.credit_limit");
	const rules_target_set_t *ts = tset(fx->r, fx->d, "crm");
	assert_non_null(ts);
	assert_int_equal(ts->count, 1);
	assert_int_equal(fx->d->writes[ts->first].kind, RULES_WRITE_REPAIR);
	assert_string_equal(fx->d->writes[ts->first].value, "5000");
	assert_int_equal(fx->d->nwrites, 1);
	rules_golden_apply(fx->r, fx->g, fx->m, fx->d);
	assert_string_equal(fx->g->fields[rules_field_find(fx->r, fx->customer, "credit_limit")].value, "5000");
}

static void
fallback_owner_fills_an_empty_value_only(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	int email = rules_field_find(fx->r, fx->customer, "email");
	tc_init(&t, "billing", "billing", "customers", STEWARD__OP__OP_UPDATE, 100);
	AFTER(&t, "id", "cus_1");
	AFTER(&t, "email", "ap@acme.example");
	map_ok(fx, &t);
	rules_resolve(fx->r, fx->g, fx->m, fx->d);
	assert_int_equal(fx->d->outcome, RULES_OUTCOME_APPLIED);
	assert_true(fdec(fx->r, fx->d, fx->customer, "email")->via_fallback);
	assert_non_null(tset(fx->r, fx->d, "erp"));
	assert_null(tset(fx->r, fx->d, "crm"));
	rules_golden_apply(fx->r, fx->g, fx->m, fx->d);
	assert_string_equal(fx->g->fields[email].value, "ap@acme.example");
	/* The CRM's null does not wipe the fallback's value ... */
	tc_init(&t, "crm", "crm", "accounts", STEWARD__OP__OP_UPDATE, 101);
	AFTER(&t, "id", "001A");
	AFTER(&t, "email", NULL);
	map_ok(fx, &t);
	rules_resolve(fx->r, fx->g, fx->m, fx->d);
	assert_int_equal(fdec(fx->r, fx->d, fx->customer, "email")->verdict, RULES_ECHO);
	/* ... but a real CRM value wins, and billing may no longer change it. */
	tc_init(&t, "crm", "crm", "accounts", STEWARD__OP__OP_UPDATE, 102);
	AFTER(&t, "id", "001A");
	AFTER(&t, "email", "info@acme.example");
	map_ok(fx, &t);
	rules_resolve(fx->r, fx->g, fx->m, fx->d);
	assert_int_equal(fdec(fx->r, fx->d, fx->customer, "email")->verdict, RULES_ACCEPTED);
	const rules_target_set_t *bill = tset(fx->r, fx->d, "billing");
	assert_non_null(bill);
	assert_int_equal(fx->d->writes[bill->first].mode, RULES_WRITE_FILL_IF_EMPTY);
	rules_golden_apply(fx->r, fx->g, fx->m, fx->d);
	tc_init(&t, "billing", "billing", "customers", STEWARD__OP__OP_UPDATE, 103);
	AFTER(&t, "id", "cus_1");
	AFTER(&t, "email", "other@acme.example");
	map_ok(fx, &t);
	rules_resolve(fx->r, fx->g, fx->m, fx->d);
	assert_int_equal(fdec(fx->r, fx->d, fx->customer, "email")->verdict, RULES_CONFLICT);
}

static void
create_without_the_right_is_unauthorized(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	rules_golden_t *empty = rules_golden_new(fx->r, fx->customer);
	tc_init(&t, "billing", "billing", "customers", STEWARD__OP__OP_INSERT, 100);
	AFTER(&t, "id", "cus_9");
	AFTER(&t, "name", "Newco");
	map_ok(fx, &t);
	rules_resolve(fx->r, empty, fx->m, fx->d);
	assert_int_equal(fx->d->outcome, RULES_OUTCOME_UNAUTHORIZED_CREATE);
	assert_int_equal(fx->d->unauth_action, RULES_UNAUTH_DEAD_LETTER);
	assert_string_equal(fx->d->rule->id, "create.customer");
	assert_int_equal(fx->d->nwrites, 0);
	rules_golden_apply(fx->r, empty, fx->m, fx->d);
	assert_false(empty->exists);
	rules_golden_free(empty);
}

static void
create_by_the_crm_creates_the_customer_in_the_erp(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	rules_golden_t *g = rules_golden_new(fx->r, fx->customer);
	tc_init(&t, "crm", "crm", "accounts", STEWARD__OP__OP_INSERT, 100);
	AFTER(&t, "id", "001N");
	AFTER(&t, "external_id", NULL);
	AFTER(&t, "name", "Newco");
	AFTER(&t, "email", "hello@newco.example");
	AFTER(&t, "status", "prospect");
	AFTER(&t, "credit_limit", NULL);
	map_ok(fx, &t);
	rules_resolve(fx->r, g, fx->m, fx->d);
	assert_int_equal(fx->d->outcome, RULES_OUTCOME_APPLIED);
	assert_true(fx->d->creates);
	const rules_target_set_t *erp = tset(fx->r, fx->d, "erp");
	assert_non_null(erp);
	assert_int_equal(erp->op, RULES_TARGET_CREATE);
	assert_int_equal(erp->count, 2); /* name and email */
	assert_null(tset(fx->r, fx->d, "billing")); /* create: false */
	rules_golden_apply(fx->r, g, fx->m, fx->d);
	assert_true(g->exists);
	assert_string_equal(g->keys[rules_system_find(fx->r, "crm")], "001N");
	/* The ERP returns its customer number; record it, and the insert echo is a no-op
	 * apart from the ERP's own customer_no. */
	rules_golden_set_key(g, rules_system_find(fx->r, "erp"), "C100");
	tc_init(&t, "erp", "public", "customers", STEWARD__OP__OP_INSERT, 200);
	AFTER(&t, "customer_no", "C100");
	AFTER(&t, "name", "Newco");
	AFTER(&t, "email", "hello@newco.example");
	AFTER(&t, "crm_account_id", "001N");
	map_ok(fx, &t);
	rules_resolve(fx->r, g, fx->m, fx->d);
	assert_int_equal(fdec(fx->r, fx->d, fx->customer, "name")->verdict, RULES_ECHO);
	assert_int_equal(fdec(fx->r, fx->d, fx->customer, "customer_no")->verdict, RULES_ACCEPTED);
	const rules_target_set_t *crm = tset(fx->r, fx->d, "crm");
	assert_non_null(crm);
	assert_int_equal(crm->count, 1);
	assert_string_equal(rules_target_column(fx->r, crm->system, fx->customer,
						fx->d->writes[crm->first].field), "external_id");
	rules_golden_free(g);
}

static void
delete_rights_are_enforced(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	tc_init(&t, "crm", "crm", "accounts", STEWARD__OP__OP_DELETE, 100);
	BEFORE(&t, "id", "001A");
	map_ok(fx, &t);
	rules_resolve(fx->r, fx->g, fx->m, fx->d);
	assert_int_equal(fx->d->outcome, RULES_OUTCOME_UNAUTHORIZED_DELETE);
	assert_string_equal(fx->d->rule->id, "delete.customer");
	tc_init(&t, "erp", "public", "customers", STEWARD__OP__OP_DELETE, 100);
	BEFORE(&t, "customer_no", "C001");
	map_ok(fx, &t);
	rules_resolve(fx->r, fx->g, fx->m, fx->d);
	assert_int_equal(fx->d->outcome, RULES_OUTCOME_APPLIED);
	assert_true(fx->d->deletes);
	rules_golden_apply(fx->r, fx->g, fx->m, fx->d);
	assert_true(fx->g->deleted);
}

static void
conditional_owner_follows_the_entity_state(void **state)
{
	struct fixture *fx = *state;
	char err[256];
	int inv = rules_entity_find(fx->r, "invoice");
	rules_golden_t *g = rules_golden_from_json(fx->r,
		"{\"entity\":\"invoice\",\"keys\":{\"erp\":\"INV-7\"},\"fields\":{"
		"\"invoice_no\":{\"value\":\"INV-7\",\"owner\":\"erp\"},\"status\":{\"value\":\"open\",\"owner\":\"erp\"}}}",
		err, sizeof err);
	assert_non_null(g);
	struct tchange t;
	tc_init(&t, "billing", "billing", "payments", STEWARD__OP__OP_INSERT, 100);
	AFTER(&t, "id", "pay_1");
	AFTER(&t, "invoice_no", "INV-7");
	AFTER(&t, "status", "succeeded");
	map_ok(fx, &t);
	assert_int_equal(rules_map_next(fx->r, &t.c, fx->m, err, sizeof err), RULES_MAP_OK);
	assert_int_equal(fx->m->entity, inv);
	rules_resolve(fx->r, g, fx->m, fx->d);
	const rules_field_decision_t *fd = fdec(fx->r, fx->d, inv, "status");
	assert_int_equal(fd->verdict, RULES_ACCEPTED);
	assert_string_equal(fd->rule->id, "ownership.invoice.status[0]");
	const rules_target_set_t *erp = tset(fx->r, fx->d, "erp");
	assert_non_null(erp);
	assert_string_equal(fx->d->writes[erp->first].value, "paid");
	rules_golden_apply(fx->r, g, fx->m, fx->d);
	/* Paid: the ERP owns the status again; a refund from billing is a conflict. */
	tc_init(&t, "billing", "billing", "payments", STEWARD__OP__OP_UPDATE, 101);
	AFTER(&t, "id", "pay_1");
	AFTER(&t, "invoice_no", "INV-7");
	AFTER(&t, "status", "refunded");
	map_ok(fx, &t);
	assert_int_equal(rules_map_next(fx->r, &t.c, fx->m, err, sizeof err), RULES_MAP_OK);
	rules_resolve(fx->r, g, fx->m, fx->d);
	fd = fdec(fx->r, fx->d, inv, "status");
	assert_int_equal(fd->verdict, RULES_CONFLICT);
	assert_string_equal(fd->rule->id, "ownership.invoice.status[1]");
	assert_int_equal(fx->d->nwrites, 0); /* billing does not receive invoices */
	rules_golden_free(g);
}

static void
replaying_an_applied_change_is_a_no_op(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	tc_init(&t, "crm", "crm", "accounts", STEWARD__OP__OP_UPDATE, 100);
	AFTER(&t, "id", "001A");
	AFTER(&t, "name", "Acme GmbH");
	AFTER(&t, "credit_limit", "1");
	map_ok(fx, &t);
	rules_resolve(fx->r, fx->g, fx->m, fx->d);
	rules_golden_apply(fx->r, fx->g, fx->m, fx->d);
	buf_t before = BUF_INIT, after = BUF_INIT;
	rules_golden_to_json(fx->r, fx->g, &before);
	rules_resolve(fx->r, fx->g, fx->m, fx->d);
	assert_int_equal(fx->d->outcome, RULES_OUTCOME_ECHO);
	assert_string_equal(fx->d->rule->id, "replay");
	assert_int_equal(fx->d->nwrites, 0);
	rules_golden_apply(fx->r, fx->g, fx->m, fx->d);
	rules_golden_to_json(fx->r, fx->g, &after);
	assert_string_equal(before.data, after.data);
	buf_free(&before);
	buf_free(&after);
}

static void
golden_record_round_trips_through_json(void **state)
{
	struct fixture *fx = *state;
	char err[256];
	buf_t a = BUF_INIT, b = BUF_INIT;
	rules_golden_to_json(fx->r, fx->g, &a);
	rules_golden_t *g2 = rules_golden_from_json(fx->r, a.data, err, sizeof err);
	assert_non_null(g2);
	rules_golden_to_json(fx->r, g2, &b);
	assert_string_equal(a.data, b.data);
	assert_null(rules_golden_from_json(fx->r, "{\"entity\":\"customer\",\"fields\":{\"colour\":\"red\"}}",
					   err, sizeof err));
	assert_non_null(strstr(err, "unknown field \"colour\""));
	rules_golden_free(g2);
	buf_free(&a);
	buf_free(&b);
}

/* ---- explain golden files --------------------------------------------------- */

static void
explain_matches_golden(struct fixture *fx, struct tchange *t, bool next, const char *name)
{
	char err[256];
	map_ok(fx, t);
	if (next)
		assert_int_equal(rules_map_next(fx->r, &t->c, fx->m, err, sizeof err), RULES_MAP_OK);
	rules_golden_t *g = fx->m->entity == fx->customer ? fx->g : rules_golden_new(fx->r, fx->m->entity);
	rules_resolve(fx->r, g, fx->m, fx->d);
	for (int as_json = 0; as_json < 2; as_json++) {
		buf_t out = BUF_INIT;
		rules_explain(fx->r, g, fx->m, fx->d, as_json, &out);
		char path[512];
		snprintf(path, sizeof path, "%s/explain_%s.%s", RULES_DATA, name, as_json ? "json" : "txt");
		if (getenv("STEWARD_UPDATE_GOLDEN")) {
			FILE *f = fopen(path, "w");
			assert_non_null(f);
			fputs(out.data, f);
			fclose(f);
		}
		char *want = slurp(path);
		if (want == NULL)
			fail_msg("missing golden file %s (run with STEWARD_UPDATE_GOLDEN=1)", path);
		if (strcmp(want, out.data) != 0)
			fail_msg("explain output differs from %s:\n%s", path, out.data);
		free(want);
		buf_free(&out);
	}
	if (g != fx->g)
		rules_golden_free(g);
}

static void
explain_output_matches_golden_files(void **state)
{
	struct fixture *fx = *state;
	struct tchange t;
	tc_init(&t, "crm", "crm", "accounts", STEWARD__OP__OP_UPDATE, 100);
	AFTER(&t, "id", "001A");
	AFTER(&t, "name", "Acme GmbH");
	AFTER(&t, "phone", "+49 30 1234");
	AFTER(&t, "credit_limit", "9000.00");
	explain_matches_golden(fx, &t, false, "crm_update");
	tc_init(&t, "billing", "billing", "customers", STEWARD__OP__OP_INSERT, 100);
	AFTER(&t, "id", "cus_9");
	AFTER(&t, "name", "Newco");
	rules_golden_t *keep = fx->g;
	fx->g = rules_golden_new(fx->r, fx->customer);
	explain_matches_golden(fx, &t, false, "unauthorized_create");
	rules_golden_free(fx->g);
	fx->g = keep;
	tc_init(&t, "billing", "billing", "payments", STEWARD__OP__OP_INSERT, 100);
	AFTER(&t, "id", "pay_1");
	AFTER(&t, "invoice_no", "INV-7");
	AFTER(&t, "status", "succeeded");
	explain_matches_golden(fx, &t, true, "payment_unknown_invoice");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_shipped_example_passes_rules_check),
		cmocka_unit_test(estate_example_declares_the_demo_domain),
		cmocka_unit_test(broken_file_reports_every_error_with_its_line),
		cmocka_unit_test(field_without_owner_is_reported_at_the_field),
		cmocka_unit_test(conditions_that_leave_a_state_without_owner_are_reported),
		cmocka_unit_test(overlapping_conditions_are_reported_at_the_second),
		cmocka_unit_test(transform_type_mismatches_are_reported),
		cmocka_unit_test(target_receiving_its_own_field_is_reported),
		cmocka_unit_test(unknown_names_and_keys_are_reported),
		cmocka_unit_test(text_that_is_not_yaml_is_unreadable),
		cmocka_unit_test_setup_teardown(mapping_canonicalizes_values_and_collects_links, setup, teardown),
		cmocka_unit_test_setup_teardown(update_maps_only_the_columns_it_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(one_table_feeds_two_entities, setup, teardown),
		cmocka_unit_test_setup_teardown(unmapped_tables_and_null_keys_are_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(match_keys_are_normalized, setup, teardown),
		cmocka_unit_test(values_are_canonical_across_databases),
		cmocka_unit_test_setup_teardown(owner_change_is_accepted_and_sent_to_every_target_but_the_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(our_write_coming_back_is_an_echo_with_no_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(non_owner_change_is_a_conflict_and_the_owner_value_is_restored, setup, teardown),
		cmocka_unit_test_setup_teardown(fallback_owner_fills_an_empty_value_only, setup, teardown),
		cmocka_unit_test_setup_teardown(create_without_the_right_is_unauthorized, setup, teardown),
		cmocka_unit_test_setup_teardown(create_by_the_crm_creates_the_customer_in_the_erp, setup, teardown),
		cmocka_unit_test_setup_teardown(delete_rights_are_enforced, setup, teardown),
		cmocka_unit_test_setup_teardown(conditional_owner_follows_the_entity_state, setup, teardown),
		cmocka_unit_test_setup_teardown(replaying_an_applied_change_is_a_no_op, setup, teardown),
		cmocka_unit_test_setup_teardown(golden_record_round_trips_through_json, setup, teardown),
		cmocka_unit_test_setup_teardown(explain_output_matches_golden_files, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
