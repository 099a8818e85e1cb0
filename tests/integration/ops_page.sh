#!/usr/bin/env bash
# The operations page, end to end in headless Chromium: a small demo estate
# (PostgreSQL erp+support, MariaDB crm+billing, the emulator, four capture
# agents with --metrics-listen, apply with a UI token) runs the demo's
# business activity; then the CRM rejects one write (422) so a dead letter
# with a request exists.  Asserts: the page loads and shows the flows,
# targets, conflicts and the dead letter; `steward status` sees every source
# streaming; a retry without the token is refused; clicking Retry in the
# browser (playwright-core driving Debian's chromium) moves the letter back
# into processing and the write reaches the CRM.  Screenshot:
# $STEWARD_BUILD_DIR/tmp/ops_page/ops_page.png.
# Ports: PostgreSQL 55530, MariaDB 33530, emulator 18550, apply 18551,
# capture agents 18552-18555.
set -euo pipefail
SRC=${STEWARD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${STEWARD_BUILD_DIR:-$SRC/build}
BIN=${STEWARD_BIN:-$BUILD/cli/steward}
EMU=$BUILD/tests/emulator/steward-emulator
PG_PORT=55530 MY_PORT=33530 EMU_PORT=18550 APPLY_PORT=18551
declare -A CAP_PORT=([erp]=18552 [support]=18553 [crm]=18554 [billing]=18555)
DIR=$BUILD/tmp/ops_page
NODE_DIR=$BUILD/tmp/playwright
URL=http://127.0.0.1:$EMU_PORT
PAGE=http://127.0.0.1:$APPLY_PORT/
export STEWARD_EMULATOR_TOKEN=ops-token-$RANDOM$RANDOM
export STEWARD_UI_TOKEN=ui-token-$RANDOM$RANDOM
declare -A PIDS=()

psql_db() { local db=$1; shift; PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$db" "$@"; }
pg() { psql_db "$1" -tAc "$2"; }
my() { "$SRC/scripts/mariadb-server.sh" client "$DIR/estate/mariadb" -N -B -e "$1"; }
ctl() { curl -sf -X POST "$URL/_emulator/$1" -H "Authorization: Bearer $STEWARD_EMULATOR_TOKEN" -H 'Content-Type: application/json' -d "$2" >/dev/null; }
cleanup() {
  local rc=$?
  for p in "${!PIDS[@]}"; do kill "${PIDS[$p]}" 2>/dev/null || true; done
  for p in "${!PIDS[@]}"; do wait "${PIDS[$p]}" 2>/dev/null || true; done
  for db in erp support; do
    pg "$db" "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'steward_$db'" >/dev/null 2>&1 || true
  done
  "$SRC/scripts/demo/estate.sh" stop "$DIR/estate" >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in apply capture-crm capture-erp emulator; do
    [[ -f $DIR/$f.log ]] && { echo "--- $f.log" >&2; tail -10 "$DIR/$f.log" >&2; }
  done
  exit 1
}

# ---- the browser and its driver ----
if ! command -v chromium >/dev/null; then
  STEWARD_WITH_BROWSER=1 "$SRC/scripts/install-deps.sh" >/dev/null || fail "could not install chromium"
fi
if [[ ! -d $NODE_DIR/node_modules/playwright-core ]]; then
  mkdir -p "$NODE_DIR"
  (cd "$NODE_DIR" && npm init -y >/dev/null && npm install --no-audit --no-fund playwright-core >/dev/null) ||
    fail "npm install playwright-core failed"
fi
CHROME=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync)

rm -rf "$DIR" && mkdir -p "$DIR"
echo "--- estate"
"$SRC/scripts/demo/estate.sh" start "$DIR/estate" "$PG_PORT" "$MY_PORT" >"$DIR/estate.log" 2>&1 || fail "estate start"
eval "$("$SRC/scripts/demo/estate.sh" dsn "$PG_PORT" "$MY_PORT")"
"$EMU" --listen 127.0.0.1:$EMU_PORT --erp-dsn "$ERP_DSN" --support-dsn "$SUPPORT_DSN" \
  --crm-dsn "$CRM_DSN" --billing-dsn "$BILLING_DSN" >>"$DIR/emulator.log" 2>&1 &
PIDS[emulator]=$!
for _ in $(seq 1 100); do curl -sf -H "Authorization: Bearer $STEWARD_EMULATOR_TOKEN" "$URL/_emulator/health" >/dev/null && break; sleep 0.1; done
for s in erp support crm billing; do
  var=${s^^}_DSN
  (umask 077; echo "${!var}" >"$DIR/$s.dsn")
  extra=()
  [[ $s == erp || $s == support ]] && extra=(--slot "steward_$s")
  "$BIN" capture --dsn-file "$DIR/$s.dsn" --data-dir "$DIR/log-$s" --source "$s" "${extra[@]}" \
    --metrics-listen "127.0.0.1:${CAP_PORT[$s]}" --status-interval 200 --log-format json >>"$DIR/capture-$s.log" 2>&1 &
  PIDS[capture-$s]=$!
done
sed "s#http://127.0.0.1:18400#$URL#" "$SRC/docs/examples/targets.yaml" >"$DIR/targets.yaml"
sleep 1
"$BIN" apply --log "$DIR/log-erp" --log "$DIR/log-crm" --log "$DIR/log-billing" --log "$DIR/log-support" \
  --rules "$SRC/docs/examples/estate.yaml" --targets "$DIR/targets.yaml" --state "$DIR/state.db" \
  --metrics-listen 127.0.0.1:$APPLY_PORT --reference-timeout 30 >>"$DIR/apply.log" 2>&1 &
PIDS[apply]=$!
for _ in $(seq 1 50); do curl -sf "${PAGE}status" >/dev/null && break; sleep 0.2; done
for p in "${!PIDS[@]}"; do kill -0 "${PIDS[$p]}" 2>/dev/null || fail "$p exited"; done
grep -q "$STEWARD_UI_TOKEN" "$DIR"/*.log && fail "the UI token appears in a log"

echo "--- activity"
STEWARD_DEMO_DIR=$DIR STEWARD_DEMO_PG_PORT=$PG_PORT STEWARD_EMULATOR_URL=$URL STEWARD_ACTIVITY_PAUSE=0.2 \
  STEWARD_ACTIVITY_PREFIX=T "$SRC/scripts/demo/activity.sh" 15 >"$DIR/activity.log" 2>&1 || fail "activity failed"
quiet() {
  for _ in $(seq 1 60); do
    curl -sf "${PAGE}status" | python3 -c 'import json,sys
s=json.load(sys.stdin); sys.exit(0 if s["outbox_pending"]==0 and all(x["caught_up"] for x in s["sources"]) else 1)' && return 0
    sleep 0.5
  done
  return 1
}
quiet || fail "apply did not catch up"

echo "--- a write the CRM rejects (422) becomes a dead letter"
cust=$(pg erp "SELECT customer_no FROM customers WHERE crm_account_id IS NOT NULL ORDER BY customer_no LIMIT 1")
[[ -n $cust ]] || fail "no ERP customer is linked to a CRM account"
ctl faults '{"platform":"crm","mode":"error","status":422,"count":1}'
pg erp "UPDATE customers SET credit_limit = 4242.00 WHERE customer_no = '$cust'" >/dev/null
dlq_id=
for _ in $(seq 1 60); do
  dlq_id=$(python3 -c "import sqlite3; r=sqlite3.connect('$DIR/state.db').execute(\"SELECT id FROM dlq WHERE target='crm' AND state='open' AND request IS NOT NULL ORDER BY id DESC LIMIT 1\").fetchone(); print(r[0] if r else '')")
  [[ -n $dlq_id ]] && break
  sleep 0.5
done
[[ -n $dlq_id ]] || fail "no dead letter for the rejected CRM write"
echo "dead letter $dlq_id"
[[ $(my "SELECT coalesce(credit_limit,'') FROM crm.accounts WHERE external_id = '$cust'") != 4242.00 ]] ||
  fail "the rejected write reached the CRM"

echo "--- steward status"
caps=(); for s in erp support crm billing; do caps+=(--capture "127.0.0.1:${CAP_PORT[$s]}"); done
"$BIN" status "${caps[@]}" --apply 127.0.0.1:$APPLY_PORT --state "$DIR/state.db" | tee "$DIR/status.txt"
st=$("$BIN" status "${caps[@]}" --apply 127.0.0.1:$APPLY_PORT --json)
echo "$st" | python3 -c 'import json,sys
s=json.load(sys.stdin)
names={x["name"]:x for x in s["sources"]}
assert set(names)=={"erp","support","crm","billing"}, names
assert all(x["state"]=="streaming" for x in names.values()), names
assert {t["name"] for t in s["targets"]} >= {"crm","erp","billing"}, s["targets"]' || fail "steward status --json: $st"
grep -q "^target  crm .* 1 " "$DIR/status.txt" || fail "steward status does not show crm's dead letter"

echo "--- the page (chromium --dump-dom)"
timeout 60 "${CHROME[@]}" --user-data-dir="$(mktemp -d)" --dump-dom "$PAGE" >"$DIR/page.html" 2>/dev/null || fail "chromium --dump-dom failed"
for want in "Steward operations" "Flows per entity" "Throughput, last hour" "Latest ownership conflicts" \
  "id=\"dlq-$dlq_id\"" "data-dlq=\"$dlq_id\"" "<svg"; do
  grep -qF "$want" "$DIR/page.html" || fail "the page lacks '$want'"
done
python3 - "$DIR/page.html" <<'EOF' || fail "the page does not show the demo's flows"
import re, sys
html = open(sys.argv[1]).read()
rows = re.findall(r'<tr class="flow"><td>([^<]*)</td><td>([^<]*)</td><td class="num">(\d+)</td>', html)
flows = {(s, e): int(n) for s, e, n in rows}
print("flows:", flows)
assert flows.get(("crm", "customer"), 0) > 0 and flows.get(("billing", "subscription"), 0) > 0, flows
assert flows.get(("erp", "customer"), 0) > 0 and any(e == "case" for _, e in flows), flows
assert re.search(r'<tr class="conflict"><td>[^<]*</td><td>crm</td><td>customer', html), "no CRM conflict"
assert re.search(r'<td>crm</td><td><span class="pill ok">healthy', html), "crm target not healthy"
EOF

echo "--- retry without a token is refused"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "${PAGE}ui/dlq/retry?id=$dlq_id")
[[ $code == 401 ]] || fail "retry without a token answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer wrong" "${PAGE}ui/dlq/retry?id=$dlq_id")
[[ $code == 401 ]] || fail "retry with a wrong token answered $code"

echo "--- Retry in the browser"
cat >"$DIR/retry.js" <<'EOF'
const { chromium } = require(process.env.PW_DIR + '/node_modules/playwright-core');
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
  await page.goto(process.env.PAGE);
  await page.fill('#token', process.env.STEWARD_UI_TOKEN);
  await page.click(`button[data-dlq="${process.env.DLQ_ID}"]`);
  await page.waitForFunction(() => /queued/.test(document.getElementById('msg').textContent), null, { timeout: 15000 });
  console.log('message:', await page.textContent('#msg'));
  await page.waitForTimeout(1500);
  await page.reload();
  const state = await page.getAttribute(`#dlq-${process.env.DLQ_ID}`, 'data-state');
  console.log('state after reload:', state);
  await page.screenshot({ path: process.env.SHOT, fullPage: true });
  await browser.close();
  if (state !== 'retried') process.exit(1);
})().catch(e => { console.error(e); process.exit(1); });
EOF
PW_DIR=$NODE_DIR PAGE=$PAGE DLQ_ID=$dlq_id SHOT=$DIR/ops_page.png timeout 90 node "$DIR/retry.js" ||
  fail "retry from the page failed"
[[ -s $DIR/ops_page.png ]] || fail "no screenshot"
state=$(python3 -c "import sqlite3; print(sqlite3.connect('$DIR/state.db').execute('SELECT state FROM dlq WHERE id=$dlq_id').fetchone()[0])")
[[ $state == retried ]] || fail "dead letter $dlq_id is '$state' after the retry"
for _ in $(seq 1 40); do
  [[ $(my "SELECT coalesce(credit_limit,'') FROM crm.accounts WHERE external_id = '$cust'") == 4242.00 ]] && break
  sleep 0.5
done
[[ $(my "SELECT coalesce(credit_limit,'') FROM crm.accounts WHERE external_id = '$cust'") == 4242.00 ]] ||
  fail "the retried write did not reach the CRM"
grep -q "dead letter $dlq_id retried from the operations page" "$DIR/apply.log" || fail "the retry is not logged"
grep -q "$STEWARD_UI_TOKEN" "$DIR"/*.log && fail "the UI token appears in a log"
echo "screenshot: $DIR/ops_page.png"
echo "PASS ops_page"
