#!/usr/bin/env bash
# Following a failover by GTID.  The agent captures from a primary; the
# primary fails and its replica (GTID replication, log_slave_updates) is
# promoted; the agent, pointed at the replica, resumes after the last
# captured GTID.  Every change arrives exactly once — including changes
# that were durable in the log after the resume file was last written —
# and positions keep increasing although the replica's binlog coordinates
# sort before the primary's (a new epoch).  The old primary, which lacks
# the transactions written on the promoted replica, is refused.
set -euo pipefail
source "$(dirname "$0")/lib/mysql_lib.sh"
mysql_setup mysql_failover 33481 log_slave_updates=ON
RSRV="$WORK/replica"; RPORT=33482
trap 'rc=$?; bash "$SERVER_SH" stop "$RSRV" >/dev/null 2>&1 || true; (exit $rc); mysql_cleanup' EXIT
bash "$SERVER_SH" start "$RSRV" "$RPORT" 2 log_slave_updates=ON >/dev/null
rsql() { bash "$SERVER_SH" client "$RSRV" "$@"; }
PRIMARY_DSN=$DSN
REPLICA_DSN="mysql://steward:steward@127.0.0.1:$RPORT/app"

# the replica copies the primary from its first binlog (its own setup statements forgotten)
rsql -e "RESET MASTER; SET GLOBAL gtid_slave_pos = '';
  CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = $PORT, MASTER_USER = 'steward',
  MASTER_PASSWORD = 'steward', MASTER_USE_GTID = slave_pos; START SLAVE"

sql app -e "CREATE TABLE f (id int PRIMARY KEY, v varchar(20), n int)"
for i in 0 1 2 3 4; do
  sql app -e "INSERT INTO f SELECT seq, CONCAT('p', seq), 0 FROM seq_$((i * 10 + 1))_to_$((i * 10 + 10))"
done
# the primary's binlog coordinates run ahead of the replica's
sql -e "FLUSH BINARY LOGS; FLUSH BINARY LOGS; FLUSH BINARY LOGS"

# 1. snapshot and stream from the primary
capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>>"$WORK/capture.log" || fail "first capture"
grep -q '^gtid 0-1-' "$WORK/log/mysql-resume" || fail "the resume file has no GTID state: $(cat "$WORK/log/mysql-resume")"
cp "$WORK/log/mysql-resume" "$WORK/resume.1"

# 2. more changes, captured; then the resume file is put back as a stop
#    between the log's sync and the resume file's rename would leave it
sql app -e "INSERT INTO f SELECT seq, CONCAT('a', seq), 1 FROM seq_51_to_60"
sql app -e "UPDATE f SET n = n + 1 WHERE id <= 5; DELETE FROM f WHERE id IN (6, 7)"
capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>>"$WORK/capture.log" || fail "second capture"
cp "$WORK/resume.1" "$WORK/log/mysql-resume"

# 3. changes the agent has not read when the primary fails
sql app -e "INSERT INTO f SELECT seq, CONCAT('b', seq), 2 FROM seq_61_to_70"
sql app -e "UPDATE f SET v = 'changed' WHERE id BETWEEN 20 AND 25"
target=$(sql -N -e "SELECT @@gtid_binlog_pos")
[[ $(rsql -N -e "SELECT MASTER_GTID_WAIT('$target', 60)") == 0 ]] || fail "the replica did not catch up to $target"
server_stop

# 4. promote the replica and write on it
rsql -e "STOP SLAVE; RESET SLAVE ALL"
rsql app -e "INSERT INTO f SELECT seq, CONCAT('r', seq), 3 FROM seq_71_to_80"
rsql app -e "UPDATE f SET n = 99 WHERE id BETWEEN 55 AND 65; DELETE FROM f WHERE id = 1"
rend=$(rsql -N -e "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
[[ $rend == mysql-bin.000001:* ]] || fail "the replica's binlog was expected to be its first file, not $rend"

# 5. the agent follows to the replica
DSN=$REPLICA_DSN
capture --data-dir "$WORK/log" --endpos "$rend" 2>"$WORK/failover.log" || { cat "$WORK/failover.log"; fail "capture from the promoted replica"; }
cat "$WORK/failover.log" >>"$WORK/capture.log"
grep -q 'streaming binlog after GTID 0-1-' "$WORK/failover.log" || fail "did not resume by GTID: $(cat "$WORK/failover.log")"
grep -q 'records were durable after the resume point' "$WORK/failover.log" || fail "the log's records after the resume point were not taken into account"
grep -q 'positions continue under epoch 1' "$WORK/failover.log" || fail "no new epoch for the replica's lower coordinates"
grep -q '^epoch 1$' "$WORK/log/mysql-resume" || fail "resume file without the epoch: $(cat "$WORK/log/mysql-resume")"
grep -q '^gtid 0-2-' "$WORK/log/mysql-resume" || fail "resume file without the replica's GTID: $(cat "$WORK/log/mysql-resume")"

# the state equals the promoted replica's, and no change came twice
SRV_SAVED=$SRV; SRV=$RSRV
compare_state "$WORK/log" app
SRV=$SRV_SAVED
python3 - "$WORK/dump.jsonl" <<'PY'
import json, sys
seen, inserts = set(), {}
for line in open(sys.argv[1]):
    c = json.loads(line)
    if c.get("op") == "snapshot" or not c.get("txid"):
        continue
    key = c["key"]["id"]
    k = (c["txid"], c["op"], key)
    if k in seen:
        sys.exit(f"change {k} is in the log twice")
    seen.add(k)
    if c["op"] == "insert":
        inserts[key] = inserts.get(key, 0) + 1
dups = [k for k, n in inserts.items() if n > 1]
if dups:
    sys.exit(f"rows inserted twice: {dups}")
for lo, hi in ((51, 60), (61, 70), (71, 80)):
    missing = [i for i in range(lo, hi + 1) if str(i) not in inserts]
    if missing:
        sys.exit(f"inserts missing: {missing}")
print(f"{len(seen)} streamed changes, each once")
PY

# 6. the old primary lacks what was written on the promoted replica: refused, log unchanged
server_start
before=$("$STEWARD_BIN" log dump -d "$WORK/log" | wc -l)
DSN=$PRIMARY_DSN
set +e
capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>"$WORK/refused.log"
rc=$?
set -e
cat "$WORK/refused.log" >>"$WORK/capture.log"
[[ $rc -eq 1 ]] || { cat "$WORK/refused.log"; fail "capture from the old primary exited $rc, expected 1"; }
grep -q 'binlog position GTID 0-2-[0-9]* (mysql-bin.000001:[0-9]*) is not on this server' "$WORK/refused.log" || fail "unclear refusal: $(cat "$WORK/refused.log")"
after=$("$STEWARD_BIN" log dump -d "$WORK/log" | wc -l)
[[ $before -eq $after ]] || fail "the refused capture changed the log ($before -> $after records)"
echo "mysql_failover: ok"
