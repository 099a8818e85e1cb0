#!/usr/bin/env bash
# `steward rules check` and `steward rules explain` as a user runs them:
# the shipped examples pass (exit 0); a broken file lists every problem as
# file:line:col with a hint (exit 3); a non-YAML or unreadable file exits
# 78; explain prints accepted/rejected per field with rule ids and the
# per-target writes for a `steward log dump` line, with and without a
# golden record, and --json parses.  No servers.
set -euo pipefail
SRC=${STEWARD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${STEWARD_BUILD_DIR:-$SRC/build}
BIN=${STEWARD_BIN:-$BUILD/cli/steward}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
rc_of() { set +e; "$@" >"$DIR/out" 2>&1; local rc=$?; set -e; echo $rc; }

# 1. the shipped rules files pass
for f in "$SRC"/docs/examples/*.yaml; do
  grep -q '^ownership:' "$f" || continue  # targets files are not rules files
  [[ $(rc_of "$BIN" rules check "$f") == 0 ]] || { cat "$DIR/out" >&2; fail "rules check $f"; }
done

# 2. a broken file: every problem with file:line:col and a hint, exit 3
cat >"$DIR/broken.yaml" <<'YAML'
version: 1
systems:
  erp: { kind: postgresql }
entities:
  customer:
    fields: { name: strin }
YAML
[[ $(rc_of "$BIN" rules check "$DIR/broken.yaml") == 3 ]] || { cat "$DIR/out" >&2; fail "broken file: exit code"; }
grep -Eq "^$DIR/broken.yaml:6:[0-9]+: error: unknown type \"strin\"" "$DIR/out" || fail "no file:line:col for the bad type"
grep -Eq "^$DIR/broken.yaml:[0-9]+:[0-9]+: error: .*ownership" "$DIR/out" || fail "missing ownership not reported"
[[ $(grep -c '^  hint: ' "$DIR/out") -ge 2 ]] || fail "hints missing"

# 3. not YAML, unreadable: exit 78
printf 'systems: [unclosed\n  - {\n' >"$DIR/notyaml.yaml"
[[ $(rc_of "$BIN" rules check "$DIR/notyaml.yaml") == 78 ]] || { cat "$DIR/out" >&2; fail "non-YAML: exit code"; }
[[ $(rc_of "$BIN" rules check "$DIR/does-not-exist.yaml") == 78 ]] || fail "missing file: exit code"

# 4. explain a CRM insert (a `steward log dump` line) for a new entity
cat >"$DIR/change.json" <<'JSON'
{"source":"crm","table":"crm.accounts","op":"insert","pos":"mysql-bin.000001:3730:0","txid":"0-1-9","commit_ts":"2026-11-25T14:58:54.000000Z","key":{"id":"001gtll743LbiqKaLu"},"before":null,"after":{"id":"001gtll743LbiqKaLu","external_id":"R-1","name":"Replay 1","email":"r1@replay.example","phone":null,"status":"active","credit_limit":"10.00","updated_at":"2026-11-25 14:58:54.843749"},"unchanged":[],"types":{"id":"varchar(18)","external_id":"varchar(64)","name":"varchar(255)","email":"varchar(255)","phone":"varchar(64)","status":"varchar(16)","credit_limit":"decimal(12,2)","updated_at":"datetime(6)"},"pos_hex":"00000000000000010000000000000e92010000000000000000","source_kind":"mysql","database":"crm","seq":0}
JSON
RULES=$SRC/docs/examples/estate.yaml
[[ $(rc_of "$BIN" rules explain "$RULES" --change "@$DIR/change.json") == 0 ]] || { cat "$DIR/out" >&2; fail "explain"; }
grep -Eq '^  name +accepted .*by ownership\.customer\.' "$DIR/out" || fail "name not accepted with its rule"
grep -Eq '^  erp create ' "$DIR/out" || fail "no ERP create among the targets"
"$BIN" rules explain "$RULES" --change "@$DIR/change.json" --json >"$DIR/new.json"
python3 - "$DIR/new.json" <<'PY' || fail "explain --json"
import json, sys
d = json.load(open(sys.argv[1]))
f = {x["field"]: x for x in d["fields"]}
assert d["entity"] == "customer" and d["outcome"] == "applied", d["outcome"]
assert f["name"]["verdict"] == "accepted" and f["name"]["rule"]["id"].startswith("ownership.customer"), f["name"]
assert f["credit_limit"]["verdict"] != "accepted" or f["credit_limit"]["owner"] != "crm", f["credit_limit"]
assert any(t.get("system") == "erp" for t in d["targets"]), d["targets"]
PY

# 5. the same change against a golden record that already holds it: echoes
cat >"$DIR/golden.json" <<'JSON'
{"entity":"customer","exists":true,"deleted":false,"keys":{"crm":"001gtll743LbiqKaLu","erp":"R-1"},"seen":{},"fields":{"customer_no":{"value":"R-1","owner":"crm","pos":"00000000000000010000000000000e92010000000000000000","commit_ts_us":1795618734000000},"name":{"value":"Replay 1","owner":"crm","pos":"00000000000000010000000000000e92010000000000000000","commit_ts_us":1795618734000000},"email":{"value":"r1@replay.example","owner":"crm","pos":"00000000000000010000000000000e92010000000000000000","commit_ts_us":1795618734000000},"status":{"value":"active","owner":"crm","pos":"00000000000000010000000000000e92010000000000000000","commit_ts_us":1795618734000000}}}
JSON
"$BIN" rules explain "$RULES" --change "@$DIR/change.json" --golden "@$DIR/golden.json" --json >"$DIR/known.json" ||
  fail "explain --golden"
python3 - "$DIR/known.json" <<'PY' || fail "explain --golden --json"
import json, sys
d = json.load(open(sys.argv[1]))
f = {x["field"]: x for x in d["fields"]}
assert f["name"]["verdict"] == "echo", f["name"]
assert not any(t.get("system") == "crm" for t in d["targets"]), "a field written back to its owner"
PY
echo "PASS rules_cli"
