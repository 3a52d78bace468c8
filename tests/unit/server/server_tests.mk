# tests/unit/server: the store, provisioning files, trigger messages, device
# API request parsing.
check_PROGRAMS += tests/unit/server/store_test
tests_unit_server_store_test_SOURCES = tests/unit/server/sqlite_store_test.cc
tests_unit_server_store_test_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_server_store_test_LDADD = src/sync_server/libmsstore.la \
	tests/harness/libmsharness.la $(GTEST_LIBS)

check_PROGRAMS += tests/unit/server/server_unit_test
tests_unit_server_server_unit_test_SOURCES = tests/unit/server/provisioning_test.cc \
	tests/unit/server/server_config_test.cc src/plugin/trigger_header.cc
tests_unit_server_server_unit_test_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS) $(OPENSSL_CFLAGS)
tests_unit_server_server_unit_test_LDADD = src/sync_server/libmsserver.la \
	tests/harness/libmsharness.la $(GTEST_LIBS)
