# src/common: Status, configuration files, logging, secrets, event-loop RAII.
noinst_LTLIBRARIES += src/common/libmscommon.la
src_common_libmscommon_la_SOURCES = \
	src/common/config_file.cc src/common/config_file.h \
	src/common/daemon.cc src/common/daemon.h \
	src/common/event_loop.cc src/common/event_loop.h \
	src/common/log.cc src/common/log.h \
	src/common/secret_file.cc src/common/secret_file.h \
	src/common/smtp_address.cc \
	src/common/smtp_client.cc src/common/smtp_client.h \
	src/common/status.cc src/common/status.h \
	src/common/user_name.cc src/common/user_name.h
src_common_libmscommon_la_CXXFLAGS = $(AM_CXXFLAGS) $(LIBEVENT_CFLAGS)
src_common_libmscommon_la_LIBADD = $(LIBEVENT_LIBS)
