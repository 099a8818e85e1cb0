#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running Steward demo:
# installs dependencies, builds, starts the demo estate (ERP + support on
# PostgreSQL, CRM + billing on MariaDB, a warehouse database), the platform
# emulator, four capture agents and the apply service, then generates a few
# minutes of business activity in the background and tells you where to look.
#
#   scripts/quickstart.sh            start (a second run reuses what is running)
#   scripts/quickstart.sh --down     stop everything and remove the demo dir
#   options: --no-deps (skip scripts/install-deps.sh), --activity SECONDS (default 240)
#
# State lives in STEWARD_DEMO_DIR (default $ROOT/.demo, ignored by git).
# Ports (loopback only, docs/operations.md): PostgreSQL 55400, MariaDB 33400,
# emulator 18400, apply (metrics, /status, operations page) 18410, capture
# agents 18411 erp, 18412 support, 18413 crm, 18414 billing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=$(realpath -m "${STEWARD_DEMO_DIR:-$ROOT/.demo}")
BUILD=${STEWARD_BUILD_DIR:-$ROOT/build}
PG_PORT=55400 MY_PORT=33400 EMU_PORT=18400 APPLY_PORT=18410
declare -A CAP_PORT=([erp]=18411 [support]=18412 [crm]=18413 [billing]=18414)
SOURCES=(erp support crm billing)
DEPS=1 ACTIVITY=240 DOWN=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --down) DOWN=1 ;;
    --no-deps) DEPS=0 ;;
    --activity) ACTIVITY=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "quickstart: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

alive() { [[ -f $DEMO/$1.pid ]] && kill -0 "$(cat "$DEMO/$1.pid")" 2>/dev/null; }
stop_proc() {  # name: SIGTERM, wait up to 10 s, then SIGKILL
  alive "$1" || { rm -f "$DEMO/$1.pid"; return 0; }
  local pid; pid=$(cat "$DEMO/$1.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$DEMO/$1.pid"
}

if [[ $DOWN == 1 ]]; then
  [[ -d $DEMO ]] || { echo "quickstart: nothing to remove ($DEMO does not exist)"; exit 0; }
  for p in activity apply capture-erp capture-support capture-crm capture-billing emulator; do stop_proc "$p"; done
  "$ROOT/scripts/demo/estate.sh" stop "$DEMO/estate" >/dev/null 2>&1 || true
  rm -rf "$DEMO"
  echo "quickstart: stopped everything and removed $DEMO"
  exit 0
fi

step() { echo "==> $*"; }
die() { echo "quickstart: $*" >&2; exit 1; }

if [[ $DEPS == 1 ]]; then
  step "dependencies (scripts/install-deps.sh)"
  "$ROOT/scripts/install-deps.sh"
fi

step "build ($BUILD)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD.configure.log" 2>&1 ||
  { tail -20 "$BUILD.configure.log"; die "cmake configure failed"; }
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD.build.log" 2>&1 || { tail -30 "$BUILD.build.log"; die "build failed"; }
rm -f "$BUILD.configure.log" "$BUILD.build.log"
BIN=$BUILD/cli/steward EMU=$BUILD/tests/emulator/steward-emulator
[[ -x $BIN && -x $EMU ]] || die "build did not produce $BIN and $EMU"

mkdir -p "$DEMO"
chmod 755 "$DEMO"  # the postgres and mysql users need to reach their data dirs
export STEWARD_DEMO_DIR=$DEMO
step "demo estate (PostgreSQL :$PG_PORT, MariaDB :$MY_PORT) in $DEMO/estate"
"$ROOT/scripts/demo/estate.sh" start "$DEMO/estate" "$PG_PORT" "$MY_PORT" >>"$DEMO/estate.log" 2>&1 ||
  { tail -20 "$DEMO/estate.log"; die "could not start the demo estate"; }
eval "$("$ROOT/scripts/demo/estate.sh" dsn "$PG_PORT" "$MY_PORT")"
WAREHOUSE_DSN=$("$ROOT/scripts/pg-server.sh" dsn "$PG_PORT" warehouse)
if [[ -z $(psql -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'warehouse'") ]]; then
  psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE warehouse" >/dev/null
fi

# Secrets: files of mode 0600, never on a command line (process titles are public).
umask 077
[[ -s $DEMO/emulator.token ]] || head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DEMO/emulator.token"
[[ -s $DEMO/ui.token ]] || head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DEMO/ui.token"
for s in "${SOURCES[@]}"; do
  var=${s^^}_DSN
  echo "${!var}" >"$DEMO/$s.dsn"
done
umask 022
export STEWARD_EMULATOR_TOKEN; STEWARD_EMULATOR_TOKEN=$(cat "$DEMO/emulator.token")

step "platform emulator on 127.0.0.1:$EMU_PORT"
if ! alive emulator; then
  "$EMU" --listen 127.0.0.1:$EMU_PORT --token-file "$DEMO/emulator.token" --erp-dsn "$ERP_DSN" \
    --support-dsn "$SUPPORT_DSN" --crm-dsn "$CRM_DSN" --billing-dsn "$BILLING_DSN" >>"$DEMO/emulator.log" 2>&1 &
  echo $! >"$DEMO/emulator.pid"
fi
for _ in $(seq 1 100); do
  curl -sf -H "Authorization: Bearer $STEWARD_EMULATOR_TOKEN" "http://127.0.0.1:$EMU_PORT/_emulator/health" >/dev/null && break
  sleep 0.1
done
alive emulator || { tail -5 "$DEMO/emulator.log"; die "the emulator exited"; }

step "capture agents (metrics on 127.0.0.1:${CAP_PORT[erp]}-${CAP_PORT[billing]})"
for s in "${SOURCES[@]}"; do
  alive "capture-$s" && continue
  extra=()
  [[ $s == erp || $s == support ]] && extra=(--slot "steward_$s")
  "$BIN" capture --dsn-file "$DEMO/$s.dsn" --data-dir "$DEMO/log-$s" --source "$s" "${extra[@]}" \
    --metrics-listen "127.0.0.1:${CAP_PORT[$s]}" --status-interval 500 >>"$DEMO/capture-$s.log" 2>&1 &
  echo $! >"$DEMO/capture-$s.pid"
done
sleep 1
for s in "${SOURCES[@]}"; do alive "capture-$s" || { tail -5 "$DEMO/capture-$s.log"; die "capture agent $s exited"; }; done

step "apply service (metrics, /status and the operations page on 127.0.0.1:$APPLY_PORT)"
sed "s#http://127.0.0.1:18400#http://127.0.0.1:$EMU_PORT#" "$ROOT/docs/examples/targets.yaml" >"$DEMO/targets.yaml"
if ! alive apply; then
  logs=()
  for s in "${SOURCES[@]}"; do logs+=(--log "$DEMO/log-$s"); done
  "$BIN" apply "${logs[@]}" --rules "$ROOT/docs/examples/estate.yaml" --targets "$DEMO/targets.yaml" \
    --state "$DEMO/state.db" --warehouse "$WAREHOUSE_DSN" --metrics-listen 127.0.0.1:$APPLY_PORT \
    --ui-token-file "$DEMO/ui.token" --reference-timeout 60 >>"$DEMO/apply.log" 2>&1 &
  echo $! >"$DEMO/apply.pid"
fi
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$APPLY_PORT/status" >/dev/null && break; sleep 0.2; done
alive apply || { tail -5 "$DEMO/apply.log"; die "the apply service exited"; }

if ! alive activity && [[ $ACTIVITY -gt 0 ]]; then
  step "business activity for $ACTIVITY s in the background ($DEMO/activity.log)"
  STEWARD_DEMO_PG_PORT=$PG_PORT STEWARD_EMULATOR_URL=http://127.0.0.1:$EMU_PORT \
    setsid "$ROOT/scripts/demo/activity.sh" "$ACTIVITY" >>"$DEMO/activity.log" 2>&1 </dev/null &
  echo $! >"$DEMO/activity.pid"
fi

caps=""
for s in "${SOURCES[@]}"; do caps+=" --capture 127.0.0.1:${CAP_PORT[$s]}"; done
cat <<EOF

Steward's demo is running.  Where to look:

  status        $BIN status$caps \\
                  --apply 127.0.0.1:$APPLY_PORT --state $DEMO/state.db
  ops page      http://127.0.0.1:$APPLY_PORT/   (retry buttons: paste the token in $DEMO/ui.token)
  metrics       http://127.0.0.1:$APPLY_PORT/metrics (apply), http://127.0.0.1:${CAP_PORT[erp]}/metrics … :${CAP_PORT[billing]}/metrics (capture)
  dead letters  $BIN dlq list --state $DEMO/state.db
  logs          $DEMO/*.log  (activity: tail -f $DEMO/activity.log)
  databases     psql -h 127.0.0.1 -p $PG_PORT -U postgres erp      (also support, warehouse)
                scripts/mariadb-server.sh client $DEMO/estate/mariadb crm   (also billing)

Stop and remove everything:  scripts/quickstart.sh --down
EOF
