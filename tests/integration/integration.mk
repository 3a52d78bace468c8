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

# mobilesync-server end to end: device API + mobilesync-device + SMTP sink,
# and the sync protocol from the server side over real TLS.
check_LTLIBRARIES += tests/integration/libmsserverfixture.la
tests_integration_libmsserverfixture_la_SOURCES = \
	tests/integration/server_fixture.cc tests/integration/server_fixture.h \
	src/sync_server/device_client.cc src/sync_server/device_client.h
tests_integration_libmsserverfixture_la_CPPFLAGS = $(TEST_CPPFLAGS) $(OPENSSL_CFLAGS) \
	$(PROTOBUF_CFLAGS) $(NLOHMANN_JSON_CFLAGS)
tests_integration_libmsserverfixture_la_LIBADD = src/sync_server/libmsserver.la \
	tests/harness/libmsharness.la $(OPENSSL_LIBS) $(PROTOBUF_LIBS)
$(tests_integration_libmsserverfixture_la_OBJECTS): $(WIRE_PROTO_GEN)

check_PROGRAMS += tests/integration/server_device_test
tests_integration_server_device_test_SOURCES = tests/integration/server_device_test.cc
tests_integration_server_device_test_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS) \
	$(PROTOBUF_CFLAGS)
tests_integration_server_device_test_LDADD = tests/integration/libmsserverfixture.la $(GTEST_LIBS)
EXTRA_tests_integration_server_device_test_DEPENDENCIES = $(bin_PROGRAMS)
$(tests_integration_server_device_test_OBJECTS): $(WIRE_PROTO_GEN)

check_PROGRAMS += tests/integration/server_protocol_test
tests_integration_server_protocol_test_SOURCES = tests/integration/server_protocol_test.cc
tests_integration_server_protocol_test_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS) \
	$(PROTOBUF_CFLAGS)
tests_integration_server_protocol_test_LDADD = tests/integration/libmsserverfixture.la \
	src/sync_server/libmsstore.la $(GTEST_LIBS)
EXTRA_tests_integration_server_protocol_test_DEPENDENCIES = $(bin_PROGRAMS)
$(tests_integration_server_protocol_test_OBJECTS): $(WIRE_PROTO_GEN)

check_PROGRAMS += tests/integration/action_list_test
tests_integration_action_list_test_SOURCES = tests/integration/action_list_test.cc \
	src/plugin/action_record.cc src/plugin/action_record.h
tests_integration_action_list_test_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_action_list_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS) -lpthread
EXTRA_tests_integration_action_list_test_DEPENDENCIES = $(module_LTLIBRARIES)

check_PROGRAMS += tests/integration/agent_poke_test
tests_integration_agent_poke_test_SOURCES = tests/integration/agent_poke_test.cc
tests_integration_agent_poke_test_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_agent_poke_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS) -lpthread
EXTRA_tests_integration_agent_poke_test_DEPENDENCIES = $(module_LTLIBRARIES)

check_PROGRAMS += tests/integration/trigger_test
tests_integration_trigger_test_SOURCES = tests/integration/trigger_test.cc \
	src/plugin/trigger_header.cc src/plugin/trigger_header.h
tests_integration_trigger_test_CPPFLAGS = $(TEST_CPPFLAGS) $(OPENSSL_CFLAGS)
tests_integration_trigger_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS) $(OPENSSL_LIBS) -lpthread
EXTRA_tests_integration_trigger_test_DEPENDENCIES = $(module_LTLIBRARIES)
# The agent's IMAP client against a real Dovecot.
check_PROGRAMS += tests/integration/imap_client_test
tests_integration_imap_client_test_SOURCES = tests/integration/imap_client_test.cc
tests_integration_imap_client_test_CPPFLAGS = $(TEST_CPPFLAGS) $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS)
tests_integration_imap_client_test_LDADD = src/sync_agent/libmsagent.la tests/harness/libmsharness.la \
	$(LIBEVENT_LIBS) $(GTEST_LIBS)

# The agent's outbound TLS connection against test TLS servers.
check_PROGRAMS += tests/integration/remote_connection_test
tests_integration_remote_connection_test_SOURCES = tests/integration/remote_connection_test.cc
tests_integration_remote_connection_test_CPPFLAGS = $(TEST_CPPFLAGS) $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS)
tests_integration_remote_connection_test_LDADD = src/sync_agent/libmsagent.la tests/harness/libmsharness.la \
	$(LIBEVENT_OPENSSL_LIBS) $(LIBEVENT_LIBS) $(OPENSSL_LIBS) $(GTEST_LIBS)

# mobilesync-agent and mobilesyncctl together against a real Dovecot.
check_PROGRAMS += tests/integration/agent_ctl_test
tests_integration_agent_ctl_test_SOURCES = tests/integration/agent_ctl_test.cc
tests_integration_agent_ctl_test_CPPFLAGS = $(TEST_CPPFLAGS)
tests_integration_agent_ctl_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS)
EXTRA_tests_integration_agent_ctl_test_DEPENDENCIES = $(sbin_PROGRAMS)

# The wire protocol's connection level over the agent's TLS connection.
check_PROGRAMS += tests/integration/wire_connection_test
tests_integration_wire_connection_test_SOURCES = tests/integration/wire_connection_test.cc
tests_integration_wire_connection_test_CPPFLAGS = $(TEST_CPPFLAGS) $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS) \
	$(PROTOBUF_CFLAGS)
tests_integration_wire_connection_test_LDADD = src/sync_agent/libmsagent.la tests/harness/libmsharness.la \
	$(LIBEVENT_OPENSSL_LIBS) $(LIBEVENT_LIBS) $(OPENSSL_LIBS) $(PROTOBUF_LIBS) $(GTEST_LIBS)
$(tests_integration_wire_connection_test_OBJECTS): $(WIRE_PROTO_GEN)

# LocalMailbox (snapshot, ops) and MailSubmitter against a real Dovecot with
# the plugin, a sendmail stand-in and an aiosmtpd relay.
check_PROGRAMS += tests/integration/local_mailbox_test
tests_integration_local_mailbox_test_SOURCES = tests/integration/local_mailbox_test.cc
tests_integration_local_mailbox_test_CPPFLAGS = $(TEST_CPPFLAGS) $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS)
tests_integration_local_mailbox_test_LDADD = src/sync_agent/libmsagent.la tests/harness/libmsharness.la \
	$(LIBEVENT_LIBS) $(GTEST_LIBS)
EXTRA_tests_integration_local_mailbox_test_DEPENDENCIES = $(module_LTLIBRARIES)
# The whole system end to end (MobilesyncSystem): Dovecot + plugin, server,
# agent, the MTA stand-in. E2eSync.* need the sync engine (see the file).
check_PROGRAMS += tests/integration/e2e_sync_test
tests_integration_e2e_sync_test_SOURCES = tests/integration/e2e_sync_test.cc
tests_integration_e2e_sync_test_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS)
tests_integration_e2e_sync_test_LDADD = tests/harness/libmsharness.la $(GTEST_LIBS) $(OPENSSL_LIBS)
EXTRA_tests_integration_e2e_sync_test_DEPENDENCIES = $(module_LTLIBRARIES) $(sbin_PROGRAMS) $(bin_PROGRAMS)

# Security properties (docs/security.md): the agent's TLS client against bad
# servers; the server against expired client certificates; hostile action
# entries of one user; no secret in any log.
check_PROGRAMS += tests/integration/security_test
tests_integration_security_test_SOURCES = tests/integration/security_test.cc
tests_integration_security_test_CPPFLAGS = $(TEST_CPPFLAGS) $(NLOHMANN_JSON_CFLAGS) \
	$(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS) $(PROTOBUF_CFLAGS)
tests_integration_security_test_LDADD = src/sync_agent/libmsagent.la \
	tests/integration/libmsserverfixture.la tests/harness/libmsharness.la \
	$(LIBEVENT_OPENSSL_LIBS) $(LIBEVENT_LIBS) $(OPENSSL_LIBS) $(GTEST_LIBS)
EXTRA_tests_integration_security_test_DEPENDENCIES = $(module_LTLIBRARIES) $(sbin_PROGRAMS) \
	$(bin_PROGRAMS)
$(tests_integration_security_test_OBJECTS): $(WIRE_PROTO_GEN)
