/*
 * rules_diag.c — the diagnostics list of `steward rules check`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_internal.h"
#include "xalloc.h"

void
rules_diag_add(rules_diags_t *d, const char *file, int line, int col,
	       rules_severity_t sev, const char *hint, const char *fmt, ...)
{
	if (d == NULL)
		return;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->items = xrealloc(d->items, d->cap * sizeof(*d->items));
	}
	rules_diag_t *it = &d->items[d->n++];
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	it->file = xstrdup(file ? file : "<rules>");
	it->line = line;
	it->col = col;
	it->severity = sev;
	it->message = xstrdup(msg);
	it->hint = hint ? xstrdup(hint) : NULL;
	if (sev == RULES_SEV_ERROR)
		d->nerrors++;
}

static int
diag_cmp(const void *a, const void *b)
{
	const rules_diag_t *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return strcmp(x->message, y->message);
}

void
rules_diags_sort(rules_diags_t *d)
{
	if (d->n > 1)
		qsort(d->items, d->n, sizeof(*d->items), diag_cmp);
}

void
rules_diags_free(rules_diags_t *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->items[i].file);
		free(d->items[i].message);
		free(d->items[i].hint);
	}
	free(d->items);
	d->items = NULL;
	d->n = d->cap = d->nerrors = 0;
}

void
rules_diags_format(const rules_diags_t *d, buf_t *out)
{
	for (size_t i = 0; i < d->n; i++) {
		const rules_diag_t *it = &d->items[i];
		const char *sev = it->severity == RULES_SEV_ERROR ? "error" : "warning";
		if (it->line > 0)
			buf_printf(out, "%s:%d:%d: %s: %s\n", it->file, it->line, it->col, sev,
				   it->message);
		else
			buf_printf(out, "%s: %s: %s\n", it->file, sev, it->message);
		if (it->hint)
			buf_printf(out, "  hint: %s\n", it->hint);
	}
}
