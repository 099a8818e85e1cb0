#!/usr/bin/env bash
# kill -9 of the agent at arbitrary moments during a load, then restart:
# every change appears exactly once and in commit order (unique, increasing
# positions) and the rebuilt state equals SELECT * of every table.  Then a
# dropped slot is a clear error with exit 69, not a silent re-creation.
source "$(dirname "$0")/lib/pg_lib.sh"
pg_setup pg_kill_restart 55404
TXNS=1500; KILLS=4
if [[ $SCALE == quick ]]; then TXNS=600; KILLS=3; fi

pg_sql <<'SQL'
CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric(10,2));
CREATE TABLE lines (order_id int, n int, sku text, PRIMARY KEY (order_id, n));
INSERT INTO orders SELECT g, 'new', g FROM generate_series(1, 1000) g;
SQL
python3 - "$TXNS" >"$DIR/load.sql" <<'EOF2'
import sys
for i in range(1, int(sys.argv[1]) + 1):
    o = 1000 + i
    print("BEGIN;")
    print(f"INSERT INTO orders VALUES ({o}, 'new', {i});")
    print(f"INSERT INTO lines SELECT {o}, g, 'sku' || g FROM generate_series(1, 20) g;")
    print(f"UPDATE orders SET status = 'paid', total = total + 1 WHERE id = {i % 1000 + 1};")
    print(f"DELETE FROM lines WHERE order_id = {o - 5} AND n > 10;")
    print("COMMIT;")
EOF2
psql -qX "$DSN" -f "$DIR/load.sql" >/dev/null &
LOADER=$!
for k in $(seq 1 "$KILLS"); do
  capture_bg "$DIR/capture.log"
  sleep "0.$((RANDOM % 9 + 5))"
  kill -9 "$CAPTURE_PID"; wait "$CAPTURE_PID" 2>/dev/null || true
  echo "killed capture ($k of $KILLS)"
done
wait $LOADER
capture_run --endpos "$(pg_endpos)"
pg_state_check --tables public.orders,public.lines

# Dropped slot: capture must refuse, naming the slot, with exit 69.
pg_sql -c "SELECT pg_drop_replication_slot('steward')" >/dev/null
rc=0
"$STEWARD" capture --dsn "$DSN" --data-dir "$DIR/log" >"$DIR/dropped.log" 2>&1 || rc=$?
[[ $rc == 69 ]] || fail "dropped slot: exit $rc, expected 69: $(cat "$DIR/dropped.log")"
grep -q 'replication slot \\"steward\\" does not exist' "$DIR/dropped.log" \
  || fail "dropped slot message: $(cat "$DIR/dropped.log")"
n=$(pg_sql -c "SELECT count(*) FROM pg_replication_slots")
[[ $n == 0 ]] || fail "capture re-created a dropped slot"
