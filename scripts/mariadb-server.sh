#!/usr/bin/env bash
# Throw-away MariaDB 10.11 for tests, benchmarks and the demo.
#
#   scripts/mariadb-server.sh start DIR PORT [SERVER_ID] [OPTION=VALUE...]
#                                                         install (once) and start on 127.0.0.1:PORT;
#                                                         each OPTION=VALUE is added to [mariadbd] after
#                                                         the defaults, so it overrides them, e.g.
#                                                         binlog_row_metadata=MINIMAL ssl_cert=FILE
#   scripts/mariadb-server.sh stop DIR                    stop it
#   scripts/mariadb-server.sh client DIR [ARGS...]        run the mariadb client as root (unix socket)
#   scripts/mariadb-server.sh dsn PORT [DB]               print a mysql:// URI for the test user
#
# MARIADB_TEMPLATE_DIR=DIR: install the system tables once into DIR and copy
# them for each new server (much faster for test suites).
#
# Row-based binlog with full images and full metadata, as Steward expects.
# A TCP user steward/steward with every privilege is created for tests
# (root@localhost only accepts unix-socket logins).
set -euo pipefail

as_mysql() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u mysql -- "$@"; else "$@"; fi
}

cmd=${1:-}
case "$cmd" in
  start)
    dir=$(realpath -m "$2") port=$3 sid=${4:-1}
    shift $(( $# < 4 ? $# : 4 ))
    extra=("$@")
    mkdir -p "$dir"
    # The server runs as its own user, which must be able to reach the data
    # directory: make each parent directory traversable (search only, no read).
    if [[ $(id -u) -eq 0 ]]; then
      d=$(realpath -m "$(dirname "$dir")")
      while [[ $d != / ]]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
    fi
    [[ $(id -u) -eq 0 ]] && chown mysql:mysql "$dir"
    cat >"$dir/my.cnf" <<CNF
[mariadbd]
datadir=$dir/data
socket=$dir/mysqld.sock
pid-file=$dir/mysqld.pid
port=$port
bind-address=127.0.0.1
server_id=$sid
log_bin=$dir/data/mysql-bin
binlog_format=ROW
binlog_row_image=FULL
binlog_row_metadata=FULL
binlog_checksum=CRC32
character_set_server=utf8mb4
collation_server=utf8mb4_general_ci
default_time_zone='+00:00'
innodb_buffer_pool_size=256M
innodb_flush_log_at_trx_commit=1
sync_binlog=1
max_allowed_packet=256M
skip-name-resolve
log_error=$dir/error.log
CNF
    for opt in "${extra[@]}"; do
      [[ $opt == *=* || $opt =~ ^[A-Za-z_-]+$ ]] || { echo "bad server option \"$opt\" (want NAME=VALUE)" >&2; exit 2; }
      echo "$opt" >>"$dir/my.cnf"
    done
    if [[ ! -d "$dir/data/mysql" && -n ${MARIADB_TEMPLATE_DIR:-} ]]; then
      # install once into the template (under a lock: tests start in
      # parallel; under a temporary name, so an interrupted install is never
      # taken for a template), then copy
      tpl=$(realpath -m "$MARIADB_TEMPLATE_DIR")
      mkdir -p "$tpl"
      [[ $(id -u) -eq 0 ]] && chown mysql:mysql "$tpl"
      (
        flock 9
        if [[ ! -d "$tpl/data/mysql" ]]; then
          rm -rf "$tpl/data" "$tpl/data.new"
          as_mysql mariadb-install-db --no-defaults --datadir="$tpl/data.new" --auth-root-authentication-method=socket \
            --skip-test-db >"$tpl/install.log" 2>&1
          mv "$tpl/data.new" "$tpl/data"
        fi
        cp -a "$tpl/data" "$dir/data"
      ) 9>"$tpl/.lock"
    fi
    if [[ ! -d "$dir/data/mysql" ]]; then
      as_mysql mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=socket \
        --skip-test-db >"$dir/install.log" 2>&1
    fi
    if [[ -S "$dir/mysqld.sock" ]] && mariadb-admin --no-defaults --socket="$dir/mysqld.sock" ping >/dev/null 2>&1; then
      exit 0
    fi
    as_mysql mariadbd --defaults-file="$dir/my.cnf" >/dev/null 2>&1 &
    server_pid=$!
    for _ in $(seq 1 600); do
      if mariadb-admin --no-defaults --socket="$dir/mysqld.sock" ping >/dev/null 2>&1; then break; fi
      # a server that gave up (port in use, bad option) is not waited for
      kill -0 "$server_pid" 2>/dev/null || { tail -5 "$dir/error.log" >&2; exit 1; }
      sleep 0.1
    done
    mariadb-admin --no-defaults --socket="$dir/mysqld.sock" ping >/dev/null
    mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot <<SQL
CREATE USER IF NOT EXISTS 'steward'@'127.0.0.1' IDENTIFIED BY 'steward';
GRANT ALL PRIVILEGES ON *.* TO 'steward'@'127.0.0.1' WITH GRANT OPTION;
SQL
    ;;
  stop)
    dir=$(realpath -m "$2")
    if [[ -S "$dir/mysqld.sock" ]]; then
      mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -uroot shutdown >/dev/null 2>&1 || true
      for _ in $(seq 1 300); do [[ -e "$dir/mysqld.pid" ]] || break; sleep 0.1; done
    fi
    ;;
  client)
    dir=$(realpath -m "$2"); shift 2
    # bounded: a server that dies mid-statement must fail a test, not hang it
    exec timeout 300 mariadb --no-defaults --default-character-set=utf8mb4 --connect-timeout=20 \
      --socket="$dir/mysqld.sock" -uroot "$@"
    ;;
  dsn)
    echo "mysql://steward:steward@127.0.0.1:$2/${3:-}"
    ;;
  *)
    sed -n '2,19p' "$0"; exit 2 ;;
esac
