#!/usr/bin/env bash
# A 1,000,000-row transaction (100,000 with STEWARD_TEST_SCALE=quick) is
# captured completely while the agent's peak RSS stays within a few tens of
# MB: nothing accumulates a transaction in memory.
source "$(dirname "$0")/lib/pg_lib.sh"
pg_setup pg_big_txn 55403
ROWS=1000000; LIMIT_KB=$((64 * 1024))
if [[ $SCALE == quick ]]; then ROWS=100000; LIMIT_KB=$((160 * 1024)); fi  # ASan shadow memory

pg_sql -c "CREATE TABLE big (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz)"
capture_run --no-snapshot --endpos "$(pg_endpos)"
pg_sql -c "INSERT INTO big SELECT g, md5(g::text), g / 100.0, '2024-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, $ROWS) g"
END=$(pg_endpos)
/usr/bin/time -v -o "$DIR/time.txt" timeout 600 "$STEWARD" capture --dsn "$DSN" \
  --data-dir "$DIR/log" --endpos "$END" >>"$DIR/capture.log" 2>&1 || fail "capture: $(tail -5 "$DIR/capture.log")"
rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$DIR/time.txt")
echo "rows $ROWS peak RSS ${rss} kB (limit ${LIMIT_KB} kB)"
(( rss < LIMIT_KB )) || fail "peak RSS ${rss} kB exceeds ${LIMIT_KB} kB"
# Count the inserts as the dump streams by (a million lines need not be
# written to disk to be counted) and keep the last line.
n=$("$STEWARD" log dump --data-dir "$DIR/log" |
  awk -v last="$DIR/last.jsonl" '/"op":"insert"/ {n++} END {print n + 0; print $0 >last}') ||
  fail "log dump exited with an error"
[[ $n == "$ROWS" ]] || fail "captured $n inserts, expected $ROWS"
# Spot-check the last row's text forms.
jq -e --arg id "$ROWS" '.after.id == $id and .op == "insert"' "$DIR/last.jsonl" >/dev/null \
  || fail "last record is not the last row: $(cat "$DIR/last.jsonl")"
