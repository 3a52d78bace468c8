# tests/integration: tests against real processes (Dovecot, our daemons).
check_PROGRAMS += tests/integration/plugin_load_test
tests_integration_plugin_load_test_SOURCES = tests/integration/plugin_load_test.cc
tests_integration_plugin_load_test_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_plugin_load_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS)
EXTRA_tests_integration_plugin_load_test_DEPENDENCIES = $(module_LTLIBRARIES) $(check_LTLIBRARIES)

check_PROGRAMS += tests/integration/daemon_cli_test
tests_integration_daemon_cli_test_SOURCES = tests/integration/daemon_cli_test.cc
tests_integration_daemon_cli_test_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_daemon_cli_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS)
EXTRA_tests_integration_daemon_cli_test_DEPENDENCIES = $(sbin_PROGRAMS) $(bin_PROGRAMS)

# The agent's IMAP client against a real Dovecot.
check_PROGRAMS += tests/integration/imap_client_test
tests_integration_imap_client_test_SOURCES = tests/integration/imap_client_test.cc
tests_integration_imap_client_test_CPPFLAGS = $(TEST_CPPFLAGS) $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS)
tests_integration_imap_client_test_LDADD = src/sync_agent/libmsagent.la tests/harness/libmsharness.la \
	$(LIBEVENT_LIBS) $(GTEST_LIBS)
