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
  if [[ $rc -eq 0 ]]; then rm -rf "$WORK"; else echo "FAILED (rc=$rc); files kept in $WORK" >&2; fi
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
  local dir=$1 db=$2
  # REUSE_DUMP=1: the caller already wrote $WORK/dump.jsonl from this log
  [[ "${REUSE_DUMP:-0}" == 1 ]] || "$STEWARD_BIN" log dump -d "$dir" >"$WORK/dump.jsonl"
  local tables
  tables=$(sql -N -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='$db' AND TABLE_TYPE='BASE TABLE'")
  for t in $tables; do
    sql -B --binary-as-hex "$db" -e "SELECT * FROM \`$t\`" >"$WORK/select_$t.tsv"
  done
  python3 - "$WORK" "$db" $tables <<'PY'
import json, os, sys
work, db, tables = sys.argv[1], sys.argv[2], sys.argv[3:]
state, seen = {}, set()
# TXN_CHECK=1: also count ops and check every transaction's sequence numbers
# run 0, 1, 2, ... (one pass over a large dump instead of two).
txn_check = os.environ.get("TXN_CHECK") == "1"
ops, txids, last_seq = {}, {}, {}
def esc(v):
    return v.replace("\\", "\\\\").replace("\0", "\\0").replace("\t", "\\t").replace("\n", "\\n")
for line in open(f"{work}/dump.jsonl", encoding="utf-8"):
    r = json.loads(line)
    pos = r.get("pos_hex") or r["pos"]
    if pos in seen:
        sys.exit(f"position {r['pos']} appears twice")
    seen.add(pos)
    if txn_check and r["op"] != "snapshot":
        ops[r["op"]] = ops.get(r["op"], 0) + 1
        tx = r["txid"]
        txids[tx] = txids.get(tx, 0) + 1
        seq = int(r["pos"].rsplit(":", 1)[1])
        if seq != last_seq.get(tx, -1) + 1:
            sys.exit(f"transaction {tx}: sequence {seq} after {last_seq.get(tx, -1)}")
        last_seq[tx] = seq
    sch, tbl = r["table"].split(".", 1)
    if sch != db:
        continue
    rows = state.setdefault(tbl, {})
    keycols = list(r["key"].keys())
    def key(img):
        return tuple(img.get(k) for k in keycols) if keycols else tuple(sorted(img.items()))
    if r["op"] in ("delete", "update") and r["before"] is not None:
        rows.pop(key(r["before"]), None)
    if r["op"] in ("insert", "update", "snapshot") and r["after"] is not None:
        rows[key(r["after"])] = r["after"]
if txn_check:
    print("ops " + " ".join(f"{k}={v}" for k, v in sorted(ops.items())))
    print("transactions " + " ".join(str(n) for n in sorted(txids.values())))
bad = 0
for t in tables:
    lines = open(f"{work}/select_{t}.tsv", encoding="utf-8").read().split("\n")
    header = lines[0].split("\t")
    want = sorted(tuple(l.split("\t")) for l in lines[1:] if l)
    got = []
    for img in state.get(t, {}).values():
        row = []
        for c in header:
            v = img.get(c, "<missing>")
            row.append("NULL" if v is None else esc(v))
        got.append(tuple(row))
    got.sort()
    # the client prints "0x" for a NULL binary column; the log keeps NULL
    norm = lambda rows: sorted(tuple("NULL" if v == "0x" else v for v in r) for r in rows)
    if norm(got) != norm(want):
        bad += 1
        print(f"table {t}: {len(got)} rebuilt rows vs {len(want)} selected", file=sys.stderr)
        gs, ws = set(norm(got)), set(norm(want))
        for r in sorted(ws - gs)[:3]: print("  only in SELECT:", r, file=sys.stderr)
        for r in sorted(gs - ws)[:3]: print("  only in log:   ", r, file=sys.stderr)
    else:
        print(f"table {t}: {len(got)} rows match")
sys.exit(1 if bad else 0)
PY
}
