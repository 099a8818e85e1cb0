#!/usr/bin/env bash
# The binlog the agent would resume from was purged while it was stopped
# (FLUSH BINARY LOGS, PURGE BINARY LOGS): the restart stops with exit 1 and
# a message naming the position and the fix (a new snapshot), acknowledges
# nothing (change log and resume file untouched) — with and without the
# resume file — and a new snapshot in an empty data directory then matches
# SELECT *.
set -euo pipefail
source "$(dirname "$0")/lib/mysql_lib.sh"
mysql_setup mysql_purged 33473

sql app -e "CREATE TABLE t (id int primary key, v int); INSERT INTO t SELECT seq, seq FROM seq_1_to_20"
capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>"$WORK/c1.log" || { cat "$WORK/c1.log"; fail "first run"; }
sql app -e "UPDATE t SET v = -v WHERE id <= 5"
capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>>"$WORK/c1.log" || { cat "$WORK/c1.log"; fail "second run"; }
resume_file=$(cat "$WORK/log/mysql-resume")
resume=$(head -1 "$WORK/log/mysql-resume")  # FILE OFFSET (then the GTID state)
n0=$("$STEWARD_BIN" log dump -d "$WORK/log" | wc -l)
echo "stopped at $resume with $n0 records"

# while the agent is stopped: changes, then their binlog goes away
sql app -e "INSERT INTO t VALUES (21, 21); DELETE FROM t WHERE id = 1"
sql -e "FLUSH BINARY LOGS"
last=$(sql -N -e "SHOW MASTER STATUS" | cut -f1)
# The server keeps a file an earlier agent's dump thread still reads (that
# thread may outlive its client for a moment): purge until the file is gone.
for _ in $(seq 1 100); do
  sql -e "PURGE BINARY LOGS TO '$last'"
  sql -N -e "SHOW BINARY LOGS" | cut -f1 | grep -qx "${resume% *}" || break
  sleep 0.2
done
if sql -N -e "SHOW BINARY LOGS" | cut -f1 | grep -qx "${resume% *}"; then
  fail "the server did not purge ${resume% *}"
fi
sql app -e "UPDATE t SET v = 0 WHERE id = 2"

rc=0; capture --data-dir "$WORK/log" --endpos "$(end_pos)" >"$WORK/purged.out" 2>&1 || rc=$?
cat "$WORK/purged.out"
[[ $rc -eq 1 ]] || fail "resume from a purged binlog: exit $rc, want 1"
file=${resume% *} off=${resume#* }
gtid=$(sed -n 's/^gtid //p' "$WORK/log/mysql-resume")
[[ -n $gtid ]] || fail "no GTID state in the resume file"
# MariaDB: the dump starts by GTID, and the server finds no binlog that holds it
grep -q "binlog position GTID $gtid ($file:$off) is not on this server" "$WORK/purged.out" || fail "the message does not name the position $gtid ($file:$off)"
grep -q "purged" "$WORK/purged.out" || fail "the message does not mention the purge"
grep -q "empty --data-dir" "$WORK/purged.out" || fail "the message does not say what to do"
[[ $(cat "$WORK/log/mysql-resume") == "$resume_file" ]] || fail "resume file moved to $(cat "$WORK/log/mysql-resume")"
[[ $("$STEWARD_BIN" log dump -d "$WORK/log" | wc -l) -eq $n0 ]] || fail "records appended after the purged position"

# without the resume file the agent falls back to the last record's binlog file: also gone
rm "$WORK/log/mysql-resume"
rc=0; capture --data-dir "$WORK/log" --endpos "$(end_pos)" >"$WORK/purged2.out" 2>&1 || rc=$?
cat "$WORK/purged2.out"
[[ $rc -eq 1 ]] || fail "no resume file, purged binlog: exit $rc, want 1"
grep -q "no longer on the server (purged)" "$WORK/purged2.out" || fail "no purge message without the resume file"
grep -q "empty --data-dir" "$WORK/purged2.out" || fail "the message does not say what to do"
[[ $("$STEWARD_BIN" log dump -d "$WORK/log" | wc -l) -eq $n0 ]] || fail "records appended after the purged position"

# the way out: a new snapshot
capture --data-dir "$WORK/fresh" --endpos "$(end_pos)" 2>"$WORK/c3.log" || { cat "$WORK/c3.log"; fail "new snapshot"; }
compare_state "$WORK/fresh" app
echo "mysql_purged: ok"
