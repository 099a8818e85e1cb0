#!/usr/bin/env bash
# A 500,000-row transaction (50,000 with STEWARD_TEST_SCALE=quick), then a
# second one updating part of it: every row lands once, in order, under its
# GTID, while the agent's memory stays bounded (the transaction spills to disk).
set -euo pipefail
source "$(dirname "$0")/lib/mysql_lib.sh"
mysql_setup mysql_bigtxn 33402

N=500000
[[ "${STEWARD_TEST_SCALE:-}" == quick ]] && N=50000
sql app -e "CREATE TABLE big (id int primary key, label varchar(40), amount decimal(12,2), x double)"
capture --data-dir "$WORK/log" --endpos "$(end_pos)" 2>"$WORK/capture.log"
sql app -e "INSERT INTO big SELECT seq, CONCAT('row ', seq), seq / 100, seq / 3 FROM seq_1_to_$N"
U=$((N / 10))
sql app -e "UPDATE big SET amount = amount + 1, label = CONCAT(label, ' updated') WHERE id <= $U"
END=$(end_pos)
/usr/bin/time -v "$STEWARD_BIN" capture --dsn "$DSN" --data-dir "$WORK/log" --endpos "$END" \
  2>"$WORK/capture.log" || { tail -20 "$WORK/capture.log"; fail "capture"; }
rss_kb=$(awk -F: '/Maximum resident set size/ {print $2+0}' "$WORK/capture.log")
echo "peak RSS ${rss_kb} kB for $((N + U)) row changes"
[[ $rss_kb -lt 262144 ]] || fail "peak RSS ${rss_kb} kB: memory not bounded"
[[ ! -e "$WORK/log/mysql-txn.spill" ]] || fail "spill file left behind"

# One pass over the dump: state equals SELECT *, op counts, and every
# transaction's sequence numbers contiguous.
TXN_CHECK=1 compare_state "$WORK/log" app | tee "$WORK/compare.out"
grep -qx "ops insert=$N update=$U" "$WORK/compare.out" || fail "op counts: $(grep ^ops "$WORK/compare.out")"
grep -qx "transactions $U $N" "$WORK/compare.out" || fail "transactions: $(grep ^transactions "$WORK/compare.out")"
echo "mysql_bigtxn: ok"
