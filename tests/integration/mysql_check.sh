#!/usr/bin/env bash
# `steward capture --check` on a misconfigured server reports one line per
# problem and exits 3, then 0 once fixed; a bad DSN is a configuration
# error that never prints the password; a statement-format change stops
# the agent with a clear error instead of being skipped.
set -euo pipefail
source "$(dirname "$0")/lib/mysql_lib.sh"
mysql_setup mysql_check 33404

sql <<'SQL'
SET GLOBAL binlog_format = 'MIXED';
SET GLOBAL binlog_row_image = 'MINIMAL';
SET GLOBAL binlog_row_metadata = 'MINIMAL';
CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'S3cret-pw';
GRANT SELECT ON mysql.* TO 'weak'@'127.0.0.1';
SQL
WEAK="mysql://weak:S3cret-pw@127.0.0.1:$PORT/app"
rc=0
"$STEWARD_BIN" capture --dsn "$WEAK" --check --server-id 1 >"$WORK/check.out" 2>&1 || rc=$?
cat "$WORK/check.out"
[[ $rc -eq 3 ]] || fail "--check exited $rc, want 3"
for want in "binlog_format is MIXED" "binlog_row_image is MINIMAL" "binlog_row_metadata is MINIMAL" \
            "equals the server's own server_id" "REPLICATION SLAVE" "BINLOG MONITOR" "SELECT on app"; do
  grep -q "$want" "$WORK/check.out" || fail "--check did not report: $want"
done
grep -q "GRANT REPLICATION SLAVE ON \*\.\* TO 'weak'" "$WORK/check.out" || fail "no fix statement"
! grep -q "S3cret-pw" "$WORK/check.out" || fail "password printed"

sql <<'SQL'
SET GLOBAL binlog_format = 'ROW';
SET GLOBAL binlog_row_image = 'FULL';
SET GLOBAL binlog_row_metadata = 'FULL';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'weak'@'127.0.0.1';
GRANT SELECT ON app.* TO 'weak'@'127.0.0.1';
SQL
"$STEWARD_BIN" capture --dsn "$WEAK" --check >"$WORK/check2.out" 2>&1 || { cat "$WORK/check2.out"; fail "--check on a fixed server"; }
grep -q "^ok: MariaDB server" "$WORK/check2.out" || fail "no ok line"

# bad DSNs: configuration errors (78), unreachable server (69); never the password
rc=0; "$STEWARD_BIN" capture --dsn "mysql://weak:S3cret-pw@127.0.0.1:notaport/app" --data-dir "$WORK/x" >"$WORK/bad.out" 2>&1 || rc=$?
[[ $rc -eq 78 ]] || { cat "$WORK/bad.out"; fail "bad port exited $rc, want 78"; }
grep -q "bad port" "$WORK/bad.out" || fail "bad port message"
! grep -q "S3cret-pw" "$WORK/bad.out" || fail "password printed for a bad DSN"
rc=0; "$STEWARD_BIN" capture --dsn "mysql://weak:wrong-pw@127.0.0.1:$PORT/app" --data-dir "$WORK/x" >"$WORK/auth.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || fail "a wrong password succeeded"
grep -q "Access denied" "$WORK/auth.out" || { cat "$WORK/auth.out"; fail "no access-denied message"; }
! grep -q "wrong-pw" "$WORK/auth.out" || fail "password printed"

# statement-format events are an error naming the fix, and nothing after them is skipped
sql app -e "CREATE TABLE t (id int primary key, v int); INSERT INTO t VALUES (1, 1)"
capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>"$WORK/c1.log"
sql app -e "SET SESSION binlog_format = 'STATEMENT'; INSERT INTO t VALUES (2, 2)"
rc=0; capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>"$WORK/c2.log" || rc=$?
cat "$WORK/c2.log"
[[ $rc -eq 65 ]] || fail "statement-format event: exit $rc, want 65"
grep -q "statement-format event" "$WORK/c2.log" || fail "no statement-format message"
grep -q "binlog_format=ROW" "$WORK/c2.log" || fail "no fix in the statement-format message"

# A damaged event in the binlog file stops the agent with an error naming
# the checksum, whether steward checks event checksums itself
# (master_verify_checksum=OFF) or the server does (ON), and nothing of the
# damaged transaction reaches the change log.
sql app -e "CREATE TABLE dmg (id int primary key, v varchar(40))"
read -r DFILE DPOS < <(sql -N -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
sql app -e "INSERT INTO dmg VALUES (1, 'intact-marker-xyz')"
DEND=$(end_pos)
python3 - "$SRV/data/$DFILE" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
i = b.rfind(b'intact-marker-xyz')
assert i > 0, 'marker not in the binlog'
b[i] ^= 0x20   # 'i' -> 'I': the event's CRC32 no longer matches
open(p, 'r+b').write(b)
PY
for verify in OFF ON; do
  sql -e "SET GLOBAL master_verify_checksum = $verify"
  rm -rf "$WORK/dmg"; mkdir -p "$WORK/dmg"
  echo "$DFILE $DPOS" >"$WORK/dmg/mysql-resume"
  rc=0; timeout 60 "$STEWARD_BIN" capture --dsn "$DSN" --data-dir "$WORK/dmg" --endpos "$DEND" \
    --log-level info >"$WORK/dmg.out" 2>&1 || rc=$?
  cat "$WORK/dmg.out"
  [[ $rc -eq 65 ]] || fail "damaged binlog event (server verify $verify): exit $rc, want 65"
  grep -q "failed its checksum: the server's binlog file is damaged" "$WORK/dmg.out" ||
    fail "no damaged-binlog message (server verify $verify)"
  if [[ $verify == ON ]]; then want="the server"; else want="steward"; fi
  grep -q "event checksums verified by $want" "$WORK/dmg.out" || fail "checksums not verified by $want"
  ! "$STEWARD_BIN" log dump -d "$WORK/dmg" 2>/dev/null | grep -q "marker" || fail "damaged row logged"
done
sql -e "SET GLOBAL master_verify_checksum = OFF"
echo "mysql_check: ok"
