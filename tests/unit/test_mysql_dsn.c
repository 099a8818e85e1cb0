/*
 * test_mysql_dsn.c — mysql:// DSNs: parts, percent-decoding, and the TLS
 * mode each form asks for (secure by default for remote hosts, plain on
 * loopback unless asked); errors never contain the password.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mysql_capture.h"

static int
tls_of(const char *dsn)
{
	mysql_dsn_t d;
	char err[256];
	if (!mysql_dsn_parse(dsn, &d, err, sizeof(err)))
		fail_msg("%s: %s", dsn, err);
	int tls = d.tls;
	mysql_dsn_clear(&d);
	return tls;
}

static void
parts_are_decoded(void **state)
{
	(void) state;
	mysql_dsn_t d;
	char err[256];
	assert_true(mysql_dsn_parse("mariadb://cap%40x:p%3Aw@[::1]:3307/crm%2D1", &d, err, sizeof(err)));
	assert_string_equal(d.user, "cap@x");
	assert_string_equal(d.password, "p:w");
	assert_string_equal(d.host, "::1");
	assert_int_equal(d.port, 3307);
	assert_string_equal(d.database, "crm-1");
	mysql_dsn_clear(&d);
}

static void
remote_hosts_get_verified_tls_by_default(void **state)
{
	(void) state;
	assert_int_equal(tls_of("mysql://u:pw@db1.example.com/crm"), 2);
	assert_int_equal(tls_of("mysql://u:pw@10.0.0.5:3306/crm"), 2);
	assert_int_equal(tls_of("mysql://u:pw@[fd00::2]/crm"), 2);
}

static void
loopback_is_plain_unless_asked(void **state)
{
	(void) state;
	assert_int_equal(tls_of("mysql://u:pw@127.0.0.1:3306/crm"), 0);
	assert_int_equal(tls_of("mysql://u:pw@localhost/crm"), 0);
	assert_int_equal(tls_of("mysql://u:pw@[::1]/crm"), 0);
	assert_int_equal(tls_of("mysql://u:pw@127.0.0.1/crm?ssl-mode=required"), 1);
	assert_int_equal(tls_of("mysql://u:pw@127.0.0.1/crm?sslca=/etc/ca.pem"), 2);
}

static void
explicit_modes_win(void **state)
{
	(void) state;
	assert_int_equal(tls_of("mysql://u:pw@db1/crm?ssl-mode=disabled"), 0);
	assert_int_equal(tls_of("mysql://u:pw@db1/crm?sslmode=require"), 1);
	assert_int_equal(tls_of("mysql://u:pw@db1/crm?ssl-mode=verify-ca&sslca=/ca.pem"), 2);
	assert_int_equal(tls_of("mysql://u:pw@db1/crm?sslca=/ca.pem&ssl-mode=required"), 1);
	assert_int_equal(tls_of("mysql://u:pw@db1/crm?sslmode=verify-full"), 2);
}

static void
errors_never_show_the_password(void **state)
{
	(void) state;
	mysql_dsn_t d;
	char err[256];
	assert_false(mysql_dsn_parse("mysql://u:Secret-9@db1/crm?ssl-mode=maybe", &d, err, sizeof(err)));
	assert_non_null(strstr(err, "ssl-mode"));
	assert_null(strstr(err, "Secret-9"));
	assert_false(mysql_dsn_parse("mysql://u:Secret-9@db1:99999/crm", &d, err, sizeof(err)));
	assert_null(strstr(err, "Secret-9"));
	assert_false(mysql_dsn_parse("postgres://u:Secret-9@db1/crm", &d, err, sizeof(err)));
	assert_null(strstr(err, "Secret-9"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parts_are_decoded),
		cmocka_unit_test(remote_hosts_get_verified_tls_by_default),
		cmocka_unit_test(loopback_is_plain_unless_asked),
		cmocka_unit_test(explicit_modes_win),
		cmocka_unit_test(errors_never_show_the_password),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
