# tests/fault: fault injection on the real system (kill -9 at random points).
# scripts/test.sh runs the short form; tests/fault/run-long.sh the long one.
check_PROGRAMS += tests/fault/crash_test
tests_fault_crash_test_SOURCES = tests/fault/crash_test.cc
tests_fault_crash_test_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS)
tests_fault_crash_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS) $(OPENSSL_LIBS)
EXTRA_tests_fault_crash_test_DEPENDENCIES = $(module_LTLIBRARIES) $(sbin_PROGRAMS) $(bin_PROGRAMS)
EXTRA_DIST += tests/fault/run-long.sh
