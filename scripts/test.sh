#!/usr/bin/env bash
# Builds mobilesync with ASan+UBSan and runs every test: unit tests,
# integration tests against a real Dovecot, fuzz targets for a bounded number
# of runs. Installs what it needs on Debian 12 (apt-get; needs root or sudo).
# The last line of output is always "N passed, N failed".
#
# Environment:
#   MS_BUILD_DIR   build directory (default: build-test in the source tree)
#   MS_SKIP_DEPS=1 do not run apt-get (everything is already installed)
#   MS_SKIP_FUZZ=1 do not build and run the fuzz targets
#   MS_TEST_FILTER a GoogleTest filter passed to every test program
#   MS_PACKAGE_TEST=1 also run tests/package/install_test.sh: builds the
#                  Debian packages, installs them beside the system Dovecot,
#                  syncs one message, purges them. It MODIFIES THE MACHINE
#                  (root only); off by default and in CI.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck source=scripts/deps.sh
. "$top/scripts/deps.sh"

passed=0
failed=0
failures=()
finish() {
  if [ ${#failures[@]} -gt 0 ]; then
    echo "Failures:"
    printf '  %s\n' "${failures[@]}"
  fi
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit $?
}

if [ "${MS_SKIP_DEPS:-0}" != 1 ]; then
  if ! ms_install_deps; then
    failures+=("installing build dependencies (apt-get)")
    failed=$((failed + 1))
    finish
  fi
fi

build=${MS_BUILD_DIR:-$top/build-test}
start=$(date +%s)
if ! ms_build "$build" --enable-sanitizers; then
  failures+=("build (see the compiler output above)")
  failed=$((failed + 1))
  finish
fi
echo "build: $(( $(date +%s) - start )) s"

# ASan: fail on leaks too; UBSan: stop at the first error with a stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_program() {
  local prog=$1 out rc p f
  out=$(mktemp)
  echo "=== $prog"
  ( cd "$build" && "./$prog" --gtest_color=no ${MS_TEST_FILTER:+--gtest_filter="$MS_TEST_FILTER"} ) >"$out" 2>&1
  rc=$?
  p=$(grep -c '^\[       OK \]' "$out")
  # A failed test is listed twice (as it fails and in the summary): count names.
  f=$(grep -E '^\[  FAILED  \] [^ ]+\.[^ ]+' "$out" | grep -v ' tests\?, listed below' | sed 's/ (.*//' | sort -u | wc -l)
  grep -E '^\[ RUN|^\[       OK|^\[  FAILED|^\[  PASSED|^\[  SKIPPED' "$out" | grep -vE '^\[ RUN' | tail -n 200
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    # Crashed or exited before GoogleTest could report: count the program.
    echo "--- $prog exited with status $rc; last output:"
    tail -n 40 "$out"
    failures+=("$prog (exit status $rc)")
    f=1
  elif [ "$f" -gt 0 ]; then
    grep -E '^\[  FAILED  \] [^ ]+\.[^ ]+' "$out" | grep -v 'listed below' | sed 's/ (.*//' | sort -u |
      while read -r _ _ name; do echo "  failed: $name"; done
    # Show the failing assertions.
    grep -B2 -A12 -E 'Failure$|error: ' "$out" | head -n 120
    while read -r name; do failures+=("$prog: $name"); done < <(
      grep -E '^\[  FAILED  \] [^ ]+\.[^ ]+' "$out" | grep -v 'listed below' | sed 's/ (.*//; s/^\[  FAILED  \] //' | sort -u)
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  rm -f "$out"
}

tstart=$(date +%s)
while read -r prog; do
  [ -n "$prog" ] && run_program "$prog"
done < <(make -s -C "$build" print-test-programs)

if [ "${MS_SKIP_FUZZ:-0}" != 1 ] && [ -x "$top/scripts/fuzz.sh" ]; then
  while read -r line; do
    case "$line" in
      "fuzz PASS "*) passed=$((passed + 1)); echo "$line" ;;
      "fuzz FAIL "*) failed=$((failed + 1)); failures+=("${line#fuzz FAIL }"); echo "$line" ;;
      *) echo "$line" ;;
    esac
  done < <("$top/scripts/fuzz.sh" --short 2>&1)
fi
if [ "${MS_PACKAGE_TEST:-0}" = 1 ]; then
  while read -r line; do
    case "$line" in
      "install-test PASS "*) passed=$((passed + 1)); echo "$line" ;;
      "install-test FAIL "*) failed=$((failed + 1)); failures+=("${line#install-test FAIL }"); echo "$line" ;;
      *) echo "$line" ;;
    esac
  done < <("$top/tests/package/install_test.sh" 2>&1)
fi
echo "tests: $(( $(date +%s) - tstart )) s"
finish
