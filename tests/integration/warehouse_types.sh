#!/usr/bin/env bash
# Every type the capture agents emit lands in a column of the right type
# with its value intact, in the mirror and in the typed history table alike: PostgreSQL (numeric NaN/huge, float Infinity,
# timestamps incl. infinity, bytea, json, arrays, uuid, interval, enum) and
# MySQL (unsigned bigint, decimal, datetime(6), timestamp, bit, enum/set,
# blob, geometry hex, zero date, json).
set -euo pipefail
: "${STEWARD_BIN:?}" "${STEWARD_SOURCE_DIR:?}" "${STEWARD_BUILD_DIR:?}"
PORT=55474
T=$STEWARD_BUILD_DIR/tmp/warehouse_types
GEN=$STEWARD_BUILD_DIR/tests/steward_loggen
PG=$STEWARD_SOURCE_DIR/scripts/pg-server.sh
cleanup() { bash "$PG" stop "$T/pg" || true; }
trap cleanup EXIT
bash "$PG" stop "$T/pg" 2>/dev/null || true
rm -rf "$T" && mkdir -p "$T"
bash "$PG" start "$T/pg" $PORT
DSN=$(bash "$PG" dsn $PORT)
q() { PGTZ=UTC psql -X -q -At -v ON_ERROR_STOP=1 "$DSN" -c "$1"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

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
echo "warehouse_types: ok"
