# src/sync_server: mobilesync-server (reference remote server) and
# mobilesync-device (its device API client).

# The store: per-user window, action list, outbox (SQLite by default).
noinst_LTLIBRARIES += src/sync_server/libmsstore.la
src_sync_server_libmsstore_la_SOURCES = \
	src/sync_server/store/message_store.h \
	src/sync_server/store/sqlite_store.cc src/sync_server/store/sqlite_store.h
src_sync_server_libmsstore_la_CXXFLAGS = $(AM_CXXFLAGS) $(SQLITE3_CFLAGS) $(OPENSSL_CFLAGS)
src_sync_server_libmsstore_la_LIBADD = src/common/libmscommon.la $(SQLITE3_LIBS) $(OPENSSL_LIBS)

noinst_LTLIBRARIES += src/sync_server/libmsserver.la
src_sync_server_libmsserver_la_SOURCES = \
	src/sync_server/server_config.cc src/sync_server/server_config.h
src_sync_server_libmsserver_la_LIBADD = src/common/libmscommon.la

bin_PROGRAMS += src/sync_server/mobilesync-server
src_sync_server_mobilesync_server_SOURCES = src/sync_server/server_main.cc
src_sync_server_mobilesync_server_CXXFLAGS = $(AM_CXXFLAGS) $(LIBEVENT_CFLAGS)
src_sync_server_mobilesync_server_LDADD = src/sync_server/libmsserver.la $(LIBEVENT_LIBS)

bin_PROGRAMS += src/sync_server/mobilesync-device
src_sync_server_mobilesync_device_SOURCES = src/sync_server/device_main.cc
src_sync_server_mobilesync_device_LDADD = src/common/libmscommon.la
