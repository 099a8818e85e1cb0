#!/usr/bin/env bash
# Every type the capture agents emit lands in a column of the right type
# with its value intact, in the mirror and in the typed history table alike: PostgreSQL (numeric NaN/huge, float Infinity,
# timestamps incl. infinity, bytea, json, arrays, uuid, interval, enum) and
# MySQL (unsigned bigint, decimal, datetime(6), timestamp, bit, enum/set,
# blob, geometry hex, zero date, json).
set -euo pipefail
source "$(dirname "$0")/lib/wh_lib.sh"
wh_setup warehouse_types 55474

# column|source type|source text|warehouse type|warehouse text (::text, UTC)
PGCASES='n_nan|numeric|NaN|numeric|NaN
n_huge|numeric(40,10)|123456789012345678901234567890.0123456789|numeric(40,10)|123456789012345678901234567890.0123456789
f_inf|double precision|-Infinity|double precision|-Infinity
r|real|1.5|real|1.5
ts_inf|timestamp with time zone|infinity|timestamp with time zone|infinity
ts|timestamp with time zone|2024-02-29 23:59:59.123456+00|timestamp with time zone|2024-02-29 23:59:59.123456+00
tsl|timestamp without time zone|-infinity|timestamp without time zone|-infinity
d|date|2024-01-31|date|2024-01-31
b|bytea|\\x00ff10|bytea|\\x00ff10
j|json|{"a": [1, 2]}|jsonb|{"a": [1, 2]}
jb|jsonb|{"b": null}|jsonb|{"b": null}
arr|text[]|{a,"b c",NULL}|text[]|{a,"b c",NULL}
iarr|integer[]|{1,2,3}|integer[]|{1,2,3}
u|uuid|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|uuid|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11
iv|interval|1 day 02:03:04|interval|1 day 02:03:04
e|mood|happy|text|happy
bo|boolean|t|boolean|true
vc|character varying(5)|héllo|character varying(5)|héllo
tx|text|ünïcode ✓ 𝄞|text|ünïcode ✓ 𝄞
bits|bit varying(8)|1010|bit varying(8)|1010'
MYCASES='ubig|bigint(20) unsigned|18446744073709551615|numeric(20,0)|18446744073709551615
dec|decimal(12,2)|-1234567890.12|numeric(12,2)|-1234567890.12
dt|datetime(6)|2024-05-06 07:08:09.123456|timestamp(6) without time zone|2024-05-06 07:08:09.123456
tsu|timestamp(3)|2024-05-06 07:08:09.123|timestamp(3) with time zone|2024-05-06 07:08:09.123+00
zero|datetime|0000-00-00 00:00:00|timestamp(0) without time zone|
bt|bit(4)|b'\''0101'\''|bit varying(4)|0101
en|enum('\''a'\'','\''b'\'')|b|text|b
st|set('\''x'\'','\''y'\'')|x,y|text|x,y
bl|blob|\\x6869|bytea|\\x6869
geo|geometry|0101000000000000000000F03F0000000000000040|bytea|\\x0101000000000000000000f03f0000000000000040
tm|time(6)|-12:30:00.5|interval|-12:30:00.5
ui|int(10) unsigned|4294967295|bigint|4294967295
t1|tinyint(1)|1|smallint|1
js|json|{"k": "v"}|jsonb|{"k": "v"}
yr|year(4)|2024|smallint|2024'

mkjson() {  # kind table cases
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
kind, table, cases = sys.argv[1], sys.argv[2], sys.argv[3]
after, types = {"id": "1"}, {"id": "integer" if kind == "postgresql" else "int(11)"}
for line in cases.splitlines():
    col, st, txt, _, _ = line.split("|")
    after[col] = txt.replace("\\\\", "\\")
    types[col] = st
rec = {"source": "src", "source_kind": kind, "database": "db", "table": "db." + table,
       "key": {"id": "1"}, "types": types}
print(json.dumps(dict(rec, op="insert", after=after)))
print(json.dumps(dict(rec, op="delete", before=after)))
PY
}
{ mkjson postgresql pgtypes "$PGCASES"; mkjson mysql mytypes "$MYCASES"; } >"$T/types.jsonl"
"$GEN" --out "$T/log" --json "$T/types.jsonl"
"$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --once --log-level warn

check() {  # table cases [where]
  local table=$1 cases=$2 where=${3:-} bad=0
  while IFS='|' read -r col st txt wtype wtext; do
    wtext=${wtext//\\\\/\\}
    got_type=$(q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'steward.src__$table'::regclass AND attname = '$col'")
    got=$(q "SELECT coalesce($col::text, '') FROM steward.src__$table $where")
    if [[ $got_type != "$wtype" || $got != "$wtext" ]]; then
      echo "  $table.$col ($st): got $got_type '$got', want $wtype '$wtext'" >&2; bad=1
    fi
  done <<<"$cases"
  return $bad
}
check pgtypes "$PGCASES" || fail "PostgreSQL types"
check mytypes "$MYCASES" || fail "MySQL types"
check pgtypes__history "$PGCASES" "WHERE _steward_op = 'insert'" || fail "PostgreSQL types in history"
check mytypes__history "$MYCASES" "WHERE _steward_op = 'insert'" || fail "MySQL types in history"
# a delete's history row holds the row as it was (the before image), typed
check pgtypes__history "$PGCASES" "WHERE _steward_op = 'delete'" || fail "PostgreSQL types in a deleted row's history"
check mytypes__history "$MYCASES" "WHERE _steward_op = 'delete'" || fail "MySQL types in a deleted row's history"
[[ $(q "SELECT string_agg(_steward_op || ':' || id, ',' ORDER BY _steward_position) FROM steward.src__pgtypes__history") == insert:1,delete:1 ]] || fail "history rows"
# History rows go as COPY BINARY when every column of the history table has
# a binary encoder; a value not in a form the encoders take sends the rest
# of that batch's rows of the table as text.  Load the same changes both
# ways (STEWARD_WAREHOUSE_TEXT_COPY=1: text only) and require equal tables,
# history and mirror, plain and SCD2.
python3 - >"$T/bin.jsonl" <<'PY'
import json
types = {"id": "integer", "i2": "smallint", "i8": "bigint", "n": "numeric", "n2": "numeric(12,2)",
         "n40": "numeric(40,10)", "bo": "boolean", "tx": "text", "vc": "character varying(5)",
         "ch": "character(3)", "j": "json", "jb": "jsonb", "by": "bytea", "d": "date",
         "tz": "timestamp with time zone", "tz3": "timestamp(3) with time zone",
         "tl": "timestamp without time zone", "tl0": "timestamp(0) without time zone", "u": "uuid"}
rows = [
  {"i2": "-32768", "i8": "9223372036854775807", "n": "12.50", "n2": "-1234567890.125", "n40": "0.0000000001",
   "bo": "t", "tx": "tab\there \\ \"q\" ünï 𝄞\nline", "vc": "héllo", "ch": "ab", "j": "{\"a\": [1, 2]}",
   "jb": "{\"b\": null}", "by": "\\x00ff10", "d": "2024-02-29", "tz": "2024-02-29 23:59:59.123456+05:30",
   "tz3": "2024-05-06 07:08:09.1235+00", "tl": "0001-01-01 00:00:00", "tl0": "2024-05-06 07:08:09.5",
   "u": "A0EEBC99-9c0b-4ef8-bb6d-6bb9bd380a11"},
  {"i2": "32767", "i8": "-9223372036854775808", "n": "-0.00", "n2": "0.005", "n40": "NaN", "bo": "false",
   "tx": "", "vc": "", "ch": "abc", "j": "[]", "jb": "[1, \"x\"]", "by": "\\x", "d": "9999-12-31",
   "tz": "1969-12-31 23:59:59.999999-00:30", "tz3": "2000-01-01 00:00:00", "tl": "9999-12-31 23:59:59.999999",
   "tl0": "1999-12-31 23:59:59.4", "u": "00000000-0000-0000-0000-000000000000"},
  {"n": "Infinity", "n2": "99.99", "tx": None, "d": "0001-01-01", "tz": "0001-01-01 00:00:00+15:59:59"},
  {"n": "-Infinity", "n2": "-99.995", "n40": "123456789012345678901234567890.0123456789"},
  # forms the encoders leave to the server: the rest of this table's rows go as text
  {"n": "1e3", "bo": "yes", "d": "infinity", "tz": "-infinity", "i8": " 42 "},
  {"n": "5", "tz": "2024-01-01 00:00:01+00"},
]
key = {"id": None}
for i, r in enumerate(rows, 1):
    after = {c: None for c in types}
    after.update(r)
    after["id"] = str(i)
    rec = {"source": "src", "source_kind": "postgresql", "database": "db", "table": "db.bintypes",
           "key": {"id": str(i)}, "types": types}
    print(json.dumps(dict(rec, op="insert", after=after)))
    upd = dict(after, n2="1.00", tx="updated")
    print(json.dumps(dict(rec, op="update", before=after, after=upd)))
    if i % 2:
        print(json.dumps(dict(rec, op="delete", before=upd)))
PY
"$GEN" --out "$T/binlog" --json "$T/bin.jsonl"
for mode in "" --scd2; do
  s=bin${mode:+_scd2}
  # batches of 5 changes: the first two all binary, the third falls back to text
  STEWARD_DEBUG=warehouse "$STEWARD_BIN" apply --log "$T/binlog" --warehouse "$DSN" --warehouse-schema "$s" $mode --once \
    --batch 5 --log-level debug 2>"$T/$s.err"
  grep -q 'src__bintypes__history.*: COPY binary' "$T/$s.err" || fail "$s: history not written as COPY BINARY"
  grep -q 'direct copy into .*src__bintypes.*: COPY binary' "$T/$s.err" || fail "$s: mirror not written as COPY BINARY"
  STEWARD_WAREHOUSE_TEXT_COPY=1 "$STEWARD_BIN" apply --log "$T/binlog" --warehouse "$DSN" \
    --warehouse-schema "${s}_text" $mode --once --batch 5 --log-level warn
  for tbl in src__bintypes__history src__bintypes; do
    n=$(q "SELECT count(*) FROM $s.$tbl")
    # rows as text: json has no equality operator
    d1=$(q "SELECT count(*) FROM (SELECT r::text FROM $s.$tbl r EXCEPT ALL SELECT r::text FROM ${s}_text.$tbl r) x")
    d2=$(q "SELECT count(*) FROM (SELECT r::text FROM ${s}_text.$tbl r EXCEPT ALL SELECT r::text FROM $s.$tbl r) x")
    [[ $n -gt 0 && $d1 == 0 && $d2 == 0 ]] || fail "$s.$tbl: binary and text loads differ ($n rows, $d1 / $d2 not in the other)"
  done
done
[[ $(q "SELECT count(*) FROM bin.src__bintypes__history") == 15 ]] || fail "bintypes history rows"
[[ $(q "SELECT n2::text || ' ' || tz::text FROM bin.src__bintypes__history WHERE id = 1 AND _steward_op = 'insert'") == "-1234567890.13 2024-02-29 18:29:59.123456+00" ]] || fail "binary values"
# a value the server rejects fails the batch with the server's error, as with text COPY
printf '%s\n' '{"source": "src", "source_kind": "postgresql", "database": "db", "table": "db.bintypes", "key": {"id": "9"}, "types": {"id": "integer", "i2": "smallint"}, "op": "insert", "after": {"id": "9", "i2": "99999"}}' >"$T/bad.jsonl"
"$GEN" --out "$T/badlog" --json "$T/bad.jsonl"
if "$STEWARD_BIN" apply --log "$T/badlog" --warehouse "$DSN" --warehouse-schema binbad --mode history --once --log-level warn 2>"$T/bad.err"; then
  fail "an out-of-range smallint was applied"
fi
grep -q 'out of range for type smallint' "$T/bad.err" || { cat "$T/bad.err" >&2; fail "no server error for a bad value"; }
echo "warehouse_types: ok"
