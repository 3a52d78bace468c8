# tests/unit/plugin: the plugin's pure C++ parts (no Dovecot needed).
check_PROGRAMS += tests/unit/plugin/plugin_unit_test
tests_unit_plugin_plugin_unit_test_SOURCES = \
	tests/unit/plugin/plugin_settings_test.cc \
	tests/unit/plugin/action_record_test.cc \
	tests/unit/plugin/trigger_header_test.cc \
	src/plugin/plugin_settings.cc \
	src/plugin/action_record.cc \
	src/plugin/trigger_header.cc
tests_unit_plugin_plugin_unit_test_CPPFLAGS = $(TEST_CPPFLAGS) $(OPENSSL_CFLAGS)
tests_unit_plugin_plugin_unit_test_LDADD = src/common/libmscommon.la $(GTEST_LIBS) $(OPENSSL_LIBS)
