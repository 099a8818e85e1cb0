#!/usr/bin/env bash
# Throw-away PostgreSQL 15 for tests, benchmarks and the demo.
#
#   scripts/pg-server.sh start DIR PORT   initdb (once) and start on 127.0.0.1:PORT
#   scripts/pg-server.sh stop DIR         stop it (fast shutdown)
#   scripts/pg-server.sh dsn PORT [DB]    print a libpq URI for the test superuser
#
# PG_TEMPLATE_DIR=DIR: run initdb once into DIR and copy its result for each
# new server (initdb costs seconds; a copy, a fraction of one).
#
# The server runs as the `postgres` user because PostgreSQL refuses root.
# It listens only on 127.0.0.1, allows replication connections, and uses
# wal_level=logical.  Authentication is trust on loopback: test data only.
set -euo pipefail
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-}
case "$cmd" in
  start)
    dir=$2 port=$3
    mkdir -p "$(dirname "$dir")"
    # The server runs as its own user, which must be able to reach the data
    # directory: make each parent directory traversable (search only, no read).
    if [[ $(id -u) -eq 0 ]]; then
      d=$(realpath -m "$(dirname "$dir")")
      while [[ $d != / ]]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
    fi
    if [[ ! -s "$dir/PG_VERSION" ]]; then
      if [[ $(id -u) -eq 0 ]]; then install -d -o postgres -g postgres -m 700 "$dir"; else install -d -m 700 "$dir"; fi
      if [[ -n ${PG_TEMPLATE_DIR:-} ]]; then
        # initdb once into the template (under a lock: tests start in
        # parallel; into a temporary name, so an interrupted initdb is never
        # taken for a template), then copy it
        tpl=$(realpath -m "$PG_TEMPLATE_DIR")
        mkdir -p "$tpl"
        if [[ $(id -u) -eq 0 ]]; then
          d=$tpl
          while [[ $d != / ]]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
        fi
        (
          flock 9
          if [[ ! -s "$tpl/data/PG_VERSION" ]]; then
            rm -rf "$tpl/data" "$tpl/data.new"
            if [[ $(id -u) -eq 0 ]]; then install -d -o postgres -g postgres -m 700 "$tpl/data.new"; else install -d -m 700 "$tpl/data.new"; fi
            as_pg "$PGBIN/initdb" -D "$tpl/data.new" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
            mv "$tpl/data.new" "$tpl/data"
          fi
          cp -a "$tpl/data/." "$dir/"
        ) 9>"$tpl/.lock"
      else
        as_pg "$PGBIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
      fi
      cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
fsync = on
synchronous_commit = on
shared_buffers = 128MB
max_wal_size = 4GB
wal_sender_timeout = 60s
log_min_messages = warning
CONF
      cat >"$dir/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
local replication all trust
HBA
    fi
    if as_pg "$PGBIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      exit 0
    fi
    as_pg "$PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 -o "-p $port" start >/dev/null
    ;;
  stop)
    dir=$2
    if [[ -d "$dir" ]] && as_pg "$PGBIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      as_pg "$PGBIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    fi
    ;;
  dsn)
    echo "postgresql://postgres@127.0.0.1:$2/${3:-postgres}"
    ;;
  *)
    sed -n '2,15p' "$0"; exit 2 ;;
esac
