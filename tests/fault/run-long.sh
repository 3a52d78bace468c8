#!/bin/bash
# Long crash-safety run: SEEDS seeds (default 70, i.e. 210 kill -9 runs over
# the three victims, each with a crash in the initial and in an update sync)
# of MESSAGES messages (default 500). Prints the gtest summary per victim.
#   tests/fault/run-long.sh [BUILD_DIR] [SEEDS] [MESSAGES]
set -euo pipefail
build=${1:-build-test}
seeds=${2:-70}
messages=${3:-500}
prog="$build/tests/fault/crash_test"
[ -x "$prog" ] || { echo "no $prog: build it first (make test-programs)"; exit 1; }
start=$(date +%s)
MS_FAULT_SEEDS=$seeds MS_FAULT_MESSAGES=$messages "$prog" 2>&1 | tee "$build/crash-long.log" |
  grep -E '^\[ +(OK|FAILED|PASSED) +\]|not converged|Failure' || true
echo "crash_test: $seeds seeds x 3 victims x 2 crashes, $messages messages, $(( $(date +%s) - start )) s"
