# tests/unit/common: Status, config files, secrets, logging.
check_PROGRAMS += tests/unit/common/common_test
tests_unit_common_common_test_SOURCES = \
	tests/unit/common/config_file_test.cc \
	tests/unit/common/daemon_test.cc \
	tests/unit/common/log_test.cc \
	tests/unit/common/secret_file_test.cc \
	tests/unit/common/status_test.cc
tests_unit_common_common_test_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_common_common_test_LDADD = tests/harness/libmsharness.la src/common/libmscommon.la $(GTEST_LIBS)
