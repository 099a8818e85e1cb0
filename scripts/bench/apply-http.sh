#!/usr/bin/env bash
# Benchmark: `steward apply` writing into the emulator's ERP API, against the
# emulator's own ceiling on the same endpoint measured with wrk.
#
#   scripts/bench/apply-http.sh [N]     (default N=5000 changes; build in $STEWARD_BUILD_DIR or ./build)
#
# N CRM accounts are inserted into crm.accounts, captured (snapshot) into a
# change log, and `steward apply --once` turns each into one ERP upsert
# (PUT /erp/api/customers/{no}) — ownership resolution, identity, the batch
# transaction, the outbox and HTTP delivery included.  wrk then PUTs the
# same endpoint with distinct keys and the same concurrency.  Alternates
# runs (noisy 2-core machines) and reports medians; last line:
# "ratio <steward ÷ wrk>".  Ports: PostgreSQL 55519, MariaDB 33519,
# emulator 18548, metrics 18549.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${STEWARD_BUILD_DIR:-$SRC/build}
BIN=${STEWARD_BIN:-$BUILD/cli/steward}
EMU=$BUILD/tests/emulator/steward-emulator
N=${1:-5000}
RUNS=${RUNS:-3}
CONC=8
DIR=$BUILD/tmp/bench-apply-http
PG_PORT=55519 MY_PORT=33519 EMU_PORT=18548
URL=http://127.0.0.1:$EMU_PORT
EMU_PID=
cleanup() {
  [[ -n $EMU_PID ]] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null || true
  "$SRC/scripts/demo/estate.sh" stop "$DIR/estate" >/dev/null 2>&1 || true
}
trap cleanup EXIT
rm -rf "$DIR" && mkdir -p "$DIR"
"$SRC/scripts/demo/estate.sh" start "$DIR/estate" $PG_PORT $MY_PORT >"$DIR/estate.log" 2>&1
eval "$("$SRC/scripts/demo/estate.sh" dsn $PG_PORT $MY_PORT)"
unset STEWARD_EMULATOR_TOKEN
"$EMU" --listen 127.0.0.1:$EMU_PORT --erp-dsn "$ERP_DSN" --crm-dsn "$CRM_DSN" --db-pool 16 \
  --log-level warn >"$DIR/emulator.log" 2>&1 &
EMU_PID=$!
for _ in $(seq 1 100); do curl -sf "$URL/_emulator/health" >/dev/null && break; sleep 0.1; done
my() { "$SRC/scripts/mariadb-server.sh" client "$DIR/estate/mariadb" -N -B -e "$1"; }
my "USE crm; INSERT INTO crm.accounts (id, external_id, name, email, status, updated_at)
    SELECT concat('001B', lpad(seq, 14, '0')), concat('B-', seq), concat('Bench ', seq),
           concat('b', seq, '@bench.example'), 'active', now(6) FROM seq_1_to_${N}"
"$BIN" capture --dsn "$CRM_DSN" --data-dir "$DIR/log-crm" --source crm >"$DIR/capture.log" 2>&1 &
CAP=$!
for _ in $(seq 1 600); do
  "$BIN" log stats --data-dir "$DIR/log-crm" 2>/dev/null | grep -Eq "records[^0-9]*$N\b" && break; sleep 0.2
done
kill $CAP; wait $CAP 2>/dev/null || true
# no client-side rate limit for the measurement; the same concurrency as wrk
sed -e "s#http://127.0.0.1:18400#$URL#" -e 's/rate_limit: [0-9]*/rate_limit: 0/' \
    -e '/token_env/d' -e "s/concurrency: [0-9]*/concurrency: $CONC/" \
    "$SRC/docs/examples/targets.yaml" >"$DIR/targets.yaml"
cat >"$DIR/put.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  local key = string.format("W-%d-%d", math.random(1, 1000000000), n)
  return wrk.format("PUT", "/erp/api/customers/" .. key, {["Content-Type"] = "application/json"},
    '{"name":"Bench","email":"b@bench.example"}')
end
LUA
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >"$DIR/steward.txt"; : >"$DIR/wrk.txt"
for run in $(seq 1 "$RUNS"); do
  psql -X -q -h 127.0.0.1 -p $PG_PORT -U postgres -d erp -c "DELETE FROM customers" >/dev/null
  rm -f "$DIR/state.db"*
  t0=$(date +%s.%N)
  la=$(cut -d' ' -f1 /proc/loadavg)
  ${PERF:+perf record $PERF -o "$DIR/perf.$run.data" --} /usr/bin/time -f '%U %S' -o "$DIR/cpu.txt" \
  "$BIN" apply --once --log "$DIR/log-crm" --rules "$SRC/docs/examples/estate.yaml" \
    --targets "$DIR/targets.yaml" --state "$DIR/state.db" --log-level warn >"$DIR/apply.log" 2>&1
  t1=$(date +%s.%N)
  got=$(psql -X -tA -h 127.0.0.1 -p $PG_PORT -U postgres -d erp -c "SELECT count(*) FROM customers")
  [[ $got == "$N" ]] || { echo "apply wrote $got of $N customers" >&2; tail "$DIR/apply.log" >&2; exit 1; }
  rate=$(echo "$N / ($t1 - $t0)" | bc -l)
  printf '%.1f\n' "$rate" >>"$DIR/steward.txt"
  cpu_us=$(awk -v n="$N" '{printf "%.0f", ($1 + $2) * 1e6 / n}' "$DIR/cpu.txt")
  w=$(wrk -t2 -c$CONC -d5s -s "$DIR/put.lua" "$URL" | awk '/Requests\/sec/ {print $2}')
  echo "$w" >>"$DIR/wrk.txt"
  printf 'run %d: steward %.1f changes/s (%.2f ms/change, %s us CPU/change), wrk %s req/s, ratio %.2f, load %s\n' \
    "$run" "$rate" "$(echo "1000 / $rate" | bc -l)" "$cpu_us" "$w" "$(echo "$rate / $w" | bc -l)" "$la"
done
s=$(median <"$DIR/steward.txt"); w=$(median <"$DIR/wrk.txt")
printf 'steward %s changes/s (median of %d), %.2f ms per change; wrk ceiling %s req/s\n' \
  "$s" "$RUNS" "$(echo "1000 / $s" | bc -l)" "$w"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'ratio %.2f\n' "$(echo "$s / $w" | bc -l)"
