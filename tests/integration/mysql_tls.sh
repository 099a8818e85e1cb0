#!/usr/bin/env bash
# TLS to a server that requires it (require_secure_transport=ON, throwaway
# CA and server certificate made here with openssl): --check and capture
# work with ssl-mode=verify-ca&sslca=CA and the connection really is TLS; a
# wrong CA, and a DSN without TLS, fail with a clear message and exit 69;
# the password never appears in any output or in the process's command
# line (--dsn-file).  Secure by default: without ssl-mode, a server at a
# non-loopback address is reached over TLS with its certificate verified
# against the system trust store (here SSL_CERT_FILE), and refused when the
# certificate is not trusted.
set -euo pipefail
source "$(dirname "$0")/lib/mysql_lib.sh"
HOSTIP=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.' | grep -v '^127\.' | head -1 || true)
mysql_before_start() {  # a throwaway CA, another CA, and a server certificate for the loopback and host addresses
  T="$WORK/tls"
  mkdir -p "$T"
  (
    cd "$T"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=Steward test CA" -keyout ca.key -out ca.pem
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=Other CA" -keyout other.key -out other.pem
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost%s\n' "${HOSTIP:+,IP:$HOSTIP}" >san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem
  ) >"$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log"; fail "openssl"; }
  if [[ $(id -u) -eq 0 ]]; then chown -R mysql:mysql "$T"; fi
  SERVER_OPTS=(ssl_cert="$T/server.pem" ssl_key="$T/server.key" ssl_ca="$T/ca.pem" require_secure_transport=ON)
  if [[ -n $HOSTIP ]]; then SERVER_OPTS+=(bind-address=0.0.0.0); fi
}
mysql_setup mysql_tls 33472
[[ $(sql -N -e "SELECT @@have_ssl, @@require_secure_transport") == "YES	1" ]] || fail "server has no TLS"

PW='Tls-S3cret-pw'
sql <<SQL
CREATE USER 'tlsuser'@'%' IDENTIFIED BY '$PW';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'tlsuser'@'%';
GRANT SELECT ON app.* TO 'tlsuser'@'%';
SQL
sql app -e "CREATE TABLE t (id int primary key, v varchar(20)); INSERT INTO t VALUES (1, 'one'), (2, 'two')"
BASE="mysql://tlsuser:$PW@127.0.0.1:$PORT/app"
GOOD="$BASE?ssl-mode=verify-ca&sslca=$T/ca.pem"

"$STEWARD_BIN" capture --dsn "$GOOD" --check >"$WORK/check.out" 2>&1 || { cat "$WORK/check.out"; fail "--check over TLS"; }
cat "$WORK/check.out"

# capture over TLS, the DSN from a file so the password stays out of the command line
printf '%s\n' "$GOOD" >"$WORK/dsn"; chmod 600 "$WORK/dsn"
"$STEWARD_BIN" capture --dsn "$GOOD" --data-dir "$WORK/log" --endpos "$(end_pos)" 2>"$WORK/snapshot.log" \
  || fail "snapshot over TLS: $(cat "$WORK/snapshot.log")"
sql app -e "INSERT INTO t VALUES (3, 'three'); UPDATE t SET v = 'uno' WHERE id = 1; DELETE FROM t WHERE id = 2"
"$STEWARD_BIN" capture --dsn-file "$WORK/dsn" --data-dir "$WORK/log" --endpos "$(end_pos)" 2>"$WORK/capture.log" &
CAPTURE_PID=$!; CAPTURE_PIDS="$CAPTURE_PID"
# (require_secure_transport=ON: every connection that got this far is TLS)
if [[ -r /proc/$CAPTURE_PID/cmdline ]]; then
  ! tr '\0' ' ' </proc/$CAPTURE_PID/cmdline | grep -q "$PW" || fail "password in the process's command line"
fi
wait "$CAPTURE_PID" || fail "capture over TLS: $(cat "$WORK/capture.log")"
grep -q "streaming binlog" "$WORK/capture.log" || fail "capture over TLS did not stream: $(cat "$WORK/capture.log")"
[[ $("$STEWARD_BIN" log dump -d "$WORK/log" | wc -l) -eq 5 ]] || fail "want 2 snapshot and 3 streamed records over TLS"
compare_state "$WORK/log" app

# SIGTERM while the agent waits for events in a TLS read: a prompt, clean
# stop (events are read on their own thread, whose read the stop ends by
# having the server end the dump)
"$STEWARD_BIN" capture --dsn-file "$WORK/dsn" --data-dir "$WORK/log" 2>"$WORK/tail.log" &
CAPTURE_PID=$!; CAPTURE_PIDS="$CAPTURE_PID"
for _ in $(seq 1 100); do grep -q "streaming binlog" "$WORK/tail.log" && break; sleep 0.1; done
grep -q "streaming binlog" "$WORK/tail.log" || fail "tailing over TLS did not start: $(cat "$WORK/tail.log")"
sleep 1.5  # past a heartbeat: the reading thread is blocked in the TLS read again
t0=$(date +%s%N)
kill -TERM "$CAPTURE_PID"
rc=0; wait "$CAPTURE_PID" || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[[ $rc -eq 0 ]] || fail "SIGTERM over TLS: exit $rc: $(cat "$WORK/tail.log")"
(( ms < 3000 )) || fail "SIGTERM over TLS took $ms ms to stop"
echo "SIGTERM over TLS: stopped in $ms ms"

# a CA that did not sign the server's certificate
rc=0; "$STEWARD_BIN" capture --dsn "$BASE?ssl-mode=verify-ca&sslca=$T/other.pem" --data-dir "$WORK/x" >"$WORK/wrongca.out" 2>&1 || rc=$?
cat "$WORK/wrongca.out"
[[ $rc -eq 69 ]] || fail "wrong CA: exit $rc, want 69"
grep -qi "certificate\|TLS\|SSL" "$WORK/wrongca.out" || fail "wrong CA: the message does not say why"
rc=0; "$STEWARD_BIN" capture --dsn "$BASE?sslca=$T/other.pem" --check >"$WORK/wrongca-check.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || fail "--check with a wrong CA succeeded"
# no TLS against a server that requires it
rc=0; "$STEWARD_BIN" capture --dsn "$BASE?ssl-mode=disabled" --data-dir "$WORK/y" >"$WORK/plain.out" 2>&1 || rc=$?
cat "$WORK/plain.out"
[[ $rc -eq 69 ]] || fail "plain connection to a TLS-only server: exit $rc, want 69"
grep -qi "insecure transport\|Access denied" "$WORK/plain.out" || fail "no reason for the refused plain connection"
# verification cannot be requested without something to verify against... a CA file that does not exist
rc=0; "$STEWARD_BIN" capture --dsn "$BASE?sslca=$T/missing.pem" --data-dir "$WORK/z" >"$WORK/missing.out" 2>&1 || rc=$?
cat "$WORK/missing.out"
[[ $rc -eq 69 ]] || fail "a missing CA file: exit $rc, want 69"
grep -q "could not read CA file .*missing.pem" "$WORK/missing.out" || fail "the message does not name the CA file"

# the default without ssl-mode, at a non-loopback address: TLS, verified
if [[ -n $HOSTIP ]]; then
  REMOTE="mysql://tlsuser:$PW@$HOSTIP:$PORT/app"
  SSL_CERT_FILE="$T/ca.pem" "$STEWARD_BIN" capture --dsn "$REMOTE" --check >"$WORK/remote.out" 2>&1 \
    || { cat "$WORK/remote.out"; fail "default TLS to $HOSTIP with a trusted CA"; }
  rc=0; SSL_CERT_FILE="$T/other.pem" "$STEWARD_BIN" capture --dsn "$REMOTE" --data-dir "$WORK/r" >"$WORK/remote-untrusted.out" 2>&1 || rc=$?
  cat "$WORK/remote-untrusted.out"
  [[ $rc -eq 69 ]] || fail "default to $HOSTIP with an untrusted certificate: exit $rc, want 69"
  grep -qi "certificate" "$WORK/remote-untrusted.out" || fail "untrusted certificate: the message does not say so"
else
  echo "no non-loopback IPv4 address: default-TLS check skipped"
fi

for f in "$WORK"/*.out "$WORK"/*.log; do
  ! grep -q "$PW" "$f" || fail "password printed in $(basename "$f")"
done
echo "mysql_tls: ok"
