# tests/harness: the reusable integration-test harness (throwaway Dovecot,
# test certificates, child processes, small IMAP/LMTP clients).
noinst_LTLIBRARIES += tests/harness/libmsharness.la
tests_harness_libmsharness_la_SOURCES = \
	tests/harness/convergence.cc tests/harness/convergence.h \
	tests/harness/dovecot_instance.cc tests/harness/dovecot_instance.h \
	tests/harness/mail_clients.cc tests/harness/mail_clients.h \
	tests/harness/fake_agent_socket.cc tests/harness/fake_agent_socket.h \
	tests/harness/metadata.cc tests/harness/metadata.h \
	tests/harness/process.cc tests/harness/process.h \
	tests/harness/system_fixture.cc tests/harness/system_fixture.h \
	tests/harness/tcp_proxy.cc tests/harness/tcp_proxy.h \
	tests/harness/temp_dir.cc tests/harness/temp_dir.h \
	tests/harness/test_certs.cc tests/harness/test_certs.h
tests_harness_libmsharness_la_CPPFLAGS = $(TEST_CPPFLAGS) $(OPENSSL_CFLAGS) $(NLOHMANN_JSON_CFLAGS)
tests_harness_libmsharness_la_LIBADD = src/common/libmscommon.la $(OPENSSL_LIBS)
