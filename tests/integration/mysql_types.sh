#!/usr/bin/env bash
# Every common MySQL type, snapshot and stream, all DML, multi-row and
# compressed rows events: the state rebuilt from the change log equals
# SELECT * as the mariadb client prints it.
set -euo pipefail
source "$(dirname "$0")/lib/mysql_lib.sh"
mysql_setup mysql_types 33400

FIXTURE="$STEWARD_SOURCE_DIR/tests/unit/data/mysql/types.sql"
sql app -e "$(grep '^CREATE TABLE' "$FIXTURE")"
sql app <<'SQL'
CREATE TABLE latin (id int primary key, name varchar(40), note text) CHARACTER SET latin1;
CREATE TABLE nopk (a int, b varchar(10));
CREATE TABLE multi (k1 int, k2 varchar(10), v double, primary key (k2, k1));
CREATE TABLE big (id int primary key, body longtext);
INSERT INTO latin VALUES (1, 'café €', 'naïve ½');
INSERT INTO nopk VALUES (1, 'x'), (2, NULL);
INSERT INTO multi VALUES (1, 'a', 1e-7), (2, 'a', 123456789.125);
SQL
# rows 1-3 of the fixture before the snapshot
sql app -e "$(sed -n '/^INSERT/,/^UPDATE/p' "$FIXTURE" | grep -v '^UPDATE')"

capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>"$WORK/capture1.log" || { cat "$WORK/capture1.log"; fail "snapshot run"; }
grep -q 'snapshot of \\"app.types\\" done: 3 rows' "$WORK/capture1.log" || fail "no snapshot progress line"

# streamed changes: every type again, updates, deletes, multi-row events
sql app <<'SQL'
INSERT INTO types SELECT id + 10, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d1, d2, d3, d4, f, dbl, b, dt, t0, t3, t6, dtm, dtm6, ts, y, c, vc, tx, l1, bn, vb, bl, e, s, j, g, pt FROM types;
UPDATE types SET vc = CONCAT(vc, ' ✓'), d2 = -d2, t6 = '-00:00:00.000001', f = -f, dbl = 1e15 WHERE id IN (1, 11);
UPDATE types SET ti = NULL, j = '{"k": "v"}', bn = 'zz' WHERE id = 12;
DELETE FROM types WHERE id = 13;
INSERT INTO types (id, d1, d2, dbl, f, dtm6, t3, ts) VALUES
  (20, 0.5, 0.000000000000000000000000000001, 5e-324, 1e-30, '2024-01-01 00:00:00.000001', '838:59:59.999', '2000-02-29 12:00:00.001'),
  (21, -0.5, 99999999999999999999999999999999999.999999999999999999999999999999, 2.5, 16777217, '1000-01-01 00:00:00', '-838:59:59.000', NULL);
INSERT INTO latin VALUES (2, 'Ÿ‰ – „quote“', NULL);
UPDATE latin SET name = 'über' WHERE id = 1;
INSERT INTO nopk VALUES (3, 'y');
DELETE FROM nopk WHERE a = 1;
UPDATE multi SET v = -0.0001 WHERE k1 = 2;
INSERT INTO multi SELECT seq, 'b', seq / 7 FROM seq_1_to_200;
BEGIN; UPDATE multi SET v = v * 2 WHERE k2 = 'b'; DELETE FROM multi WHERE k2 = 'b' AND k1 > 150; COMMIT;
-- rows too large to join their batch's run of rows: each starts a new batch
INSERT INTO big VALUES (1, 'a'), (2, 'b'), (3, REPEAT('x', 100000)), (4, 'd'), (5, REPEAT('y', 70000));
UPDATE big SET body = CONCAT(body, '!');
DELETE FROM big WHERE id IN (2, 3);
SET GLOBAL log_bin_compress = ON;
SET GLOBAL log_bin_compress_min_len = 10;
SQL
# a new session sees the compression setting
sql app <<'SQL'
INSERT INTO multi SELECT seq, 'c', seq * 1.5 FROM seq_1_to_50;
UPDATE multi SET v = v + 1 WHERE k2 = 'c';
DELETE FROM multi WHERE k2 = 'c' AND k1 < 10;
UPDATE types SET vc = 'compressed row', tx = REPEAT('long text ', 50) WHERE id = 14;
SQL
sql -e "SET GLOBAL log_bin_compress = OFF"

capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>"$WORK/capture2.log" || { cat "$WORK/capture2.log"; fail "stream run"; }
compare_state "$WORK/log" app

# every streamed record carries the MariaDB GTID and a file:offset:seq position
"$STEWARD_BIN" log dump -d "$WORK/log" | python3 -c '
import json, re, sys
n = 0
for line in sys.stdin:
    r = json.loads(line)
    if r["op"] == "snapshot":
        assert r["pos"].startswith("snapshot:mysql-bin."), r["pos"]
        continue
    n += 1
    assert re.fullmatch(r"\d+-\d+-\d+", r["txid"]), r["txid"]
    assert re.fullmatch(r"mysql-bin\.\d{6}:\d+:\d+", r["pos"]), r["pos"]
assert n > 500, n
print(f"{n} streamed records with GTIDs")
'
echo "mysql_types: ok"
