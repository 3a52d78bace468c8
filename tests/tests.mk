# Test programs. Each GoogleTest binary is a check_PROGRAM; scripts/test.sh
# builds them all (`make test-programs`), runs each and counts the results.
# Integration tests find the build and source trees through these macros.
TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests $(GTEST_CFLAGS) \
	-DMS_TOP_BUILDDIR='"$(abs_top_builddir)"' -DMS_TOP_SRCDIR='"$(abs_top_srcdir)"'

include tests/unit/common/common_tests.mk
include tests/unit/wire/wire_tests.mk
include tests/unit/engine/engine_tests.mk
include tests/unit/plugin/plugin_tests.mk
include tests/unit/agent/agent_tests.mk
include tests/unit/server/server_tests.mk
include tests/integration/integration.mk
include tests/fault/fault.mk
include bench/bench.mk

# Prints the test programs, one per line, for scripts/test.sh.
print-test-programs:
	@for p in $(check_PROGRAMS); do echo $$p; done
.PHONY: print-test-programs
