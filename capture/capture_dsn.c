/*
 * capture_dsn.c — which agent a DSN belongs to; see capture.h.
 */
#include "capture.h"

#include <strings.h>

bool
capture_dsn_is_mysql(const char *dsn)
{
	return dsn && (strncasecmp(dsn, "mysql://", 8) == 0 || strncasecmp(dsn, "mariadb://", 10) == 0);
}
