/*
 * mysql_record.c — source filter and position text shared by the MySQL
 * snapshot and stream; see mysql_capture.h.
 */
#include "mysql_capture.h"

#include <stdio.h>
#include <string.h>

static bool
is_system_schema(const char *s)
{
	return !strcmp(s, "mysql") || !strcmp(s, "information_schema") ||
	       !strcmp(s, "performance_schema") || !strcmp(s, "sys");
}

bool
mysql_source_wants(const mysql_source_t *s, const char *schema, const char *table)
{
	if (s->tables && *s->tables) {
		size_t sl = strlen(schema), tl = strlen(table);
		for (const char *p = s->tables; *p;) {
			const char *e = strchr(p, ',');
			size_t n = e ? (size_t) (e - p) : strlen(p);
			while (n && *p == ' ') {
				p++;
				n--;
			}
			if (n == sl + 1 + tl && !strncmp(p, schema, sl) && p[sl] == '.' &&
			    !strncmp(p + sl + 1, table, tl))
				return true;
			/* a bare table name means the DSN's database */
			if (n == tl && !strncmp(p, table, tl) && s->database && !strcmp(s->database, schema))
				return true;
			if (!e)
				break;
			p = e + 1;
		}
		return false;
	}
	if (s->database && *s->database)
		return strcmp(s->database, schema) == 0;
	return !is_system_schema(schema);
}

void
mysql_position_text(const char *file, uint64_t offset, int phase, uint64_t seq, char *out,
		    size_t outlen)
{
	snprintf(out, outlen, "%s%s:%llu:%llu", phase == POSITION_PHASE_SNAPSHOT ? "snapshot:" : "",
		 file, (unsigned long long) offset, (unsigned long long) seq);
}
