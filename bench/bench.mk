# bench: test programs (check_PROGRAMS += ...)

# Sync engine (issue 6): update sync of 100 changes, initial sync of 10,000
# messages, engine only (no I/O). See bench/RESULTS.md for how to run it.
noinst_PROGRAMS += bench/engine_bench
bench_engine_bench_SOURCES = bench/engine_bench.cc \
	tests/unit/engine/sim.cc tests/unit/engine/sim.h
bench_engine_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests \
	$(BENCHMARK_CFLAGS)
bench_engine_bench_LDADD = src/sync_agent/engine/libmsengine.la \
	src/common/libmscommon.la $(BENCHMARK_LIBS)
