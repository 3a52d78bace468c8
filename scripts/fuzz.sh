#!/usr/bin/env bash
# Builds and runs every libFuzzer target tests/fuzz/<name>_fuzzer.cc.
#
#   scripts/fuzz.sh --short            each target for a bounded number of runs
#   scripts/fuzz.sh --long SECONDS     each target for SECONDS
#   scripts/fuzz.sh --build            build only
#   ... [NAME...]                      only these targets (e.g. frame_decoder)
#
# Convention for a target <name>:
#   tests/fuzz/<name>_fuzzer.cc       defines LLVMFuzzerTestOneInput
#   tests/fuzz/<name>_fuzzer.sources  what it links, one entry per line:
#       path/to/file.cc                 a repo-relative source
#       path/to/file.proto              compiled by protoc into fuzz-build/gen
#                                       (include as "<dir under src>/x.pb.h")
#       pkg: NAME [NAME...]             pkg-config libraries
#       # comment, blank lines
#   tests/fuzz/corpus/<name>/         committed seed inputs (read only)
#
# Everything is built with clang++ -fsanitize=fuzzer,address,undefined into
# fuzz-build/ (objects cached by modification time). The new inputs libFuzzer
# finds go to fuzz-build/corpus/<name>/, crashes to fuzz-build/artifacts/<name>/.
# For every target the output has exactly one result line,
#   fuzz PASS <name>
#   fuzz FAIL <name>: <reason>
# which scripts/test.sh counts. Exit status: 0 iff every target passed.
#
# Environment: CXX (default clang++), FUZZ_SHORT_RUNS (default 20000),
# FUZZ_SHORT_SECONDS (time cap per target in --short, default 20).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

mode=""
seconds=0
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --short) mode=short ;;
    --build) mode=build ;;
    --long)
      mode=long
      seconds=${2:-}
      shift
      case "$seconds" in '' | *[!0-9]*) echo "usage: $0 --long SECONDS" >&2; exit 2 ;; esac
      ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) names+=("$1") ;;
  esac
  shift
done
[ -n "$mode" ] || { echo "usage: $0 --short | --long SECONDS | --build [NAME...]" >&2; exit 2; }

out=$top/fuzz-build
CXX=${CXX:-clang++}
SHORT_RUNS=${FUZZ_SHORT_RUNS:-20000}
SHORT_SECONDS=${FUZZ_SHORT_SECONDS:-20}
# Instrument everything for coverage and sanitizers; only the link step
# brings libFuzzer's main.
# shellcheck disable=SC2054  # the commas belong to -fsanitize=
CXXFLAGS_COMMON=(-std=gnu++17 -g -O1 -fno-omit-frame-pointer
  -fsanitize=address,undefined -fno-sanitize-recover=undefined)
CXXFLAGS_OBJ=("${CXXFLAGS_COMMON[@]}" -fsanitize=fuzzer-no-link)
INCLUDES=(-I"$top/src" -I"$top" -I"$top/tests" -I"$out/gen")

if [ ${#names[@]} -eq 0 ]; then
  for f in tests/fuzz/*_fuzzer.cc; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .cc)
    names+=("${n%_fuzzer}")
  done
fi
[ ${#names[@]} -gt 0 ] || { echo "no fuzz targets in tests/fuzz/"; exit 0; }

mkdir -p "$out/gen" "$out/obj" "$out/bin"

# newest_input: the newest modification time (seconds) of anything a build
# may depend on; an object older than that is rebuilt. Coarse, but headers
# are covered without dependency files.
newest_input=$(find src tests/fuzz -type f \( -name '*.h' -o -name '*.cc' -o -name '*.proto' \) \
  -printf '%T@\n' 2>/dev/null | sort -n | tail -1 | cut -d. -f1)

stale() {  # stale TARGET: true if TARGET is missing or older than the inputs
  [ ! -e "$1" ] || [ "$(stat -c %Y "$1")" -lt "${newest_input:-0}" ]
}

# compile SRC OBJ [extra flags...]
compile() {
  local src=$1 obj=$2; shift 2
  stale "$obj" || return 0
  mkdir -p "$(dirname "$obj")"
  "$CXX" "${CXXFLAGS_OBJ[@]}" "${INCLUDES[@]}" "$@" -c "$src" -o "$obj"
}

# build NAME: writes fuzz-build/bin/NAME_fuzzer; logs to fuzz-build/NAME.build.log
build() {
  local name=$1 list=tests/fuzz/$1_fuzzer.sources line objs=() pkgs=() more=() gen
  [ -f "$list" ] || { echo "missing $list"; return 1; }
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    line=$(echo "$line" | xargs)
    [ -z "$line" ] && continue
    case "$line" in
      pkg:*) read -r -a more <<<"${line#pkg:}"; pkgs+=("${more[@]}") ;;
      *.proto)
        # Generated under gen/ with the path below src/, as the build does.
        gen=$out/gen/${line#src/}
        gen=${gen%.proto}.pb.cc
        if stale "$gen"; then
          protoc --proto_path="$top/src" --cpp_out="$out/gen" "$top/$line" || return 1
        fi
        objs+=("$gen")
        ;;
      *) [ -f "$line" ] || { echo "$list: no such file $line"; return 1; }
        objs+=("$top/$line") ;;
    esac
  done <"$list"
  local pkg_cflags=() pkg_libs=()
  if [ ${#pkgs[@]} -gt 0 ]; then
    read -r -a pkg_cflags <<<"$(pkg-config --cflags "${pkgs[@]}")" || return 1
    read -r -a pkg_libs <<<"$(pkg-config --libs "${pkgs[@]}")" || return 1
  fi
  local src obj link=()
  for src in "${objs[@]}" "$top/tests/fuzz/${name}_fuzzer.cc"; do
    obj=$out/obj/${src#"$top"/}
    obj=${obj%.cc}.o
    # Generated code is not ours to warn about; our own code must be clean.
    case "$src" in
      "$out"/*) compile "$src" "$obj" -w "${pkg_cflags[@]}" || return 1 ;;
      *) compile "$src" "$obj" -Wall -Wextra "${pkg_cflags[@]}" || return 1 ;;
    esac
    link+=("$obj")
  done
  local bin=$out/bin/${name}_fuzzer
  "$CXX" "${CXXFLAGS_COMMON[@]}" -fsanitize=fuzzer "${link[@]}" "${pkg_libs[@]}" -o "$bin"
}

command -v "$CXX" >/dev/null 2>&1 || {
  for n in "${names[@]}"; do echo "fuzz FAIL $n: $CXX not found (install clang)"; done
  exit 1
}

# One line of the libFuzzer log for the summary: its last stats line.
last_stats() { grep -E '^#[0-9]+' "$1" | tail -1; }

failed=0
for name in "${names[@]}"; do
  log=$out/$name.build.log
  if [ ! -f "tests/fuzz/${name}_fuzzer.cc" ]; then
    echo "fuzz FAIL $name: no tests/fuzz/${name}_fuzzer.cc"; failed=1; continue
  fi
  if ! build "$name" >"$log" 2>&1; then
    tail -n 20 "$log"
    echo "fuzz FAIL $name: build failed (see fuzz-build/$name.build.log)"; failed=1; continue
  fi
  [ "$mode" = build ] && { echo "built fuzz-build/bin/${name}_fuzzer"; continue; }

  corpus=$out/corpus/$name seeds=tests/fuzz/corpus/$name
  artifacts=$out/artifacts/$name/
  mkdir -p "$corpus" "$artifacts" "$seeds"
  args=(-artifact_prefix="$artifacts" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10)
  if [ "$mode" = short ]; then
    args+=(-runs="$SHORT_RUNS" -max_total_time="$SHORT_SECONDS")
  else
    args+=(-max_total_time="$seconds")
  fi
  runlog=$out/$name.run.log
  start=$(date +%s)
  "$out/bin/${name}_fuzzer" "${args[@]}" "$corpus" "$seeds" >"$runlog" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  stats=$(last_stats "$runlog")
  if [ $rc -eq 0 ]; then
    echo "$name: ${elapsed}s ${stats}"
    echo "fuzz PASS $name"
  else
    crash=$(grep -oE 'Test unit written to [^ ]+' "$runlog" | tail -1 |
      sed 's/Test unit written to //')
    # The first line that names the failure, from libFuzzer or a sanitizer.
    what=$(grep -m1 -E 'ERROR: (libFuzzer|[A-Za-z]+Sanitizer)|runtime error|FUZZ_CHECK failed' \
      "$runlog" | sed 's/^==[0-9]*==//' | cut -c1-160)
    tail -n 30 "$runlog"
    echo "fuzz FAIL $name: ${what:-exit status $rc}${crash:+ (input: ${crash#"$top"/})}"
    failed=1
  fi
done
exit $failed
