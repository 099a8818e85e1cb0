#!/usr/bin/env python3
"""Rebuild table state from a `steward log dump` and compare it with the
source tables read through psql (every column as its text form).

Strict replay: an insert/snapshot of a key already present, or an
update/delete of a missing key, is reported (a gap or an overlap), and
positions must be unique and increasing."""
import argparse, json, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("--dsn", required=True)
ap.add_argument("--dump", required=True)
ap.add_argument("--tables", help="comma-separated schema.table to compare (default: all seen)")
ap.add_argument("--lenient", action="store_true", help="allow re-inserts (at-least-once phases)")
args = ap.parse_args()

def psql(sql):
    return subprocess.run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", args.dsn, "-c", sql],
                          check=True, capture_output=True, text=True).stdout

state, keys_of, problems = {}, {}, []
last_hex, seen = None, set()
with open(args.dump) as f:
    for n, line in enumerate(f, 1):
        r = json.loads(line)
        pos = r["pos_hex"]
        if pos in seen:
            problems.append(f"line {n}: position {r['pos']} appears twice")
        seen.add(pos)
        if last_hex is not None and pos <= last_hex:
            problems.append(f"line {n}: position {r['pos']} is not after the previous one")
        last_hex = pos
        op, table = r["op"], r["table"]
        if op == "message":
            continue
        if op == "truncate":
            for t in r.get("truncated_tables") or [table]:
                state[t] = {}
            continue
        rows = state.setdefault(table, {})
        key_cols = sorted(r["key"].keys())
        def key_of(img):
            return tuple((c, img.get(c)) for c in key_cols)
        if op in ("insert", "snapshot"):
            k = key_of(r["after"])
            if k in rows and not args.lenient:
                problems.append(f"line {n}: {op} of {table} {k} which is already present")
            rows[k] = dict(r["after"])
        elif op == "update":
            old = key_of(r["before"]) if r["before"] else key_of(r["after"])
            prev = rows.pop(old, None)
            if prev is None:
                problems.append(f"line {n}: update of missing {table} {old}")
                prev = {}
            new = dict(r["after"])
            for c in r["unchanged"]:
                if c not in prev:
                    problems.append(f"line {n}: unchanged column {c} with no earlier value")
                new[c] = prev.get(c)
            rows[key_of(new)] = new
        elif op == "delete":
            k = key_of(r["before"])
            if rows.pop(k, None) is None:
                problems.append(f"line {n}: delete of missing {table} {k}")

tables = args.tables.split(",") if args.tables else sorted(state)
for t in tables:
    schema, name = t.split(".", 1)
    cols = psql(f"SELECT attname FROM pg_attribute WHERE attrelid = '{t}'::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum").split("\n")[:-1]
    # format('%s') prints through the type's output function, as pgoutput does.
    obj = ", ".join(f"'{c}', CASE WHEN num_nulls(\"{c}\") = 1 THEN NULL "
                    f"ELSE format('%s', \"{c}\") END" for c in cols)
    out = psql(f"SELECT json_build_object({obj}) FROM {t}")
    actual = sorted(json.dumps(json.loads(l), sort_keys=True) for l in out.split("\n") if l)
    rebuilt = sorted(json.dumps({c: row.get(c) for c in cols}, sort_keys=True)
                     for row in state.get(t, {}).values())
    if actual != rebuilt:
        a, b = set(actual), set(rebuilt)
        problems.append(f"{t}: {len(actual)} rows in the table, {len(rebuilt)} rebuilt; "
                        f"only in table: {sorted(a - b)[:3]}; only rebuilt: {sorted(b - a)[:3]}")
    else:
        print(f"ok: {t}: {len(actual)} rows match")
for p in problems[:20]:
    print("problem:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
