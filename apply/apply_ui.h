/*
 * apply_ui.h — the operations page the apply service serves next to
 * /metrics and /status (GET / and GET /ui): sources and targets with
 * health and lag, throughput over the last hour (an inline SVG chart of
 * per-minute counts), per-entity flow counts, the latest ownership
 * conflicts, and dead letters with a Retry button.
 *
 * One self-contained HTML document: inline CSS and JS, no external
 * assets, works offline.  Read-only unless a token is configured; then
 * POST /ui/dlq/retry?id=N with "Authorization: Bearer TOKEN" queues a dead
 * letter again exactly as `steward dlq retry` does.  The token is never
 * logged or echoed.
 *
 * Threading: apply_ui_count_change is called by the ingest loop,
 * apply_ui_handle by the httpd thread; both are thread-safe.  The page
 * reads conflicts and dead letters through its own connections to the
 * state store.
 */
#ifndef STEWARD_APPLY_APPLY_UI_H
#define STEWARD_APPLY_APPLY_UI_H

#include "httpd.h"

typedef struct apply_ui apply_ui_t;

/* state_path and token (NULL = read-only) are copied.  Never fails. */
apply_ui_t *apply_ui_create(const char *state_path, const char *token);
void apply_ui_destroy(apply_ui_t *ui);  /* accepts NULL */

/* One change processed: source (may be NULL), entity, outcome (docs/metrics.md). */
void apply_ui_count_change(apply_ui_t *ui, const char *source, const char *entity,
			   const char *outcome);

/*
 * Serve GET /, GET /ui and POST /ui/dlq/retry.  status_json is the apply
 * service's current GET /status document (borrowed).  Returns 0 if handled,
 * non-zero for any other path (httpd answers 404).
 */
int apply_ui_handle(apply_ui_t *ui, const httpd_request_t *req, const char *status_json,
		    httpd_response_t *resp);

#endif
