#!/usr/bin/env bash
# Realistic business activity in the demo estate, for the quickstart and the
# operations tests: new customers in the CRM (through the emulator's CRM API),
# credit limits changed and invoices issued in the ERP (SQL), billing
# customers, subscriptions and payments (billing API), support cases
# (support API), and now and then something the ownership rules refuse: a
# CRM user editing a credit limit (a conflict) and a billing customer no
# system of record created (a dead letter).
#
#   scripts/demo/activity.sh SECONDS
#
# Environment: STEWARD_DEMO_DIR (the estate's dir, for the MariaDB client),
# STEWARD_DEMO_PG_PORT (55400), STEWARD_EMULATOR_URL (http://127.0.0.1:18400),
# STEWARD_EMULATOR_TOKEN or STEWARD_EMULATOR_TOKEN_FILE, STEWARD_ACTIVITY_PREFIX
# (customer number prefix, default Q: numbers are PREFIX-<run>-<n>),
# STEWARD_ACTIVITY_PAUSE (seconds between rounds, default 1).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECONDS_TOTAL=${1:-180}
DEMO=${STEWARD_DEMO_DIR:-$ROOT/.demo}
PG_PORT=${STEWARD_DEMO_PG_PORT:-55400}
URL=${STEWARD_EMULATOR_URL:-http://127.0.0.1:18400}
PREFIX=${STEWARD_ACTIVITY_PREFIX:-Q}
PAUSE=${STEWARD_ACTIVITY_PAUSE:-1}
TOKEN=${STEWARD_EMULATOR_TOKEN:-}
if [[ -z $TOKEN && -n ${STEWARD_EMULATOR_TOKEN_FILE:-} ]]; then TOKEN=$(head -n1 "$STEWARD_EMULATOR_TOKEN_FILE"); fi
RUN=$(date +%s | tail -c 6)

pg() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -tAc "$2"; }
my() { "$ROOT/scripts/mariadb-server.sh" client "$DEMO/estate/mariadb" -N -B -e "$1"; }
api() {  # METHOD PATH [JSON] → body; non-zero on non-2xx
  curl -sf -m 10 -X "$1" "$URL$2" ${TOKEN:+-H "Authorization: Bearer $TOKEN"} \
    -H 'Content-Type: application/json' ${IDEM:+-H "Idempotency-Key: $IDEM"} ${3:+-d "$3"}
}
say() { echo "$(date +%H:%M:%S) $*"; }

first_names=(Acme Globex Initech Umbrella Stark Wayne Wonka Tyrell Cyberdyne Soylent Hooli Vandelay)
kinds=(GmbH Ltd SA BV Inc AG Oy AB)
plans=(bronze silver gold)
subjects=("Invoice question" "Cannot log in" "Change of address" "Upgrade plan" "Refund request" "Delivery delayed")

end=$((SECONDS + SECONDS_TOTAL))
n=0
while ((SECONDS < end)); do
  n=$((n + 1))
  no="$PREFIX-$RUN-$n"
  name="${first_names[RANDOM % ${#first_names[@]}]} ${kinds[RANDOM % ${#kinds[@]}]} $n"
  email="ap$n.$RUN@$(echo "${name%% *}" | tr 'A-Z' 'a-z').example"
  # 1. sales creates a customer in the CRM
  api PATCH "/crm/services/data/v59.0/sobjects/Account/ExternalId__c/$no" \
    "{\"Name\":\"$name\",\"Email__c\":\"$email\",\"Status__c\":\"active\"}" >/dev/null &&
    say "crm: new customer $no \"$name\"" || say "crm: create $no failed"
  sleep "$PAUSE"
  # 2. finance changes credit limits and issues invoices in the ERP (customers that exist there)
  for c in $(pg erp "SELECT customer_no FROM customers ORDER BY random() LIMIT 2"); do
    limit=$((RANDOM % 90 * 100 + 1000))
    pg erp "UPDATE customers SET credit_limit = $limit, updated_at = now() WHERE customer_no = '$c'" >/dev/null &&
      say "erp: credit limit of $c set to $limit"
  done
  prev="$PREFIX-$RUN-$((n > 1 ? n - 1 : 1))"
  if [[ -n $(pg erp "SELECT 1 FROM customers WHERE customer_no = '$prev'") ]]; then
    pg erp "INSERT INTO invoices (invoice_no, customer_no, amount, status, due_date) VALUES ('INV-$prev', '$prev', $((RANDOM % 400 + 100)).00, 'open', current_date + 30) ON CONFLICT DO NOTHING" >/dev/null &&
      say "erp: invoice INV-$prev"
    # 3. billing: the customer subscribes and pays the invoice
    cus=$(IDEM="act-cus-$prev" api POST /billing/v1/customers "{\"name\":\"$name\",\"email\":\"billing.$email\",\"metadata\":{\"erp_customer_no\":\"$prev\"}}" |
      sed -n 's/.*"id":"\(cus_[A-Za-z0-9]*\)".*/\1/p') || cus=
    if [[ -n $cus ]]; then
      IDEM="act-sub-$prev" api POST /billing/v1/subscriptions "{\"customer\":\"$cus\",\"plan\":\"${plans[RANDOM % 3]}\",\"amount\":$(((RANDOM % 3 + 1) * 1250)),\"status\":\"active\"}" >/dev/null &&
        say "billing: subscription for $prev"
      IDEM="act-pay-$prev" api POST /billing/v1/payments "{\"customer\":\"$cus\",\"amount\":$((RANDOM % 400 * 100 + 10000)),\"currency\":\"eur\",\"status\":\"succeeded\",\"metadata\":{\"invoice_no\":\"INV-$prev\"}}" >/dev/null &&
        say "billing: payment of INV-$prev"
    fi
  fi
  sleep "$PAUSE"
  # 4. support: a customer opens a case
  api POST /support/api/v2/tickets.json "{\"ticket\":{\"subject\":\"${subjects[RANDOM % ${#subjects[@]}]}\",\"requester_email\":\"$email\",\"customer_no\":\"$no\",\"external_id\":\"case-$RUN-$n\",\"priority\":\"normal\"}}" >/dev/null &&
    say "support: case case-$RUN-$n"
  # 5. now and then, something the rules refuse
  if ((n % 4 == 2)); then
    acc=$(my "SELECT id FROM crm.accounts WHERE external_id = '$prev'" 2>/dev/null || true)
    [[ -n $acc ]] && api PATCH "/crm/services/data/v59.0/sobjects/Account/$acc" '{"Credit_Limit__c":1}' >/dev/null &&
      say "crm: a user edits the credit limit of $prev (owned by the ERP: conflict)"
  fi
  if ((n % 5 == 3)); then
    api POST /billing/v1/customers "{\"name\":\"Walk-in $n\",\"metadata\":{\"erp_customer_no\":\"NOPE-$RUN-$n\"}}" >/dev/null &&
      say "billing: a customer nobody may create (dead letter)"
  fi
  sleep "$PAUSE"
done
say "activity done: $n rounds"
