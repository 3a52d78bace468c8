# tests/unit/agent: unit tests of the agent's sans-I/O parts (IMAP parser,
# scheduler, registry, control protocol).
check_PROGRAMS += tests/unit/agent/agent_test
tests_unit_agent_agent_test_SOURCES = \
	tests/unit/agent/agent_config_test.cc \
	tests/unit/agent/id_map_cache_test.cc \
	tests/unit/agent/imap_parser_test.cc \
	tests/unit/agent/listing_cache_test.cc \
	tests/unit/agent/scheduler_test.cc \
	tests/unit/agent/session_codec_test.cc \
	tests/unit/agent/uid_set_test.cc \
	tests/unit/agent/user_registry_test.cc
tests_unit_agent_agent_test_CPPFLAGS = $(TEST_CPPFLAGS) $(PROTOBUF_CFLAGS)
tests_unit_agent_agent_test_LDADD = src/sync_agent/libmsagent.la tests/harness/libmsharness.la \
	src/common/libmscommon.la $(GTEST_LIBS)
