#!/usr/bin/env bash
# ALTER TABLE while capture runs: each change keeps the column names the
# table had when the change was made (table-map metadata), before and
# after ADD, DROP, RENAME and reordering of columns.
set -euo pipefail
source "$(dirname "$0")/lib/mysql_lib.sh"
mysql_setup mysql_alter 33401

sql app -e "CREATE TABLE acct (id int primary key, name varchar(20), score int)"
capture_bg --data-dir "$WORK/log" --no-snapshot 2>"$WORK/capture.log"
sleep 1
sql app <<'SQL'
INSERT INTO acct VALUES (1, 'ann', 10), (2, 'bob', 20);
ALTER TABLE acct ADD COLUMN email varchar(40) AFTER id;
INSERT INTO acct VALUES (3, 'c@x', 'cid', 30);
UPDATE acct SET email = 'a@x' WHERE id = 1;
ALTER TABLE acct DROP COLUMN score;
INSERT INTO acct VALUES (4, 'd@x', 'dee');
ALTER TABLE acct CHANGE name full_name varchar(30);
UPDATE acct SET full_name = 'Bob B' WHERE id = 2;
ALTER TABLE acct MODIFY email varchar(40) AFTER full_name;
INSERT INTO acct VALUES (5, 'eve', 'e@x');
DELETE FROM acct WHERE id = 3;
-- rows last written under old names get a change under the current ones
UPDATE acct SET full_name = UPPER(full_name);
SQL
END=$(end_pos)
# stop the running agent, then drain to the end position in a second run
for _ in $(seq 1 50); do
  n=$("$STEWARD_BIN" log dump -d "$WORK/log" 2>/dev/null | wc -l)
  [[ $n -ge 12 ]] && break
  sleep 0.2
done
kill -TERM "$CAPTURE_PID"; wait "$CAPTURE_PID" || fail "capture did not stop cleanly on SIGTERM"
capture --data-dir "$WORK/log" --endpos "$END" 2>>"$WORK/capture.log" || { cat "$WORK/capture.log"; fail "drain"; }

"$STEWARD_BIN" log dump -d "$WORK/log" | python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin]
def find(op, id_):
    return [r for r in recs if r["op"] == op and (r["after"] or r["before"])["id"] == id_]
assert list(find("insert", "1")[0]["after"]) == ["id", "name", "score"], find("insert", "1")
assert find("insert", "3")[0]["after"] == {"id": "3", "email": "c@x", "name": "cid", "score": "30"}
u = find("update", "1")[0]
assert u["before"]["email"] is None and u["after"]["email"] == "a@x", u
assert find("insert", "4")[0]["after"] == {"id": "4", "email": "d@x", "name": "dee"}
u = find("update", "2")[0]
assert u["after"]["full_name"] == "Bob B" and "name" not in u["after"], u
assert list(find("insert", "5")[0]["after"]) == ["id", "full_name", "email"]
assert find("insert", "5")[0]["after"]["email"] == "e@x"
assert len(recs) == 12, len(recs)
print("column names follow every ALTER")
'
compare_state "$WORK/log" app
echo "mysql_alter: ok"
