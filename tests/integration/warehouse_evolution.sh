#!/usr/bin/env bash
# Schema evolution in the warehouse: a source column added mid-log becomes a
# warehouse column (mirror and typed history) without a restart; a widened type widens the column; an
# incompatible type change stops apply with exit 65 and a message naming
# table and column, nothing after it is applied, and once the user fixes the
# column the waiting rows arrive.
set -euo pipefail
source "$(dirname "$0")/lib/wh_lib.sh"
wh_setup warehouse_evolution 55472
row() {  # op id extra-json-after extra-json-types
  printf '{"source":"erp","source_kind":"postgresql","database":"erp","table":"public.orders","op":"%s","key":{"id":"%s"},"after":{"id":"%s","qty":"%s"%s},"types":{"id":"integer","qty":"%s"%s}}\n' "$@"
}

# 1: plain rows, then a column appears, then qty widens integer → bigint
{ row insert 1 1 5 '' integer ''
  row insert 2 2 6 '' integer ''
  row insert 3 3 7 ',"note":"hello"' integer ',"note":"text"'
  row update 1 1 9000000000 ',"note":"wide"' bigint ',"note":"text"'
} >"$T/a.jsonl"
"$GEN" --out "$T/log" --json "$T/a.jsonl"
"$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --mode both --once
[[ $(q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'steward.erp__orders'::regclass AND attname = 'note'") == text ]] || fail "note column not added"
[[ $(q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'steward.erp__orders'::regclass AND attname = 'qty'") == bigint ]] || fail "qty not widened"
[[ $(q "SELECT string_agg(concat_ws(':', id, qty, note), ',' ORDER BY id) FROM steward.erp__orders") == '1:9000000000:wide,2:6,3:7:hello' ]] || fail "rows after evolution"
[[ $(q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'steward.erp__orders__history'::regclass AND attname = 'note'") == text ]] || fail "note column not added to history"
[[ $(q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'steward.erp__orders__history'::regclass AND attname = 'qty'") == bigint ]] || fail "history qty not widened"
[[ $(q "SELECT string_agg(concat_ws(':', _steward_op, id, qty, note), ',' ORDER BY _steward_position) FROM steward.erp__orders__history") == 'insert:1:5,insert:2:6,insert:3:7:hello,update:1:9000000000:wide' ]] || fail "history rows after evolution"

# 2: qty becomes boolean in the source: incompatible
{ row insert 4 4 8 '' bigint ''
  row insert 5 5 t '' boolean ''
  row insert 6 6 f '' boolean ''
} >"$T/b.jsonl"
"$GEN" --out "$T/log" --json "$T/b.jsonl"
set +e
"$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --mode both --once 2>"$T/err.txt"
rc=$?
set -e
[[ $rc == 65 ]] || { cat "$T/err.txt"; fail "incompatible change: exit $rc, want 65"; }
grep -q 'incompatible type change in warehouse table .*erp__orders.* column .*qty' "$T/err.txt" || { cat "$T/err.txt"; fail "message does not name table and column"; }
[[ $(q "SELECT string_agg(id::text, ',' ORDER BY id) FROM steward.erp__orders") == '1,2,3,4' ]] || fail "rows before the bad change must be applied, none after"
[[ $(q "SELECT count(*) FROM steward.erp__orders__history") == 5 ]] || fail "history must stop at the same change"
# still failing on a second attempt (the change waits)
set +e; "$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --once 2>/dev/null; rc=$?; set -e
[[ $rc == 65 ]] || fail "second attempt: exit $rc"

# 3: the user decides: qty becomes text (mirror first: history still refuses,
# by name); the waiting rows arrive
q "ALTER TABLE steward.erp__orders ALTER COLUMN qty TYPE text"
set +e; "$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --once 2>"$T/err2.txt"; rc=$?; set -e
[[ $rc == 65 ]] && grep -q 'incompatible type change in warehouse table .*erp__orders__history.* column .*qty' "$T/err2.txt" || { cat "$T/err2.txt"; fail "history column not checked: exit $rc"; }
q "ALTER TABLE steward.erp__orders__history ALTER COLUMN qty TYPE text"
"$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --mode both --once
[[ $(q "SELECT string_agg(concat_ws(':', id, qty), ',' ORDER BY id) FROM steward.erp__orders") == '1:9000000000,2:6,3:7,4:8,5:t,6:f' ]] || fail "rows after the fix"
[[ $(q "SELECT string_agg(concat_ws(':', id, qty), ',' ORDER BY _steward_position) FROM steward.erp__orders__history") == '1:5,2:6,3:7,1:9000000000,4:8,5:t,6:f' ]] || fail "history after the fix"
echo "warehouse_evolution: ok"
