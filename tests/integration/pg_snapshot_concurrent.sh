#!/usr/bin/env bash
# The initial snapshot taken while the table is being written, then the
# stream from the slot's consistent point: replaying the log strictly (no
# insert of a present key, no change to a missing one) rebuilds exactly
# SELECT * — no gap and no overlap.  Also: SIGTERM stops capture cleanly
# (exit 0) and a restart resumes from the slot.
source "$(dirname "$0")/lib/pg_lib.sh"
pg_setup pg_snapshot_concurrent 55402
ROWS=100000; WRITES=800
if [[ $SCALE == quick ]]; then ROWS=30000; WRITES=300; fi

pg_sql -c "CREATE TABLE acct (id int PRIMARY KEY, v int NOT NULL, pad text)"
pg_sql -c "INSERT INTO acct SELECT g, g, repeat('p', 40) FROM generate_series(1, $ROWS) g"
python3 - "$ROWS" "$WRITES" >"$DIR/writes.sql" <<'EOF2'
import sys
rows, writes = int(sys.argv[1]), int(sys.argv[2])
for i in range(1, writes + 1):
    print("BEGIN;")
    print(f"INSERT INTO acct VALUES ({rows + i}, {i}, 'new');")
    print(f"UPDATE acct SET v = v + 1 WHERE id = {(i * 7919) % rows + 1};")
    print(f"DELETE FROM acct WHERE id = {(i * 104729) % rows + 1};")
    print("COMMIT;")
EOF2
psql -qX "$DSN" -f "$DIR/writes.sql" >/dev/null &
WRITER=$!
capture_bg "$DIR/capture.log"
wait $WRITER
sleep 1
kill -TERM "$CAPTURE_PID"
wait "$CAPTURE_PID" || fail "capture did not exit 0 on SIGTERM: $(tail -5 "$DIR/capture.log")"
capture_run --endpos "$(pg_endpos)"
grep -q "snapshot complete" "$DIR/capture.log" || fail "no snapshot"
pg_state_check --tables public.acct
streamed=$(grep -c '"op":"\(insert\|update\|delete\)"' "$DIR/dump.jsonl" || true)
echo "streamed changes: $streamed"
(( streamed > 0 )) || fail "no streamed changes: the writer finished before the snapshot"
