# src/wire: the sync protocol (frames, codec, limits). No I/O.
#
# sync.proto is compiled by protoc into the build tree (src/wire/sync.pb.*),
# which AM_CPPFLAGS' -I$(top_builddir)/src makes visible as "wire/sync.pb.h".
# The generated code is compiled in its own convenience library with relaxed
# warnings: we do not own it and protoc's output is not -Wextra clean in every
# version. Our own code keeps -Wall -Wextra -Werror.
WIRE_PROTO_GEN = src/wire/sync.pb.cc src/wire/sync.pb.h
BUILT_SOURCES += $(WIRE_PROTO_GEN)
CLEANFILES += $(WIRE_PROTO_GEN)
EXTRA_DIST += src/wire/sync.proto

# protoc writes both files at once; the .h depends on the .cc so that a
# parallel make runs protoc once.
src/wire/sync.pb.cc: $(top_srcdir)/src/wire/sync.proto
	$(AM_V_GEN)$(MKDIR_P) src/wire && \
	$(PROTOC) --proto_path=$(top_srcdir)/src --cpp_out=$(top_builddir)/src $(top_srcdir)/src/wire/sync.proto
src/wire/sync.pb.h: src/wire/sync.pb.cc
	@:

noinst_LTLIBRARIES += src/wire/libmswireproto.la
nodist_src_wire_libmswireproto_la_SOURCES = $(WIRE_PROTO_GEN)
src_wire_libmswireproto_la_CXXFLAGS = -std=gnu++17 -w $(SANITIZER_FLAGS) $(PROTOBUF_CFLAGS)
src_wire_libmswireproto_la_LIBADD = $(PROTOBUF_LIBS)

noinst_LTLIBRARIES += src/wire/libmswire.la
src_wire_libmswire_la_SOURCES = \
	src/wire/frame.cc src/wire/frame.h \
	src/wire/frame_decoder.cc src/wire/frame_decoder.h \
	src/wire/frame_encoder.cc src/wire/frame_encoder.h \
	src/wire/frame_header.cc src/wire/frame_header.h \
	src/wire/frame_type.cc src/wire/frame_type.h \
	src/wire/connection_state.cc src/wire/connection_state.h \
	src/wire/limits.h \
	src/wire/message_validator.cc src/wire/message_validator.h \
	src/wire/session_state.cc src/wire/session_state.h
src_wire_libmswire_la_CXXFLAGS = $(AM_CXXFLAGS) $(PROTOBUF_CFLAGS)
src_wire_libmswire_la_LIBADD = src/wire/libmswireproto.la src/common/libmscommon.la \
	$(PROTOBUF_LIBS)
$(src_wire_libmswire_la_OBJECTS): $(WIRE_PROTO_GEN)
