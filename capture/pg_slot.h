/*
 * pg_slot.h — the replication slot and the publication: look up, create
 * or reuse, drop.  Catalog queries use the agent's normal connection;
 * slot creation and removal use the walsender connection (the only way
 * to get an exported snapshot).
 */
#ifndef STEWARD_CAPTURE_PG_SLOT_H
#define STEWARD_CAPTURE_PG_SLOT_H

#include "pg_agent.h"

typedef struct pgcap_slot_info {
	bool exists;
	bool logical;
	char plugin[64];
	char database[128];
	bool active;
	int active_pid;
	uint64_t confirmed_flush;
} pgcap_slot_info_t;

/* Look up ag->slot in pg_replication_slots. */
pgcap_status_t pgcap_slot_lookup(pgcap_agent_t *ag, pgcap_slot_info_t *info, char *err,
				 size_t errlen);

/*
 * CREATE_REPLICATION_SLOT ag->slot LOGICAL pgoutput, exporting a snapshot
 * when snapshot_name is non-NULL (NAMEDATALEN bytes; valid until the next
 * command on ag->repl).  *consistent_lsn receives the slot's consistent point.
 */
pgcap_status_t pgcap_slot_create(pgcap_agent_t *ag, char *snapshot_name,
				 uint64_t *consistent_lsn, char *err, size_t errlen);

/* DROP_REPLICATION_SLOT ag->slot WAIT. */
pgcap_status_t pgcap_slot_drop(pgcap_agent_t *ag, char *err, size_t errlen);

/*
 * Make sure the publication exists: reuse it, or create the default one
 * FOR ALL TABLES.  A missing named publication is PGCAP_CONFIG.
 */
pgcap_status_t pgcap_publication_ensure(pgcap_agent_t *ag, char *err, size_t errlen);

/* Slot names: 1..63 of [a-z0-9_] (the server's rule). */
bool pgcap_slot_name_valid(const char *name);

#endif
