# bench: benchmark programs (noinst_PROGRAMS += ...). Build them without
# --enable-sanitizers for meaningful figures; results go to bench/RESULTS.md.
noinst_PROGRAMS += bench/wire_bench
bench_wire_bench_SOURCES = bench/wire_bench.cc
bench_wire_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests $(PROTOBUF_CFLAGS) \
	$(BENCHMARK_CFLAGS)
bench_wire_bench_LDADD = src/wire/libmswire.la $(PROTOBUF_LIBS) $(BENCHMARK_LIBS)
$(bench_wire_bench_OBJECTS): $(WIRE_PROTO_GEN)

# Plugin overhead on LMTP delivery (issue 4): a program, not a timed test.
# Run it from a build without sanitizers; see bench/RESULTS.md.
noinst_PROGRAMS += bench/plugin_overhead
bench_plugin_overhead_SOURCES = bench/plugin_overhead.cc
bench_plugin_overhead_CPPFLAGS = $(TEST_CPPFLAGS)
bench_plugin_overhead_LDADD = tests/harness/libmsharness.la


# Sync engine (issue 6): update sync of 100 changes, initial sync of 10,000
# messages, engine only (no I/O). See bench/RESULTS.md for how to run it.
noinst_PROGRAMS += bench/engine_bench
bench_engine_bench_SOURCES = bench/engine_bench.cc \
	tests/unit/engine/sim.cc tests/unit/engine/sim.h
bench_engine_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests \
	$(BENCHMARK_CFLAGS)
bench_engine_bench_LDADD = src/sync_agent/engine/libmsengine.la \
	src/common/libmscommon.la $(BENCHMARK_LIBS)
# Agent bench (issue 5; issue 9, scenario 6): 10,000 enabled users on the
# real system (tests/harness/system_fixture); see bench/RESULTS.md, section
# "Agent (issue 5)".
noinst_PROGRAMS += bench/agent_bench
bench_agent_bench_SOURCES = bench/agent_bench.cc src/sync_server/device_client.cc
bench_agent_bench_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS)
bench_agent_bench_LDADD = tests/harness/libmsharness.la src/common/libmscommon.la

# End to end (issue 8): push latency, read latency, update sync of 100
# changes on the real system (tests/harness/system_fixture). See
# bench/RESULTS.md, section "End to end".
noinst_PROGRAMS += bench/e2e_bench
bench_e2e_bench_SOURCES = bench/e2e_bench.cc src/sync_server/device_client.cc
bench_e2e_bench_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS)
bench_e2e_bench_LDADD = tests/harness/libmsharness.la src/common/libmscommon.la
