#!/usr/bin/env bash
# TRUNCATE TABLE of a captured table becomes a `truncate` record, in binlog
# order between the rows before and after it, naming the table in
# truncated_tables; qualified, quoted and TABLE-less forms are read; a
# TRUNCATE of a table the source does not capture writes nothing.
set -euo pipefail
source "$(dirname "$0")/lib/mysql_lib.sh"
mysql_setup mysql_truncate 33462

sql -e "CREATE DATABASE other; CREATE TABLE other.x (id int primary key); INSERT INTO other.x VALUES (1)"
sql app <<'SQL'
CREATE TABLE t (id int primary key, v varchar(20));
CREATE TABLE `we``ird` (id int primary key);
SQL
read -r FILE POS < <(sql -N -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
sql app <<'SQL'
INSERT INTO t VALUES (1, 'a'), (2, 'b');
TRUNCATE TABLE t;
INSERT INTO t VALUES (3, 'c');
INSERT INTO `we``ird` VALUES (7);
TRUNCATE `app`.`we``ird`;
truncate t;
TRUNCATE TABLE other.x;
INSERT INTO t VALUES (4, 'd');
SQL
END=$(end_pos)
mkdir -p "$WORK/log"
echo "$FILE $POS" >"$WORK/log/mysql-resume"
capture --data-dir "$WORK/log" --endpos "$END" 2>"$WORK/capture.log" || { cat "$WORK/capture.log"; fail "capture"; }
# a clean stop ends the server's dump thread too (else it lingers until its
# next heartbeat, up to a second): none within 0.3 s of the agent's exit
dumps=1
for _ in 1 2 3; do
  dumps=$(sql -N -e "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
  [[ $dumps == 0 ]] && break
  sleep 0.1
done
[[ $dumps == 0 ]] || fail "a binlog dump thread is left on the server after a clean stop"

"$STEWARD_BIN" log dump -d "$WORK/log" >"$WORK/dump.jsonl"
python3 - "$WORK/dump.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
seq = [(r["op"], r["table"], (r["after"] or r["before"] or {}).get("id"), r.get("truncated_tables"))
       for r in recs]
want = [
    ("insert", "app.t", "1", None), ("insert", "app.t", "2", None),
    ("truncate", "app.t", None, ["app.t"]),
    ("insert", "app.t", "3", None),
    ("insert", "app.we`ird", "7", None),
    ("truncate", "app.we`ird", None, ["app.we`ird"]),
    ("truncate", "app.t", None, ["app.t"]),
    ("insert", "app.t", "4", None),
]
got = [(op, t, i, tt if tt else None) for op, t, i, tt in seq]
assert got == want, "\n".join(map(str, got))
for r in recs:
    if r["op"] == "truncate":
        assert r["source_kind"] == "mysql" and r["txid"], r
        assert r["before"] is None and r["after"] is None, r
print("truncate records in binlog order")
PY
# the state the log rebuilds: what is left after the last TRUNCATE
python3 - "$WORK/dump.jsonl" <<'PY'
import json, sys
rows = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["op"] == "truncate":
        for t in r["truncated_tables"]:
            rows.pop(t, None)
    elif r["op"] == "insert":
        rows.setdefault(r["table"], set()).add(r["after"]["id"])
assert rows == {"app.t": {"4"}}, rows
PY
[[ $(sql -N app -e "SELECT GROUP_CONCAT(id) FROM t") == 4 ]] || fail "source state"
"$STEWARD_BIN" log verify -d "$WORK/log" >/dev/null || fail "log verify"
echo "mysql_truncate: ok"
