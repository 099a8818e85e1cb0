#!/usr/bin/env bash
# End to end: a real source PostgreSQL → `steward capture` → change log →
# `steward apply --warehouse` into a second database.  After a snapshot,
# inserts, updates (key changes included), deletes, an ALTER TABLE ADD
# COLUMN mid-stream and a kill -9 of apply mid-way then a restart, every
# mirror table equals its source table exactly (COPY text ordered by key),
# and history holds every captured change once.
source "$(dirname "$0")/lib/pg_lib.sh"
pg_setup warehouse_e2e_pg 55520
WH_DSN=$(bash "$STEWARD_SOURCE_DIR/scripts/pg-server.sh" dsn "$PORT" warehouse)
ROUNDS=4 ROWS=300
if [[ $SCALE == quick ]]; then ROUNDS=3 ROWS=150; fi
APPLY_PID=
e2e_cleanup() {
  local rc=$?
  [[ -n $APPLY_PID ]] && kill -9 "$APPLY_PID" 2>/dev/null
  (exit $rc)
  pg_cleanup
}
trap e2e_cleanup EXIT
wq() { PGTZ=UTC psql -X -q -At -v ON_ERROR_STOP=1 "$WH_DSN" -c "$1"; }
applied() { wq "SELECT coalesce(sum(changes), 0) FROM steward._steward_apply_state" 2>/dev/null || echo 0; }
apply_bg() {
  "$STEWARD" apply --log "$DIR/log" --warehouse "$WH_DSN" --batch 97 --poll-ms 50 \
    --log-level warn --log-debug warehouse >>"$DIR/apply.log" 2>&1 &
  APPLY_PID=$!
}

echo "[$SECONDS s] source server up"
pg_sql -c "CREATE DATABASE warehouse" >/dev/null
pg_sql <<'SQL'
CREATE TABLE customers (
  id bigint PRIMARY KEY, name text, email varchar(80), balance numeric(14,2),
  vip boolean, born date, seen timestamptz, prefs jsonb, tags text[], ratio double precision);
CREATE TABLE orders (
  region char(2), order_no integer, placed timestamp(3), qty smallint, price numeric,
  token uuid, blob bytea, note text, PRIMARY KEY (region, order_no));
CREATE TABLE "Odd Table" ("Key ✓" text PRIMARY KEY, "we""ird" text, span interval, at time);
INSERT INTO customers SELECT g, 'cust ' || g, 'c' || g || '@example.com', g * 1.25, g % 3 = 0,
  DATE '1970-01-01' + g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * interval '1 minute',
  jsonb_build_object('g', g, 'odd', g % 2 = 1), ARRAY['t' || g, NULL], g / 7.0
  FROM generate_series(1, 300) g;
INSERT INTO orders SELECT CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g,
  TIMESTAMP '2024-02-01 10:00:00.123' + g * interval '1 hour', g % 100, g * 0.5,
  md5(g::text)::uuid, decode(lpad(to_hex(g), 8, '0'), 'hex'), E'line\ttab\\back ' || g
  FROM generate_series(1, 300) g;
INSERT INTO "Odd Table" VALUES ('a b', 'q"uote', '1 day 02:00', '12:34:56.5'), ('ünï', NULL, NULL, NULL);
SQL

capture_bg "$DIR/capture.log"
echo "[$SECONDS s] tables loaded, capture started"
# one round of mixed DML on every table
load_round() {  # round
  local r=$1 b=$(( $1 * 10000 ))
  pg_sql >/dev/null <<SQL
BEGIN;
INSERT INTO customers (id, name, email, balance, vip, born, seen, prefs, tags, ratio)
  SELECT $b + g, 'new ' || g, NULL, g * 3.5, g % 2 = 0, NULL, now(), '{"r": $r}', '{}', 'NaN'
  FROM generate_series(1, $ROWS) g;
UPDATE customers SET balance = balance + 1, prefs = prefs || '{"u": true}', tags = array_append(tags, 'x')
  WHERE id % 5 = $r % 5;
DELETE FROM customers WHERE id % 11 = $r % 11 AND id < $b;
COMMIT;
INSERT INTO orders SELECT 'as', $b + g, now()::timestamp(3), g % 7, g, NULL, '\x00ff', 'r$r'
  FROM generate_series(1, $ROWS / 2) g;
UPDATE orders SET qty = qty + 1, note = note || ' upd' WHERE order_no % 7 = $r % 7;
UPDATE orders SET order_no = order_no + 5000000 WHERE region = 'eu' AND order_no % 13 = $r % 13
  AND order_no < 5000000;
DELETE FROM orders WHERE order_no % 17 = $r % 17;
INSERT INTO "Odd Table" VALUES ('k$r', 'v$r', '$r hours', NULL)
  ON CONFLICT ("Key ✓") DO UPDATE SET "we""ird" = EXCLUDED."we""ird";
SQL
}

# apply needs the log directory capture creates
for _ in $(seq 1 300); do [[ -d $DIR/log/segments ]] && break; sleep 0.1; done
[[ -d $DIR/log/segments ]] || fail "capture did not create the change log: $(tail -5 "$DIR/capture.log")"
T0=$SECONDS
apply_bg
for r in $(seq 1 "$ROUNDS"); do
  load_round "$r"
  if (( r == ROUNDS / 2 )); then
    # a column appears mid-stream, then is filled
    pg_sql -c "ALTER TABLE customers ADD COLUMN tier smallint" \
           -c "UPDATE customers SET tier = id % 4 WHERE id % 3 = 0" >/dev/null
    # kill -9 apply mid-way once it has committed something
    for _ in $(seq 1 200); do (( $(applied) > 0 )) && break; sleep 0.1; done
    sleep 0.3
    kill -0 "$APPLY_PID" 2>/dev/null || fail "apply died: $(tail -3 "$DIR/apply.log")"
    kill -9 "$APPLY_PID"; wait "$APPLY_PID" 2>/dev/null || true; APPLY_PID=
    echo "killed apply at $(applied) changes applied"
    apply_bg
  fi
done
# Deleted keys inserted again, alone in their batch once apply is idle:
# mirror's direct COPY meets their soft-deleted rows and must fall back to
# the merge.
for _ in $(seq 1 60); do
  a=$(applied); sleep 0.5; [[ $(applied) == "$a" ]] && break
done
pg_sql -c "INSERT INTO customers (id, name, balance) SELECT g, 'back ' || g, 0
  FROM generate_series(1, 300) g WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = g)" >/dev/null
echo "[$SECONDS s] load done"
# capture everything committed, then drain the log into the warehouse
kill -TERM "$CAPTURE_PID"; wait "$CAPTURE_PID" 2>/dev/null || true
END=$(pg_endpos)
# a message past the end position, so capture need not wait for a keepalive
pg_sql -c "SELECT pg_logical_emit_message(true, 'steward.e2e', 'end')" >/dev/null
capture_run --endpos "$END"
echo "[$SECONDS s] capture caught up"
kill -TERM "$APPLY_PID"; wait "$APPLY_PID" || fail "apply exited $? on SIGTERM"; APPLY_PID=
"$STEWARD" apply --log "$DIR/log" --warehouse "$WH_DSN" --once --log-level warn \
  || fail "final apply failed"
echo "[$SECONDS s] apply drained"

# mirror = source, column by column, as COPY text ordered by key
compare() {  # table warehouse-table columns key
  PGTZ=UTC pg_sql -c "COPY (SELECT $3 FROM $1 ORDER BY $4) TO STDOUT" >"$DIR/src.txt"
  PGTZ=UTC psql -X -q -At -v ON_ERROR_STOP=1 "$WH_DSN" \
    -c "COPY (SELECT $3 FROM steward.$2 WHERE NOT _steward_deleted ORDER BY $4) TO STDOUT" >"$DIR/wh.txt"
  [[ -s $DIR/src.txt ]] || fail "$1: source is empty"
  cmp -s "$DIR/src.txt" "$DIR/wh.txt" || { diff "$DIR/src.txt" "$DIR/wh.txt" | head; fail "$1: mirror differs from the source"; }
  echo "$1: $(wc -l <"$DIR/src.txt") rows equal"
}
compare customers postgres__customers 'id, name, email, balance, vip, born, seen, prefs, tags, ratio, tier' id
compare orders postgres__orders 'region, order_no, placed, qty, price, token, blob, note' 'region, order_no'
compare '"Odd Table"' '"postgres__Odd Table"' '"Key ✓", "we""ird", span, at' '"Key ✓"'
[[ $(wq "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'steward.postgres__customers'::regclass AND attname = 'tier'") == smallint ]] \
  || fail "added column tier is not smallint in the warehouse"

# history: one row per captured change, none twice
"$STEWARD" log dump --data-dir "$DIR/log" >"$DIR/dump.jsonl"
want=$(jq -s '[.[] | select(.op == "insert" or .op == "update" or .op == "delete" or .op == "snapshot")] | length' "$DIR/dump.jsonl")
got=$(wq "SELECT (SELECT count(*) FROM steward.postgres__customers__history) + (SELECT count(*) FROM steward.postgres__orders__history) + (SELECT count(*) FROM steward.\"postgres__Odd Table__history\")")
[[ $got == "$want" ]] || fail "history has $got rows, the log $want changes"
dups=$(wq "SELECT count(*) - count(DISTINCT _steward_position) FROM steward.postgres__customers__history")
[[ $dups == 0 ]] || fail "history has $dups duplicate changes"
# typed history: the same columns and types as the mirror, every row keyed
types() { wq "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attname) FROM pg_attribute WHERE attrelid = 'steward.$1'::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\_steward\_%'"; }
[[ $(types postgres__customers__history) == "$(types postgres__customers)" ]] || fail "history columns $(types postgres__customers__history) differ from the mirror's"
[[ $(wq "SELECT count(*) FROM steward.postgres__orders__history WHERE region IS NULL OR order_no IS NULL") == 0 ]] || fail "history rows without their key"
# a live key's last version in history is its mirror row (whole rows only)
[[ $(wq "SELECT count(*) FROM (SELECT DISTINCT ON (id) * FROM steward.postgres__customers__history ORDER BY id, _steward_position DESC) h JOIN steward.postgres__customers m USING (id) WHERE NOT m._steward_deleted AND h._steward_unchanged IS NULL AND (h._steward_op = 'delete' OR (h.name, h.email, h.balance, h.vip, h.born, h.seen, h.prefs, h.tags, h.ratio) IS DISTINCT FROM (m.name, m.email, m.balance, m.vip, m.born, m.seen, m.prefs, m.tags, m.ratio))") == 0 ]] || fail "history's last versions differ from the mirror"
# the change log checkpoint (for log gc) is the stored, committed position
ck=$(awk '{print $3}' "$DIR"/log/readers/warehouse-steward-*)
[[ $ck == "$(wq "SELECT encode(position, 'hex') FROM steward._steward_apply_state")" ]] \
  || fail "log checkpoint $ck is not the stored position"
grep -q "met an existing key" "$DIR/apply.log" && echo "direct mirror COPY fell back to the merge"
echo "history: $got changes, no duplicates ($((SECONDS - T0)) s)"
