#!/usr/bin/env python3
"""Rebuild the tables of one MySQL database from a `steward log dump` and
compare them with SELECT * as the client prints it with -B --binary-as-hex
(one file WORK/select_TABLE.tsv per table, header line first).

  mysql_state.py WORK DB TABLE...      reads WORK/dump.jsonl

Checks that every position is unique.  TXN_CHECK=1 also prints the op counts
("ops insert=N update=M") and the transaction sizes ("transactions A B"),
and checks that each transaction's sequence numbers run 0, 1, 2, ...

Built for dumps of hundreds of thousands of records: each row image becomes
the line the client would print as soon as it is read, so the state is one
string per row, and the comparison is of sorted lists of strings."""
import gc, json, os, sys

work, db, tables = sys.argv[1], sys.argv[2], sys.argv[3:]
txn_check = os.environ.get("TXN_CHECK") == "1"
# Many long-lived objects and no cycles: the collector would only rescan them.
gc.disable()

headers, want = {}, {}
for t in tables:
    with open(f"{work}/select_{t}.tsv", encoding="utf-8") as f:
        lines = f.read().split("\n")
    headers[t] = lines[0].split("\t")
    want[t] = [l for l in lines[1:] if l]


def esc(v):  # as the client escapes a value with -B
    return v.replace("\\", "\\\\").replace("\0", "\\0").replace("\t", "\\t").replace("\n", "\\n")


def norm(line):
    # the client prints "0x" for a NULL binary column; the log keeps NULL
    if "0x" not in line:
        return line
    return "\t".join("NULL" if v == "0x" else v for v in line.split("\t"))


def row_line(img, header):
    vals = [img.get(c, "<missing>") for c in header]
    if None in vals:
        vals = ["NULL" if v is None else v for v in vals]
    line = "\t".join(vals)
    # Escape value by value only when a value needs it (rare).
    if "\\" in line or "\n" in line or "\0" in line or line.count("\t") != len(vals) - 1:
        line = "\t".join("NULL" if v is None else esc(v)
                         for v in (img.get(c, "<missing>") for c in header))
    return norm(line)


state = {t: {} for t in tables}
seen = set()
ops, txids, last_seq = {}, {}, {}
loads, add = json.loads, seen.add
with open(f"{work}/dump.jsonl", encoding="utf-8") as dump:
    for line in dump:
        r = loads(line)
        pos = r.get("pos_hex") or r["pos"]
        if pos in seen:
            sys.exit(f"position {r['pos']} appears twice")
        add(pos)
        op = r["op"]
        if txn_check and op != "snapshot":
            ops[op] = ops.get(op, 0) + 1
            tx = r["txid"]
            txids[tx] = txids.get(tx, 0) + 1
            seq = int(r["pos"].rsplit(":", 1)[1])
            if seq != last_seq.get(tx, -1) + 1:
                sys.exit(f"transaction {tx}: sequence {seq} after {last_seq.get(tx, -1)}")
            last_seq[tx] = seq
        sch, tbl = r["table"].split(".", 1)
        if sch != db or tbl not in state:
            continue  # not a table of DB any more: nothing to compare it with
        rows = state[tbl]
        keycols = tuple(r["key"])
        if op in ("delete", "update"):
            img = r["before"]
            if img is not None:
                rows.pop(tuple(map(img.get, keycols)) if keycols else tuple(sorted(img.items())), None)
        if op in ("insert", "update", "snapshot"):
            img = r["after"]
            if img is not None:
                k = tuple(map(img.get, keycols)) if keycols else tuple(sorted(img.items()))
                rows[k] = row_line(img, headers[tbl])
if txn_check:
    print("ops " + " ".join(f"{k}={v}" for k, v in sorted(ops.items())))
    print("transactions " + " ".join(str(n) for n in sorted(txids.values())))

bad = 0
for t in tables:
    got = sorted(state[t].values())
    exp = sorted(norm(l) for l in want[t])
    if got != exp:
        bad += 1
        print(f"table {t}: {len(got)} rebuilt rows vs {len(exp)} selected", file=sys.stderr)
        gs, ws = set(got), set(exp)
        for r in sorted(ws - gs)[:3]: print("  only in SELECT:", tuple(r.split("\t")), file=sys.stderr)
        for r in sorted(gs - ws)[:3]: print("  only in log:   ", tuple(r.split("\t")), file=sys.stderr)
    else:
        print(f"table {t}: {len(got)} rows match")
sys.exit(1 if bad else 0)
