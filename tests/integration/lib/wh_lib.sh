# wh_lib.sh — set-up shared by the warehouse scenarios: source it, then call
#   wh_setup NAME PORT
# which starts a scratch PostgreSQL warehouse on 127.0.0.1:PORT under
# $STEWARD_BUILD_DIR/tmp/NAME and sets T (the scenario's directory), GEN
# (steward_loggen), PG (scripts/pg-server.sh) and DSN.  The server is
# stopped on exit; a scenario that starts processes of its own defines
# wh_cleanup_extra to end them first.
# Also defines q SQL (one statement, unaligned, UTC) and fail MESSAGE.
: "${STEWARD_BIN:?}" "${STEWARD_SOURCE_DIR:?}" "${STEWARD_BUILD_DIR:?}"

wh_setup() {  # NAME PORT
  T=$STEWARD_BUILD_DIR/tmp/$1
  GEN=$STEWARD_BUILD_DIR/tests/steward_loggen
  PG=$STEWARD_SOURCE_DIR/scripts/pg-server.sh
  trap wh_cleanup EXIT
  bash "$PG" stop "$T/pg" 2>/dev/null || true
  rm -rf "$T" && mkdir -p "$T"
  bash "$PG" start "$T/pg" "$2"
  DSN=$(bash "$PG" dsn "$2")
}

wh_cleanup() {
  if declare -F wh_cleanup_extra >/dev/null; then wh_cleanup_extra || true; fi
  bash "$PG" stop "$T/pg" || true
}

q() { PGTZ=UTC psql -X -q -At -v ON_ERROR_STOP=1 "$DSN" -c "$1"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
