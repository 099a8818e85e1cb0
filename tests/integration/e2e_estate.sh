#!/usr/bin/env bash
# End to end over the demo estate, real servers and real HTTP over loopback:
# PostgreSQL (erp, support) and MariaDB (crm, billing) from
# scripts/demo/estate.sh, steward-emulator serving the four platforms' APIs
# into those same databases, one `steward capture` per database, and
# `steward apply` with docs/examples/estate.yaml and targets.yaml.
#
# Random business activity in every system at once (CRM accounts through the
# CRM API, credit limits and invoices in ERP SQL, billing customers,
# subscriptions and payments through the billing API, tickets and their
# status changes through the support API, a non-owner's edit, a billing
# customer nobody may create),
# then quiescence.  Asserts: every system holds the owner's value of every
# field it receives (the CRM's Case the support desk's status); no duplicate
# creates; no ping-pong (our writes echo back
# and cause no further writes, the write count stays put); every rejected
# change is in the dead-letter queue or the conflict log.
#
# E2E_CHAOS=1 (tests/integration/e2e_chaos.sh): the same while `steward
# apply` and the CRM capture agent are killed with SIGKILL at random
# moments, the emulator answers 429/5xx/timeouts, and the ERP API is down
# for a while.  Ports: PostgreSQL 55510/55511, MariaDB 33510/33511,
# emulator 18510/18512, metrics 18511/18513 (plain/chaos).
set -euo pipefail
SRC=${STEWARD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${STEWARD_BUILD_DIR:-$SRC/build}
BIN=${STEWARD_BIN:-$BUILD/cli/steward}
EMU=$BUILD/tests/emulator/steward-emulator
CHAOS=${E2E_CHAOS:-0}
if [[ $CHAOS == 1 ]]; then
  NAME=e2e_chaos PG_PORT=55511 MY_PORT=33511 EMU_PORT=18512 MET_PORT=18513
else
  NAME=e2e_estate PG_PORT=55510 MY_PORT=33510 EMU_PORT=18510 MET_PORT=18511
fi
DIR=$BUILD/tmp/$NAME
N=${E2E_ACCOUNTS:-24}
[[ ${STEWARD_TEST_SCALE:-} == quick ]] && N=8
export STEWARD_EMULATOR_TOKEN=e2e-token-$RANDOM
URL=http://127.0.0.1:$EMU_PORT
declare -A PIDS=()

cleanup() {
  local rc=$?
  for f in "$DIR"/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  for p in "${!PIDS[@]}"; do kill "${PIDS[$p]}" 2>/dev/null || true; done
  for p in "${!PIDS[@]}"; do wait "${PIDS[$p]}" 2>/dev/null || true; done
  for db in erp support; do
    psql_db "$db" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'steward_$db'" >/dev/null 2>&1 || true
  done
  "$SRC/scripts/demo/estate.sh" stop "$DIR/estate" >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in apply capture-crm capture-erp emulator; do
    [[ -f $DIR/$f.log ]] && { echo "--- $f.log" >&2; tail -15 "$DIR/$f.log" >&2; }
  done
  exit 1
}
psql_db() { local db=$1; shift; PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$db" "$@"; }
pg() { psql_db "$1" -tAc "$2"; }
my() { "$SRC/scripts/mariadb-server.sh" client "$DIR/estate/mariadb" -N -B -e "$1"; }
api() {  # METHOD PATH [JSON] → body; fails on non-2xx
  curl -sf -X "$1" "$URL$2" -H "Authorization: Bearer $STEWARD_EMULATOR_TOKEN" \
    -H 'Content-Type: application/json' ${IDEM:+-H "Idempotency-Key: $IDEM"} ${3:+-d "$3"}
}
api_retry() {  # the injected faults hit the test's own calls too
  local out
  for _ in $(seq 1 30); do out=$(api "$@") && { echo "$out"; return 0; }; sleep 0.3; done
  return 1
}
ctl() { curl -sf -X POST "$URL/_emulator/$1" -H "Authorization: Bearer $STEWARD_EMULATOR_TOKEN" -H 'Content-Type: application/json' -d "$2" >/dev/null; }

rm -rf "$DIR" && mkdir -p "$DIR"
echo "--- estate"
"$SRC/scripts/demo/estate.sh" start "$DIR/estate" "$PG_PORT" "$MY_PORT" >"$DIR/estate.log" 2>&1 || fail "estate start"
eval "$("$SRC/scripts/demo/estate.sh" dsn "$PG_PORT" "$MY_PORT")"

start_emulator() {
  "$EMU" --listen 127.0.0.1:$EMU_PORT --erp-dsn "$ERP_DSN" --support-dsn "$SUPPORT_DSN" \
    --crm-dsn "$CRM_DSN" --billing-dsn "$BILLING_DSN" >>"$DIR/emulator.log" 2>&1 &
  PIDS[emulator]=$!
  for _ in $(seq 1 100); do curl -sf -H "Authorization: Bearer $STEWARD_EMULATOR_TOKEN" "$URL/_emulator/health" >/dev/null && return; sleep 0.1; done
  fail "emulator did not start"
}
start_capture() {  # name dsn
  local extra=()
  [[ $1 == erp || $1 == support ]] && extra=(--slot "steward_$1")
  "$BIN" capture --dsn "$2" --data-dir "$DIR/log-$1" --source "$1" "${extra[@]}" \
    --status-interval 200 >>"$DIR/capture-$1.log" 2>&1 &
  PIDS[capture-$1]=$!
  echo $! >"$DIR/capture-$1.pid"  # the chaos subshell restarts it: the file is the truth
}
sed "s#http://127.0.0.1:18400#$URL#" "$SRC/docs/examples/targets.yaml" >"$DIR/targets.yaml"
start_apply() {
  "$BIN" apply --log "$DIR/log-erp" --log "$DIR/log-crm" --log "$DIR/log-billing" \
    --log "$DIR/log-support" --rules "$SRC/docs/examples/estate.yaml" \
    --targets "$DIR/targets.yaml" --state "$DIR/state.db" --metrics-listen 127.0.0.1:$MET_PORT \
    --reference-timeout 60 >>"$DIR/apply.log" 2>&1 &
  PIDS[apply]=$!
  echo $! >"$DIR/apply.pid"
}

start_emulator
start_capture erp "$ERP_DSN"
start_capture support "$SUPPORT_DSN"
start_capture crm "$CRM_DSN"
start_capture billing "$BILLING_DSN"
# apply refuses a change log directory that does not exist yet: wait until
# every agent has created its log
for s in erp support crm billing; do
  for _ in $(seq 1 100); do [[ -d $DIR/log-$s/segments ]] && break; sleep 0.1; done
  kill -0 "${PIDS[capture-$s]}" 2>/dev/null || fail "capture $s exited"
  [[ -d $DIR/log-$s/segments ]] || fail "capture $s did not create its change log"
done
start_apply
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$MET_PORT/status" >/dev/null && break; sleep 0.1; done
kill -0 "${PIDS[apply]}" 2>/dev/null || fail "steward apply exited"

# ---- activity ----
crm_accounts() {
  for i in $(seq 1 "$N"); do
    api_retry PATCH "/crm/services/data/v59.0/sobjects/Account/ExternalId__c/C-$i" \
      "{\"Name\":\"Account $i\",\"Email__c\":\"ap$i@acme$i.example\",\"Status__c\":\"active\"}" >/dev/null ||
      echo "crm account $i not created" >&2
    sleep 0.0$((RANDOM % 10))
  done
}
erp_activity() {  # one psql session: statements commit one by one, spaced a little
  {
    for i in $(seq 1 $((N / 2))); do
      echo "INSERT INTO customers (customer_no, name, email, credit_limit) VALUES ('E-$i', 'ERP Customer $i', 'erp$i@x.example', $((i * 100)));"
      echo "SELECT pg_sleep(0.0$((RANDOM % 10)));"
    done
    echo "SELECT pg_sleep(2);"
    # credit limits and invoices of the CRM's customers, once the ERP has them
    for round in 1 2; do
      for i in $(seq 1 "$N"); do
        echo "UPDATE customers SET credit_limit = $((RANDOM % 9000 + 1000)).50 WHERE customer_no = 'C-$i';"
        [[ $round == 1 ]] && echo "INSERT INTO invoices (invoice_no, customer_no, amount, status) SELECT 'I-$i', 'C-$i', $((i * 10)), 'open' WHERE EXISTS (SELECT 1 FROM customers WHERE customer_no = 'C-$i') ON CONFLICT DO NOTHING;"
        echo "SELECT pg_sleep(0.0$((RANDOM % 5)));"
      done
      echo "SELECT pg_sleep(1);"
    done
  } | psql_db erp >/dev/null
}
support_activity() {  # tickets, two of three then worked on: their status goes to the CRM's Case
  local t id
  for i in $(seq 1 $((N / 2))); do
    t=$(api_retry POST /support/api/v2/tickets.json "{\"ticket\":{\"subject\":\"Help $i\",\"requester_email\":\"ap$i@acme$i.example\",\"customer_no\":\"C-$i\",\"external_id\":\"case-$i\"}}") || continue
    id=$(jq -er .ticket.id <<<"$t") || continue
    sleep 0.1
    case $((i % 3)) in
      1) api_retry PUT "/support/api/v2/tickets/$id.json" '{"ticket":{"status":"open"}}' >/dev/null || true ;;
      2) api_retry PUT "/support/api/v2/tickets/$id.json" '{"ticket":{"status":"pending"}}' >/dev/null || true
         sleep 0.0$((RANDOM % 10))
         api_retry PUT "/support/api/v2/tickets/$id.json" '{"ticket":{"status":"solved"}}' >/dev/null || true ;;
    esac
  done
}
billing_activity() {
  sleep 3  # billing customers belong to ERP customers that exist by now
  for i in $(seq 1 $((N / 2))); do
    local cus
    # a billing customer links to an ERP customer that exists (and that
    # Steward knows: the ERP row is Steward's own upsert); without it the
    # rules call it a create billing has no right to
    for _ in $(seq 1 100); do [[ -n $(pg erp "SELECT 1 FROM customers WHERE customer_no = 'C-$i'") ]] && break; sleep 0.3; done
    sleep 0.5
    cus=$(IDEM="drv-cus-$i" api_retry POST /billing/v1/customers "{\"name\":\"Billing Name $i\",\"email\":\"billing$i@x.example\",\"metadata\":{\"erp_customer_no\":\"C-$i\"}}" | sed -n 's/.*"id":"\(cus_[A-Za-z0-9]*\)".*/\1/p') || true
    [[ -n $cus ]] || continue
    echo "$i $cus" >>"$DIR/billing-customers"
    IDEM="drv-sub-$i" api_retry POST /billing/v1/subscriptions "{\"customer\":\"$cus\",\"plan\":\"gold\",\"amount\":1250,\"status\":\"active\"}" >/dev/null || true
    sleep 0.1
  done
  # a customer no system of record created: billing may not create customers
  api POST /billing/v1/customers '{"name":"Ghost","metadata":{"erp_customer_no":"NOPE-1"}}' >/dev/null || true
}
payments() {  # after the ERP activity: every invoice there will be exists
  while read -r i cus; do
    [[ $((i % 2)) == 0 ]] || continue
    [[ -n $(pg erp "SELECT 1 FROM invoices WHERE invoice_no = 'I-$i'") ]] || continue
    IDEM="drv-pay-$i" api_retry POST /billing/v1/payments "{\"customer\":\"$cus\",\"amount\":$((i * 1000)),\"currency\":\"eur\",\"status\":\"succeeded\",\"metadata\":{\"invoice_no\":\"I-$i\"}}" >/dev/null &&
      echo "$i" >>"$DIR/paid" || true
  done <"$DIR/billing-customers"
}
chaos() {
  [[ $CHAOS == 1 ]] || return 0
  for round in 1 2 3 4; do
    sleep $((RANDOM % 3 + 1))
    kill -9 "$(cat "$DIR/apply.pid")" 2>/dev/null || true; wait "$(cat "$DIR/apply.pid")" 2>/dev/null || true
    echo "chaos: killed apply (round $round)" >>"$DIR/chaos.log"
    case $round in
      1) ctl faults '{"platform":"crm","mode":"error","status":503,"count":6}' ;;
      2) ctl ratelimit '{"platform":"erp","rps":5,"burst":5}' ;;
      # the connection is closed after 12 s: past apply's 10 s request
      # timeout (targets.yaml), so apply still times out, while a driver
      # call caught by it waits 12 s rather than the default 30
      3) ctl faults '{"platform":"billing","mode":"timeout","delay_ms":12000,"count":2}' || true
         kill -9 "$(cat "$DIR/capture-crm.pid")" 2>/dev/null || true; wait "$(cat "$DIR/capture-crm.pid")" 2>/dev/null || true
         echo "chaos: killed capture crm" >>"$DIR/chaos.log"
         sleep 0.5; start_capture crm "$CRM_DSN" ;;
      4) ctl faults '{"platform":"erp","mode":"error","status":503,"count":1000}'  # ERP down
         sleep 4; curl -sf -X DELETE "$URL/_emulator/faults" -H "Authorization: Bearer $STEWARD_EMULATOR_TOKEN" >/dev/null || true
         ctl ratelimit '{"platform":"erp","rps":0}' ;;
    esac
    sleep 0.3
    start_apply
  done
}

echo "--- activity ($N CRM accounts${CHAOS:+, chaos=$CHAOS})"
: >"$DIR/billing-customers"; : >"$DIR/paid"
T0=$(date +%s)
crm_accounts & A1=$!
erp_activity & A2=$!
support_activity & A3=$!
billing_activity & A4=$!
chaos & A5=$!
wait $A1 $A2 $A4
payments
wait $A3 $A5
# a non-owner edits an owned field: refused, logged, repaired
acc=$(my "SELECT id FROM crm.accounts WHERE external_id = 'C-1'")
[[ -n $acc ]] && api PATCH "/crm/services/data/v59.0/sobjects/Account/$acc" '{"Credit_Limit__c":1}' >/dev/null

# ---- quiescence ----
echo "--- waiting for quiescence"
status() { curl -sf "http://127.0.0.1:$MET_PORT/status" || echo '{}'; }
writes() { curl -sf "$URL/_emulator/stats" -H "Authorization: Bearer $STEWARD_EMULATOR_TOKEN" | jq -r .total.writes; }
# quiescent: nothing pending, every source caught up, and the emulator's
# write count unchanged over 3 s (7 polls 0.5 s apart)
stable=0 last=-1
for _ in $(seq 1 240); do
  kill -0 "$(cat "$DIR/apply.pid")" 2>/dev/null || fail "steward apply died"
  quiet=$(status | jq -r 'if (.outbox_pending // 1) == 0 and ((.sources // []) | length) > 0
    and all(.sources[]; .caught_up) then 1 else 0 end' 2>/dev/null || echo 0)
  w=$(writes)
  if [[ $quiet == 1 && $w == "$last" ]]; then stable=$((stable + 1)); else stable=0; fi
  last=$w
  [[ $stable -ge 6 ]] && break
  sleep 0.5
done
[[ $stable -ge 6 ]] || fail "no quiescence: $(status)"
echo "quiescent after $(( $(date +%s) - T0 )) s, emulator writes $last"

# ---- assertions ----
echo "--- assertions"
problems=0
bad() { echo "MISMATCH: $*" >&2; problems=$((problems + 1)); }
# 1. no duplicate creates
n_crm=$(my "SELECT COUNT(*) FROM crm.accounts")
n_erp=$(pg erp "SELECT COUNT(*) FROM customers")
[[ $n_crm == "$N" ]] || bad "CRM holds $n_crm accounts, expected $N"
[[ $n_erp == $((N + N / 2)) ]] || bad "ERP holds $n_erp customers, expected $((N + N / 2))"
# Each table is read once and compared here: a query per row costs a
# process start and a round trip, and there are a few hundred rows.  Every
# key looked up is a primary or unique key, so a map holds what a query by
# that key would return.
load_map() {  # NAME: "key<TAB>value" lines into the associative array NAME ("_" + key)
  local -n map=$1
  local k v
  while IFS=$'\t' read -r k v; do map["_$k"]=$v; done
}
pg_tsv() { psql_db "$1" -tA -F $'\t' -c "$2"; }
declare -A ERP_ROW=() ERP_NAME=() INVOICE=() CRM_LIMIT=() BILLING=() CASE_STATUS=()
load_map ERP_ROW < <(pg_tsv erp "SELECT customer_no, name || '|' || coalesce(email,'') || '|' || coalesce(crm_account_id,'') FROM customers")
load_map ERP_NAME < <(pg_tsv erp "SELECT customer_no, name FROM customers")
load_map INVOICE < <(pg_tsv erp "SELECT invoice_no, status FROM invoices")
load_map CRM_LIMIT < <(my "SELECT external_id, coalesce(credit_limit,'') FROM crm.accounts")
load_map BILLING < <(my "SELECT id, concat(coalesce(name,''), '|', coalesce(erp_customer_no,'')) FROM billing.customers")
load_map CASE_STATUS < <(my "SELECT external_id, coalesce(status,'') FROM crm.cases")
# 2. the ERP holds the CRM's name and e-mail and knows the CRM id
while IFS=$'\t' read -r id ext name email; do
  row=${ERP_ROW["_$ext"]-}
  [[ $row == "$name|$email|$id" ]] || bad "ERP $ext: '$row', CRM says '$name|$email|$id'"
done < <(my "SELECT id, external_id, name, coalesce(email,'') FROM crm.accounts")
# 3. the CRM holds the ERP's credit limit (the owner's), also after the CRM's own edit
while IFS='|' read -r ext limit; do
  crm=${CRM_LIMIT["_$ext"]-}
  [[ $crm == "$limit" ]] || bad "CRM credit limit of $ext: '$crm', ERP says '$limit'"
done < <(pg erp "SELECT customer_no, coalesce(credit_limit::text,'') FROM customers WHERE crm_account_id IS NOT NULL")
# 4. billing holds the owner's name (billing's own name was refused and repaired)
while read -r i cus; do
  name=${ERP_NAME["_C-$i"]-}
  b=${BILLING["_$cus"]-}
  [[ $b == "$name|C-$i" ]] || bad "billing $cus: '$b', owner says '$name|C-$i'"
done <"$DIR/billing-customers"
# 5. paid invoices are paid in the ERP
while read -r i; do
  st=${INVOICE["_I-$i"]-}
  [[ $st == paid ]] || bad "invoice I-$i is '$st' after a succeeded payment"
done <"$DIR/paid"
# 6. the CRM's Case holds the support desk's status (the owner's), one Case per ticket
n_tickets=$(pg support "SELECT COUNT(*) FROM tickets")
n_cases=$(my "SELECT COUNT(*) FROM crm.cases")
[[ $n_tickets -ge 1 ]] || bad "the support desk holds no tickets"
[[ $n_cases == "$n_tickets" ]] || bad "CRM holds $n_cases cases, the support desk $n_tickets tickets"
while IFS='|' read -r id st; do
  crm=${CASE_STATUS["_$id"]-}
  [[ $crm == "$st" ]] || bad "CRM case status of ticket $id: '$crm', the support desk says '$st'"
done < <(pg support "SELECT id, status FROM tickets")
# 7. rejected changes are on record with their reason
dlq=$("$BIN" dlq list --state "$DIR/state.db" --limit 1000)
echo "$dlq" | grep -q "unauthorized create: billing may not create customer" || bad "the ghost billing customer is not in the DLQ"
conflicts=$(python3 -c "import sqlite3; print(sqlite3.connect('$DIR/state.db').execute('SELECT COUNT(*) FROM conflict').fetchone()[0])" 2>/dev/null || echo 0)
[[ $conflicts -ge 1 ]] || bad "no conflict recorded for the non-owners' edits"
# 8. no ping-pong: nothing more happens, and the writes are bounded
sleep 4
w2=$(writes)
[[ $w2 == "$last" ]] || bad "writes kept coming after quiescence: $last → $w2"
metrics=$(curl -sf "http://127.0.0.1:$MET_PORT/metrics")
ours=$(echo "$metrics" | awk '/^steward_apply_writes_total\{/ && /code="2/ {s+=$NF} END {print s+0}')
activity=$((N + N / 2 + 2 * N + N / 2 * 3 + N / 2 + 2))
echo "apply's successful writes since the last start: $ours; emulator writes: $w2; activity ops: ~$activity"
[[ $w2 -le $((activity * 3)) ]] || bad "write count $w2 exceeds 3 × activity ($activity): ping-pong?"
echo "dead letters: $(echo "$dlq" | tail -n +2 | wc -l), conflicts: $conflicts"
[[ $CHAOS == 1 ]] && cat "$DIR/chaos.log"
[[ $problems == 0 ]] || fail "$problems mismatches"
echo "PASS $NAME"
