/*
 * test_apply_template.c — URL placeholders with encoding, crosswalk ids and
 * references, missing references as a distinct status, JSON bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "template.h"

/* A change of customer C-1: fields, CRM id known, billing id not. */
static template_status_t
resolve(void *ud, template_kind_t kind, const char *name, const char *system, const char **value)
{
	(void) ud;
	static const char *const fields[][2] = {
		{"customer_no", "C-1"}, {"name", "Müller & Söhne/GmbH?x=1"}, {"email", NULL},
		{"credit_limit", "1500.50"}, {"blocked", "f"}, {"count", "42"},
		{"tags", "[\"a\",\"b\"]"}, {"customer", "C-1"},
	};
	if (kind == TEMPLATE_FIELD) {
		for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
			if (strcmp(fields[i][0], name) == 0) {
				*value = fields[i][1];
				return TEMPLATE_OK;
			}
		return TEMPLATE_INVALID;
	}
	if (kind == TEMPLATE_ID) {
		if (strcmp(system, "crm") == 0) {
			*value = "001A";
			return TEMPLATE_OK;
		}
		return TEMPLATE_MISSING_ID;
	}
	if (strcmp(name, "customer") == 0 && strcmp(system, "crm") == 0) {
		*value = "001A";
		return TEMPLATE_OK;
	}
	return TEMPLATE_MISSING_REF;
}

static template_status_t
url(const char *tmpl, char *out, size_t outlen, char *err, size_t errlen)
{
	buf_t b = BUF_INIT;
	template_status_t st = template_render_url(tmpl, resolve, NULL, &b, err, errlen);
	snprintf(out, outlen, "%s", b.data ? b.data : "");
	buf_free(&b);
	return st;
}

static void
test_url_substitutes_and_percent_encodes_values(void **state)
{
	(void) state;
	char out[512], err[256];
	assert_int_equal(url("http://h/crm/Account/ExternalId__c/{customer_no}", out, sizeof out,
			     err, sizeof err), TEMPLATE_OK);
	assert_string_equal(out, "http://h/crm/Account/ExternalId__c/C-1");
	/* A value can not add path segments or query parameters. */
	assert_int_equal(url("/a/{name}", out, sizeof out, err, sizeof err), TEMPLATE_OK);
	assert_string_equal(out, "/a/M%C3%BCller%20%26%20S%C3%B6hne%2FGmbH%3Fx%3D1");
	assert_int_equal(url("/acc/{id:crm}?x={{y}}", out, sizeof out, err, sizeof err),
			 TEMPLATE_OK);
	assert_string_equal(out, "/acc/001A?x={y}");
	assert_int_equal(url("/inv?c={ref:customer:crm}", out, sizeof out, err, sizeof err),
			 TEMPLATE_OK);
	assert_string_equal(out, "/inv?c=001A");
}

static void
test_missing_reference_is_a_distinct_status_naming_it(void **state)
{
	(void) state;
	char out[512], err[256];
	assert_int_equal(url("/inv?c={ref:customer:billing}", out, sizeof out, err, sizeof err),
			 TEMPLATE_MISSING_REF);
	assert_string_equal(err, "missing reference customer in billing");
	assert_int_equal(url("/c/{id:billing}", out, sizeof out, err, sizeof err),
			 TEMPLATE_MISSING_ID);
	assert_non_null(strstr(err, "billing"));
}

static void
test_bad_templates_and_nulls_are_rejected(void **state)
{
	(void) state;
	char out[512], err[256];
	assert_int_equal(url("/c/{nope}", out, sizeof out, err, sizeof err), TEMPLATE_INVALID);
	assert_non_null(strstr(err, "unknown field \"nope\""));
	assert_int_equal(url("/c/{email}", out, sizeof out, err, sizeof err), TEMPLATE_INVALID);
	assert_non_null(strstr(err, "null"));
	const char *bad[] = {"/c/{name", "/c/name}", "/c/{}", "/c/{id:}", "/c/{ref:x}",
			     "/c/{ref::crm}", "/c/{foo:bar}", "/c/{a{b}"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (template_check(bad[i], err, sizeof err) != TEMPLATE_INVALID)
			fail_msg("accepted %s", bad[i]);
	}
	assert_int_equal(template_check("/c/{name}/{id:crm}/{ref:customer:billing}", err,
					sizeof err), TEMPLATE_OK);
}

static void
test_body_maps_fields_to_typed_json(void **state)
{
	(void) state;
	char err[256];
	const template_body_field_t f[] = {
		{"Name", "name", TEMPLATE_JSON_STRING, false},
		{"Email", "email", TEMPLATE_JSON_STRING, false},
		{"Phone", "email", TEMPLATE_JSON_STRING, true},
		{"CreditLimit", "credit_limit", TEMPLATE_JSON_NUMBER, false},
		{"Blocked", "blocked", TEMPLATE_JSON_BOOLEAN, false},
		{"Count", "count", TEMPLATE_JSON_INTEGER, false},
		{"Tags", "tags", TEMPLATE_JSON_RAW, false},
		{"AccountId", "ref:customer:crm", TEMPLATE_JSON_STRING, false},
		{"address.id", "id:crm", TEMPLATE_JSON_STRING, false},
		{"address.no", "customer_no", TEMPLATE_JSON_STRING, false},
	};
	json_t *body;
	assert_int_equal(template_render_body(f, sizeof f / sizeof f[0], resolve, NULL, &body,
					      err, sizeof err), TEMPLATE_OK);
	char *text = json_dumps(body, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(text,
			    "{\"AccountId\":\"001A\",\"Blocked\":false,\"Count\":42,"
			    "\"CreditLimit\":1500.5,\"Email\":null,\"Name\":\"Müller & Söhne/GmbH?x=1\","
			    "\"Tags\":[\"a\",\"b\"],\"address\":{\"id\":\"001A\",\"no\":\"C-1\"}}");
	free(text);
	json_decref(body);
}

static void
test_body_reports_missing_reference_and_bad_values(void **state)
{
	(void) state;
	char err[256];
	json_t *body = (json_t *) 1;
	const template_body_field_t ref[] = {{"customer", "ref:customer:billing",
					      TEMPLATE_JSON_STRING, false}};
	assert_int_equal(template_render_body(ref, 1, resolve, NULL, &body, err, sizeof err),
			 TEMPLATE_MISSING_REF);
	assert_null(body);
	assert_string_equal(err, "missing reference customer in billing");
	const template_body_field_t bad[] = {{"n", "name", TEMPLATE_JSON_INTEGER, false}};
	assert_int_equal(template_render_body(bad, 1, resolve, NULL, &body, err, sizeof err),
			 TEMPLATE_INVALID);
	const template_body_field_t clash[] = {{"a", "count", TEMPLATE_JSON_INTEGER, false},
					       {"a.b", "count", TEMPLATE_JSON_INTEGER, false}};
	assert_int_equal(template_render_body(clash, 2, resolve, NULL, &body, err, sizeof err),
			 TEMPLATE_INVALID);
	template_json_type_t t;
	assert_true(template_json_type_from_name("boolean", &t));
	assert_int_equal(t, TEMPLATE_JSON_BOOLEAN);
	assert_false(template_json_type_from_name("float", &t));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_substitutes_and_percent_encodes_values),
		cmocka_unit_test(test_missing_reference_is_a_distinct_status_naming_it),
		cmocka_unit_test(test_bad_templates_and_nulls_are_rejected),
		cmocka_unit_test(test_body_maps_fields_to_typed_json),
		cmocka_unit_test(test_body_reports_missing_reference_and_bad_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
