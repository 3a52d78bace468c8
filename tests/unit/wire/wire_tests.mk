# tests/unit/wire: test programs (check_PROGRAMS += ...)
check_PROGRAMS += tests/unit/wire/wire_test
tests_unit_wire_wire_test_SOURCES = \
	tests/unit/wire/sample_frames.h \
	tests/unit/wire/connection_state_test.cc \
	tests/unit/wire/frame_codec_test.cc \
	tests/unit/wire/frame_decoder_test.cc \
	tests/unit/wire/message_validator_test.cc \
	tests/unit/wire/session_state_test.cc
tests_unit_wire_wire_test_CPPFLAGS = $(TEST_CPPFLAGS) $(PROTOBUF_CFLAGS)
tests_unit_wire_wire_test_LDADD = src/wire/libmswire.la $(PROTOBUF_LIBS) $(GTEST_LIBS)
# The generated header must exist before any of these objects is compiled,
# also for `make test-programs`, which BUILT_SOURCES does not cover.
$(tests_unit_wire_wire_test_OBJECTS): $(WIRE_PROTO_GEN)

# Its own program: it replaces the global operator new to count allocations.
check_PROGRAMS += tests/unit/wire/wire_alloc_test
tests_unit_wire_wire_alloc_test_SOURCES = tests/unit/wire/frame_decoder_alloc_test.cc
tests_unit_wire_wire_alloc_test_CPPFLAGS = $(TEST_CPPFLAGS) $(PROTOBUF_CFLAGS)
tests_unit_wire_wire_alloc_test_LDADD = src/wire/libmswire.la $(PROTOBUF_LIBS) $(GTEST_LIBS)
$(tests_unit_wire_wire_alloc_test_OBJECTS): $(WIRE_PROTO_GEN)
