#!/usr/bin/env bash
# steward-emulator misbehaves on request, as the platforms do: 429 with
# Retry-After under a rate limit, injected 503s then recovery, a timeout that
# closes the connection, an answer lost after the write (a Stripe retry with
# the same key is replayed, no duplicate row), 403 REQUEST_LIMIT_EXCEEDED once
# the CRM quota is spent, and 200 concurrent upserts counted right.
# Only MariaDB (crm, billing) is needed.  Ports: MariaDB 33451, emulator 18401.
set -euo pipefail
SRC=${STEWARD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${STEWARD_BUILD_DIR:-$SRC/build}
EMU=$BUILD/tests/emulator/steward-emulator
DIR=$BUILD/tmp/emulator_faults
MY_PORT=33451 PORT=18401
EMU_PID=

cleanup() {
  [[ -n $EMU_PID ]] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
  "$SRC/scripts/mariadb-server.sh" stop "$DIR/mariadb" >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [[ -f $DIR/emulator.log ]] && tail -20 "$DIR/emulator.log" >&2; exit 1; }
check() { [[ "$2" == "$3" ]] || fail "$1: expected '$3', got '$2'"; }

mkdir -p "$DIR"
"$SRC/scripts/mariadb-server.sh" start "$DIR/mariadb" "$MY_PORT" >/dev/null
for db in crm billing; do "$SRC/scripts/mariadb-server.sh" client "$DIR/mariadb" <"$SRC/scripts/demo/$db.sql"; done
mysql_q() { "$SRC/scripts/mariadb-server.sh" client "$DIR/mariadb" -N -B -e "$1"; }
"$EMU" --listen 127.0.0.1:$PORT --crm-dsn "$("$SRC/scripts/mariadb-server.sh" dsn $MY_PORT crm)" \
  --billing-dsn "$("$SRC/scripts/mariadb-server.sh" dsn $MY_PORT billing)" --db-pool 24 >"$DIR/emulator.log" 2>&1 &
EMU_PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 50); do curl -sf "$URL/_emulator/health" >/dev/null && break; sleep 0.1; done
ctl() { curl -sf -X POST "$URL/_emulator/$1" -H 'Content-Type: application/json' -d "$2" >/dev/null || fail "control $1 $2"; }
ctl reset '{"data":true}'
ACC=/crm/services/data/v59.0/sobjects/Account
upsert() {  # external_id → HTTP status
  curl -s -o /dev/null -w '%{http_code}' -X PATCH "$URL$ACC/ExternalId__c/$1" -d "{\"Name\":\"Customer $1\"}"
}

echo "--- a platform without a database answers 503"
check "support unconfigured" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/support/api/v2/tickets/1.json")" 503

echo "--- rate limit: 429 with Retry-After, then served again"
ctl ratelimit '{"platform":"crm","rps":0.5,"burst":2}'
codes=""
for i in 1 2 3; do codes+="$(upsert RL-$i) "; done
check "burst then 429" "$codes" "201 201 429 "
ra=$(curl -s -D - -o /dev/null -X PATCH "$URL$ACC/ExternalId__c/RL-4" -d '{"Name":"x"}' | tr -d '\r' | awk -F': ' 'tolower($1)=="retry-after"{print $2}')
[[ $ra =~ ^[0-9]+$ && $ra -ge 1 ]] || fail "Retry-After missing or not seconds: '$ra'"
sleep "$ra"
check "after Retry-After" "$(upsert RL-5)" 201
check "rate-limited request wrote nothing" "$(mysql_q "SELECT COUNT(*) FROM crm.accounts WHERE external_id IN ('RL-3','RL-4')")" 0
ctl ratelimit '{"platform":"crm","rps":0}'

echo "--- injected 503 for the next 2 requests, then recovery"
ctl faults '{"platform":"crm","mode":"error","status":503,"count":2}'
check "fault 1" "$(upsert F-1)" 503
check "fault 2" "$(upsert F-1)" 503
check "recovered" "$(upsert F-1)" 201
check "one row after retries" "$(mysql_q "SELECT COUNT(*) FROM crm.accounts WHERE external_id='F-1'")" 1

echo "--- timeout: the connection closes without an answer"
ctl faults '{"platform":"crm","mode":"timeout","delay_ms":300,"count":1}'
code=$(curl -s -o /dev/null -w '%{http_code}' -X PATCH "$URL$ACC/ExternalId__c/T-1" -d '{"Name":"x"}' || true)
check "timed out" "$code" 000
check "no write on timeout" "$(mysql_q "SELECT COUNT(*) FROM crm.accounts WHERE external_id='T-1'")" 0

echo "--- answer lost after the write: the Stripe retry with the same key is replayed"
ctl faults '{"platform":"billing","mode":"error","status":502,"phase":"after","count":1}'
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Idempotency-Key: lost-1' "$URL/billing/v1/customers" -d email=lost@example.com)
check "lost answer" "$code" 502
code=$(curl -s -o "$DIR/body" -w '%{http_code}' -H 'Idempotency-Key: lost-1' "$URL/billing/v1/customers" -d email=lost@example.com)
check "retry replayed" "$code" 200
check "one customer" "$(mysql_q "SELECT COUNT(*) FROM billing.customers WHERE email='lost@example.com'")" 1
check "same id" "$(mysql_q "SELECT id FROM billing.customers WHERE email='lost@example.com'")" "$(jq -r .id "$DIR/body")"

echo "--- quota: 403 REQUEST_LIMIT_EXCEEDED once spent"
ctl ratelimit '{"platform":"crm","quota":3,"quota_window_s":3600}'
for i in 1 2 3; do check "within quota $i" "$(upsert Q-$i)" 201; done
code=$(curl -s -o "$DIR/body" -w '%{http_code}' -X PATCH "$URL$ACC/ExternalId__c/Q-4" -d '{"Name":"x"}')
check "quota spent" "$code $(jq -r '.[0].errorCode' "$DIR/body")" "403 REQUEST_LIMIT_EXCEEDED"
ctl ratelimit '{"platform":"crm","quota":0}'

echo "--- 200 concurrent upserts over 50 keys: 50 creates, 150 updates"
ctl reset '{"data":true}'
seq 0 199 | xargs -P 32 -I{} sh -c \
  'k=$(({} % 50)); curl -s -o /dev/null -w "%{http_code}\n" -X PATCH "$0/ExternalId__c/P-$k" -d "{\"Name\":\"Parallel $k\",\"Phone\":\"{}\"}"' \
  "$URL$ACC" >"$DIR/codes"
check "all answered" "$(grep -cE '^(201|204)$' "$DIR/codes")" 200
check "201s" "$(grep -c '^201$' "$DIR/codes")" 50
check "rows" "$(mysql_q "SELECT COUNT(*) FROM crm.accounts WHERE external_id LIKE 'P-%'")" 50
stats=$(curl -sf "$URL/_emulator/stats")
check "creates counted" "$(jq -r .platforms.crm.writes.create <<<"$stats")" 50
check "updates counted" "$(jq -r .platforms.crm.writes.update <<<"$stats")" 150
check "requests logged" "$(curl -sf "$URL/_emulator/requests?platform=crm" | jq '.requests | length')" 200
echo "PASS emulator_faults"
