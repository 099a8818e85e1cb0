#!/usr/bin/env bash
# Prometheus conformance of both /metrics endpoints and of the shipped alert
# rules: a capture agent on one PostgreSQL (DSN from --dsn-file) and an apply
# service over its log, a few changes, then `promtool check metrics` on each
# endpoint's output and `promtool check rules scripts/alerts/steward.rules.yml`.
# Also: the capture metrics of docs/metrics.md are present with sensible
# values (changes per table/op, slot retained WAL and wal_status), the
# capture /status document, logs in JSON with the correlation id, and no
# password in the process title or the logs.
# Ports: PostgreSQL 55531, capture 18560, apply 18561.
set -euo pipefail
SRC=${STEWARD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${STEWARD_BUILD_DIR:-$SRC/build}
BIN=${STEWARD_BIN:-$BUILD/cli/steward}
PG_PORT=55531 CAP=18560 APP=18561
DIR=$BUILD/tmp/ops_metrics
declare -A PIDS=()
psql_q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }
cleanup() {
  local rc=$?
  for p in "${!PIDS[@]}"; do kill "${PIDS[$p]}" 2>/dev/null || true; done
  for p in "${!PIDS[@]}"; do wait "${PIDS[$p]}" 2>/dev/null || true; done
  psql_q -d shop -c "SELECT pg_drop_replication_slot('steward_ops')" >/dev/null 2>&1 || true
  "$SRC/scripts/pg-server.sh" stop "$DIR/pg" >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in capture apply; do [[ -f $DIR/$f.log ]] && { echo "--- $f.log" >&2; tail -10 "$DIR/$f.log" >&2; }; done
  exit 1
}
command -v promtool >/dev/null || "$SRC/scripts/install-deps.sh" >/dev/null
command -v promtool >/dev/null || fail "promtool (Debian package prometheus) is missing"

echo "--- alert rules"
promtool check rules "$SRC/scripts/alerts/steward.rules.yml" || fail "promtool check rules"

rm -rf "$DIR" && mkdir -p "$DIR"
"$SRC/scripts/pg-server.sh" start "$DIR/pg" "$PG_PORT" >"$DIR/pg.log" 2>&1 || fail "PostgreSQL did not start"
psql_q -d postgres -c "CREATE DATABASE shop" >/dev/null
psql_q -d postgres -c "ALTER ROLE postgres PASSWORD 'sekret-pw-42'" >/dev/null
psql_q -d shop -c "CREATE TABLE orders (id int primary key, amount numeric(12,2), note text)" >/dev/null
psql_q -d shop -c "INSERT INTO orders SELECT g, g * 1.5, 'seed' FROM generate_series(1, 20) g" >/dev/null
(umask 077; echo "postgresql://postgres:sekret-pw-42@127.0.0.1:$PG_PORT/shop" >"$DIR/shop.dsn")

"$BIN" capture --dsn-file "$DIR/shop.dsn" --data-dir "$DIR/log" --source shop --slot steward_ops \
  --metrics-listen 127.0.0.1:$CAP --status-interval 200 --log-format json >"$DIR/capture.log" 2>&1 &
PIDS[capture]=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$CAP/status" | grep -q '"streaming"' && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$CAP/status" | grep -q '"streaming"' || fail "capture is not streaming: $(curl -s http://127.0.0.1:$CAP/status)"
ps -o args= -p "${PIDS[capture]}" | grep -q sekret && fail "the password is in the process title"

psql_q -d shop -c "INSERT INTO orders SELECT g, g, 'new' FROM generate_series(21, 30) g" >/dev/null
psql_q -d shop -c "UPDATE orders SET note = 'paid' WHERE id <= 5" >/dev/null
psql_q -d shop -c "DELETE FROM orders WHERE id = 30" >/dev/null

# apply needs rules and targets; a rules file for this one table with no targets
cat >"$DIR/rules.yaml" <<'EOF'
version: 1
systems:
  shop: { kind: postgresql }
entities:
  order:
    fields:
      order_no: string
      amount:   decimal
      note:     string
    create: shop
    delete: shop
sources:
  - system: shop
    table: public.orders
    entity: order
    key: id
    fields:
      order_no: id
      amount:   amount
      note:     note
ownership:
  order:
    "*": shop
EOF
cat >"$DIR/targets.yaml" <<'EOF'
version: 1
systems:
  shop:
    base_url: http://127.0.0.1:9/api
    entities:
      order:
        upsert: { method: PUT, url: "/orders/{order_no}" }
        body:
          amount: amount
EOF
"$BIN" rules check "$DIR/rules.yaml" >/dev/null || fail "the test's rules file is not accepted"
"$BIN" apply --log "$DIR/log" --rules "$DIR/rules.yaml" --targets "$DIR/targets.yaml" --state "$DIR/state.db" \
  --metrics-listen 127.0.0.1:$APP --log-format json >"$DIR/apply.log" 2>&1 &
PIDS[apply]=$!

# wait for the slot poll (first after ~2 s) and the changes
for _ in $(seq 1 60); do
  m=$(curl -sf "http://127.0.0.1:$CAP/metrics" || true)
  grep -q '^steward_pg_slot_retained_wal_bytes' <<<"$m" && grep -q 'op="delete"' <<<"$m" && break
  sleep 0.25
done
curl -sf "http://127.0.0.1:$CAP/metrics" >"$DIR/capture.prom" || fail "capture /metrics"
for _ in $(seq 1 40); do curl -sf "http://127.0.0.1:$APP/metrics" >"$DIR/apply.prom" && [[ -s $DIR/apply.prom ]] && break; sleep 0.25; done
[[ -s $DIR/apply.prom ]] || fail "apply /metrics"

echo "--- promtool check metrics"
promtool check metrics <"$DIR/capture.prom" || fail "promtool check metrics (capture)"
promtool check metrics <"$DIR/apply.prom" || fail "promtool check metrics (apply)"

echo "--- capture metrics"
want() { grep -qE "$1" "$DIR/capture.prom" || fail "capture metrics lack $1"; }
want '^steward_capture_changes_total\{source="shop",table="public.orders",op="snapshot"\} 20$'
want '^steward_capture_changes_total\{source="shop",table="public.orders",op="insert"\} 10$'
want '^steward_capture_changes_total\{source="shop",table="public.orders",op="update"\} 5$'
want '^steward_capture_changes_total\{source="shop",table="public.orders",op="delete"\} 1$'
want '^steward_capture_snapshot_rows_total\{source="shop",table="public.orders"\} 20$'
want '^steward_capture_transactions_total\{source="shop"\} 3$'
want '^steward_capture_state\{source="shop",state="streaming"\} 1$'
want '^steward_capture_lag_seconds\{source="shop"\} '
want '^steward_capture_flush_duration_seconds_bucket\{source="shop",le="\+Inf"\} [1-9]'
want '^steward_capture_batch_changes_count\{source="shop"\} [1-9]'
want '^steward_changelog_size_bytes\{source="shop"\} [1-9]'
want '^steward_pg_slot_retained_wal_bytes\{source="shop",slot="steward_ops"\} [0-9]'
want '^steward_pg_slot_wal_status\{source="shop",slot="steward_ops",status="reserved"\} 1$'
grep -q '^steward_apply_' "$DIR/apply.prom" || grep -q '^steward_warehouse_' "$DIR/apply.prom" || fail "apply metrics are empty"

echo "--- capture /status and steward status"
curl -sf "http://127.0.0.1:$CAP/status" | python3 -c 'import json,sys
s=json.load(sys.stdin)
assert s["source"]=="shop" and s["kind"]=="postgresql" and s["state"]=="streaming", s
assert s["changes_total"]==36 and s["slot"]["name"]=="steward_ops" and s["slot"]["wal_status"]=="reserved", s
assert s["last_error"] is None and s["position"], s' || fail "capture /status: $(curl -s http://127.0.0.1:$CAP/status)"
"$BIN" status --capture "http://127.0.0.1:$CAP" || fail "steward status exited $? for a healthy agent"
rc=0; "$BIN" status --capture 127.0.0.1:1 >/dev/null 2>&1 || rc=$?
[[ $rc == 69 ]] || fail "steward status on an unreachable agent exited $rc, expected 69"
rc=0; "$BIN" status --capture "http://127.0.0.1:$CAP" --capture 127.0.0.1:1 --json >"$DIR/status.json" || rc=$?
[[ $rc == 3 ]] || fail "steward status with one agent down exited $rc, expected 3"
grep -q '"unreachable"' "$DIR/status.json" || fail "the unreachable agent is not reported"

echo "--- logs"
python3 - "$DIR/capture.log" <<'EOF' || fail "capture log lines are not one JSON object each"
import json, sys
for line in open(sys.argv[1]):
    json.loads(line)
EOF
grep -q sekret "$DIR"/*.log "$DIR"/*.prom && fail "the password appears in a log or in the metrics"
echo "PASS ops_metrics"
