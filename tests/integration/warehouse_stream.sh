#!/usr/bin/env bash
# History rows are streamed into an open COPY while a batch is built: in one
# large batch, two tables whose changes interleave, a column added to one of
# them mid-stream, a truncate and deletes in the middle still give a history
# with every change exactly once and in order, a mirror equal to the
# source's final state, and SCD2 versions closed per key; applying the same
# log in history-only mode gives the same history.  Then, in small batches,
# the mirror's staging table is reused across batches, re-created when a
# column appears, and emptied when a batch merges a table twice (a truncate
# between).
set -euo pipefail
source "$(dirname "$0")/lib/wh_lib.sh"
wh_setup warehouse_stream 55471

# ~200 bytes of history per row: a few thousand rows are several times the
# size at which a table's history COPY is opened and kept open.
N=3000
awk -v n=$N 'BEGIN {
  pad = sprintf("%0150d", 0); gsub(/0/, "x", pad)
  h = "\"source\":\"erp\",\"source_kind\":\"postgresql\",\"database\":\"erp\""
  ta = "\"types\":{\"id\":\"integer\",\"qty\":\"integer\",\"pad\":\"text\"}"
  tb = "\"types\":{\"id\":\"integer\",\"v\":\"text\"}"
  tn = "\"types\":{\"id\":\"integer\",\"qty\":\"integer\",\"pad\":\"text\",\"note\":\"text\"}"
  for (i = 1; i <= n; i++)
    printf "{%s,\"table\":\"public.a\",\"op\":\"insert\",\"key\":{\"id\":\"%d\"},\"after\":{\"id\":\"%d\",\"qty\":\"%d\",\"pad\":\"%s\\t%d\"},%s}\n", h, i, i, i, pad, i, ta
  for (i = 1; i <= n; i++) {
    printf "{%s,\"table\":\"public.b\",\"op\":\"insert\",\"key\":{\"id\":\"%d\"},\"after\":{\"id\":\"%d\",\"v\":\"%s b%d\"},%s}\n", h, i, i, pad, i, tb
    printf "{%s,\"table\":\"public.a\",\"op\":\"update\",\"key\":{\"id\":\"%d\"},\"after\":{\"id\":\"%d\",\"qty\":\"%d\",\"pad\":\"%s\\n%d\"},%s}\n", h, i, i, i + 1, pad, i, ta
    if (i == n / 2)  # a column appears while a COPY is open
      printf "{%s,\"table\":\"public.a\",\"op\":\"update\",\"key\":{\"id\":\"1\"},\"after\":{\"id\":\"1\",\"qty\":\"7\",\"pad\":\"p\",\"note\":\"added\"},%s}\n", h, tn
  }
  printf "{%s,\"table\":\"public.b\",\"op\":\"truncate\",\"truncated_tables\":[\"public.b\"]}\n", h
  for (i = 1; i <= 100; i++)
    printf "{%s,\"table\":\"public.a\",\"op\":\"delete\",\"key\":{\"id\":\"%d\"},\"before\":{\"id\":\"%d\"},%s}\n", h, i, i, ta
  for (i = 1; i <= n; i++)
    printf "{%s,\"table\":\"public.b\",\"op\":\"insert\",\"key\":{\"id\":\"%d\"},\"after\":{\"id\":\"%d\",\"v\":\"again %d\"},%s}\n", h, i, i, i, tb
}' >"$T/changes.jsonl"
"$GEN" --out "$T/log" --json "$T/changes.jsonl"
total=$(wc -l <"$T/changes.jsonl")

"$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --mode both --scd2 --batch 100000 --once
"$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --warehouse-schema h --mode history --scd2 --batch 100000 --once

for s in steward h; do
  ha=$(q "SELECT count(*) FROM $s.erp__a__history")
  hb=$(q "SELECT count(*) FROM $s.erp__b__history")
  [[ $((ha + hb)) == "$total" ]] || fail "$s: history holds $ha + $hb rows for $total changes"
  [[ $(q "SELECT count(DISTINCT _steward_position) FROM $s.erp__a__history") == "$ha" ]] || fail "$s: a change twice in history"
  [[ $(q "SELECT count(*) FROM $s.erp__a__history WHERE _steward_op = 'update' AND qty = id + 1 AND pad LIKE '%x' || E'\n' || id") == $N ]] \
    || fail "$s: updates of a (escaped values) wrong"
  [[ $(q "SELECT count(*) FROM $s.erp__a__history WHERE note = 'added'") == 1 ]] || fail "$s: row with the added column missing"
  [[ $(q "SELECT count(*) FROM $s.erp__b__history WHERE _steward_op = 'truncate'") == 1 ]] || fail "$s: truncate missing"
  # SCD2: one open version per live key of a, none for deleted keys
  [[ $(q "SELECT count(*) FROM $s.erp__a__history WHERE _steward_valid_to IS NULL AND _steward_op <> 'delete'") == $((N - 100)) ]] \
    || fail "$s: open versions of a"
  [[ $(q "SELECT count(*) FROM (SELECT id FROM $s.erp__a__history WHERE _steward_valid_to IS NULL GROUP BY id HAVING count(*) > 1) x") == 0 ]] \
    || fail "$s: a key with two open versions"
done
same=$(q "SELECT count(*) FROM (SELECT _steward_position, _steward_op, id, qty, pad, note FROM steward.erp__a__history
          EXCEPT SELECT _steward_position, _steward_op, id, qty, pad, note FROM h.erp__a__history) x")
[[ $same == 0 ]] || fail "history-only and both modes disagree"

# the mirror: a's live rows with their last values, b only after the truncate
[[ $(q "SELECT count(*) FROM steward.erp__a WHERE NOT _steward_deleted") == $((N - 100)) ]] || fail "mirror a live rows"
[[ $(q "SELECT count(*) FROM steward.erp__a WHERE NOT _steward_deleted AND qty = id + 1 AND pad LIKE '%x' || E'\n' || id") == $((N - 100)) ]] \
  || fail "mirror a values"
[[ $(q "SELECT count(*) FROM steward.erp__b WHERE NOT _steward_deleted AND v = 'again ' || id") == $N ]] || fail "mirror b after truncate"
[[ $(q "SELECT changes FROM steward._steward_apply_state WHERE source = 'erp'") == "$total" ]] || fail "applied count"

# 2: small batches of updates to keys the warehouse holds (the merge path)
awk 'BEGIN {
  h = "\"source\":\"erp\",\"source_kind\":\"postgresql\",\"database\":\"erp\""
  ta = "\"types\":{\"id\":\"integer\",\"qty\":\"integer\",\"pad\":\"text\"}"
  te = "\"types\":{\"id\":\"integer\",\"qty\":\"integer\",\"pad\":\"text\",\"extra\":\"text\"}"
  tb = "\"types\":{\"id\":\"integer\",\"v\":\"text\"}"
  for (i = 101; i <= 1100; i++)
    printf "{%s,\"table\":\"public.a\",\"op\":\"update\",\"key\":{\"id\":\"%d\"},\"after\":{\"id\":\"%d\",\"qty\":\"%d\",\"pad\":\"p%d\"},%s}\n", h, i, i, i + 2, i, ta
  for (i = 101; i <= 600; i++)
    printf "{%s,\"table\":\"public.a\",\"op\":\"update\",\"key\":{\"id\":\"%d\"},\"after\":{\"id\":\"%d\",\"qty\":\"%d\",\"pad\":\"p%d\",\"extra\":\"e%d\"},%s}\n", h, i, i, i + 3, i, i, te
  for (i = 1; i <= 20; i++) {
    if (i == 11)
      printf "{%s,\"table\":\"public.b\",\"op\":\"truncate\",\"truncated_tables\":[\"public.b\"]}\n", h
    printf "{%s,\"table\":\"public.b\",\"op\":\"update\",\"key\":{\"id\":\"%d\"},\"after\":{\"id\":\"%d\",\"v\":\"u%d\"},%s}\n", h, i, i, i, tb
  }
}' >"$T/more.jsonl"
"$GEN" --out "$T/log" --json "$T/more.jsonl"
total=$((total + $(wc -l <"$T/more.jsonl")))
"$STEWARD_BIN" apply --log "$T/log" --warehouse "$DSN" --mode both --batch 500 --once
[[ $(q "SELECT count(*) FROM steward.erp__a WHERE id BETWEEN 101 AND 600 AND qty = id + 3 AND pad = 'p' || id AND extra = 'e' || id") == 500 ]] \
  || fail "mirror a after the column appeared"
[[ $(q "SELECT count(*) FROM steward.erp__a WHERE id BETWEEN 601 AND 1100 AND qty = id + 2 AND pad = 'p' || id AND extra IS NULL") == 500 ]] \
  || fail "mirror a after merged updates"
[[ $(q "SELECT count(*) FROM steward.erp__a WHERE id > 1100 AND qty = id + 1 AND NOT _steward_deleted") == $((N - 1100)) ]] \
  || fail "mirror a rows not updated"
[[ $(q "SELECT string_agg(id::text, ',' ORDER BY id) FROM steward.erp__b WHERE NOT _steward_deleted") == 11,12,13,14,15,16,17,18,19,20 ]] \
  || fail "mirror b after update, truncate, update in one batch"
[[ $(q "SELECT count(*) FROM steward.erp__b WHERE id <= 10 AND v = 'u' || id AND _steward_deleted") == 10 ]] || fail "mirror b before the truncate"
[[ $(q "SELECT count(*) FROM steward.erp__a__history") -eq $((ha + 1500)) ]] || fail "history of a after the merge batches"
[[ $(q "SELECT changes FROM steward._steward_apply_state WHERE source = 'erp'") == "$total" ]] || fail "applied count after the merge batches"
echo "warehouse_stream: ok"
