#!/usr/bin/env bash
# steward-emulator behaves like the platforms: Salesforce-style upsert (201 then
# 204, row in MariaDB), Salesforce and Stripe error shapes for unknown fields,
# Stripe idempotency (replay without a second row, mismatch → 400), Zendesk
# ticket create (row in PostgreSQL), ERP upsert and 409 on a foreign key, and
# 401 without the bearer token.
# Ports: PostgreSQL 55450, MariaDB 33450, emulator 18400.
set -euo pipefail
SRC=${STEWARD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${STEWARD_BUILD_DIR:-$SRC/build}
EMU=$BUILD/tests/emulator/steward-emulator
DIR=$BUILD/tmp/emulator_platforms
PG_PORT=55450 MY_PORT=33450 PORT=18400
TOKEN=test-token-$$
EMU_PID=

cleanup() {
  [[ -n $EMU_PID ]] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
  "$SRC/scripts/demo/estate.sh" stop "$DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [[ -f $DIR/emulator.log ]] && tail -20 "$DIR/emulator.log" >&2; exit 1; }
check() { [[ "$2" == "$3" ]] || fail "$1: expected '$3', got '$2'"; }

mkdir -p "$DIR"
"$SRC/scripts/demo/estate.sh" start "$DIR" "$PG_PORT" "$MY_PORT" >/dev/null
eval "$("$SRC/scripts/demo/estate.sh" dsn "$PG_PORT" "$MY_PORT")"
"$EMU" --listen 127.0.0.1:$PORT --erp-dsn "$ERP_DSN" --support-dsn "$SUPPORT_DSN" \
  --crm-dsn "$CRM_DSN" --billing-dsn "$BILLING_DSN" --token "$TOKEN" >"$DIR/emulator.log" 2>&1 &
EMU_PID=$!
URL=http://127.0.0.1:$PORT
AUTH=(-H "Authorization: Bearer $TOKEN")
for _ in $(seq 1 50); do curl -sf "${AUTH[@]}" "$URL/_emulator/health" >/dev/null && break; sleep 0.1; done
curl -sf "${AUTH[@]}" -X POST "$URL/_emulator/reset" -d '{"data":true}' >/dev/null || fail "reset"
grep -q "$TOKEN" "$DIR/emulator.log" && fail "the token appears in the log"
grep -q "steward:steward@" "$DIR/emulator.log" && fail "a password appears in the log"

mysql_q() { "$SRC/scripts/mariadb-server.sh" client "$DIR/mariadb" -N -B -e "$1"; }
pg_q() { psql -X -q -tA -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -c "$2"; }
# req METHOD PATH [curl args…] → prints "STATUS BODY"
req() {
  local m=$1 p=$2; shift 2
  curl -s -o "$DIR/body" -w '%{http_code}' -X "$m" "${AUTH[@]}" "$@" "$URL$p"
  echo -n " "; cat "$DIR/body"
}
ACC=/crm/services/data/v59.0/sobjects/Account

echo "--- CRM upsert by external id: 201 created, then 204 updated, row in MariaDB"
out=$(req PATCH "$ACC/ExternalId__c/C-100" -H 'Content-Type: application/json' \
  -d '{"Name":"Acme GmbH","Email__c":"ap@acme.example","Status__c":"active","Credit_Limit__c":5000}')
check "first upsert status" "${out%% *}" 201
check "created flag" "$(jq -r .created <<<"${out#* }")" true
id=$(jq -r .id <<<"${out#* }")
[[ $id == 001* && ${#id} == 18 ]] || fail "Salesforce-style id expected, got $id"
out=$(req PATCH "$ACC/ExternalId__c/C-100" -d '{"Phone":"+49 30 1234"}')
check "second upsert status" "${out%% *}" 204
check "row in crm.accounts" "$(mysql_q "SELECT CONCAT_WS('|', id, name, phone, status, credit_limit) FROM crm.accounts WHERE external_id='C-100'")" \
  "$id|Acme GmbH|+49 30 1234|active|5000.00"
out=$(req GET "$ACC/$id")
check "GET by id" "$(jq -r '.Name + "/" + .ExternalId__c' <<<"${out#* }")" "Acme GmbH/C-100"

echo "--- CRM errors in Salesforce's shape"
out=$(req PATCH "$ACC/ExternalId__c/C-100" -d '{"Nmae":"typo"}')
check "unknown field status" "${out%% *}" 400
check "unknown field errorCode" "$(jq -r '.[0].errorCode' <<<"${out#* }")" INVALID_FIELD
check "unknown field fields" "$(jq -r '.[0].fields[0]' <<<"${out#* }")" Nmae
out=$(req PATCH "$ACC/ExternalId__c/C-100" -d '{"Status__c":"gold"}')
check "picklist" "$(jq -r '.[0].errorCode' <<<"${out#* }")" INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST
out=$(req PATCH "$ACC/ExternalId__c/C-100" -d "{\"Phone\":\"$(printf '9%.0s' $(seq 1 70))\"}")
check "too long" "$(jq -r '.[0].errorCode' <<<"${out#* }")" STRING_TOO_LONG
out=$(req GET "$ACC/001000000000000AAA")
check "unknown id" "${out%% *} $(jq -r '.[0].errorCode' <<<"${out#* }")" "404 NOT_FOUND"

echo "--- 401 without the token"
code=$(curl -s -o "$DIR/body" -w '%{http_code}' -X PATCH "$URL$ACC/ExternalId__c/C-101" -d '{"Name":"x"}')
check "no token" "$code" 401
check "401 shape" "$(jq -r '.[0].errorCode' "$DIR/body")" INVALID_SESSION_ID
check "no row without token" "$(mysql_q "SELECT COUNT(*) FROM crm.accounts WHERE external_id='C-101'")" 0

echo "--- Stripe idempotency: same key + same body replayed, one row; different body → 400"
hdrs=$DIR/headers
code=$(curl -s -D "$hdrs" -o "$DIR/first" -w '%{http_code}' "${AUTH[@]}" -H 'Idempotency-Key: ik-1' \
  "$URL/billing/v1/customers" -d email=billing@acme.example -d name=Acme -d 'metadata[erp_customer_no]=C-100')
check "create" "$code" 200
cus=$(jq -r .id "$DIR/first")
[[ $cus == cus_* ]] || fail "Stripe-style id expected, got $cus"
code=$(curl -s -D "$hdrs" -o "$DIR/second" -w '%{http_code}' "${AUTH[@]}" -H 'Idempotency-Key: ik-1' \
  "$URL/billing/v1/customers" -d email=billing@acme.example -d name=Acme -d 'metadata[erp_customer_no]=C-100')
check "replay status" "$code" 200
grep -qi '^Idempotent-Replayed: true' "$hdrs" || fail "Idempotent-Replayed header missing"
cmp -s "$DIR/first" "$DIR/second" || fail "replayed body differs"
check "one billing row" "$(mysql_q "SELECT COUNT(*) FROM billing.customers WHERE erp_customer_no='C-100'")" 1
out=$(req POST /billing/v1/customers -H 'Idempotency-Key: ik-1' -d email=other@acme.example)
check "mismatch" "${out%% *} $(jq -r .error.type <<<"${out#* }")" "400 idempotency_error"
out=$(req POST /billing/v1/customers -d email=x@acme.example -d plan=gold)
check "unknown param" "${out%% *} $(jq -r '.error.type + " " + .error.param' <<<"${out#* }")" "400 invalid_request_error plan"
out=$(req GET /billing/v1/customers/cus_missing)
check "missing" "${out%% *} $(jq -r .error.code <<<"${out#* }")" "404 resource_missing"
out=$(req POST /billing/v1/subscriptions -H 'Content-Type: application/json' \
  -d "{\"customer\":\"$cus\",\"plan\":\"pro\",\"amount\":4900}")
check "JSON subscription" "${out%% *} $(jq -r '.amount' <<<"${out#* }")" "200 4900"
check "amount stored as decimal" "$(mysql_q "SELECT amount FROM billing.subscriptions WHERE customer_id='$cus'")" 49.00

echo "--- Zendesk ticket create → row in PostgreSQL; invalid status → 422"
out=$(req POST /support/api/v2/tickets.json -H 'Content-Type: application/json' \
  -d '{"ticket":{"subject":"Invoice wrong","external_id":"case-7","priority":"high","requester":{"email":"ap@acme.example"},"customer_no":"C-100"}}')
check "ticket create" "${out%% *}" 201
tid=$(jq -r .ticket.id <<<"${out#* }")
check "ticket row" "$(pg_q support "SELECT subject||'|'||status||'|'||priority||'|'||requester_email FROM tickets WHERE id=$tid")" \
  "Invoice wrong|new|high|ap@acme.example"
out=$(req PUT "/support/api/v2/tickets/$tid.json" -d '{"ticket":{"status":"waiting"}}')
check "invalid status" "${out%% *} $(jq -r .error <<<"${out#* }")" "422 RecordInvalid"
out=$(req POST /support/api/v2/tickets/create_or_update -d '{"ticket":{"external_id":"case-7","status":"open"}}')
check "create_or_update existing" "${out%% *} $(jq -r .ticket.id <<<"${out#* }")" "200 $tid"

echo "--- ERP: upsert 201/200, invoice for an unknown customer → 409"
out=$(req PUT /erp/api/customers/C-200 -d '{"name":"Beta AG","credit_limit":"2500.00"}')
check "erp create" "${out%% *}" 201
out=$(req PUT /erp/api/customers/C-200 -d '{"email":"beta@example.com"}')
check "erp update" "${out%% *} $(jq -r .name <<<"${out#* }")" "200 Beta AG"
out=$(req PUT /erp/api/invoices/INV-1 -d '{"customer_no":"C-404","amount":10,"status":"open"}')
check "erp fk" "${out%% *} $(jq -r .error.code <<<"${out#* }")" "409 foreign_key_violation"
check "erp row" "$(pg_q erp "SELECT email||'|'||credit_limit FROM customers WHERE customer_no='C-200'")" "beta@example.com|2500.00"

echo "--- the inspection API saw it all"
stats=$(curl -sf "${AUTH[@]}" "$URL/_emulator/stats")
check "crm creates" "$(jq -r .platforms.crm.writes.create <<<"$stats")" 1
check "billing replays" "$(jq -r .platforms.billing.idempotent_replays <<<"$stats")" 1
check "unauthorized counted" "$(jq -r .platforms.crm.unauthorized <<<"$stats")" 1
reqs=$(curl -sf "${AUTH[@]}" "$URL/_emulator/requests?platform=billing&status=200")
check "idempotency key logged" "$(jq -r '[.requests[].idempotency_key] | map(select(. == "ik-1")) | length' <<<"$reqs")" 2
echo "PASS emulator_platforms"
