/*
 * mysql_capture.c — `steward capture` for MySQL/MariaDB: decide where to
 * start (resume file, change log, or a new snapshot), then stream.
 * Implements mysql_capture_run from capture.h.
 *
 * Restart rules (docs/capture-mysql.md, "Restart"): DIR/mysql-resume names
 * the end of the last transaction known durable (on MariaDB with its GTID
 * state, to which the GTIDs of records durable after it are added: the
 * dump starts by GTID, see "Following a failover"); without it the last
 * durable record's binlog file is read again from its start and the writer
 * drops what it already has.  A log whose last record is a snapshot read
 * means the snapshot was cut short: it is taken again, labelled after the
 * first attempt's records, and the stream replays every change since the
 * first attempt's position (see mysql_snapshot_run).
 */
#include "mysql_capture.h"

#include <limits.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "log.h"
#include "redact.h"
#include "xalloc.h"

volatile int mysql_capture_stop;

static void
on_signal(int sig)
{
	(void) sig;
	mysql_capture_stop = 1;
}

/*
 * Default replica server id: stable per data directory, in the upper half
 * of the id space that hand-configured servers rarely use.
 */
static uint32_t
derive_server_id(const char *data_dir)
{
	char real[PATH_MAX];
	const char *p = data_dir && realpath(data_dir, real) ? real : (data_dir ? data_dir : "");
	uint32_t h = 2166136261u;
	for (; *p; p++)
		h = (h ^ (uint8_t) *p) * 16777619u;
	return 0x80000000u | (h & 0x7fffffffu);
}

/* Name of the binlog file with number file_no ("mysql-bin.000007"). */
static char *
binlog_name(const mysql_dsn_t *d, uint64_t file_no, char *err, size_t errlen)
{
	MYSQL *m = mysql_conn_open(d, 30, err, errlen);
	MYSQL_RES *r = NULL;
	MYSQL_ROW row;
	char *name = NULL;
	if (!m)
		return NULL;
	if (mysql_query(m, "SHOW BINARY LOGS") != 0 || !(r = mysql_store_result(m))) {
		snprintf(err, errlen, "could not list binary logs: %s", mysql_error(m));
		goto out;
	}
	while ((row = mysql_fetch_row(r)) != NULL)
		if (row[0] && mysql_binlog_file_no(row[0]) == file_no) {
			name = xstrdup(row[0]);
			break;
		}
	if (!name)
		snprintf(err, errlen, "binlog file number %llu of the last captured change is no "
			 "longer on the server (purged); start over with an empty --data-dir",
			 (unsigned long long) file_no);
out:
	mysql_free_result(r);
	mysql_close(m);
	return name;
}

static bool
current_position(const mysql_dsn_t *d, char **file, uint64_t *pos, char *err, size_t errlen)
{
	MYSQL *m = mysql_conn_open(d, 30, err, errlen);
	MYSQL_RES *r = NULL;
	MYSQL_ROW row;
	bool ok = false;
	if (!m)
		return false;
	if (mysql_query(m, "SHOW MASTER STATUS") != 0 || !(r = mysql_store_result(m))) {
		snprintf(err, errlen, "could not run \"SHOW MASTER STATUS\": %s", mysql_error(m));
		goto out;
	}
	if ((row = mysql_fetch_row(r)) != NULL && row[0] && row[1]) {
		*file = xstrdup(row[0]);
		*pos = strtoull(row[1], NULL, 10);
		ok = true;
	} else {
		snprintf(err, errlen, "binary logging is off on the server: set log_bin");
	}
out:
	mysql_free_result(r);
	mysql_close(m);
	return ok;
}

/*
 * The MariaDB GTID state at file:offset on the server (BINLOG_GTID_POS).
 * *known is false, with no error, when the server cannot say: MySQL, or a
 * position that is not a transaction boundary in that server's binlog.
 */
static bool
gtid_state_at(const mysql_dsn_t *d, const char *file, uint64_t off, mysql_gtid_state_t *out,
	      bool *known, char *err, size_t errlen)
{
	MYSQL *m = mysql_conn_open(d, 30, err, errlen);
	char *text = NULL, *sql = NULL;
	bool ok = false;
	*known = false;
	if (!m)
		return false;
	if (!mysql_conn_is_mariadb(m)) {
		ok = true;
		goto out;
	}
	size_t n = strlen(file);
	char *esc = xmalloc(2 * n + 1);
	mysql_real_escape_string(m, esc, file, (unsigned long) n);
	sql = xasprintf("SELECT BINLOG_GTID_POS('%s', %llu)", esc, (unsigned long long) off);
	free(esc);
	if (!mysql_conn_scalar(m, sql, &text, err, errlen))
		goto out;
	ok = true;
	if (!text) {
		log_warn("capture", "the server has no GTID position for %s:%llu: resuming by file "
			 "and offset, which cannot follow a failover", file, (unsigned long long) off);
		goto out;
	}
	if (!mysql_gtid_state_parse(text, out, err, errlen)) {
		ok = false;
		goto out;
	}
	*known = true;
out:
	free(text);
	free(sql);
	mysql_close(m);
	return ok;
}

/*
 * Fold into st the GTIDs of the log's records after `after`: what became
 * durable after the resume file was last written (a stop between the
 * log's sync and the file's rename), so a dump by GTID does not send it
 * again — on another server, positions could not tell it is a duplicate.
 */
static bool
gtid_fold_log(const char *dir, const position_t *after, mysql_gtid_state_t *st, char *err,
	      size_t errlen)
{
	clog_reader_t *r = NULL;
	const Steward__Change *c;
	clog_status_t cs = clog_reader_open(dir, after, &r, err, errlen);
	size_t folded = 0;
	while (cs == CLOG_OK && (cs = clog_reader_next(r, &c, err, errlen)) == CLOG_OK) {
		mysql_gtid_t g;
		if (c->txid && mysql_gtid_parse(c->txid, strlen(c->txid), &g) &&
		    mysql_gtid_state_put(st, &g))
			folded++;
	}
	clog_reader_close(r);
	if (cs != CLOG_END)
		return false;
	if (folded)
		log_info("capture", "%zu records were durable after the resume point; their GTIDs "
			 "are not read again", folded);
	return true;
}

int
mysql_capture_run(const capture_config_t *cfg)
{
	char err[1024] = "", safe[512];
	mysql_dsn_t dsn;
	clog_writer_t *w = NULL;
	char *file = NULL;
	uint64_t pos = 0;
	int rc;

	redact_dsn(cfg->dsn, safe, sizeof(safe));
	if (!mysql_dsn_parse(cfg->dsn, &dsn, err, sizeof(err))) {
		log_error("capture", "%s (dsn %s)", err, safe);
		return STEWARD_EXIT_CONFIG;
	}
	uint32_t server_id = cfg->server_id != 0 ? (uint32_t) cfg->server_id
						: derive_server_id(cfg->data_dir);
	if (cfg->check) {
		rc = mysql_check_run(&dsn, server_id);
		goto out;
	}
	if (!cfg->data_dir) {
		log_error("capture", "--data-dir is required");
		rc = STEWARD_EXIT_USAGE;
		goto out;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (clog_writer_open(cfg->data_dir, NULL, &w, err, sizeof(err)) != CLOG_OK) {
		rc = STEWARD_EXIT_IOERR;
		goto out;
	}
	mysql_source_t src = {
		.source_name = cfg->source_name ? cfg->source_name : (*dsn.database ? dsn.database : "mysql"),
		.database = dsn.database,
		.tables = cfg->tables,
	};
	position_t last;
	bool have_last = clog_writer_last_position(w, &last);
	uint64_t last_file = 0, last_off = 0, last_seq = 0;
	uint32_t last_epoch = 0;
	int last_phase = POSITION_PHASE_STREAM;
	if (have_last && !position_mysql_parse(&last, &last_epoch, &last_file, &last_off, &last_phase,
					       &last_seq)) {
		snprintf(err, sizeof(err), "change log in \"%s\" was not written by a MySQL source",
			 cfg->data_dir);
		rc = STEWARD_EXIT_CONFIG;
		goto out;
	}
	mysql_stream_start_t from = {.epoch = last_epoch};
	mysql_resume_t res;
	mysql_gtid_state_t gtid = {0};
	bool has_gtid = false, replay = false;
	bool resumed = mysql_resume_load(cfg->data_dir, &res, err, sizeof(err));
	if (!resumed && err[0]) {
		rc = STEWARD_EXIT_IOERR;
		goto out;
	}
	if (resumed) {
		file = res.file;  /* taken over */
		pos = res.offset;
		has_gtid = res.has_gtid;
		gtid = res.gtid;
		if (res.epoch > from.epoch)
			from.epoch = res.epoch;
		log_info("capture", "resuming after %s:%llu", file, (unsigned long long) pos);
	} else if (have_last && last_phase == POSITION_PHASE_STREAM) {
		replay = true;
		if (!(file = binlog_name(&dsn, last_file, err, sizeof(err)))) {
			rc = STEWARD_EXIT_FAILURE;
			goto out;
		}
		pos = 4;
		log_info("capture", "resuming from the start of %s (last durable change %llu:%llu)",
			 file, (unsigned long long) last_off, (unsigned long long) last_seq);
	} else if (cfg->no_snapshot) {
		if (!current_position(&dsn, &file, &pos, err, sizeof(err))) {
			rc = STEWARD_EXIT_UNAVAILABLE;
			goto out;
		}
		log_info("capture", "no snapshot: capturing changes after %s:%llu", file,
			 (unsigned long long) pos);
	} else {
		mysql_snapshot_label_t label = {NULL, last_off, last_seq + 1};
		char *label_file = NULL;
		if (have_last) {
			log_warn("capture", "the previous snapshot did not finish; taking it again");
			if (!(label_file = binlog_name(&dsn, last_file, err, sizeof(err)))) {
				rc = STEWARD_EXIT_FAILURE;
				goto out;
			}
			label.file = label_file;
		}
		rc = mysql_snapshot_run(&dsn, &src, w, have_last ? &label : NULL, &file, &pos, err,
					sizeof(err));
		free(label_file);
		if (rc != STEWARD_EXIT_OK)
			goto out;
	}
	/*
	 * On MariaDB the stream starts (and reconnects) by GTID, which names the
	 * same point on every server of the topology: the state at the start
	 * comes from the resume file or the server, plus what the log holds
	 * after it.  A deliberate replay goes by file and offset; the writer
	 * drops what it already has.
	 */
	if (!replay && !has_gtid &&
	    !gtid_state_at(&dsn, file, pos, &gtid, &has_gtid, err, sizeof(err))) {
		rc = STEWARD_EXIT_UNAVAILABLE;
		goto out;
	}
	if (!replay && has_gtid && have_last) {
		position_t after;
		position_mysql(&after, position_mysql_file_key(resumed ? res.epoch : 0,
							       mysql_binlog_file_no(file)),
			       pos, POSITION_PHASE_STREAM, UINT64_MAX);
		if (!gtid_fold_log(cfg->data_dir, &after, &gtid, err, sizeof(err))) {
			rc = STEWARD_EXIT_IOERR;
			goto out;
		}
	}
	/* a position read from the resume file is there already: no second write and sync */
	mysql_resume_t start = {file, pos, has_gtid && !replay, gtid, from.epoch};
	if (!resumed && !mysql_resume_save(cfg->data_dir, &start, err, sizeof(err))) {
		rc = STEWARD_EXIT_IOERR;
		goto out;
	}
	from.file = file;
	from.offset = pos;
	from.gtid = has_gtid && !replay ? &gtid : NULL;
	if (have_last && !replay)
		from.floor = last;
	mysql_stream_opts_t so = {
		.dsn = &dsn,
		.src = &src,
		.data_dir = cfg->data_dir,
		.server_id = server_id,
		.flush_interval_ms = cfg->status_interval_ms > 0 ? cfg->status_interval_ms : 1000,
		.endpos = cfg->endpos,
	};
	rc = mysql_stream_run(&so, w, &from, err, sizeof(err));
out:
	if (rc != STEWARD_EXIT_OK && rc != STEWARD_EXIT_CHECK_FAILED && err[0]) {
		if (dsn.password)
			redact_secret_in_place(err, dsn.password);
		log_error("capture", "%s", err);
	}
	clog_writer_close(w);
	free(file);
	mysql_dsn_clear(&dsn);
	return rc;
}
