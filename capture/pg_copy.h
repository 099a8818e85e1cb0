/*
 * pg_copy.h — parser for one row of PostgreSQL's COPY text format (the
 * default of COPY … TO STDOUT): fields separated by tabs, the row ended by
 * an optional newline, \N for NULL, and backslash escapes (\b \f \n \r \t
 * \v \\, \ooo octal, \xhh hex, any other \c meaning c).  Pure.
 */
#ifndef STEWARD_CAPTURE_PG_COPY_H
#define STEWARD_CAPTURE_PG_COPY_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

typedef struct pgcopy_field {
	bool is_null;
	char *text;     /* NUL-terminated, de-escaped; arena; NULL when is_null */
	size_t len;     /* bytes in text (a field may contain NUL after \000) */
} pgcopy_field_t;

/*
 * Parse row (len bytes) into exactly nfields fields.  Field text is
 * allocated in arena (valid until its next reset).  Returns false with a
 * message in err when the row has a different number of fields or ends in
 * a lone backslash.
 */
bool pgcopy_parse_row(const char *row, size_t len, arena_t *arena, pgcopy_field_t *fields,
		      size_t nfields, char *err, size_t errlen);

#endif
