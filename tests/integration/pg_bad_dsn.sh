#!/usr/bin/env bash
# A bad DSN gives a clear error and a non-zero exit, and the password never
# appears in what capture prints: wrong password, unknown database, nothing
# listening, and a malformed connection string.
source "$(dirname "$0")/lib/pg_lib.sh"
pg_setup pg_bad_dsn 55405
SECRET=s3cretPW42

pg_sql -c "SET password_encryption = 'scram-sha-256'; CREATE ROLE app LOGIN PASSWORD 'rightpw'"
# Password authentication for app, ahead of the trust lines.
sed -i "1i host all app 127.0.0.1/32 scram-sha-256\nhost replication app 127.0.0.1/32 scram-sha-256" "$PGDIR/pg_hba.conf"
pg_sql -c "SELECT pg_reload_conf()" >/dev/null

expect_error() {  # name expected-exit pattern dsn
  local name=$1 want=$2 pattern=$3 dsn=$4 rc=0
  "$STEWARD" capture --dsn "$dsn" --data-dir "$DIR/log_$name" >"$DIR/$name.out" 2>&1 || rc=$?
  [[ $rc == "$want" ]] || fail "$name: exit $rc, expected $want: $(cat "$DIR/$name.out")"
  grep -q -E -- "$pattern" "$DIR/$name.out" || fail "$name: message lacks \"$pattern\": $(cat "$DIR/$name.out")"
  if grep -q "$SECRET" "$DIR/$name.out"; then fail "$name: password leaked: $(cat "$DIR/$name.out")"; fi
  echo "ok: $name: $(head -1 "$DIR/$name.out")"
}
expect_error wrong_password 69 "password authentication failed" \
  "postgresql://app:$SECRET@127.0.0.1:$PORT/postgres"
expect_error wrong_password_kv 69 "password authentication failed" \
  "host=127.0.0.1 port=$PORT dbname=postgres user=app password=$SECRET"
expect_error no_database 69 'nosuchdb.* does not exist' \
  "postgresql://postgres:$SECRET@127.0.0.1:$PORT/nosuchdb"
expect_error nothing_listening 69 "could not connect" \
  "postgresql://postgres:$SECRET@127.0.0.1:1/postgres"
expect_error malformed 78 "invalid connection string" \
  "host=127.0.0.1 password='$SECRET"
expect_error bad_uri 78 "invalid connection string" \
  "postgresql://postgres:$SECRET@127.0.0.1:$PORT/postgres?nosuchoption=1"
# A usage error is exit 2.
rc=0; "$STEWARD" capture --data-dir "$DIR/x" >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "missing --dsn: exit $rc, expected 2"

# A running agent's process title (ps, /proc/PID/cmdline) masks the password
# of the DSN on its command line; postgres logs in by trust, so it streams.
"$STEWARD" capture --dsn "postgresql://postgres:$SECRET@127.0.0.1:$PORT/postgres" \
  --data-dir "$DIR/log_title" >"$DIR/title.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [[ -d "$DIR/log_title" ]] && break; sleep 0.1; done; sleep 0.5
kill -0 "$pid" 2>/dev/null || fail "capture with a password DSN exited: $(cat "$DIR/title.out")"
title=$(tr '\0' ' ' <"/proc/$pid/cmdline")
kill "$pid"; wait "$pid" || true
if grep -q "$SECRET" <<<"$title"; then fail "password in the process title: $title"; fi
grep -q "postgresql://postgres:\*\{10\}@127.0.0.1" <<<"$title" || fail "process title not masked as expected: $title"
if grep -q "$SECRET" "$DIR/title.out"; then fail "password in the agent's output"; fi
echo "ok: process title: $title"
