/*
 * mysql_snapshot.c — the consistent initial snapshot of a MySQL/MariaDB
 * source; see mysql_capture.h.
 *
 * MariaDB: START TRANSACTION WITH CONSISTENT SNAPSHOT, then the binlog
 * position of that read view from SHOW STATUS LIKE 'binlog_snapshot_%'
 * (no global lock).  MySQL: the same transaction opened under a brief
 * FLUSH TABLES WITH READ LOCK, with SHOW MASTER STATUS read inside it.
 * Rows arrive in the server's own text form (time_zone '+00:00'); binary
 * columns are rewritten to the stream's "0x…" form so a row reads the same
 * whichever path brought it.
 */
#include "mysql_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture_metrics.h"
#include "exitcodes.h"
#include "log.h"
#include "xalloc.h"

#define PROGRESS_ROWS 100000

typedef struct snap_col {
	char *name, *column_type;
	uint32_t type_id;
	bool hex;
} snap_col_t;

static const struct {
	const char *data_type;
	uint32_t type_id;
	bool hex;
} type_map[] = {
	{"tinyint", 1, false}, {"smallint", 2, false}, {"mediumint", 9, false}, {"int", 3, false},
	{"bigint", 8, false}, {"decimal", 246, false}, {"float", 4, false}, {"double", 5, false},
	{"bit", 16, true}, {"date", 10, false}, {"time", 19, false}, {"datetime", 18, false},
	{"timestamp", 17, false}, {"year", 13, false}, {"char", 254, false}, {"varchar", 15, false},
	{"binary", 254, true}, {"varbinary", 15, true}, {"tinytext", 252, false},
	{"text", 252, false}, {"mediumtext", 252, false}, {"longtext", 252, false},
	{"tinyblob", 252, true}, {"blob", 252, true}, {"mediumblob", 252, true},
	{"longblob", 252, true}, {"enum", 247, false}, {"set", 248, false}, {"json", 245, false},
	{"geometry", 255, true}, {"point", 255, true}, {"linestring", 255, true},
	{"polygon", 255, true}, {"multipoint", 255, true}, {"multilinestring", 255, true},
	{"multipolygon", 255, true}, {"geometrycollection", 255, true},
};

static void
cols_free(snap_col_t *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].name);
		free(c[i].column_type);
	}
	free(c);
}

/* Columns (ordinal order) and primary key of one table. */
static bool
load_columns(MYSQL *m, const char *schema, const char *table, snap_col_t **cols, size_t *ncols,
	     char ***key, size_t *nkey, char *err, size_t errlen)
{
	char es[600], et[600], sql[1600];
	mysql_real_escape_string(m, es, schema, (unsigned long) strlen(schema));
	mysql_real_escape_string(m, et, table, (unsigned long) strlen(table));
	*cols = NULL;
	*ncols = 0;
	*key = NULL;
	*nkey = 0;
	snprintf(sql, sizeof(sql),
		 "SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE FROM information_schema.COLUMNS "
		 "WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION", es, et);
	if (mysql_query(m, sql) != 0) {
		snprintf(err, errlen, "could not read columns of \"%s.%s\": %s", schema, table, mysql_error(m));
		return false;
	}
	MYSQL_RES *r = mysql_store_result(m);
	if (!r) {
		snprintf(err, errlen, "could not read columns of \"%s.%s\": %s", schema, table, mysql_error(m));
		return false;
	}
	size_t n = (size_t) mysql_num_rows(r);
	*cols = xcalloc(n ? n : 1, sizeof(snap_col_t));
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL && *ncols < n) {
		snap_col_t *c = &(*cols)[(*ncols)++];
		c->name = xstrdup(row[0] ? row[0] : "");
		c->column_type = xstrdup(row[1] ? row[1] : "");
		for (size_t i = 0; row[2] && i < sizeof(type_map) / sizeof(type_map[0]); i++)
			if (!strcmp(row[2], type_map[i].data_type)) {
				c->type_id = type_map[i].type_id;
				c->hex = type_map[i].hex;
			}
	}
	mysql_free_result(r);
	snprintf(sql, sizeof(sql),
		 "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = '%s' "
		 "AND TABLE_NAME = '%s' AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX", es, et);
	if (mysql_query(m, sql) != 0 || !(r = mysql_store_result(m))) {
		snprintf(err, errlen, "could not read primary key of \"%s.%s\": %s", schema, table,
			 mysql_error(m));
		return false;
	}
	*key = xcalloc((size_t) mysql_num_rows(r) + 1, sizeof(char *));
	while ((row = mysql_fetch_row(r)) != NULL)
		(*key)[(*nkey)++] = xstrdup(row[0] ? row[0] : "");
	mysql_free_result(r);
	return true;
}

static void
append_hex(buf_t *b, const char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	buf_append_str(b, "0x");
	for (size_t i = 0; i < n; i++) {
		char h[2] = {hex[(uint8_t) p[i] >> 4], hex[(uint8_t) p[i] & 15]};
		buf_append(b, h, 2);
	}
}

/* `name` with embedded backquotes doubled. */
static void
append_ident(buf_t *b, const char *name)
{
	buf_append_char(b, '`');
	for (const char *p = name; *p; p++) {
		if (*p == '`')
			buf_append_char(b, '`');
		buf_append_char(b, *p);
	}
	buf_append_char(b, '`');
}

typedef struct snap {
	MYSQL *m;
	clog_writer_t *w;
	const mysql_source_t *src;
	const char *file;
	uint64_t file_no, pos;
	uint64_t seq;
	int64_t ts_us;
	arena_t *arena;
} snap_t;

static int
snapshot_table(snap_t *s, const char *schema, const char *table, char *err, size_t errlen)
{
	int rc = STEWARD_EXIT_FAILURE;
	snap_col_t *cols = NULL;
	size_t ncols = 0, nkey = 0;
	char **key = NULL;
	MYSQL_RES *r = NULL;
	buf_t text = BUF_INIT;
	uint64_t rows = 0;
	if (!load_columns(s->m, schema, table, &cols, &ncols, &key, &nkey, err, errlen))
		goto out;
	buf_t sql = BUF_INIT;
	buf_append_str(&sql, "SELECT * FROM ");
	append_ident(&sql, schema);
	buf_append_char(&sql, '.');
	append_ident(&sql, table);
	int q = mysql_query(s->m, sql.data);
	buf_free(&sql);
	if (q != 0 || !(r = mysql_use_result(s->m))) {
		snprintf(err, errlen, "could not read table \"%s.%s\": %s", schema, table, mysql_error(s->m));
		goto out;
	}
	if (mysql_num_fields(r) != ncols) {
		snprintf(err, errlen, "table \"%s.%s\" has %u columns but the catalog lists %zu",
			 schema, table, mysql_num_fields(r), ncols);
		goto out;
	}
	log_info("capture", "snapshot of \"%s.%s\" started", schema, table);
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL) {
		unsigned long *lens = mysql_fetch_lengths(r);
		Steward__Change ch = STEWARD__CHANGE__INIT;
		position_t pos;
		char ptext[700];
		position_mysql(&pos, s->file_no, s->pos, POSITION_PHASE_SNAPSHOT, s->seq);
		mysql_position_text(s->file, s->pos, POSITION_PHASE_SNAPSHOT, s->seq, ptext, sizeof(ptext));
		ch.has_version = true;
		ch.version = 1;
		ch.source = (char *) s->src->source_name;
		ch.has_source_kind = true;
		ch.source_kind = STEWARD__SOURCE_KIND__SOURCE_KIND_MYSQL;
		ch.database = (char *) schema;
		ch.schema = (char *) schema;
		ch.table = (char *) table;
		ch.has_op = true;
		ch.op = STEWARD__OP__OP_SNAPSHOT_READ;
		ch.txid = "";
		ch.has_commit_ts_us = true;
		ch.commit_ts_us = s->ts_us;
		ch.has_position = true;
		ch.position.len = pos.len;
		ch.position.data = pos.bytes;
		ch.position_text = ptext;
		ch.has_seq = true;
		ch.seq = (uint32_t) s->seq;
		ch.key = key;
		ch.n_key = nkey;
		ch.after = arena_alloc(s->arena, ncols * sizeof(Steward__Value *));
		ch.n_after = ncols;
		for (size_t i = 0; i < ncols; i++) {
			Steward__Value *v = arena_alloc(s->arena, sizeof(*v));
			steward__value__init(v);
			v->name = cols[i].name;
			v->has_type_id = true;
			v->type_id = cols[i].type_id;
			v->type_name = cols[i].column_type;
			if (!row[i]) {
				v->has_is_null = true;
				v->is_null = true;
			} else if (cols[i].hex) {
				buf_reset(&text);
				append_hex(&text, row[i], lens[i]);
				v->text = arena_strndup(s->arena, text.data, text.len);
			} else {
				v->text = row[i];
			}
			ch.after[i] = v;
		}
		clog_status_t cs = clog_writer_append(s->w, &ch, err, errlen);
		if (cs == CLOG_OK)
			capture_metrics_on_append(&ch);
		arena_reset(s->arena);
		s->seq++;
		if (cs != CLOG_OK && cs != CLOG_DUPLICATE) {
			rc = STEWARD_EXIT_IOERR;
			goto out;
		}
		if (++rows % PROGRESS_ROWS == 0)
			log_info("capture", "snapshot of \"%s.%s\": %llu rows", schema, table,
				 (unsigned long long) rows);
	}
	if (mysql_errno(s->m)) {
		snprintf(err, errlen, "could not read table \"%s.%s\": %s", schema, table, mysql_error(s->m));
		goto out;
	}
	log_info("capture", "snapshot of \"%s.%s\" done: %llu rows", schema, table,
		 (unsigned long long) rows);
	rc = STEWARD_EXIT_OK;
out:
	mysql_free_result(r);
	buf_free(&text);
	cols_free(cols, ncols);
	for (size_t i = 0; i < nkey; i++)
		free(key[i]);
	free(key);
	return rc;
}

/* Binlog file and offset of the read view just opened. */
static bool
read_view_position(MYSQL *m, bool mariadb, char **file, uint64_t *pos, char *err, size_t errlen)
{
	const char *sql = mariadb ? "SHOW STATUS LIKE 'binlog_snapshot_%'" : "SHOW MASTER STATUS";
	if (mysql_query(m, sql) != 0) {
		snprintf(err, errlen, "could not run \"%s\": %s", sql, mysql_error(m));
		return false;
	}
	MYSQL_RES *r = mysql_store_result(m);
	MYSQL_ROW row;
	*file = NULL;
	while (r && (row = mysql_fetch_row(r)) != NULL) {
		if (!mariadb) {
			if (row[0] && row[1]) {
				*file = xstrdup(row[0]);
				*pos = strtoull(row[1], NULL, 10);
			}
		} else if (row[0] && row[1] && !strcmp(row[0], "Binlog_snapshot_file")) {
			free(*file);
			*file = xstrdup(row[1]);
		} else if (row[0] && row[1] && !strcmp(row[0], "Binlog_snapshot_position")) {
			*pos = strtoull(row[1], NULL, 10);
		}
	}
	mysql_free_result(r);
	if (!*file || !**file) {
		free(*file);
		*file = NULL;
		snprintf(err, errlen, "could not read the binlog position of the snapshot: binary "
			 "logging is off on the server (set log_bin)");
		return false;
	}
	return true;
}

int
mysql_snapshot_run(const mysql_dsn_t *d, const mysql_source_t *src, clog_writer_t *w,
		   const mysql_snapshot_label_t *label, char **file, uint64_t *pos,
		   char *err, size_t errlen)
{
	int rc = STEWARD_EXIT_FAILURE;
	snap_t s = {.w = w, .src = src};
	MYSQL_RES *r = NULL;
	char **tables = NULL;
	size_t ntables = 0;
	*file = NULL;
	if (!(s.m = mysql_conn_open(d, 0, err, errlen)))
		return STEWARD_EXIT_UNAVAILABLE;
	bool mariadb = mysql_conn_is_mariadb(s.m);
	if (!mysql_conn_exec(s.m, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", err, errlen))
		goto out;
	if (!mariadb && !mysql_conn_exec(s.m, "FLUSH TABLES WITH READ LOCK", err, errlen))
		goto out;
	if (!mysql_conn_exec(s.m, "START TRANSACTION WITH CONSISTENT SNAPSHOT", err, errlen) ||
	    !read_view_position(s.m, mariadb, file, pos, err, errlen))
		goto out;
	if (!mariadb && !mysql_conn_exec(s.m, "UNLOCK TABLES", err, errlen))
		goto out;
	if (label) {
		log_info("capture", "read view at %s:%llu; records continue the interrupted snapshot "
			 "at %s:%llu", *file, (unsigned long long) *pos, label->file,
			 (unsigned long long) label->pos);
		free(*file);
		*file = xstrdup(label->file);
		*pos = label->pos;
		s.seq = label->seq;
	}
	s.file = *file;
	s.file_no = mysql_binlog_file_no(*file);
	s.pos = *pos;
	s.ts_us = (int64_t) time(NULL) * 1000000;
	s.arena = arena_create(64 * 1024);
	log_info("capture", "snapshot at binlog position %s:%llu", *file, (unsigned long long) *pos);
	if (mysql_query(s.m, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
			     "WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME") != 0 ||
	    !(r = mysql_store_result(s.m))) {
		snprintf(err, errlen, "could not list tables: %s", mysql_error(s.m));
		goto out;
	}
	MYSQL_ROW row;
	tables = xcalloc((size_t) mysql_num_rows(r) * 2 + 2, sizeof(char *));
	while ((row = mysql_fetch_row(r)) != NULL)
		if (row[0] && row[1] && mysql_source_wants(src, row[0], row[1])) {
			tables[2 * ntables] = xstrdup(row[0]);
			tables[2 * ntables + 1] = xstrdup(row[1]);
			ntables++;
		}
	mysql_free_result(r);
	r = NULL;
	for (size_t i = 0; i < ntables && !mysql_capture_stop; i++) {
		rc = snapshot_table(&s, tables[2 * i], tables[2 * i + 1], err, errlen);
		if (rc != STEWARD_EXIT_OK)
			goto out;
	}
	if (mysql_capture_stop) {
		snprintf(err, errlen, "snapshot interrupted");
		rc = STEWARD_EXIT_FAILURE;
		goto out;
	}
	(void) mysql_conn_exec(s.m, "COMMIT", err, errlen);
	if (clog_writer_flush(w, err, errlen) != CLOG_OK) {
		rc = STEWARD_EXIT_IOERR;
		goto out;
	}
	log_info("capture", "snapshot done: %zu tables, %llu rows", ntables, (unsigned long long) s.seq);
	rc = STEWARD_EXIT_OK;
out:
	mysql_free_result(r);
	for (size_t i = 0; i < 2 * ntables; i++)
		free(tables[i]);
	free(tables);
	arena_destroy(s.arena);
	mysql_close(s.m);
	if (rc != STEWARD_EXIT_OK) {
		free(*file);
		*file = NULL;
	}
	return rc;
}
