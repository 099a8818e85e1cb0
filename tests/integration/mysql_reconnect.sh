#!/usr/bin/env bash
# A lost connection is not an outage of the agent: under a steady stream of
# small transactions the binlog dump connection is KILLed on the server,
# then the server is stopped for a few seconds and started again.  The same
# agent process logs a warning, shows "reconnecting" on /status, reconnects
# by itself, and the change log ends up with every change exactly once
# (state rebuilt from the log equals SELECT *; every id inserted once; every
# streamed record carries the transaction's MariaDB GTID).  A restart after
# all this resumes from the resume file without re-reading anything.
set -euo pipefail
source "$(dirname "$0")/lib/mysql_lib.sh"
mysql_setup mysql_reconnect 33470
MET=33480

sql app <<'SQL'
CREATE TABLE t (id int primary key, v int, note varchar(40));
INSERT INTO t SELECT seq, 0, 'seed' FROM seq_1_to_200;
SQL
capture_bg --data-dir "$WORK/log" --status-interval 200 --metrics-listen "127.0.0.1:$MET" 2>"$WORK/capture.log"

status() { curl -sf "http://127.0.0.1:$MET/status" 2>/dev/null || true; }
dump_pid() { sql -N -e "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'" 2>/dev/null || true; }
wait_dump() {  # wait for a binlog dump connection other than $1
  local id
  for _ in $(seq 1 100); do
    id=$(dump_pid)
    [[ -n $id && $id != "${1:-}" ]] && { echo "$id"; return 0; }
    sleep 0.1
  done
  fail "no binlog dump connection on the server: $(tail -5 "$WORK/capture.log")"
}
# has the change log got the insert of id $1?
logged() { "$STEWARD_BIN" log dump -d "$WORK/log" 2>/dev/null | grep -qF "\"id\":\"$1\""; }

# steady load: one insert and one update per iteration, each its own transaction
load() {
  local i=1000
  while [[ ! -e $WORK/stop-load ]]; do
    sql app -e "INSERT INTO t VALUES ($i, $i, 'load'); UPDATE t SET v = v + 1 WHERE id = $((i % 200 + 1))" \
      2>/dev/null || true
    i=$((i + 1))
    sleep 0.02
  done
}
load &
LOAD_PID=$!

first=$(wait_dump)
for _ in $(seq 1 50); do status | grep -q '"streaming"' && break; sleep 0.1; done
status | grep -q '"streaming"' || fail "agent not streaming: $(status)"
sleep 0.5

# (a) the server kills the binlog dump connection
sql -e "KILL $first"
second=$(wait_dump "$first")
echo "binlog dump connection $first killed; the agent came back as $second"
sleep 0.5

# (b) the server goes away for a few seconds
server_stop
seen_reconnecting=0
for _ in $(seq 1 30); do
  if status | grep -q '"state":"reconnecting"'; then seen_reconnecting=1; break; fi
  sleep 0.1
done
status | tee "$WORK/status-down.json"; echo
[[ $seen_reconnecting == 1 ]] || fail "/status did not show reconnecting while the server was down"
sleep 2
kill -0 "$CAPTURE_PID" || fail "capture exited while the server was down: $(tail -5 "$WORK/capture.log")"
server_start
wait_dump >/dev/null
sleep 1
touch "$WORK/stop-load"; wait "$LOAD_PID"

# the last change of all: once it is in the log, everything before it is
sql app -e "INSERT INTO t VALUES (999999, 0, 'marker')"
for _ in $(seq 1 100); do logged 999999 && break; sleep 0.2; done
logged 999999 || fail "the agent did not catch up after reconnecting: $(tail -20 "$WORK/capture.log")"
for _ in $(seq 1 50); do status | grep -q '"streaming"' && break; sleep 0.1; done
status | grep -q '"state":"streaming"' || fail "/status not back to streaming: $(status)"
kill -TERM "$CAPTURE_PID"; wait "$CAPTURE_PID" || fail "capture did not stop cleanly on SIGTERM"

cat "$WORK/capture.log" | grep -E "WARN|warn" | head -5
n=$(grep -c "reconnecting in" "$WORK/capture.log" || true)
[[ $n -ge 2 ]] || fail "want a reconnect warning for each loss, got $n: $(tail -20 "$WORK/capture.log")"
grep -q "lost binlog connection at mysql-bin\.[0-9]*:[0-9]*" "$WORK/capture.log" || fail "the warning does not name the position"

compare_state "$WORK/log" app
"$STEWARD_BIN" log dump -d "$WORK/log" | python3 -c '
import collections, json, re, sys
ins, txids, order = collections.Counter(), {}, []
streamed = 0
for line in sys.stdin:
    r = json.loads(line)
    if r["op"] == "insert":
        ins[r["after"]["id"]] += 1
    if r["op"] == "snapshot":
        continue
    streamed += 1
    assert re.fullmatch(r"0-1-\d+", r["txid"]), r
    # one GTID per transaction; one transaction per binlog position
    file_end = r["pos"].rsplit(":", 1)[0]
    assert txids.setdefault(r["txid"], file_end) == file_end, (r, txids[r["txid"]])
    if not order or order[-1] != r["txid"]:
        order.append(r["txid"])
dups = [k for k, n in ins.items() if n > 1]
assert not dups, f"inserted more than once: {dups[:5]}"
assert len(order) == len(set(order)), "a transaction appears in two places"
seqs = [int(t.split("-")[2]) for t in order]
assert seqs == sorted(seqs), "GTIDs out of order"
assert streamed > 20, streamed
print(f"{streamed} streamed records, {len(order)} transactions, GTIDs {order[0]}..{order[-1]}, no duplicates")
'

# a restart resumes from the resume file and reads nothing twice
before=$("$STEWARD_BIN" log dump -d "$WORK/log" | wc -l)
sql app -e "UPDATE t SET note = 'after restart' WHERE id <= 10"
capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>"$WORK/capture2.log" || { cat "$WORK/capture2.log"; fail "restart"; }
grep -q "resuming after mysql-bin" "$WORK/capture2.log" || fail "restart did not use the resume file: $(cat "$WORK/capture2.log")"
after=$("$STEWARD_BIN" log dump -d "$WORK/log" | wc -l)
[[ $((after - before)) -eq 10 ]] || fail "restart appended $((after - before)) records, want 10"
compare_state "$WORK/log" app
echo "mysql_reconnect: ok"
