#!/usr/bin/env bash
# The estate end-to-end scenario under chaos: `steward apply` and the CRM
# capture agent killed with SIGKILL at random moments, the emulator
# answering 503s, 429s and timeouts, the ERP API down for a while — and the
# same assertions as tests/integration/e2e_estate.sh: nothing lost, nothing
# applied twice in effect.  Ports: PostgreSQL 55511, MariaDB 33511,
# emulator 18512, metrics 18513.
set -euo pipefail
E2E_CHAOS=1 exec bash "$(dirname "$0")/e2e_estate.sh"
