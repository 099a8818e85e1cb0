#!/usr/bin/env bash
# Helpers sourced by the tests/integration/mysql_*.sh scenarios (kept in
# lib/ so CTest does not register it as a test).
#
#   mysql_setup NAME PORT [OPTION=VALUE...]
#                           start a server under $STEWARD_BUILD_DIR/tmp/NAME, trap cleanup;
#                           extra server options go to its my.cnf (kept in SERVER_OPTS);
#                           a function mysql_before_start, if defined, runs just before the start
#   server_start / server_stop   restart that server with the same options
#   sql ARGS...             mariadb client as root on that server
#   end_pos                 current binlog FILE:OFFSET
#   capture ARGS...         steward capture --dsn $DSN ARGS...
#   capture_bg ARGS...      the same in the background (CAPTURE_PID)
#   compare_state DIR DB    rebuild tables from `steward log dump`, compare to SELECT *
set -euo pipefail

: "${STEWARD_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
: "${STEWARD_BUILD_DIR:=$STEWARD_SOURCE_DIR/build}"
: "${STEWARD_BIN:=$STEWARD_BUILD_DIR/cli/steward}"
SERVER_SH="$STEWARD_SOURCE_DIR/scripts/mariadb-server.sh"
# system tables installed once per build directory, copied for each scenario
export MARIADB_TEMPLATE_DIR="${MARIADB_TEMPLATE_DIR:-$STEWARD_BUILD_DIR/tmp/.mariadb-template}"

mysql_setup() {
  local name=$1
  PORT=$2
  WORK="$STEWARD_BUILD_DIR/tmp/$name"
  rm -rf "$WORK"
  mkdir -p "$WORK"
  SRV="$WORK/server"
  shift 2
  SERVER_OPTS=("$@")
  trap 'mysql_cleanup' EXIT
  # a scenario may prepare files the server needs (certificates) in $WORK first
  if declare -F mysql_before_start >/dev/null; then mysql_before_start; fi
  server_start
  DSN="mysql://steward:steward@127.0.0.1:$PORT/app"
  sql -e "CREATE DATABASE IF NOT EXISTS app"
}

mysql_cleanup() {
  local rc=$?
  for p in ${CAPTURE_PIDS:-}; do kill -9 "$p" 2>/dev/null || true; done
  bash "$SERVER_SH" stop "$SRV" >/dev/null 2>&1 || true
  if [[ $rc -eq 0 && -z ${KEEP:-} ]]; then rm -rf "$WORK"; else echo "FAILED (rc=$rc); files kept in $WORK" >&2; fi
  exit $rc
}

server_start() { bash "$SERVER_SH" start "$SRV" "$PORT" 1 "${SERVER_OPTS[@]}" >/dev/null; }
server_stop() { bash "$SERVER_SH" stop "$SRV" >/dev/null; }

sql() { bash "$SERVER_SH" client "$SRV" "$@"; }

end_pos() { sql -N -e "SHOW MASTER STATUS" | awk '{print $1 ":" $2}'; }

capture() { "$STEWARD_BIN" capture --dsn "$DSN" "$@"; }

# Start capture in the background; its pid is appended to CAPTURE_PIDS and
# left in CAPTURE_PID (the steward process itself, so signals reach it).
capture_bg() {
  "$STEWARD_BIN" capture --dsn "$DSN" "$@" &
  CAPTURE_PID=$!
  CAPTURE_PIDS="${CAPTURE_PIDS:-} $CAPTURE_PID"
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# Rebuild every table of DB from the change log in DIR and compare with
# SELECT * (mariadb -B --binary-as-hex); also checks each position is unique.
compare_state() {
  local dir=$1 db=$2 dump_pid=
  # REUSE_DUMP=1: the caller already wrote $WORK/dump.jsonl from this log;
  # otherwise dump it while the tables are read
  if [[ "${REUSE_DUMP:-0}" != 1 ]]; then
    "$STEWARD_BIN" log dump -d "$dir" >"$WORK/dump.jsonl" &
    dump_pid=$!
  fi
  local tables
  tables=$(sql -N -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='$db' AND TABLE_TYPE='BASE TABLE'")
  for t in $tables; do
    sql -B --binary-as-hex "$db" -e "SELECT * FROM \`$t\`" >"$WORK/select_$t.tsv"
  done
  if [[ -n $dump_pid ]]; then wait "$dump_pid" || fail "log dump exited $?"; fi
  python3 "$STEWARD_SOURCE_DIR/tests/integration/lib/mysql_state.py" "$WORK" "$db" $tables
}
