#!/usr/bin/env bash
# Install dependencies, build, and run every test: unit and integration on a
# normal build, then the whole suite again under AddressSanitizer and
# UndefinedBehaviorSanitizer (with smaller data volumes).
#
#   scripts/test.sh            everything
#   scripts/test.sh --unit     unit tier only (seconds, no servers)
#   scripts/test.sh --no-asan  skip the sanitizer pass
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

UNIT_ONLY=0
ASAN=1
for a in "$@"; do
  case "$a" in
    --unit) UNIT_ONLY=1 ;;
    --no-asan) ASAN=0 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh
JOBS=$(nproc)

run_pass() {  # name build_dir cmake_args...
  local name=$1 dir=$2; shift 2
  echo "=== $name: configure and build ($dir)"
  cmake -S . -B "$dir" -DSTEWARD_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
  local labels="unit"
  if [[ $UNIT_ONLY == 0 ]]; then labels="unit|integration"; fi
  echo "=== $name: tests ($labels)"
  (cd "$dir" && ctest --output-on-failure -L "$labels" -j 1)
}

run_pass "release" build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [[ $ASAN == 1 ]]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  STEWARD_TEST_SCALE=quick run_pass "asan+ubsan" build-asan -DCMAKE_BUILD_TYPE=Debug -DSTEWARD_SANITIZE=ON
fi
echo "=== all tests passed"
