#!/usr/bin/env bash
# Benchmark: `steward apply` into a PostgreSQL warehouse, mirror and history,
# against the ceiling of a plain COPY of the same rows into an empty table.
#
#   scripts/bench/apply-warehouse.sh [BUILD_DIR]   (default: build)
#
# A log of N inserts (BENCH_N, default 1,000,000) is generated once with
# steward_loggen; then for RUNS rounds (default 3) the three candidates run
# alternately on fresh schemas.  Prints rows/s of each and the median ratios
# as `ratio_mirror <x>` and `ratio_history <y>`, with the machine's load
# average (uptime) before and after and steward's CPU time (user+sys, both
# of its threads) per run and per change: on a shared machine, say so.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "${1:-$ROOT/build}" && pwd)
N=${BENCH_N:-1000000}
RUNS=${RUNS:-3}
BATCH=${BENCH_BATCH:-50000}
PORT=55499
T=$B/tmp/bench-apply-warehouse
PG=$ROOT/scripts/pg-server.sh
cleanup() { bash "$PG" stop "$T/pg" || true; }
trap cleanup EXIT
bash "$PG" stop "$T/pg" 2>/dev/null || true
rm -rf "$T" && mkdir -p "$T"
bash "$PG" start "$T/pg" $PORT
DSN=$(bash "$PG" dsn $PORT)
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$DSN" -c "$1"; }
now() { date +%s.%N; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a / b }'; }
rate() { awk -v n="$N" -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", n / (b - a) }'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "generating $N changes"
"$B/tests/steward_loggen" --out "$T/log" --count "$N" --copy-out "$T/rows.copy"
COLS='id bigint, name text, amount numeric(12,2), qty integer, created_at timestamptz, active boolean, note text, payload jsonb'

declare -a RM RH
for r in $(seq 1 "$RUNS"); do
  q "DROP SCHEMA IF EXISTS m CASCADE; DROP SCHEMA IF EXISTS h CASCADE; DROP TABLE IF EXISTS ceiling; CREATE TABLE ceiling ($COLS)"
  q "CHECKPOINT"
  t0=$(now); q "\\copy ceiling FROM '$T/rows.copy'"; t1=$(now)
  c=$(rate "$t0" "$t1")
  q "CHECKPOINT"
  t0=$(now); /usr/bin/time -o "$T/cpu_m" -f '%U %S' "$B/cli/steward" apply --log "$T/log" --warehouse "$DSN" --warehouse-schema m --mode mirror --once --batch "$BATCH" --log-level warn; t1=$(now)
  m=$(rate "$t0" "$t1")
  q "CHECKPOINT"
  t0=$(now); /usr/bin/time -o "$T/cpu_h" -f '%U %S' "$B/cli/steward" apply --log "$T/log" --warehouse "$DSN" --warehouse-schema h --mode history --once --batch "$BATCH" --log-level warn; t1=$(now)
  h=$(rate "$t0" "$t1")
  [[ $(q "SELECT count(*) FROM m.gen__items") == "$N" && $(q "SELECT count(*) FROM h.gen__items__history") == "$N" ]] || { echo "row count mismatch" >&2; exit 1; }
  cpu() { awk -v n="$N" '{printf "%.1f s, %.1f us/change", $1 + $2, ($1 + $2) * 1e6 / n}' "$1"; }
  printf 'run %d: copy %.0f rows/s  mirror %.0f rows/s (steward cpu %s)  history %.0f rows/s (steward cpu %s)  (load %s)\n' \
    "$r" "$c" "$m" "$(cpu "$T/cpu_m")" "$h" "$(cpu "$T/cpu_h")" "$(cut -d' ' -f1 /proc/loadavg)"
  RM+=("$(div "$m" "$c")"); RH+=("$(div "$h" "$c")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'ratio_mirror %.3f\n' "$(median "${RM[@]}")"
printf 'ratio_history %.3f\n' "$(median "${RH[@]}")"
