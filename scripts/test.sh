#!/usr/bin/env bash
# Install dependencies, build, and run every test: unit and integration on a
# RelWithDebInfo build, then again under AddressSanitizer and
# UndefinedBehaviorSanitizer with smaller data volumes (STEWARD_TEST_SCALE=quick).
#
#   scripts/test.sh            everything
#   scripts/test.sh --unit     unit tier only (seconds, no servers)
#   scripts/test.sh --no-asan  skip the sanitizer pass
#
# Build directories: STEWARD_BUILD_DIR (default build) and
# STEWARD_ASAN_BUILD_DIR (default build-asan), relative to the source tree.
#
# Integration scripts start their own servers on distinct loopback ports, so
# they run three at a time: most of their time is spent waiting on servers.
# A test that fails is run once more (ctest --repeat until-pass:2) and both
# outcomes are printed; timing-sensitive chaos scenarios on a busy 2-core
# machine are the reason.  STEWARD_TEST_JOBS overrides the parallelism.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

UNIT_ONLY=0
ASAN=1
for a in "$@"; do
  case "$a" in
    --unit) UNIT_ONLY=1 ;;
    --no-asan) ASAN=0 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

# The operations page is tested in headless Chromium.
STEWARD_WITH_BROWSER=1 bash scripts/install-deps.sh
JOBS=$(nproc)
TEST_JOBS=${STEWARD_TEST_JOBS:-3}
START=$(date +%s)
BUILD_DIR=${STEWARD_BUILD_DIR:-build}
ASAN_BUILD_DIR=${STEWARD_ASAN_BUILD_DIR:-build-asan}

build() {  # dir cmake_args...
  local dir=$1; shift
  echo "=== configure and build $dir ($*)"
  cmake -S . -B "$dir" -DSTEWARD_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
}

run_tests() {  # dir label [ctest args...]
  local dir=$1 label=$2; shift 2
  echo "=== $dir: $label tests"
  (cd "$dir" && ctest --output-on-failure --repeat until-pass:2 -L "$label" "$@")
}

build "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_tests "$BUILD_DIR" unit
if [[ $UNIT_ONLY == 0 ]]; then
  run_tests "$BUILD_DIR" integration -j "$TEST_JOBS"
fi

if [[ $ASAN == 1 ]]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export STEWARD_TEST_SCALE=quick
  build "$ASAN_BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug -DSTEWARD_SANITIZE=ON
  run_tests "$ASAN_BUILD_DIR" unit
  if [[ $UNIT_ONLY == 0 ]]; then
    # Every scenario except the browser test, whose code under test (the
    # page) is already exercised by ops_metrics and the e2e scenarios.
    run_tests "$ASAN_BUILD_DIR" integration -j "$TEST_JOBS" -E 'it_ops_page'
  fi
fi
echo "=== all tests passed in $(( $(date +%s) - START )) s"
