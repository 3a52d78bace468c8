# tests/fault: fault injection on the real system (kill -9 at random points).
# scripts/test.sh runs the short form; tests/fault/run-long.sh the long one.
check_PROGRAMS += tests/fault/crash_test
tests_fault_crash_test_SOURCES = tests/fault/crash_test.cc
tests_fault_crash_test_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS)
tests_fault_crash_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS) $(OPENSSL_LIBS)
EXTRA_tests_fault_crash_test_DEPENDENCIES = $(module_LTLIBRARIES) $(sbin_PROGRAMS) $(bin_PROGRAMS)
EXTRA_DIST += tests/fault/run-long.sh

# Network faults between agent and server through a proxy (tests/harness/tcp_proxy.h).
check_PROGRAMS += tests/fault/network_test
tests_fault_network_test_SOURCES = tests/fault/network_test.cc
tests_fault_network_test_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS)
tests_fault_network_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS) $(OPENSSL_LIBS)
EXTRA_tests_fault_network_test_DEPENDENCIES = $(module_LTLIBRARIES) $(sbin_PROGRAMS) $(bin_PROGRAMS)

# Store faults: the server restored from an older database, Dovecot's quota.
check_PROGRAMS += tests/fault/store_fault_test
tests_fault_store_fault_test_SOURCES = tests/fault/store_fault_test.cc
tests_fault_store_fault_test_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS)
tests_fault_store_fault_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS) $(OPENSSL_LIBS)
EXTRA_tests_fault_store_fault_test_DEPENDENCIES = $(module_LTLIBRARIES) $(sbin_PROGRAMS) $(bin_PROGRAMS)

# Load: many users with changes at once (MS_LOAD_USERS; run-long.sh: 1000).
check_PROGRAMS += tests/fault/load_test
tests_fault_load_test_SOURCES = tests/fault/load_test.cc
tests_fault_load_test_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS)
tests_fault_load_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS) $(OPENSSL_LIBS)
EXTRA_tests_fault_load_test_DEPENDENCIES = $(module_LTLIBRARIES) $(sbin_PROGRAMS) $(bin_PROGRAMS)
