#!/usr/bin/env bash
# The edges of a lost connection, against real servers:
#  (1) a transaction big enough to spill to disk is being read when the
#      server KILLs the binlog dump connection, and again when the server
#      restarts (after which the server numbers its table ids afresh, and
#      tables of another database get the ids captured tables had): the
#      transaction is read again from its start, every row is in the log
#      exactly once, no spill file is left (nor after a kill -9 mid-spill),
#      and the state rebuilt from the log equals SELECT *;
#  (2) DROP TABLE and RENAME TABLE of captured tables while the agent
#      streams: it keeps going, later rows land right, and it records what
#      docs/capture-mysql.md says (nothing for the DROP or the RENAME);
#  (3) binlog_row_metadata=MINIMAL: a connection cut inside a transaction
#      of many table maps, and ALTER TABLE ADD/DROP COLUMN made while the
#      agent is away with rows before and after them still to read: every
#      value lands on its column, or the agent stops with exit 65 and
#      appends nothing it could not name.
set -euo pipefail
source "$(dirname "$0")/lib/mysql_lib.sh"
mysql_setup mysql_reconnect_edge 33463
MET=33465

records() { "$STEWARD_BIN" log dump -d "$1" 2>/dev/null | wc -l; }
dump_pid() { sql -N -e "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'" 2>/dev/null || true; }
wait_dump() {  # wait for a binlog dump connection other than $1
  local id
  for _ in $(seq 1 200); do
    id=$(dump_pid)
    [[ -n $id && $id != "${1:-}" ]] && { echo "$id"; return 0; }
    sleep 0.1
  done
  fail "no binlog dump connection on the server: $(tail -5 "$WORK/capture.log")"
}
# wait until the agent's resume file names position $1 (FILE:OFFSET) or later
wait_resume() {
  local want_file=${1%:*} want_off=${1##*:} f o
  for _ in $(seq 1 300); do
    if read -r f o <"$WORK/log/mysql-resume" 2>/dev/null; then
      if [[ $f > $want_file || ( $f == "$want_file" && $o -ge $want_off ) ]]; then return 0; fi
    fi
    sleep 0.1
  done
  fail "agent did not reach $1 (resume file: $(cat "$WORK/log/mysql-resume" 2>/dev/null)): $(tail -5 "$WORK/capture.log")"
}
# count the inserts of each (table, id): none may appear twice
check_once() {
  "$STEWARD_BIN" log dump -d "$1" | python3 -c '
import collections, json, sys
ins = collections.Counter()
for line in sys.stdin:
    r = json.loads(line)
    if r["op"] in ("insert", "snapshot"):
        ins[(r["table"], r["after"]["id"])] += 1
dups = [k for k, n in ins.items() if n > 1]
assert not dups, f"inserted more than once: {dups[:5]}"
print(f"{sum(ins.values())} inserts, each once")
'
}

# Like compare_state, for a table whose columns changed: a row last written
# before an ADD COLUMN has no value for it (NULL in SELECT), and one written
# before a DROP COLUMN has a value SELECT no longer shows.  Every column
# SELECT shows must hold the value the log last gave it.
compare_columns() {  # DIR TABLE
  sql -B app -e "SELECT * FROM \`$2\`" >"$WORK/select_$2.tsv"
  "$STEWARD_BIN" log dump -d "$1" | python3 -c '
import json, sys
table, path = sys.argv[1], sys.argv[2]
state = {}
for line in sys.stdin:
    r = json.loads(line)
    if r["table"] != "app." + table:
        continue
    if r["op"] == "delete":
        state.pop(r["before"]["id"], None)
    else:
        state[r["after"]["id"]] = r["after"]
lines = open(path, encoding="utf-8").read().split("\n")
header = lines[0].split("\t")
want = sorted(l for l in lines[1:] if l)
got = sorted("\t".join("NULL" if img.get(c) is None else img[c] for c in header) for img in state.values())
bad = [l[:80] for l in set(want) ^ set(got)]
assert want == got, f"{table}: {len(got)} rebuilt rows vs {len(want)} selected; differing: {bad[:6]}"
print(f"table {table}: {len(got)} rows, every value on its column")
' "$2" "$WORK/select_$2.tsv"
}

sql app <<'SQL'
CREATE TABLE t (id int primary key, v int, note varchar(40));
CREATE TABLE big (id int primary key, label varchar(40), pad char(200));
INSERT INTO t SELECT seq, 0, 'seed' FROM seq_1_to_100;
CREATE DATABASE other;
SQL
# tables the agent does not capture, of another shape than the captured ones
for i in $(seq 1 40); do echo "CREATE TABLE other.o$i (a varchar(7) primary key, b double, c date);"; done | sql
capture_bg --data-dir "$WORK/log" --status-interval 200 --metrics-listen "127.0.0.1:$MET" 2>"$WORK/capture.log"
first=$(wait_dump)
wait_resume "$(end_pos)"

# ---- (1) the connection is lost while a spilling transaction is read ----
N=120000   # ~30 MB of rows events: the transaction spills past its first 16 MB
big_base=0
# $1: "kill" (the server KILLs the dump connection) or "restart" (the server stops and starts)
cut_mid_spill() {
  local how=$1 attempt pos0 dump size lost
  for attempt in 1 2 3; do
    pos0=$(end_pos)
    wait_resume "$pos0"
    dump=$(wait_dump)
    # written while the agent is stopped, so it is all in the binlog when it reads on
    kill -STOP "$CAPTURE_PID"
    sql app -e "INSERT INTO big SELECT $big_base + seq, CONCAT('row ', seq), REPEAT('p', 200) FROM seq_1_to_$N"
    big_base=$((big_base + N))
    kill -CONT "$CAPTURE_PID"
    for _ in $(seq 1 3000); do [[ -e $WORK/log/mysql-txn.spill ]] && break; sleep 0.005; done
    kill -STOP "$CAPTURE_PID"
    size=$(stat -c %s "$WORK/log/mysql-txn.spill" 2>/dev/null || echo 0)
    if [[ $how == kill ]]; then
      sql -e "KILL $dump"
    else
      server_stop
      server_start
    fi
    kill -CONT "$CAPTURE_PID"
    wait_dump "$dump" >/dev/null
    wait_resume "$(end_pos)"
    lost=$(grep "lost binlog connection" "$WORK/capture.log" | tail -1 || true)
    echo "$how, attempt $attempt: spill file at $size bytes when cut; $lost"
    # the cut came before the transaction's end: the agent had to go back to its start
    if [[ $size -gt 0 && $lost == *"at $pos0:"* ]]; then return 0; fi
  done
  fail "could not cut the connection inside the spilling transaction ($how)"
}
cut_mid_spill kill
sql app -e "INSERT INTO t VALUES (1001, 1, 'between cuts'); UPDATE t SET v = v + 1 WHERE id <= 10"
cut_mid_spill restart

# after the restart the server numbers table ids afresh: other.oN take ids
# that captured tables had before it; their rows are not the captured tables'
for i in $(seq 1 40); do echo "INSERT INTO other.o$i VALUES ('x$i', $i.5, '2024-01-0$((i % 9 + 1))');"; done | sql
sql app -e "INSERT INTO t VALUES (1002, 2, 'after restart'); UPDATE big SET label = 'updated' WHERE id <= 5"
wait_resume "$(end_pos)"
kill -0 "$CAPTURE_PID" || fail "capture exited: $(tail -5 "$WORK/capture.log")"
[[ ! -e $WORK/log/mysql-txn.spill ]] || fail "spill file of the abandoned attempt left behind"

# kill -9 in the middle of a spill leaves the file; the next start removes it
# even when it has nothing to read again (--endpos at the resume point)
pos0=$(end_pos)
wait_resume "$pos0"
kill -STOP "$CAPTURE_PID"
sql app -e "INSERT INTO big SELECT $big_base + seq, CONCAT('row ', seq), REPEAT('k', 200) FROM seq_1_to_$N"
big_base=$((big_base + N))
kill -CONT "$CAPTURE_PID"
for _ in $(seq 1 3000); do [[ -e $WORK/log/mysql-txn.spill ]] && break; sleep 0.005; done
kill -9 "$CAPTURE_PID"; wait "$CAPTURE_PID" 2>/dev/null || true
[[ -e $WORK/log/mysql-txn.spill ]] || fail "killed the agent, but not while it spilled"
capture --data-dir "$WORK/log" --endpos "$pos0" 2>>"$WORK/capture.log" || fail "restart to $pos0"
[[ ! -e $WORK/log/mysql-txn.spill ]] || fail "a spill file left by a killed agent survived a restart"
capture_bg --data-dir "$WORK/log" --status-interval 200 2>>"$WORK/capture.log"
wait_resume "$(end_pos)"
[[ ! -e $WORK/log/mysql-txn.spill ]] || fail "spill file left behind"
sql -N -e "SHOW BINLOG EVENTS IN '$(sql -N -e 'SHOW MASTER STATUS' | awk '{print $1}')'" |
  grep -o 'table_id: [0-9]* ([a-z0-9_.]*)' | sort -u | tr '\n' ' ' >"$WORK/ids-after.txt"
echo "table ids after the restart: $(cat "$WORK/ids-after.txt")"
compare_state "$WORK/log" app
check_once "$WORK/log"
[[ $(sql -N app -e "SELECT COUNT(*) FROM big") -eq $big_base ]] || fail "big has the wrong row count"

# ---- (2) DROP TABLE and RENAME TABLE while streaming ----
sql app <<'SQL'
CREATE TABLE gone (id int primary key, v varchar(10));
CREATE TABLE moved (id int primary key, v varchar(10), n int);
INSERT INTO gone VALUES (1, 'g1'), (2, 'g2');
INSERT INTO moved VALUES (1, 'm1', 10), (2, 'm2', 20);
DROP TABLE gone;
RENAME TABLE moved TO moved2;
INSERT INTO moved2 VALUES (3, 'm3', 30);
UPDATE moved2 SET n = n + 1 WHERE id = 1;
CREATE TABLE gone (id int primary key, w date, v varchar(10), x int);
INSERT INTO gone VALUES (1, '2024-05-06', 'new g1', 7);
BEGIN;
INSERT INTO t VALUES (1003, 3, 'after ddl');
INSERT INTO moved2 VALUES (4, 'm4', 40);
COMMIT;
DROP TABLE moved2;
INSERT INTO t VALUES (1004, 4, 'last');
SQL
wait_resume "$(end_pos)"
kill -0 "$CAPTURE_PID" || fail "capture exited after DROP/RENAME: $(tail -5 "$WORK/capture.log")"
"$STEWARD_BIN" log dump -d "$WORK/log" | python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin]
def rows(table):
    return [(r["op"], r["before"], r["after"]) for r in recs if r["table"] == table and r["op"] != "snapshot"]
assert rows("app.gone") == [
    ("insert", None, {"id": "1", "v": "g1"}),
    ("insert", None, {"id": "2", "v": "g2"}),
    ("insert", None, {"id": "1", "w": "2024-05-06", "v": "new g1", "x": "7"}),
], rows("app.gone")
assert rows("app.moved") == [
    ("insert", None, {"id": "1", "v": "m1", "n": "10"}),
    ("insert", None, {"id": "2", "v": "m2", "n": "20"}),
], rows("app.moved")
assert rows("app.moved2") == [
    ("insert", None, {"id": "3", "v": "m3", "n": "30"}),
    ("update", {"id": "1", "v": "m1", "n": "10"}, {"id": "1", "v": "m1", "n": "11"}),
    ("insert", None, {"id": "4", "v": "m4", "n": "40"}),
], rows("app.moved2")
assert [r["after"]["note"] for r in recs if r["table"] == "app.t" and r["op"] == "insert"][-2:] == ["after ddl", "last"]
# neither DROP nor RENAME is a record (docs/capture-mysql.md)
assert not [r for r in recs if r["op"] not in ("snapshot", "insert", "update", "delete")], "unexpected record kinds"
print("DROP/RENAME: rows under the names they were written under, later rows right")
'
kill -TERM "$CAPTURE_PID"; wait "$CAPTURE_PID" || fail "capture did not stop cleanly: $(tail -5 "$WORK/capture.log")"
n=$(grep -c "reconnecting in" "$WORK/capture.log" || true)
[[ $n -ge 2 ]] || fail "want a reconnect warning for each loss, got $n"
server_stop

# ---- (3) binlog_row_metadata=MINIMAL ----
rm -rf "$WORK"
mysql_setup mysql_reconnect_edge_minimal 33464 binlog_row_metadata=MINIMAL
[[ $(sql -N -e "SELECT @@binlog_row_metadata") == MINIMAL ]] || fail "server not started with MINIMAL metadata"
sql app <<'SQL'
CREATE TABLE a (id int primary key, x int, y int, s varchar(4000));
CREATE TABLE b (id int primary key, y int, x int);
INSERT INTO a VALUES (1, 10, 100, 'one');
INSERT INTO b VALUES (1, 11, 111);
SQL
capture_bg --data-dir "$WORK/log" --status-interval 200 2>"$WORK/capture.log"
dump=$(wait_dump)
wait_resume "$(end_pos)"

# (3a) one transaction of 20,000 statements, a table map before each: cut it
many() {  # $1: first id
  echo "BEGIN;"
  for ((i = $1; i < $1 + 20000; i += 2)); do
    echo "INSERT INTO a VALUES ($i, $i, -$i, REPEAT('a', 3000)); INSERT INTO b VALUES ($((i + 1)), -$i, $i);"
  done
  echo "COMMIT;"
}
for attempt in 1 2 3; do
  pos0=$(end_pos)
  kill -STOP "$CAPTURE_PID"
  many $((attempt * 100000)) | sql app
  kill -CONT "$CAPTURE_PID"
  # ~30 MB: once it spills the agent is past the first half of the maps
  for _ in $(seq 1 3000); do [[ -e $WORK/log/mysql-txn.spill ]] && break; sleep 0.005; done
  kill -STOP "$CAPTURE_PID"
  sql -e "KILL $dump"
  kill -CONT "$CAPTURE_PID"
  dump=$(wait_dump "$dump")
  wait_resume "$(end_pos)"
  lost=$(grep "lost binlog connection" "$WORK/capture.log" | tail -1 || true)
  echo "MINIMAL, cut $attempt: $lost"
  [[ $lost == *"at $pos0:"* ]] && break
  [[ $attempt == 3 ]] && fail "could not cut the connection inside the transaction"
done
kill -0 "$CAPTURE_PID" || fail "capture exited: $(tail -5 "$WORK/capture.log")"
compare_state "$WORK/log" app
check_once "$WORK/log"

# (3b) the agent is away (server down, then its reconnect held back) while
# rows, an ADD COLUMN, more rows, a DROP COLUMN and more rows are written
server_stop
sleep 4   # the agent's reconnect back-off grows past the writes below
server_start
sql app <<'SQL'
INSERT INTO a VALUES (40001, 1, 2, 'before add');
ALTER TABLE a ADD COLUMN z int AFTER id;
INSERT INTO a VALUES (40002, 3, 4, 5, 'after add');
UPDATE a SET y = 6 WHERE id = 40001;
SQL
wait_dump >/dev/null
wait_resume "$(end_pos)"
kill -0 "$CAPTURE_PID" || fail "capture exited: $(tail -5 "$WORK/capture.log")"
compare_columns "$WORK/log" a
compare_columns "$WORK/log" b
check_once "$WORK/log"

server_stop
sleep 4
server_start
sql app <<'SQL'
INSERT INTO a VALUES (40003, 7, 8, 9, 'before drop');
ALTER TABLE a DROP COLUMN x;
INSERT INTO a VALUES (40004, 10, 11, 'after drop');
UPDATE a SET s = 'updated' WHERE id = 40003;
SQL
wait_dump >/dev/null
wait_resume "$(end_pos)"
kill -0 "$CAPTURE_PID" || fail "capture exited: $(tail -5 "$WORK/capture.log")"
compare_columns "$WORK/log" a
check_once "$WORK/log"
kill -TERM "$CAPTURE_PID"; wait "$CAPTURE_PID" || fail "capture did not stop cleanly: $(tail -5 "$WORK/capture.log")"

# (3c) the same with the agent process stopped: it has not seen this table's
# map since before the DROP, so the catalog is all it has, and the catalog
# no longer has the column the first row carries: it must stop, not guess
n0=$(records "$WORK/log")
sql app <<'SQL'
INSERT INTO a VALUES (40005, 12, 13, 'before drop 2');
ALTER TABLE a DROP COLUMN z;
INSERT INTO a VALUES (40006, 14, 'after drop 2');
SQL
rc=0
capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>"$WORK/capture2.log" || rc=$?
tail -2 "$WORK/capture2.log"
[[ $rc -eq 65 ]] || fail "rows written before a DROP COLUMN and read after it: exit $rc, want 65"
grep -q 'app.a' "$WORK/capture2.log" || fail "the message does not name the table"
grep -q "binlog_row_metadata=FULL" "$WORK/capture2.log" || fail "the message does not name the fix"
[[ $(records "$WORK/log") -eq $n0 ]] || fail "appended records with columns it could not know"
[[ ! -e $WORK/log/mysql-txn.spill ]] || fail "spill file left behind"
echo "mysql_reconnect_edge: ok"
