#!/usr/bin/env bash
# Install everything Steward needs to build, test and run its demo on Debian 12.
# Idempotent: packages already present are skipped, so a second run is fast.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libpq-dev postgresql-15
  mariadb-server mariadb-client libmariadb-dev
  libprotobuf-c-dev protobuf-c-compiler
  libzstd-dev libdeflate-dev libcmocka-dev
  libcurl4-openssl-dev libmicrohttpd-dev libjansson-dev libyaml-dev
  libsqlite3-dev sqlite3 libnats-dev nats-server
  wrk prometheus jq curl
)
if [[ "${STEWARD_WITH_BROWSER:-0}" == 1 ]]; then
  PKGS+=(chromium)
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Debian starts services on install; the project runs its own throw-away
# servers, so keep the system ones from starting.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
