#!/usr/bin/env bash
# kill -9 of the capture agent at arbitrary moments — during the snapshot
# and during a concurrent write load — then restart: the state rebuilt from
# the change log equals SELECT * of every table and no position repeats.
set -euo pipefail
source "$(dirname "$0")/lib/mysql_lib.sh"
mysql_setup mysql_kill9 33403

ROWS=30000; TXNS=400
[[ "${STEWARD_TEST_SCALE:-}" == quick ]] && { ROWS=10000; TXNS=150; }
sql app <<SQL
CREATE TABLE k (id int primary key, v int, s varchar(30), ts datetime(6));
CREATE TABLE audit (id bigint auto_increment primary key, k_id int, note text);
INSERT INTO k SELECT seq, seq % 97, CONCAT('row ', seq), '2024-01-01 00:00:00' FROM seq_1_to_$ROWS;
SQL

# the load: many small transactions of every kind, plus a few big ones
python3 - "$TXNS" "$ROWS" >"$WORK/load.sql" <<'PY'
import random, sys
txns, rows = int(sys.argv[1]), int(sys.argv[2])
random.seed(42)
nxt = rows + 1
for t in range(txns):
    print("BEGIN;")
    for _ in range(random.randint(1, 5)):
        r = random.random()
        if r < 0.4:
            vals = ",".join(f"({nxt + i}, {i}, 'new {nxt + i}', NOW(6))" for i in range(random.randint(1, 20)))
            nxt += 20
            print(f"INSERT IGNORE INTO k VALUES {vals};")
        elif r < 0.7:
            a = random.randint(1, nxt); print(f"UPDATE k SET v = v + 1, ts = NOW(6) WHERE id BETWEEN {a} AND {a + 30};")
        elif r < 0.85:
            a = random.randint(1, nxt); print(f"DELETE FROM k WHERE id BETWEEN {a} AND {a + 10};")
        else:
            print(f"INSERT INTO audit (k_id, note) VALUES ({random.randint(1, nxt)}, REPEAT('x', {random.randint(0, 300)}));")
    if t % 100 == 50:
        print("UPDATE k SET s = CONCAT(s, '!') WHERE id % 10 = 0;")
    print("COMMIT;")
PY
sql app <"$WORK/load.sql" &
LOAD_PID=$!

kills=0
for delay in 0.3 0.7 0.5 1.1 0.4 0.9; do
  capture_bg --data-dir "$WORK/log" 2>>"$WORK/capture.log"
  sleep "$delay"
  kill -9 "$CAPTURE_PID" 2>/dev/null && kills=$((kills + 1))
  wait "$CAPTURE_PID" 2>/dev/null || true
done
wait "$LOAD_PID"
capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>>"$WORK/capture.log" || { tail -20 "$WORK/capture.log"; fail "final drain"; }
echo "killed the agent $kills times"
[[ $kills -ge 4 ]] || fail "the agent exited before it could be killed"
compare_state "$WORK/log" app
echo "mysql_kill9: ok"
