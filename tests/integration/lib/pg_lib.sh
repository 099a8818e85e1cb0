#!/usr/bin/env bash
# Shared setup for the PostgreSQL capture scenarios (tests/integration/pg_*.sh).
# Source it, then call pg_setup NAME PORT.  Provides: $DIR (scratch), $PGDIR
# (server data), $DSN, $STEWARD, pg_sql, capture_bg/capture_stop, pg_state_check.
set -euo pipefail
: "${STEWARD_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
: "${STEWARD_BUILD_DIR:=$STEWARD_SOURCE_DIR/build}"
: "${STEWARD_BIN:=$STEWARD_BUILD_DIR/cli/steward}"
# initdb once per build directory, copied for each scenario
export PG_TEMPLATE_DIR="${PG_TEMPLATE_DIR:-$STEWARD_BUILD_DIR/tmp/.pg-template}"
STEWARD=$STEWARD_BIN
SCALE=${STEWARD_TEST_SCALE:-full}
CAPTURE_PIDS=()

pg_setup() {  # name port
  NAME=$1 PORT=$2
  DIR=$STEWARD_BUILD_DIR/tmp/$NAME
  PGDIR=$DIR/pg
  rm -rf "$DIR"
  mkdir -p "$DIR"
  # The server runs as postgres: it must be able to reach its data directory.
  local d=$DIR
  while [[ $d != / ]]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
  bash "$STEWARD_SOURCE_DIR/scripts/pg-server.sh" start "$PGDIR" "$PORT"
  DSN=$(bash "$STEWARD_SOURCE_DIR/scripts/pg-server.sh" dsn "$PORT")
  trap pg_cleanup EXIT
}

pg_cleanup() {
  local rc=$?
  for p in "${CAPTURE_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [[ -n ${DSN:-} ]]; then
    psql -qAt "$DSN" -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active_pid IS NOT NULL" >/dev/null 2>&1 || true
    sleep 0.2
    psql -qAt "$DSN" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null 2>&1 || true
  fi
  bash "$STEWARD_SOURCE_DIR/scripts/pg-server.sh" stop "$PGDIR" || true
  if [[ $rc == 0 ]]; then echo "PASS $NAME"; else echo "FAIL $NAME (exit $rc)"; fi
  exit $rc
}

pg_sql() { psql -v ON_ERROR_STOP=1 -qAtX "$DSN" "$@"; }

# The WAL position after everything committed so far (an --endpos).
pg_endpos() { pg_sql -c "SELECT pg_current_wal_insert_lsn()"; }

# capture_bg LOGFILE ARGS…: start capture in the background; pid in $CAPTURE_PID.
capture_bg() {
  local log=$1; shift
  "$STEWARD" capture --dsn "$DSN" --data-dir "$DIR/log" --status-interval 200 "$@" >>"$log" 2>&1 &
  CAPTURE_PID=$!
  CAPTURE_PIDS+=("$CAPTURE_PID")
}

# capture_run ARGS…: run capture in the foreground (bounded), fail on non-zero.
capture_run() {
  timeout 300 "$STEWARD" capture --dsn "$DSN" --data-dir "$DIR/log" --status-interval 200 "$@" \
    >>"$DIR/capture.log" 2>&1 || { echo "capture failed ($?):"; tail -20 "$DIR/capture.log"; return 1; }
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# Rebuild every table from the change log and compare with SELECT * (strict:
# an insert of a present key or a change to a missing one is an error).
pg_state_check() {  # [extra args for pg_state.py]
  "$STEWARD" log dump --data-dir "$DIR/log" >"$DIR/dump.jsonl"
  python3 "$STEWARD_SOURCE_DIR/tests/integration/lib/pg_state.py" --dsn "$DSN" \
    --dump "$DIR/dump.jsonl" "$@"
}
