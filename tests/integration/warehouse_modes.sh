#!/usr/bin/env bash
# Warehouse apply, every mode: the mirror equals the source's final state
# (soft and hard deletes), history holds every change exactly once as typed
# rows (inserts, updates with their before image and unchanged TOAST
# columns, deletes with the before image or just the key), SCD2 keeps one
# open version per live key and closes superseded and deleted versions,
# truncate is applied, a history table of the earlier typed shape (position
# text, generated correlation id) is still written in its shape, a history
# table of the pre-typed shape is refused by name, and tables and columns with quotes, spaces and Unicode in their
# names work.
set -euo pipefail
source "$(dirname "$0")/lib/wh_lib.sh"
wh_setup warehouse_modes 55470
N=20000; [[ ${STEWARD_TEST_SCALE:-} == quick ]] && N=3000
COLS='id, name, amount, qty, created_at, active, note, payload'

"$GEN" --out "$T/log" --count $N --shape mixed --seed 7 --expect "$T/expect.txt"

# both modes, soft delete, SCD2
"$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --warehouse-schema wh --scd2 --once --batch 2000
q "COPY (SELECT $COLS FROM wh.gen__items WHERE NOT _steward_deleted ORDER BY id) TO STDOUT" >"$T/got.txt"
cmp -s "$T/expect.txt" "$T/got.txt" || { diff "$T/expect.txt" "$T/got.txt" | head; fail "mirror differs from expected state"; }
[[ $(q "SELECT count(*) FROM wh.gen__items__history") == "$N" ]] || fail "history row count"
[[ $(q "SELECT count(DISTINCT _steward_position) FROM wh.gen__items__history") == "$N" ]] || fail "duplicate history rows"
[[ $(q "SELECT count(DISTINCT _steward_correlation_id) FROM wh.gen__items__history WHERE _steward_correlation_id ~ '^gen:[0-9A-F]+/[0-9A-F]+:[0-9]+\$'") == "$N" ]] || fail "correlation id"
[[ $(q "SELECT _steward_correlation_id FROM wh.gen__items__history ORDER BY _steward_position DESC LIMIT 1") == "gen:$(q "SELECT position_text FROM wh._steward_apply_state WHERE source = 'gen'")" ]] || fail "correlation id of the last change is not source:position"
[[ $(q "SELECT count(*) FROM pg_attribute WHERE attrelid = 'wh.gen__items__history'::regclass AND (attgenerated <> '' OR attname = '_steward_position_text')") == 0 ]] || fail "history table has a generated or position text column"
# the last history row of every live key is its mirror row, typed
[[ $(q "SELECT count(*) FROM (SELECT DISTINCT ON (id) * FROM wh.gen__items__history ORDER BY id, _steward_position DESC) h JOIN wh.gen__items m USING (id) WHERE NOT m._steward_deleted AND (h._steward_op = 'delete' OR (h.name, h.amount, h.qty, h.created_at, h.active, h.note, h.payload) IS DISTINCT FROM (m.name, m.amount, m.qty, m.created_at, m.active, m.note, m.payload))") == 0 ]] || fail "history's last version differs from the mirror"
[[ $(q "SELECT count(*) FROM wh.gen__items WHERE _steward_deleted AND _steward_deleted_at IS NULL") == 0 ]] || fail "soft delete without timestamp"
live=$(wc -l <"$T/expect.txt")
[[ $(q "SELECT count(*) FROM wh.gen__items__history WHERE _steward_valid_to IS NULL") == "$live" ]] || fail "scd2: open versions != live rows"
[[ $(q "SELECT count(*) FROM (SELECT id FROM wh.gen__items__history WHERE _steward_valid_to IS NULL GROUP BY id HAVING count(*) > 1) x") == 0 ]] || fail "scd2: two open versions of a key"
[[ $(q "SELECT count(*) FROM wh.gen__items__history h WHERE _steward_op = 'delete' AND _steward_valid_to IS NULL") == 0 ]] || fail "scd2: open delete"
[[ $(q "SELECT count(*) FROM (SELECT _steward_valid_to, lead(_steward_valid_from) OVER (PARTITION BY id ORDER BY _steward_position) AS nxt, _steward_op FROM wh.gen__items__history) x WHERE _steward_op <> 'delete' AND _steward_valid_to IS DISTINCT FROM nxt") == 0 ]] || fail "scd2: a version does not end where the next begins"
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
[[ $(q "SELECT count(*) FROM \"my \"\"wh\"\" ✓\".crm__gone__history WHERE _steward_op = 'truncate' AND id IS NULL") == 1 ]] || fail "truncate not in history"
WH='"my ""wh"" ✓"."crm__Sales Dept__Ünïcode ""Tab""le__history"'
got=$(q "SELECT string_agg(concat_ws('|', _steward_op, \"I d\", \"we\"\"ird col\", \"Größe ✓\", coalesce(big, '-'), _steward_unchanged::text, _steward_before::text), ';' ORDER BY _steward_position) FROM $WH")
[[ $got == 'insert|1|a	b|1.5|x;insert|2|c|2|y;update|1|changed|3|-|{big};update|3|moved|2|y|{"I d":"2"}' ]] || fail "weird identifiers in history: got $got"

# typed history, exactly: before images, unchanged TOAST, deletes, SCD2
R='"source":"crm","source_kind":"postgresql","database":"crm","table":"public.acct"'
TY='"types":{"id":"integer","name":"text","amount":"numeric(12,2)","big":"text"}'
cat >"$T/hist.jsonl" <<JSON
{$R,"op":"insert","txid":"700","key":{"id":"1"},"after":{"id":"1","name":"a","amount":"1.50","big":"BIG1"},$TY}
{$R,"op":"insert","txid":"700","key":{"id":"2"},"after":{"id":"2","name":"b","amount":"2.00","big":"BIG2"},$TY}
{$R,"op":"update","txid":"701","key":{"id":"1"},"before":{"id":"1","name":"a","amount":"1.50","big":"BIG1"},"after":{"id":"1","name":"a\\tb","amount":"2.25"},"unchanged":["big"],$TY}
{$R,"op":"update","txid":"702","key":{"id":"2"},"after":{"id":"2","name":"b2","amount":"3","big":"BIG2b"},$TY}
{$R,"op":"delete","txid":"703","key":{"id":"2"},"before":{"id":"2","name":"b2","amount":"3","big":"BIG2b"},$TY}
{$R,"op":"insert","txid":"704","key":{"id":"3"},"after":{"id":"3","name":"c","amount":null,"big":"BIG3"},$TY}
{$R,"op":"delete","txid":"705","key":{"id":"3"},"before":{"id":"3"},$TY}
JSON
"$GEN" --out "$T/hist" --json "$T/hist.jsonl"
"$STEWARD_BIN" apply --log "$T/hist" --warehouse "$DSN" --warehouse-schema hs --scd2 --once --log-level warn
H=hs.crm__acct__history
[[ $(q "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '$H'::regclass AND attnum > 0 AND attname NOT LIKE '\_steward\_%'") == 'id integer, name text, amount numeric(12,2), big text' ]] || fail "history data columns not typed like the source"
got=$(q "SELECT string_agg(concat_ws('|', _steward_op, _steward_txid, id, coalesce(name, '-'), coalesce(amount::text, '-'), coalesce(big, '-'), coalesce(_steward_unchanged::text, '-'), coalesce(_steward_before::jsonb::text, '-'), CASE WHEN _steward_valid_to IS NULL THEN 'open' WHEN _steward_valid_to = _steward_valid_from THEN 'ended' ELSE 'closed' END), E'\n' ORDER BY _steward_position) FROM $H")
want='insert|700|1|a|1.50|BIG1|-|-|closed
insert|700|2|b|2.00|BIG2|-|-|closed
update|701|1|a	b|2.25|-|{big}|{"id": "1", "big": "BIG1", "name": "a", "amount": "1.50"}|open
update|702|2|b2|3.00|BIG2b|-|-|closed
delete|703|2|b2|3.00|BIG2b|-|-|ended
insert|704|3|c|-|BIG3|-|-|closed
delete|705|3|-|-|-|-|-|ended'
[[ $got == "$want" ]] || { printf 'got:\n%s\nwant:\n%s\n' "$got" "$want" >&2; fail "typed history rows"; }
[[ $(q "SELECT count(*) FROM $H a JOIN $H b ON a.id = b.id AND b._steward_position > a._steward_position WHERE a._steward_op = 'insert' AND a._steward_valid_to <> b._steward_valid_from AND NOT EXISTS (SELECT 1 FROM $H c WHERE c.id = a.id AND c._steward_position > a._steward_position AND c._steward_position < b._steward_position)") == 0 ]] || fail "scd2: a closed version does not end where the next begins"
[[ $(q "SELECT count(DISTINCT _steward_correlation_id) FROM $H WHERE _steward_correlation_id ~ '^crm:[0-9A-F]+/[0-9A-F]+:[0-9]+\$' AND _steward_commit_ts IS NOT NULL") == 7 ]] || fail "history metadata"
# the state at a point in time, the way a data team asks
[[ $(q "SELECT name FROM $H WHERE id = 1 AND _steward_valid_from <= '2023-11-14 22:13:20.002+00' AND (_steward_valid_to > '2023-11-14 22:13:20.002+00' OR _steward_valid_to IS NULL)") == a ]] || fail "point-in-time query"

# a history table of the earlier typed shape (position text and a generated
# correlation id) keeps working: rows in its shape, the same correlation ids
q "CREATE SCHEMA v1; CREATE TABLE v1.crm__acct__history (_steward_op text NOT NULL, _steward_source text NOT NULL, _steward_position_text text NOT NULL, _steward_position bytea NOT NULL, _steward_commit_ts timestamptz, _steward_txid text, _steward_correlation_id text GENERATED ALWAYS AS (_steward_source || ':' || _steward_position_text) STORED, _steward_before json, _steward_unchanged text[], id integer, name text, amount numeric(12,2), big text)"
"$STEWARD_BIN" apply --log "$T/hist" --warehouse "$DSN" --warehouse-schema v1 --mode history --once --log-level warn
"$STEWARD_BIN" apply --log "$T/hist" --warehouse "$DSN" --warehouse-schema v1 --mode history --once --log-level warn
[[ $(q "SELECT count(*) FROM v1.crm__acct__history") == 7 ]] || fail "earlier-shape history: row count"
[[ $(q "SELECT count(*) FROM v1.crm__acct__history v JOIN $H h USING (_steward_position) WHERE v._steward_correlation_id = h._steward_correlation_id AND v._steward_correlation_id = 'crm:' || v._steward_position_text AND (v._steward_op, v._steward_txid, v.id, v.name, v.amount, v.big, v._steward_unchanged::text) IS NOT DISTINCT FROM (h._steward_op, h._steward_txid, h.id, h.name, h.amount, h.big, h._steward_unchanged::text)") == 7 ]] || fail "earlier-shape history rows differ"

# a history table of the pre-typed shape is refused by name, nothing is written
q "CREATE SCHEMA old; CREATE TABLE old.crm__acct__history (op text NOT NULL, source text NOT NULL, position_text text NOT NULL, position bytea NOT NULL, commit_ts timestamptz, txid text, correlation_id text NOT NULL, key jsonb, before json, after json)"
set +e
"$STEWARD_BIN" apply --log "$T/hist" --warehouse "$DSN" --warehouse-schema old --once 2>"$T/old.err"
rc=$?
set -e
[[ $rc == 65 ]] || { cat "$T/old.err"; fail "old history shape: exit $rc, want 65"; }
grep -q 'history table .*old.*crm__acct__history.* has the shape of an earlier steward version' "$T/old.err" || { cat "$T/old.err"; fail "old history shape: message does not name the table"; }
[[ $(q "SELECT count(*) FROM old.crm__acct__history") == 0 ]] || fail "old history table written"
[[ $(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'old' AND tablename = 'crm__acct'") == 0 ]] || fail "mirror written next to an old history table"
echo "warehouse_modes: ok"
