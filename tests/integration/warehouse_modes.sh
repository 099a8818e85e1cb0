#!/usr/bin/env bash
# Warehouse apply, every mode: the mirror equals the source's final state
# (soft and hard deletes), history holds every change exactly once, SCD2
# keeps one open version per live key, truncate is applied, and tables and
# columns with quotes, spaces and Unicode in their names work.
set -euo pipefail
: "${STEWARD_BIN:?}" "${STEWARD_SOURCE_DIR:?}" "${STEWARD_BUILD_DIR:?}"
PORT=55470
T=$STEWARD_BUILD_DIR/tmp/warehouse_modes
GEN=$STEWARD_BUILD_DIR/tests/steward_loggen
PG=$STEWARD_SOURCE_DIR/scripts/pg-server.sh
N=20000; [[ ${STEWARD_TEST_SCALE:-} == quick ]] && N=3000
cleanup() { bash "$PG" stop "$T/pg" || true; }
trap cleanup EXIT
bash "$PG" stop "$T/pg" 2>/dev/null || true
rm -rf "$T" && mkdir -p "$T"
bash "$PG" start "$T/pg" $PORT
DSN=$(bash "$PG" dsn $PORT)
q() { PGTZ=UTC psql -X -q -At -v ON_ERROR_STOP=1 "$DSN" -c "$1"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
COLS='id, name, amount, qty, created_at, active, note, payload'

"$GEN" --out "$T/log" --count $N --shape mixed --seed 7 --expect "$T/expect.txt"

# both modes, soft delete, SCD2
"$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --warehouse-schema wh --scd2 --once --batch 2000
q "COPY (SELECT $COLS FROM wh.gen__items WHERE NOT _steward_deleted ORDER BY id) TO STDOUT" >"$T/got.txt"
cmp -s "$T/expect.txt" "$T/got.txt" || { diff "$T/expect.txt" "$T/got.txt" | head; fail "mirror differs from expected state"; }
[[ $(q "SELECT count(*) FROM wh.gen__items__history") == "$N" ]] || fail "history row count"
[[ $(q "SELECT count(DISTINCT position) FROM wh.gen__items__history") == "$N" ]] || fail "duplicate history rows"
[[ $(q "SELECT count(*) FROM wh.gen__items WHERE _steward_deleted AND _steward_deleted_at IS NULL") == 0 ]] || fail "soft delete without timestamp"
live=$(wc -l <"$T/expect.txt")
[[ $(q "SELECT count(*) FROM wh.gen__items__history WHERE valid_to IS NULL") == "$live" ]] || fail "scd2: open versions != live rows"
[[ $(q "SELECT count(*) FROM (SELECT key FROM wh.gen__items__history WHERE valid_to IS NULL GROUP BY key HAVING count(*) > 1) x") == 0 ]] || fail "scd2: two open versions of a key"
[[ $(q "SELECT count(*) FROM wh.gen__items__history h WHERE op = 'delete' AND valid_to IS NULL") == 0 ]] || fail "scd2: open delete"
[[ $(q "SELECT position_text FROM wh._steward_apply_state WHERE source = 'gen'") != "" ]] || fail "no state row"

# a second run applies nothing more
"$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --warehouse-schema wh --scd2 --once
[[ $(q "SELECT count(*) FROM wh.gen__items__history") == "$N" ]] || fail "re-run duplicated history"

# mirror only, hard delete
"$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --warehouse-schema hard --mode mirror --hard-delete --once --batch 5000
q "COPY (SELECT $COLS FROM hard.gen__items ORDER BY id) TO STDOUT" >"$T/got_hard.txt"
cmp -s "$T/expect.txt" "$T/got_hard.txt" || fail "hard-delete mirror differs"
[[ $(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'hard' AND tablename LIKE '%history'") == 0 ]] || fail "mirror mode made a history table"

# weird identifiers, TOAST-unchanged columns, key change and truncate
cat >"$T/weird.jsonl" <<'JSON'
{"source":"crm","source_kind":"postgresql","database":"crm","table":"Sales Dept.Ünïcode \"Tab\"le","op":"insert","key":{"I d":"1"},"after":{"I d":"1","we\"ird col":"a\tb","Größe ✓":"1.5","big":"x"},"types":{"I d":"integer","we\"ird col":"text","Größe ✓":"numeric","big":"text"}}
{"source":"crm","source_kind":"postgresql","database":"crm","table":"Sales Dept.Ünïcode \"Tab\"le","op":"insert","key":{"I d":"2"},"after":{"I d":"2","we\"ird col":"c","Größe ✓":"2","big":"y"},"types":{"I d":"integer","we\"ird col":"text","Größe ✓":"numeric","big":"text"}}
{"source":"crm","source_kind":"postgresql","database":"crm","table":"Sales Dept.Ünïcode \"Tab\"le","op":"update","key":{"I d":"1"},"after":{"I d":"1","we\"ird col":"changed","Größe ✓":"3"},"unchanged":["big"],"types":{"I d":"integer","we\"ird col":"text","Größe ✓":"numeric"}}
{"source":"crm","source_kind":"postgresql","database":"crm","table":"Sales Dept.Ünïcode \"Tab\"le","op":"update","key":{"I d":"3"},"before":{"I d":"2"},"after":{"I d":"3","we\"ird col":"moved","Größe ✓":"2","big":"y"},"types":{"I d":"integer","we\"ird col":"text","Größe ✓":"numeric","big":"text"}}
{"source":"crm","source_kind":"postgresql","database":"crm","table":"public.gone","op":"insert","key":{"id":"1"},"after":{"id":"1"},"types":{"id":"integer"}}
{"source":"crm","source_kind":"postgresql","database":"crm","table":"public.gone","op":"truncate","truncated_tables":["public.gone"]}
JSON
"$GEN" --out "$T/weird" --json "$T/weird.jsonl"
"$STEWARD_BIN" apply --log "$T/weird" --warehouse "$DSN" --warehouse-schema 'my "wh" ✓' --once
W='"my ""wh"" ✓"."crm__Sales Dept__Ünïcode ""Tab""le"'
got=$(q "SELECT string_agg(concat_ws('|', \"I d\", \"we\"\"ird col\", \"Größe ✓\", big, _steward_deleted), ';' ORDER BY \"I d\") FROM $W")
[[ $got == '1|changed|3|x|f;2|c|2|y|t;3|moved|2|y|f' ]] || fail "weird identifiers / unchanged / key change: got $got"
[[ $(q "SELECT count(*) FROM \"my \"\"wh\"\" ✓\".crm__gone WHERE NOT _steward_deleted") == 0 ]] || fail "truncate not applied"
[[ $(q "SELECT count(*) FROM \"my \"\"wh\"\" ✓\".crm__gone__history WHERE op = 'truncate'") == 1 ]] || fail "truncate not in history"
echo "warehouse_modes: ok"
