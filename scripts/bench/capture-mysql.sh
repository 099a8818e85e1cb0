#!/usr/bin/env bash
# Benchmark: drain a binlog backlog of row changes with `steward capture
# --endpos` (full decoding into a durable, compressed change log) and with
# `mariadb-binlog --read-from-remote-server --raw` (the ceiling: the same
# bytes over the same replication protocol, written to a file undecoded),
# alternating, several runs each, from the same start position; report
# medians of wall time (server start and backlog load excluded), CPU time
# (user + system) and peak RSS, and the change log's bytes per row (raw and compressed).
#
#   scripts/bench/capture-mysql.sh                      1,000,000 row changes, 7 runs each
#   BENCH_ROWS=200000 BENCH_RUNS=5 scripts/bench/capture-mysql.sh
#
# Needs a built steward (STEWARD_BIN, default build/cli/steward).  The last
# line is "ratio <steward rows/s / mariadb-binlog rows/s>".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STEWARD=${STEWARD_BIN:-$ROOT/build/cli/steward}
ROWS=${BENCH_ROWS:-1000000}
RUNS=${BENCH_RUNS:-7}  # a drain takes ~0.1 s: enough runs for a steady median
PORT=${BENCH_PORT:-33448}
DIR=${BENCH_DIR:-$ROOT/build/tmp/bench-capture-mysql}
SERVER="$ROOT/scripts/mariadb-server.sh"

rm -rf "$DIR"; mkdir -p "$DIR"
bash "$SERVER" start "$DIR/server" "$PORT" 1 >/dev/null
trap 'bash "$SERVER" stop "$DIR/server" >/dev/null 2>&1 || true' EXIT
sql() { bash "$SERVER" client "$DIR/server" "$@"; }
DSN="mysql://steward:steward@127.0.0.1:$PORT/bench"

sql -e "CREATE DATABASE bench; CREATE TABLE bench.bench (id bigint PRIMARY KEY, name varchar(40),
        amount decimal(12,2), at datetime(6), flag tinyint, score double)"
read -r START_FILE START_POS < <(sql -N -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
# The backlog: inserts in transactions of 10,000 rows (Sequence engine).
BATCH=10000
{
  for ((lo = 1; lo <= ROWS; lo += BATCH)); do
    hi=$((lo + BATCH - 1)); ((hi > ROWS)) && hi=$ROWS
    echo "INSERT INTO bench.bench SELECT seq, CONCAT('customer ', seq), seq / 100,"
    echo "  '2024-01-01' + INTERVAL seq SECOND, seq % 2, seq / 7 FROM seq_${lo}_to_${hi};"
  done
} | sql bench
END=$(sql -N -e "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
echo "backlog: $ROWS row changes from $START_FILE:$START_POS to $END"

now() { date +%s.%N; }
cpu_of() {  # user + system seconds from a /usr/bin/time -v report
  awk -F: '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$1"
}
steward_run() {  # prints "seconds rss_kb cpu_seconds"
  local d="$DIR/log" t0 t1
  rm -rf "$d"; mkdir -p "$d"
  echo "$START_FILE $START_POS" >"$d/mysql-resume"  # stream the backlog, no snapshot
  sync  # neither side pays for writing back the other's files (ext4 commits them with an fsync)
  t0=$(now)
  /usr/bin/time -v "$STEWARD" capture --dsn "$DSN" --data-dir "$d" --endpos "$END" \
    --log-level warn 2>"$DIR/steward.time"
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc) $(awk -F: '/Maximum resident/ {print $2+0}' "$DIR/steward.time") $(cpu_of "$DIR/steward.time")"
}
binlog_run() {  # prints "seconds rss_kb cpu_seconds"
  local d="$DIR/raw" t0 t1
  rm -rf "$d"; mkdir -p "$d"
  sync
  t0=$(now)
  (cd "$d" && /usr/bin/time -v mariadb-binlog --no-defaults --read-from-remote-server --raw \
     --host=127.0.0.1 --port="$PORT" --user=steward --password=steward \
     --start-position="$START_POS" --to-last-log "$START_FILE" 2>"$DIR/binlog.time")
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc) $(awk -F: '/Maximum resident/ {print $2+0}' "$DIR/binlog.time") $(cpu_of "$DIR/binlog.time")"
}

s_times=(); s_rss=(); s_cpu=(); b_times=(); b_rss=(); b_cpu=()
for r in $(seq 1 "$RUNS"); do
  read -r t m c < <(binlog_run); b_times+=("$t"); b_rss+=("$m"); b_cpu+=("$c")
  read -r t m c < <(steward_run); s_times+=("$t"); s_rss+=("$m"); s_cpu+=("$c")
  printf 'run %d: mariadb-binlog %.2f s (cpu %s s), steward %.2f s (cpu %s s)\n' "$r" \
    "${b_times[-1]}" "${b_cpu[-1]}" "$t" "$c"
done
"$STEWARD" log stats -d "$DIR/log" >"$DIR/stats.txt" 2>/dev/null || true
n=$(awk '$1 == "records" {print $2}' "$DIR/stats.txt")
echo "steward records in the last log: ${n:-?}"
# change log size per row: raw (packed batches) and as written (zstd frames)
awk '$1 == "records" {n = $2} $1 == "bytes" {b = $2} $1 == "raw_bytes" {r = $2}
     END {if (n) printf "change log bytes per row: %.1f raw, %.1f compressed\n", r / n, b / n}' \
  "$DIR/stats.txt"

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
st=$(median "${s_times[@]}"); bt=$(median "${b_times[@]}")
srss=$(median "${s_rss[@]}"); brss=$(median "${b_rss[@]}")
scpu=$(median "${s_cpu[@]}"); bcpu=$(median "${b_cpu[@]}")
s_rate=$(echo "$ROWS / $st" | bc); b_rate=$(echo "$ROWS / $bt" | bc)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mariadb-binlog: $b_rate rows/s (median of $RUNS, ${bt} s, cpu ${bcpu} s), peak RSS ${brss} kB"
echo "steward:        $s_rate rows/s (median of $RUNS, ${st} s, cpu ${scpu} s), peak RSS ${srss} kB"
echo "ratio $(echo "scale=3; $s_rate / $b_rate" | bc)"
