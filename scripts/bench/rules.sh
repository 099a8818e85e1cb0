#!/usr/bin/env bash
# rules.sh — field decisions per second of the ownership rules engine on one
# core, for the demo estate's 4-system rules file (docs/examples/estate.yaml).
# Builds an optimized tree in build-bench/ and runs tests/tools/bench_rules.c.
# The last line is "decisions_per_s <n>"; the goal is >= 5,000,000.
#
#   scripts/bench/rules.sh [SECONDS_PER_RUN]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${STEWARD_BENCH_BUILD:-$ROOT/build-bench}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target bench_rules >/dev/null
PIN=()
if command -v taskset >/dev/null; then PIN=(taskset -c 0); fi
"${PIN[@]}" "$BUILD/tests/bench_rules" "$ROOT/docs/examples/estate.yaml" "${1:-1}"
