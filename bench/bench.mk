# bench: benchmark programs (noinst_PROGRAMS += ...). Build them without
# --enable-sanitizers for meaningful figures; results go to bench/RESULTS.md.
noinst_PROGRAMS += bench/wire_bench
bench_wire_bench_SOURCES = bench/wire_bench.cc
bench_wire_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests $(PROTOBUF_CFLAGS) \
	$(BENCHMARK_CFLAGS)
bench_wire_bench_LDADD = src/wire/libmswire.la $(PROTOBUF_LIBS) $(BENCHMARK_LIBS)
$(bench_wire_bench_OBJECTS): $(WIRE_PROTO_GEN)

# Agent bench (issue 5): 10,000 users on a throwaway Dovecot; see
# bench/RESULTS.md, section "Agent (issue 5)".
noinst_PROGRAMS += bench/agent_bench
bench_agent_bench_SOURCES = bench/agent_bench.cc
bench_agent_bench_CPPFLAGS = $(TEST_CPPFLAGS) $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS) $(PROTOBUF_CFLAGS)
bench_agent_bench_LDADD = src/wire/libmswire.la tests/harness/libmsharness.la \
	$(LIBEVENT_OPENSSL_LIBS) $(LIBEVENT_LIBS) $(OPENSSL_LIBS) $(PROTOBUF_LIBS) -lpthread
$(bench_agent_bench_OBJECTS): $(WIRE_PROTO_GEN)
