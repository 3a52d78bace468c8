#!/bin/bash
# Long fault-injection run, one command:
#   tests/fault/run-long.sh [BUILD_DIR] [SEEDS] [MESSAGES] [ROUNDS] [USERS]
#  - crash_test: SEEDS seeds (default 70, i.e. 210 kill -9 runs over the
#    three victims, each with a crash in the initial and in an update sync)
#    of MESSAGES messages (default 500);
#  - network_test: ROUNDS (default 20) cuts, stalls and trickles of the
#    agent-server connection, each on a running session, with the same
#    message changed on both sides (MS_FAULT_CONFLICTS=1: exposes the known
#    destroy bug, docs/reliability.md);
#  - store_fault_test, 5 times: the server restored from an older database
#    (with the known Trash-merge bug exposed), quota exceeded on APPEND,
#    INBOX's maildir lock held, the attribute dict's disk full;
#  - load_test: USERS users (default 1000) with changes at once.
# Prints the gtest summary of each; the full logs are in BUILD_DIR/*-long.log.
# Set SEEDS to 0 to skip crash_test.
set -euo pipefail
build=${1:-build-test}
seeds=${2:-70}
messages=${3:-500}
rounds=${4:-20}
users=${5:-1000}
for p in crash_test network_test store_fault_test load_test; do
  [ -x "$build/tests/fault/$p" ] || { echo "no $build/tests/fault/$p: build it first (make test-programs)"; exit 1; }
done
summary() { grep -E '^\[ +(OK|FAILED|PASSED|SKIPPED) +\]|not converged|Failure|^load:|detected after|trickle session' || true; }
start=$(date +%s)
if [ "$seeds" -gt 0 ]; then
  MS_FAULT_SEEDS=$seeds MS_FAULT_MESSAGES=$messages "$build/tests/fault/crash_test" 2>&1 |
    tee "$build/crash-long.log" | summary
  echo "crash_test: $seeds seeds x 3 victims x 2 crashes, $messages messages, $(( $(date +%s) - start )) s"
fi
t=$(date +%s)
MS_FAULT_CONFLICTS=1 MS_FAULT_ROUNDS=$rounds "$build/tests/fault/network_test" 2>&1 | tee "$build/network-long.log" | summary
echo "network_test: $rounds rounds x (cut, stall, trickle), $(( $(date +%s) - t )) s"
t=$(date +%s)
MS_FAULT_RESTORE_TRASH=1 "$build/tests/fault/store_fault_test" --gtest_repeat=5 2>&1 | tee "$build/store-long.log" | summary
echo "store_fault_test: $(( $(date +%s) - t )) s"
t=$(date +%s)
MS_LOAD_USERS=$users "$build/tests/fault/load_test" 2>&1 | tee "$build/load-long.log" | summary
echo "load_test: $users users, $(( $(date +%s) - t )) s"
echo "all: $(( $(date +%s) - start )) s"
