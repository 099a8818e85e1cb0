#!/usr/bin/env bash
# `steward capture --check` changes nothing, exits 0 on a well-configured
# server, and on a misconfigured one prints one line per problem with the
# SQL to fix it and exits 3.
source "$(dirname "$0")/lib/pg_lib.sh"
pg_setup pg_check 55406

pg_sql -c "CREATE TABLE good (id int PRIMARY KEY)"
"$STEWARD" capture --check --dsn "$DSN" >"$DIR/clean.out" 2>&1 || fail "clean check: $(cat "$DIR/clean.out")"
grep -q "no problems found" "$DIR/clean.out" || fail "clean check output: $(cat "$DIR/clean.out")"
[[ $(pg_sql -c "SELECT count(*) FROM pg_replication_slots") == 0 ]] || fail "--check created a slot"
[[ $(pg_sql -c "SELECT count(*) FROM pg_publication") == 0 ]] || fail "--check created a publication"

pg_sql -c "CREATE TABLE nopk (a int)"
pg_sql -c "CREATE ROLE weak LOGIN"
pg_sql -c "ALTER SYSTEM SET wal_level = replica"
pg_sql -c "ALTER SYSTEM SET max_replication_slots = 1"
bash "$STEWARD_SOURCE_DIR/scripts/pg-server.sh" stop "$PGDIR"
bash "$STEWARD_SOURCE_DIR/scripts/pg-server.sh" start "$PGDIR" "$PORT"
pg_sql -c "SELECT pg_create_physical_replication_slot('other')" >/dev/null

rc=0
"$STEWARD" capture --check --dsn "postgresql://weak@127.0.0.1:$PORT/postgres" --publication pubx \
  >"$DIR/bad.out" 2>&1 || rc=$?
cat "$DIR/bad.out"
[[ $rc == 3 ]] || fail "misconfigured check: exit $rc, expected 3"
grep -q "problem: wal_level is \"replica\".*ALTER SYSTEM SET wal_level = logical" "$DIR/bad.out" || fail "wal_level line"
grep -q "problem: role \"weak\" lacks the REPLICATION attribute.*ALTER ROLE \"weak\" WITH REPLICATION" "$DIR/bad.out" || fail "role line"
grep -q "problem: no free replication slot.*max_replication_slots" "$DIR/bad.out" || fail "slots line"
grep -q "problem: publication \"pubx\" does not exist.*CREATE PUBLICATION" "$DIR/bad.out" || fail "publication line"
grep -q "problem: table \"public.nopk\" has no primary key.*ALTER TABLE.*nopk.* REPLICA IDENTITY FULL" "$DIR/bad.out" || fail "nopk line"
pg_sql -c "SELECT pg_drop_replication_slot('other')" >/dev/null
pg_sql -c "ALTER SYSTEM RESET wal_level"
pg_sql -c "ALTER SYSTEM RESET max_replication_slots"
