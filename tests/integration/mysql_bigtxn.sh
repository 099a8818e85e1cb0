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

"$STEWARD_BIN" log dump -d "$WORK/log" >"$WORK/dump.jsonl"
python3 -c '
import json, sys
n, u = int(sys.argv[1]), int(sys.argv[2])
txids, ops, last_seq = {}, {}, {}
for line in sys.stdin:
    r = json.loads(line)
    if r["op"] == "snapshot":
        continue
    ops[r["op"]] = ops.get(r["op"], 0) + 1
    tx = r["txid"]
    txids[tx] = txids.get(tx, 0) + 1
    seq = int(r["pos"].rsplit(":", 1)[1])
    assert seq == last_seq.get(tx, -1) + 1, (tx, seq)
    last_seq[tx] = seq
assert ops == {"insert": n, "update": u}, ops
assert sorted(txids.values()) == [u, n], txids
print(f"{n} inserts and {u} updates in 2 transactions, sequences contiguous")
' "$N" "$U" <"$WORK/dump.jsonl"
REUSE_DUMP=1 compare_state "$WORK/log" app
echo "mysql_bigtxn: ok"
