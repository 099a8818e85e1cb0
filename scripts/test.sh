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

elapsed() { echo "$(( $(date +%s) - START )) s"; }

build() {  # dir cmake_args...
  local dir=$1; shift
  echo "=== configure and build $dir ($*) at $(elapsed)"
  cmake -S . -B "$dir" -DSTEWARD_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
}

run_tests() {  # dir label [ctest args...]
  local dir=$1 label=$2; shift 2
  echo "=== $dir: $label tests at $(elapsed)"
  (cd "$dir" && ctest --output-on-failure --repeat until-pass:2 -L "$label" "$@")
}

# The test servers listen on fixed ports, the 33xxx and 55xxx ones inside
# the kernel's ephemeral range (32768-60999): a client connection that took
# one as its source port leaves it in TIME-WAIT for a minute, in which a
# server cannot bind it ("Address already in use") and ctest's retry fails
# the same way.  As root (as CI runs), keep the kernel from handing them out.
reserve_test_ports() {
  local f=/proc/sys/net/ipv4/ip_local_reserved_ports want=33400-33699,55400-55699 cur
  [[ -w $f ]] || return 0
  cur=$(cat "$f")
  echo "${cur:+$cur,}$want" >"$f" 2>/dev/null || echo "test.sh: could not reserve ports $want" >&2
}
reserve_test_ports

ASAN_FLAGS=(-DCMAKE_BUILD_TYPE=Debug -DSTEWARD_SANITIZE=ON)
ASAN_BUILD_PID=
trap '[[ -z $ASAN_BUILD_PID ]] || kill "$ASAN_BUILD_PID" 2>/dev/null || true' EXIT

build "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_tests "$BUILD_DIR" unit
if [[ $UNIT_ONLY == 0 ]]; then
  if [[ $ASAN == 1 ]]; then
    # The sanitizer tree compiles while the release scenarios run (niced:
    # the scenarios mostly wait on servers, and the compiler takes the idle
    # CPU instead of a stretch of its own afterwards).
    ASAN_BUILD_LOG=$(mktemp)
    (renice -n 10 -p "$BASHPID" >/dev/null 2>&1 || true
     build "$ASAN_BUILD_DIR" "${ASAN_FLAGS[@]}") >"$ASAN_BUILD_LOG" 2>&1 &
    ASAN_BUILD_PID=$!
  fi
  run_tests "$BUILD_DIR" integration -j "$TEST_JOBS"
fi

if [[ $ASAN == 1 ]]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export STEWARD_TEST_SCALE=quick
  if [[ -n $ASAN_BUILD_PID ]]; then
    rc=0; wait "$ASAN_BUILD_PID" || rc=$?
    ASAN_BUILD_PID=
    cat "$ASAN_BUILD_LOG"; rm -f "$ASAN_BUILD_LOG"
    [[ $rc == 0 ]] || { echo "=== build of $ASAN_BUILD_DIR failed (exit $rc)"; exit "$rc"; }
  else
    build "$ASAN_BUILD_DIR" "${ASAN_FLAGS[@]}"
  fi
  run_tests "$ASAN_BUILD_DIR" unit
  if [[ $UNIT_ONLY == 0 ]]; then
    # Every scenario except the browser test, whose code under test (the
    # page) is already exercised by ops_metrics and the e2e scenarios.
    run_tests "$ASAN_BUILD_DIR" integration -j "$TEST_JOBS" -E 'it_ops_page'
  fi
fi
echo "=== all tests passed in $(elapsed)"
