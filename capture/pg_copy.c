/*
 * pg_copy.c — COPY text format row parser; see pg_copy.h.
 */
#include "pg_copy.h"

#include <stdio.h>
#include <string.h>

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
pgcopy_parse_row(const char *row, size_t len, arena_t *arena, pgcopy_field_t *fields,
		 size_t nfields, char *err, size_t errlen)
{
	if (len && row[len - 1] == '\n')
		len--;
	size_t field = 0;
	size_t pos = 0;
	for (;;) {
		/* Find the end of this field: the next unescaped tab. */
		size_t start = pos;
		while (pos < len && row[pos] != '\t') {
			if (row[pos] == '\\') {
				if (pos + 1 >= len) {
					snprintf(err, errlen,
						 "invalid COPY row: lone backslash at end of field %zu",
						 field + 1);
					return false;
				}
				pos++;
			}
			pos++;
		}
		if (field >= nfields) {
			snprintf(err, errlen, "invalid COPY row: more than %zu fields", nfields);
			return false;
		}
		pgcopy_field_t *f = &fields[field++];
		size_t flen = pos - start;
		if (flen == 2 && row[start] == '\\' && row[start + 1] == 'N') {
			f->is_null = true;
			f->text = NULL;
			f->len = 0;
		} else {
			char *out = arena_alloc(arena, flen + 1);
			size_t o = 0;
			for (size_t i = start; i < pos; i++) {
				char c = row[i];
				if (c != '\\') {
					out[o++] = c;
					continue;
				}
				c = row[++i];
				switch (c) {
				case 'b': out[o++] = '\b'; break;
				case 'f': out[o++] = '\f'; break;
				case 'n': out[o++] = '\n'; break;
				case 'r': out[o++] = '\r'; break;
				case 't': out[o++] = '\t'; break;
				case 'v': out[o++] = '\v'; break;
				case 'x':
					if (i + 1 < pos && hexval(row[i + 1]) >= 0) {
						int v = hexval(row[++i]);
						if (i + 1 < pos && hexval(row[i + 1]) >= 0)
							v = v * 16 + hexval(row[++i]);
						out[o++] = (char) v;
					} else {
						out[o++] = 'x';
					}
					break;
				default:
					if (c >= '0' && c <= '7') {
						int v = c - '0';
						for (int k = 0; k < 2 && i + 1 < pos && row[i + 1] >= '0' &&
								row[i + 1] <= '7'; k++)
							v = v * 8 + (row[++i] - '0');
						out[o++] = (char) v;
					} else {
						out[o++] = c;
					}
				}
			}
			out[o] = '\0';
			f->is_null = false;
			f->text = out;
			f->len = o;
		}
		if (pos >= len)
			break;
		pos++;  /* the tab */
	}
	if (field != nfields) {
		snprintf(err, errlen, "invalid COPY row: %zu fields, %zu expected", field, nfields);
		return false;
	}
	return true;
}
