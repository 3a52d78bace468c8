# bench: test programs (check_PROGRAMS += ...)

# Plugin overhead on LMTP delivery (issue 4): a program, not a timed test.
# Run it from a build without sanitizers; see bench/RESULTS.md.
noinst_PROGRAMS += bench/plugin_overhead
bench_plugin_overhead_SOURCES = bench/plugin_overhead.cc
bench_plugin_overhead_CPPFLAGS = $(TEST_CPPFLAGS)
bench_plugin_overhead_LDADD = tests/harness/libmsharness.la
