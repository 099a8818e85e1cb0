/*
 * exitcodes.h — what `steward` returns, documented in docs/cli.md.
 * Values follow sysexits(3) where one fits, so supervisors can tell a
 * configuration mistake (do not restart) from an outage (restart later).
 */
#ifndef STEWARD_COMMON_EXITCODES_H
#define STEWARD_COMMON_EXITCODES_H

enum steward_exit {
	STEWARD_EXIT_OK = 0,           /* done; for --check: no problem found */
	STEWARD_EXIT_FAILURE = 1,      /* runtime error not covered below */
	STEWARD_EXIT_USAGE = 2,        /* bad command line */
	STEWARD_EXIT_CHECK_FAILED = 3, /* --check / rules check found problems */
	STEWARD_EXIT_DATAERR = 65,     /* corrupt input: change log, WAL bytes, rules */
	STEWARD_EXIT_UNAVAILABLE = 69, /* source or target unreachable after retries */
	STEWARD_EXIT_IOERR = 74,       /* local I/O failed (disk full, fsync) */
	STEWARD_EXIT_CONFIG = 78,      /* configuration error (DSN, rules file) */
};

#endif
