#!/usr/bin/env bash
# The demo estate: one PostgreSQL (databases erp and support) and one MariaDB
# (databases crm and billing), with the schemas of docs/demo-estate.md.
#
#   scripts/demo/estate.sh start [DIR] [PG_PORT] [MARIADB_PORT]   start both servers, create databases, load schemas
#   scripts/demo/estate.sh stop [DIR]                             stop both servers (data is kept)
#   scripts/demo/estate.sh dsn [PG_PORT] [MARIADB_PORT]           print ERP_DSN, SUPPORT_DSN, CRM_DSN, BILLING_DSN lines
#
# Defaults come from the environment: STEWARD_DEMO_DIR (./demo-estate),
# STEWARD_DEMO_PG_PORT (55400), STEWARD_DEMO_MARIADB_PORT (33400).
# start is idempotent: servers already running are left alone, databases and
# tables are created only when missing, existing data is kept.  The DSN lines
# are shell-evaluable: eval "$(scripts/demo/estate.sh dsn 55450 33450)".
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

cmd=${1:-}
[[ $# -gt 0 ]] && shift

dsn_lines() {  # pg_port mariadb_port
  echo "ERP_DSN=$("$ROOT/scripts/pg-server.sh" dsn "$1" erp)"
  echo "SUPPORT_DSN=$("$ROOT/scripts/pg-server.sh" dsn "$1" support)"
  echo "CRM_DSN=$("$ROOT/scripts/mariadb-server.sh" dsn "$2" crm)"
  echo "BILLING_DSN=$("$ROOT/scripts/mariadb-server.sh" dsn "$2" billing)"
}

case "$cmd" in
  start)
    dir=$(realpath -m "${1:-${STEWARD_DEMO_DIR:-./demo-estate}}")
    pg_port=${2:-${STEWARD_DEMO_PG_PORT:-55400}}
    my_port=${3:-${STEWARD_DEMO_MARIADB_PORT:-33400}}
    mkdir -p "$dir"
    "$ROOT/scripts/pg-server.sh" start "$dir/pg" "$pg_port"
    "$ROOT/scripts/mariadb-server.sh" start "$dir/mariadb" "$my_port"
    psql_q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }
    for db in erp support; do
      if [[ -z $(psql_q -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
        psql_q -d postgres -c "CREATE DATABASE $db" >/dev/null
      fi
      psql_q -d "$db" -f "$HERE/$db.sql" >/dev/null
    done
    for db in crm billing; do
      "$ROOT/scripts/mariadb-server.sh" client "$dir/mariadb" <"$HERE/$db.sql"
    done
    echo "$pg_port $my_port" >"$dir/ports"
    ;;
  stop)
    dir=$(realpath -m "${1:-${STEWARD_DEMO_DIR:-./demo-estate}}")
    "$ROOT/scripts/mariadb-server.sh" stop "$dir/mariadb"
    "$ROOT/scripts/pg-server.sh" stop "$dir/pg"
    ;;
  dsn)
    dsn_lines "${1:-${STEWARD_DEMO_PG_PORT:-55400}}" "${2:-${STEWARD_DEMO_MARIADB_PORT:-33400}}"
    ;;
  *)
    sed -n '2,15p' "$0"; exit 2 ;;
esac
