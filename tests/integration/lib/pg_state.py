#!/usr/bin/env python3
"""Rebuild table state from a `steward log dump` and compare it with the
source tables read through psql (every column as its text form).

Strict replay: an insert/snapshot of a key already present, or an
update/delete of a missing key, is reported (a gap or an overlap), and
positions must be unique and increasing."""
import argparse, collections, gc, json, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("--dsn", required=True)
ap.add_argument("--dump", required=True)
ap.add_argument("--tables", help="comma-separated schema.table to compare (default: all seen)")
ap.add_argument("--lenient", action="store_true", help="allow re-inserts (at-least-once phases)")
args = ap.parse_args()
# Hundreds of thousands of long-lived rows and no cycles among them: the
# collector would only rescan them.
gc.disable()

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
    # format('%s') prints through the type's output function, as pgoutput
    # does.  Each row is an array of its columns' texts in attribute order,
    # all rows one JSON array: a single parse, and the two sides compare as
    # multisets of tuples.
    vals = ", ".join(f"CASE WHEN num_nulls(\"{c}\") = 1 THEN NULL ELSE format('%s', \"{c}\") END"
                     for c in cols)
    out = psql(f"SELECT coalesce(json_agg(json_build_array({vals})), '[]') FROM {t}")
    actual = collections.Counter(map(tuple, json.loads(out)))
    rebuilt = collections.Counter(tuple(row.get(c) for c in cols) for row in state.get(t, {}).values())
    n_actual, n_rebuilt = sum(actual.values()), sum(rebuilt.values())
    if actual != rebuilt:
        show = lambda rows: sorted(json.dumps(dict(zip(cols, r)), sort_keys=True) for r in rows)[:3]
        problems.append(f"{t}: {n_actual} rows in the table, {n_rebuilt} rebuilt; "
                        f"only in table: {show(actual - rebuilt)}; only rebuilt: {show(rebuilt - actual)}")
    else:
        print(f"ok: {t}: {n_actual} rows match")
for p in problems[:20]:
    print("problem:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
