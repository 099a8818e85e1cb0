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
echo "mysql_check: ok"
