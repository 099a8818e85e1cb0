/*
 * redact.h — keep secrets out of logs, errors and process titles.
 */
#ifndef STEWARD_COMMON_REDACT_H
#define STEWARD_COMMON_REDACT_H

#include <stddef.h>

/*
 * Copy dsn into out with any password replaced by "********".  Handles URIs
 * (scheme://user:secret@host/…, ?password=secret) and libpq key=value
 * strings (password=secret, password='se cret').  Always NUL-terminates.
 */
void redact_dsn(const char *dsn, char *out, size_t outlen);

/*
 * Replace every occurrence of secret (if non-empty) in text, in place, with
 * '*' characters.  For messages from client libraries that may echo a DSN.
 */
void redact_secret_in_place(char *text, const char *secret);

/*
 * Keep passwords given on the command line out of the process title
 * (ps, /proc/PID/cmdline show the memory of argv).  Returns a copy of argv
 * (argc strings and a NULL) for the program to parse, then overwrites, in
 * the original strings, every byte of a DSN password with '*'.  The copy
 * lives as long as the process and is never freed.
 */
char **redact_argv(int argc, char **argv);

#endif
