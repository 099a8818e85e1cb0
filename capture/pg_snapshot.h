/*
 * pg_snapshot.h — the consistent initial snapshot: every published table
 * read with COPY inside the slot's exported snapshot and appended as
 * snapshot-read records at (consistent point, phase 0, row counter), so
 * the stream that starts at the consistent point neither misses nor
 * repeats a change.
 */
#ifndef STEWARD_CAPTURE_PG_SNAPSHOT_H
#define STEWARD_CAPTURE_PG_SNAPSHOT_H

#include "pg_agent.h"

/*
 * Copy every table of ag->publication on ag->query in a REPEATABLE READ
 * transaction importing snapshot_name, then flush the change log.
 * reset_first: the log already holds an interrupted snapshot, so first
 * append a truncate of every table that this snapshot supersedes.
 * Logs progress every few seconds.  PGCAP_STOPPED if a stop was requested
 * (the snapshot is then incomplete and must be redone).
 */
pgcap_status_t pgcap_snapshot_run(pgcap_agent_t *ag, const char *snapshot_name,
				  uint64_t consistent_lsn, bool reset_first, char *err,
				  size_t errlen);

#endif
