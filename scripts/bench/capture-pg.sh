#!/usr/bin/env bash
# Benchmark: drain a backlog of row changes with `steward capture --endpos`
# (durable, compressed change log) and with pg_recvlogical into /dev/null
# (the ceiling: the server's own pgoutput decoding), alternating, several
# runs each, and report medians.
#
#   scripts/bench/capture-pg.sh            1,000,000 row changes, 3 runs each
#   BENCH_ROWS=200000 BENCH_RUNS=5 scripts/bench/capture-pg.sh
#
# Needs a built steward (STEWARD_BIN, default build/cli/steward).  The last
# line is "ratio <steward rows/s / pg_recvlogical rows/s>".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STEWARD=${STEWARD_BIN:-$ROOT/build/cli/steward}
ROWS=${BENCH_ROWS:-1000000}
RUNS=${BENCH_RUNS:-3}
PORT=${BENCH_PORT:-55440}
DIR=${BENCH_DIR:-$ROOT/build/tmp/bench-capture-pg}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

rm -rf "$DIR"; mkdir -p "$DIR"
d=$DIR; while [[ $d != / ]]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
bash "$ROOT/scripts/pg-server.sh" start "$DIR/pg" "$PORT"
DSN=$(bash "$ROOT/scripts/pg-server.sh" dsn "$PORT")
cleanup() {
  psql -qAtX "$DSN" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active" >/dev/null 2>&1 || true
  bash "$ROOT/scripts/pg-server.sh" stop "$DIR/pg" || true
}
trap cleanup EXIT
sql() { psql -v ON_ERROR_STOP=1 -qAtX "$DSN" "$@"; }

sql -c "CREATE TABLE bench (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, flag boolean)"
sql -c "CREATE PUBLICATION steward FOR ALL TABLES"
for r in $(seq 1 "$RUNS"); do
  sql -c "SELECT pg_create_logical_replication_slot('steward_$r', 'pgoutput')" >/dev/null
  sql -c "SELECT pg_create_logical_replication_slot('recv_$r', 'pgoutput')" >/dev/null
done
START=$(sql -c "SELECT pg_current_wal_insert_lsn()")
# The backlog: inserts in transactions of 10,000 rows.
BATCH=10000
for ((lo = 1; lo <= ROWS; lo += BATCH)); do
  hi=$((lo + BATCH - 1)); (( hi > ROWS )) && hi=$ROWS
  echo "INSERT INTO bench SELECT g, md5(g::text), g / 100.0, '2024-01-01'::timestamptz + g * interval '1 s', g % 2 = 0 FROM generate_series($lo, $hi) g;"
done | sql >/dev/null
END=$(sql -c "SELECT pg_current_wal_insert_lsn()")
WAL_BYTES=$(sql -c "SELECT pg_wal_lsn_diff('$END', '$START')::bigint")
echo "backlog: $ROWS row changes, $WAL_BYTES WAL bytes ($START .. $END)"

elapsed() {  # time.txt -> seconds
  awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$1"
}
rss() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

S_RATES=(); R_RATES=(); S_RSS=(); LOG_BYTES=0
for r in $(seq 1 "$RUNS"); do
  /usr/bin/time -v -o "$DIR/steward_$r.time" "$STEWARD" capture --dsn "$DSN" --slot "steward_$r" \
    --no-snapshot --data-dir "$DIR/log_$r" --endpos "$END" --log-level warn
  n=$("$STEWARD" log stats --data-dir "$DIR/log_$r" 2>/dev/null | awk '/records/ {print $2; exit}' || true)
  LOG_BYTES=$(du -sb "$DIR/log_$r" | cut -f1)
  s=$(elapsed "$DIR/steward_$r.time")
  S_RATES+=("$(python3 -c "print(round($ROWS / $s))")"); S_RSS+=("$(rss "$DIR/steward_$r.time")")
  rm -rf "$DIR/log_$r"
  /usr/bin/time -v -o "$DIR/recv_$r.time" pg_recvlogical -d "$DSN" -S "recv_$r" --start \
    -o proto_version=1 -o publication_names=steward --endpos "$END" -f /dev/null
  s=$(elapsed "$DIR/recv_$r.time")
  R_RATES+=("$(python3 -c "print(round($ROWS / $s))")")
  echo "run $r: steward ${S_RATES[-1]} rows/s (peak RSS ${S_RSS[-1]} kB), pg_recvlogical ${R_RATES[-1]} rows/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
SM=$(median "${S_RATES[@]}"); RM=$(median "${R_RATES[@]}"); RSSM=$(median "${S_RSS[@]}")
echo "steward capture: $SM rows/s (median of $RUNS)"
echo "pg_recvlogical:  $RM rows/s (median of $RUNS)"
echo "steward peak RSS: $RSSM kB"
echo "change log bytes: $LOG_BYTES; WAL bytes: $WAL_BYTES ($(python3 -c "print(round($LOG_BYTES / $WAL_BYTES, 3))") of WAL)"
echo "ratio $(python3 -c "print(round($SM / $RM, 3))")"
