#!/usr/bin/env bash
# Every DML kind and every listed column type arrives intact: the table state
# rebuilt from the change log equals SELECT * (text forms), through a
# snapshot, inserts/updates/deletes, REPLICA IDENTITY FULL/INDEX before
# images, unchanged TOAST columns, ALTER TABLE mid-stream, TRUNCATE and
# logical decoding messages.
source "$(dirname "$0")/lib/pg_lib.sh"
pg_setup pg_types_dml 55401

pg_sql <<'SQL'
CREATE EXTENSION hstore;
CREATE EXTENSION citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a integer, b text);
CREATE TABLE all_types (
  id bigint PRIMARY KEY, i2 smallint, i4 integer, n numeric, n2 numeric(12,2),
  f4 real, f8 double precision, t text, vc varchar(20), c char(3), b bytea, ok boolean,
  d date, tm time, tmtz time with time zone, ts timestamp, tstz timestamptz, iv interval,
  u uuid, j json, jb jsonb, ia integer[], ta text[], m mood, p posint, cp pair,
  h hstore, ci citext);
CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE full_ident (a int, b text);
ALTER TABLE full_ident REPLICA IDENTITY FULL;
CREATE TABLE idx_ident (a int NOT NULL, b text NOT NULL, c text);
CREATE UNIQUE INDEX idx_ident_ab ON idx_ident (a, b);
ALTER TABLE idx_ident REPLICA IDENTITY USING INDEX idx_ident_ab;
CREATE TABLE evolving (id int PRIMARY KEY, a text);
INSERT INTO all_types VALUES
 (1, -32768, 2147483647, 'NaN', 12.34, 'Infinity', '-Infinity', E'tab\there\nnewline \\ back', 'v', 'ab',
  '\x00ff10', true, 'infinity', '23:59:59.999999', '12:00+05:30', '-infinity', 'infinity',
  '1 year 2 mons -3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}',
  '{"b": null, "a": 1}', '{1,NULL,3}', '{"x y","q\"uote",NULL}', 'happy', 7, '(1,"hi there")',
  'a=>1, "b c"=>NULL', 'MiXeD');
INSERT INTO docs VALUES (1, 'first', repeat('long body ', 5000));
INSERT INTO evolving VALUES (1, 'one');
SQL

capture_run --endpos "$(pg_endpos)"
grep -q "snapshot complete" "$DIR/capture.log" || fail "no snapshot completion line"

pg_sql >/dev/null <<'SQL'
INSERT INTO all_types VALUES
 (2, 0, NULL, '123456789012345678901234567890.123456789012345678901234567890', NULL, 'NaN', 1e308,
  'Zoë 日本語 😀 ‮', '', NULL, '\x', false, '2000-02-29', '00:00', NULL, '1999-12-31 23:59:59.5',
  '2024-03-10 02:30:00+00', '-178000000 years', NULL, '[]', '[{"deep": {"x": "é"}}]', '{}', '{{a,b},{c,d}}',
  'sad', 1, '(,)', '', 'ÄÖü');
UPDATE all_types SET n = 'Infinity', t = NULL, tstz = '-infinity' WHERE id = 1;
INSERT INTO all_types (id) VALUES (3);
DELETE FROM all_types WHERE id = 3;
UPDATE docs SET title = 'renamed' WHERE id = 1;
INSERT INTO docs VALUES (2, 'second', repeat('x', 100000));
INSERT INTO full_ident VALUES (1, 'a'), (2, 'b');
UPDATE full_ident SET b = 'bb' WHERE a = 2;
DELETE FROM full_ident WHERE a = 1;
INSERT INTO idx_ident VALUES (1, 'k', 'v1');
UPDATE idx_ident SET c = 'v2' WHERE a = 1;
UPDATE idx_ident SET b = 'k2' WHERE a = 1;
SELECT pg_logical_emit_message(true, 'steward.test', 'in a transaction');
SELECT pg_logical_emit_message(false, 'steward.test', 'outside');
INSERT INTO evolving VALUES (2, 'two');
ALTER TABLE evolving ADD COLUMN b numeric(5,1);
INSERT INTO evolving VALUES (3, 'three', 3.5);
ALTER TABLE evolving DROP COLUMN a;
UPDATE evolving SET b = 9.5 WHERE id = 1;
ALTER TABLE evolving ALTER COLUMN b TYPE text;
INSERT INTO evolving VALUES (4, 'four');
CREATE TABLE gone (id int PRIMARY KEY);
INSERT INTO gone VALUES (1), (2);
TRUNCATE gone;
INSERT INTO gone VALUES (3);
SQL

capture_run --endpos "$(pg_endpos)"

pg_state_check --tables public.all_types,public.docs,public.full_ident,public.idx_ident,public.evolving,public.gone

D=$DIR/dump.jsonl
# Unchanged TOAST: the title-only update lists body as unchanged, never null.
jq -e -s '[.[] | select(.table == "public.docs" and .op == "update")][0]
  | (.unchanged == ["body"]) and (.after | has("body") | not)' "$D" >/dev/null \
  || fail "docs update does not mark body unchanged: $(grep '"public.docs","op":"update"' "$D")"
# Before images: FULL sends the old row, INDEX the key columns only.
jq -e -s '[.[] | select(.table == "public.full_ident" and .op == "update")][0].before == {"a":"2","b":"b"}' "$D" >/dev/null \
  || fail "full identity before image"
jq -e -s '[.[] | select(.table == "public.idx_ident" and .op == "update")][1].before == {"a":"1","b":"k"}' "$D" >/dev/null \
  || fail "index identity before image"
jq -e -s '[.[] | select(.table == "public.idx_ident")][0].key == {"a":"1","b":"k"}' "$D" >/dev/null \
  || fail "index identity key columns"
# Type names are format_type() output.
jq -e -s '[.[] | select(.table == "public.all_types" and .op == "insert")][0].types
  | .n2 == "numeric(12,2)" and .tstz == "timestamp with time zone" and .ta == "text[]"
    and .m == "mood" and .h == "hstore" and .p == "posint" and .vc == "character varying(20)"' "$D" >/dev/null \
  || fail "type names: $(jq -c -s '[.[] | select(.op == "insert")][0].types' "$D")"
# ALTER TABLE mid-stream: the new column type shows up from the right change on.
jq -e -s '[.[] | select(.table == "public.evolving" and .op == "insert")] | (.[1].types.b == "numeric(5,1)") and (.[2].types.b == "text")' "$D" >/dev/null \
  || fail "relation changes mid-stream"
# Truncate and messages.
jq -e -s '[.[] | select(.op == "truncate")][0].truncated_tables == ["public.gone"]' "$D" >/dev/null \
  || fail "truncate record: $(grep truncate "$D")"
[[ $(jq -s '[.[] | select(.op == "message")] | length' "$D") == 2 ]] || fail "two message records expected"
