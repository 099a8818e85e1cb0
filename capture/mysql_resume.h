/*
 * mysql_resume.h — where a MySQL/MariaDB capture resumes: the resume file
 * (DIR/mysql-resume) and MariaDB GTID states.
 *
 * The resume file names the end of the last transaction all of whose
 * records are durable, three ways:
 *
 *   mysql-bin.000003 4177        binlog file and offset on the server read
 *   gtid 0-1-42,1-2-7            MariaDB: the last GTID of every domain
 *   epoch 1                      positions' epoch (proto/position.h)
 *
 * The second and third lines are optional (a file written by an older
 * build, or a MySQL source, has only the first).  File and offset are
 * exact only on the server that wrote them; the GTID state names the same
 * point on every server of the replication topology, which is what lets
 * an agent follow a failover.
 */
#ifndef STEWARD_CAPTURE_MYSQL_RESUME_H
#define STEWARD_CAPTURE_MYSQL_RESUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* MariaDB GTID state: the last GTID (domain-server-seq) of each domain. */
typedef struct mysql_gtid {
	uint32_t domain, server;
	uint64_t seq;
} mysql_gtid_t;

#define MYSQL_GTID_DOMAINS_MAX 64

typedef struct mysql_gtid_state {
	size_t n;
	mysql_gtid_t g[MYSQL_GTID_DOMAINS_MAX];  /* by domain, ascending */
} mysql_gtid_state_t;

/* Parse one "domain-server-seq"; false unless the whole text is one. */
bool mysql_gtid_parse(const char *text, size_t len, mysql_gtid_t *out);

/*
 * Parse a state as the server prints it ("0-1-42,1-2-7", "" for none;
 * spaces after commas allowed).  False with a message naming the bad part
 * on malformed text, a repeated domain, or more than MYSQL_GTID_DOMAINS_MAX
 * domains.
 */
bool mysql_gtid_state_parse(const char *text, mysql_gtid_state_t *out, char *err, size_t errlen);

/* Record g as its domain's last GTID.  False only when the state is full. */
bool mysql_gtid_state_put(mysql_gtid_state_t *st, const mysql_gtid_t *g);

/* "0-1-42,1-2-7" into out (truncated to outlen); returns the text's full length. */
size_t mysql_gtid_state_format(const mysql_gtid_state_t *st, char *out, size_t outlen);

/* Text length enough for any state. */
#define MYSQL_GTID_STATE_TEXT_MAX (MYSQL_GTID_DOMAINS_MAX * 52)

typedef struct mysql_resume {
	char *file;                /* binlog file name, owned */
	uint64_t offset;
	bool has_gtid;             /* gtid holds the state at file:offset */
	mysql_gtid_state_t gtid;
	uint32_t epoch;
} mysql_resume_t;

/*
 * Read DIR/mysql-resume into *out (out->file owned by the caller,
 * mysql_resume_clear).  false if there is none; a file that exists but
 * cannot be read is false with a message in err (err[0] is '\0' when
 * there is simply no file).
 */
bool mysql_resume_load(const char *dir, mysql_resume_t *out, char *err, size_t errlen);

/* Write DIR/mysql-resume atomically and durably (temporary file, fdatasync, rename). */
bool mysql_resume_save(const char *dir, const mysql_resume_t *r, char *err, size_t errlen);

void mysql_resume_clear(mysql_resume_t *r);

#endif
