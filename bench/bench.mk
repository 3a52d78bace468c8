# bench: test programs (check_PROGRAMS += ...)

# Agent bench (issue 5): built on demand only (`make bench/agent_bench`),
# in a build configured WITHOUT --enable-sanitizers; see bench/RESULTS.md.
EXTRA_PROGRAMS = bench/agent_bench
bench_agent_bench_SOURCES = bench/agent_bench.cc
bench_agent_bench_CPPFLAGS = $(TEST_CPPFLAGS)
bench_agent_bench_LDADD = tests/harness/libmsharness.la
