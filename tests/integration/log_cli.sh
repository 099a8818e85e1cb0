#!/usr/bin/env bash
# steward log: dump, verify, stats and gc on a real change log; a corrupted
# frame is reported with file and offset (exit 65) and never skipped.
set -euo pipefail
: "${STEWARD_BIN:?}" "${STEWARD_BUILD_DIR:?}"
LOGGEN="$STEWARD_BUILD_DIR/tests/steward_loggen"
T="$STEWARD_BUILD_DIR/tmp/log_cli"
rm -rf "$T"; mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }

# 3 batches of 2000 changes: each loggen run appends and flushes frames.
for i in 1 2 3; do
  "$LOGGEN" --out "$T/log" --count 2000 --first-id $(( (i - 1) * 2000 + 1 )) --seed "$i" >/dev/null
done

"$STEWARD_BIN" log dump --data-dir "$T/log" >"$T/all.jsonl"
[[ $(wc -l <"$T/all.jsonl") -eq 6000 ]] || fail "dump printed $(wc -l <"$T/all.jsonl") lines, expected 6000"
# Every line is one JSON object with the documented fields, positions unique and increasing.
python3 - "$T/all.jsonl" <<'PY'
import json, sys
prev = None
ids = set()
for n, line in enumerate(open(sys.argv[1]), 1):
    r = json.loads(line)
    for f in ("source", "table", "op", "pos", "txid", "commit_ts", "key", "before", "after", "unchanged"):
        assert f in r, f"line {n}: missing {f}"
    assert r["op"] == "insert", r["op"]
    assert r["pos_hex"] > (prev or ""), f"line {n}: position not increasing"
    prev = r["pos_hex"]
    ids.add(r["key"]["id"])
assert len(ids) == 6000, len(ids)
PY

# --after-hex resumes strictly after a position; --limit stops early.
mid=$(sed -n 4000p "$T/all.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pos_hex"])')
"$STEWARD_BIN" log dump --data-dir "$T/log" --after-hex "$mid" >"$T/rest.jsonl"
[[ $(wc -l <"$T/rest.jsonl") -eq 2000 ]] || fail "--after-hex gave $(wc -l <"$T/rest.jsonl") lines"
cmp <(sed -n '4001,$p' "$T/all.jsonl") "$T/rest.jsonl" || fail "--after-hex output differs from the tail of the full dump"
[[ $("$STEWARD_BIN" log dump --data-dir "$T/log" --limit 7 | wc -l) -eq 7 ]] || fail "--limit"

"$STEWARD_BIN" log verify --data-dir "$T/log" >"$T/verify.out" || fail "verify of a healthy log failed"
grep -q "6000" "$T/verify.out" || fail "verify does not report 6000 records: $(cat "$T/verify.out")"
"$STEWARD_BIN" log stats --data-dir "$T/log" >/dev/null || fail "stats"

# Corrupt one byte in the middle of the first segment's first frame payload.
seg=$(ls "$T/log/segments/"*.seg | head -1)
cp -a "$T/log" "$T/log.good"
printf '\xff' | dd of="$seg" bs=1 seek=200 conv=notrunc status=none
set +e
"$STEWARD_BIN" log verify --data-dir "$T/log" >"$T/bad.out" 2>"$T/bad.err"; rc=$?
"$STEWARD_BIN" log dump --data-dir "$T/log" >"$T/bad.jsonl" 2>"$T/baddump.err"; rc2=$?
set -e
[[ $rc -eq 65 ]] || fail "verify of a corrupt log exited $rc, expected 65"
[[ $rc2 -eq 65 ]] || fail "dump of a corrupt log exited $rc2, expected 65"
grep -q "$(basename "$seg")" "$T/bad.err" || fail "verify error does not name the segment: $(cat "$T/bad.err")"
grep -Eq "offset [0-9]+" "$T/bad.err" || fail "verify error does not name the offset: $(cat "$T/bad.err")"
# Records after the corrupt frame are not silently skipped: nothing is printed past it.
[[ $(wc -l <"$T/bad.jsonl") -lt 6000 ]] || fail "dump skipped over the corrupt frame"

# gc removes nothing without reader checkpoints, and the log stays complete.
rm -rf "$T/log"; mv "$T/log.good" "$T/log"
"$STEWARD_BIN" log gc --data-dir "$T/log" >/dev/null
[[ $("$STEWARD_BIN" log dump --data-dir "$T/log" | wc -l) -eq 6000 ]] || fail "gc without checkpoints removed data"

# Unknown subcommand and missing --data-dir are usage errors (exit 2).
set +e
"$STEWARD_BIN" log frobnicate >/dev/null 2>&1; rc=$?
"$STEWARD_BIN" log dump >/dev/null 2>&1; rc2=$?
set -e
[[ $rc -eq 2 && $rc2 -eq 2 ]] || fail "usage errors exited $rc/$rc2, expected 2"
echo "log_cli: ok"
