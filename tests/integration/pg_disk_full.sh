#!/usr/bin/env bash
# Disk full under the change log: the agent stops with a clear error and
# exit 74, acknowledges nothing that is not durable, and after space is
# freed a restart captures everything exactly once.  The data directory is a
# small tmpfs (needs root, as CI runs).
source "$(dirname "$0")/lib/pg_lib.sh"
pg_setup pg_disk_full 55408
if [[ $(id -u) -ne 0 ]]; then echo "SKIP pg_disk_full: mounting a small filesystem needs root"; exit 0; fi
MNT=$DIR/log
mkdir -p "$MNT"
mount -t tmpfs -o size=2m tmpfs "$MNT"
trap 'rc=$?; umount "$MNT" 2>/dev/null || true; (exit $rc); pg_cleanup' EXIT
ROWS=60000
if [[ $SCALE == quick ]]; then ROWS=40000; fi

pg_sql <<'SQL'
CREATE TABLE events (id int PRIMARY KEY, a text, b text);
INSERT INTO events SELECT g, md5(g::text), 'seed' FROM generate_series(1, 100) g;
SQL
capture_run --endpos "$(pg_endpos)"
# Hex digests compress about 2:1, so this does not fit in 2 MB.
pg_sql -c "INSERT INTO events SELECT g, md5(random()::text) || md5(random()::text), md5(g::text) FROM generate_series(101, $ROWS) g"
END=$(pg_endpos)
rc=0
timeout 120 "$STEWARD" capture --dsn "$DSN" --data-dir "$MNT" --status-interval 200 --endpos "$END" \
  >"$DIR/full.log" 2>&1 || rc=$?
[[ $rc == 74 ]] || fail "disk full: exit $rc, expected 74: $(tail -5 "$DIR/full.log")"
grep -qi 'no space left on device' "$DIR/full.log" || fail "disk full message: $(tail -5 "$DIR/full.log")"
# Nothing past the durable log may have been acknowledged: the slot must
# still hold the rows the log does not have.
flushed=$(pg_sql -c "SELECT confirmed_flush_lsn >= '$END' FROM pg_replication_slots WHERE slot_name = 'steward'")
[[ $flushed == f ]] || fail "the slot was acknowledged past data that is not in the log"
# Free space and resume: every row arrives once.
mount -o remount,size=64m "$MNT"
capture_run --endpos "$END"
pg_state_check --tables public.events
