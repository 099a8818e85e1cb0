#!/usr/bin/env bash
# A lost connection is not an outage of the agent: the walsender is killed
# (pg_terminate_backend) several times while changes are being written and
# once while the server is restarted; the agent logs the loss, reconnects
# with backoff, and the change log ends up with every change exactly once.
source "$(dirname "$0")/lib/pg_lib.sh"
pg_setup pg_lost_connection 55407
ROUNDS=4
if [[ $SCALE == quick ]]; then ROUNDS=2; fi

pg_sql <<'SQL'
CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(12,2), note text);
INSERT INTO accounts SELECT g, g, 'seed' FROM generate_series(1, 500) g;
SQL
capture_bg "$DIR/capture.log"
for r in $(seq 1 "$ROUNDS"); do
  pg_sql -c "INSERT INTO accounts SELECT g, g, 'round $r' FROM generate_series($r * 1000, $r * 1000 + 299) g"
  pg_sql -c "UPDATE accounts SET balance = balance + $r WHERE id % 7 = $r"
  # Wait until the agent streams, then cut its replication connection.
  for _ in $(seq 1 100); do
    n=$(pg_sql -c "SELECT count(*) FROM pg_stat_replication")
    [[ $n -ge 1 ]] && break
    sleep 0.1
  done
  pg_sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_replication" >/dev/null
  pg_sql -c "DELETE FROM accounts WHERE id % 11 = $r"
done
# The server itself goes away for a moment.
bash "$STEWARD_SOURCE_DIR/scripts/pg-server.sh" stop "$PGDIR"
sleep 2
bash "$STEWARD_SOURCE_DIR/scripts/pg-server.sh" start "$PGDIR" "$PORT"
pg_sql -c "UPDATE accounts SET note = 'after restart' WHERE id <= 50"
END=$(pg_endpos)
# The agent is still the same process: it must have reconnected by itself.
kill -0 "$CAPTURE_PID" || fail "capture exited after a lost connection: $(tail -5 "$DIR/capture.log")"
for _ in $(seq 1 300); do
  flushed=$(pg_sql -c "SELECT confirmed_flush_lsn >= '$END' FROM pg_replication_slots WHERE slot_name = 'steward'")
  [[ $flushed == t ]] && break
  sleep 0.2
done
[[ ${flushed:-f} == t ]] || fail "slot did not advance to $END after reconnecting: $(tail -20 "$DIR/capture.log")"
kill -TERM "$CAPTURE_PID"; wait "$CAPTURE_PID" || fail "capture did not stop cleanly on SIGTERM"
grep -Eqi 'reconnect' "$DIR/capture.log" || fail "no reconnect logged: $(tail -20 "$DIR/capture.log")"
pg_state_check --tables public.accounts
