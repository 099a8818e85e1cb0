/*
 * pg_check.h — `steward capture --check`: a read-only preflight of the
 * server for logical capture.  It changes nothing; each problem is one line
 * naming what is wrong and the SQL (or setting) that fixes it.
 */
#ifndef STEWARD_CAPTURE_PG_CHECK_H
#define STEWARD_CAPTURE_PG_CHECK_H

#include <stdio.h>

#include "pg_agent.h"

/*
 * Run every check on ag->query (and a trial replication connection),
 * printing results to out.  PGCAP_OK when clean, PGCAP_CHECK_PROBLEMS when
 * a problem was found, another status (message in err) if the checks
 * themselves could not run.
 */
pgcap_status_t pgcap_check_run(pgcap_agent_t *ag, FILE *out, char *err, size_t errlen);

#endif
