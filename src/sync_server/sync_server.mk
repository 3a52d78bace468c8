# src/sync_server: mobilesync-server (reference remote server) and
# mobilesync-device (its device API client).

# The store: per-user window, action list, outbox (SQLite by default).
noinst_LTLIBRARIES += src/sync_server/libmsstore.la
src_sync_server_libmsstore_la_SOURCES = \
	src/sync_server/store/message_store.h \
	src/sync_server/store/sqlite_store.cc src/sync_server/store/sqlite_store.h
src_sync_server_libmsstore_la_CXXFLAGS = $(AM_CXXFLAGS) $(SQLITE3_CFLAGS) $(OPENSSL_CFLAGS)
src_sync_server_libmsstore_la_LIBADD = src/common/libmscommon.la $(SQLITE3_LIBS) $(OPENSSL_LIBS)

# Device API request parsing: no I/O (the fuzz target links only this).
noinst_LTLIBRARIES += src/sync_server/libmsdevicereq.la
src_sync_server_libmsdevicereq_la_SOURCES = \
	src/sync_server/device_request.cc src/sync_server/device_request.h
src_sync_server_libmsdevicereq_la_CXXFLAGS = $(AM_CXXFLAGS) $(NLOHMANN_JSON_CFLAGS)

# Everything else of the server, on libevent + OpenSSL + the wire codec.
noinst_LTLIBRARIES += src/sync_server/libmsserver.la
src_sync_server_libmsserver_la_SOURCES = \
	src/sync_server/agent_listener.cc src/sync_server/agent_listener.h \
	src/sync_server/crypto_util.cc src/sync_server/crypto_util.h \
	src/sync_server/device_api.cc src/sync_server/device_api.h \
	src/sync_server/provisioning.cc src/sync_server/provisioning.h \
	src/sync_server/server.cc src/sync_server/server.h \
	src/sync_server/server_config.cc src/sync_server/server_config.h \
	src/sync_server/trigger.cc src/sync_server/trigger.h
src_sync_server_libmsserver_la_CXXFLAGS = $(AM_CXXFLAGS) $(LIBEVENT_CFLAGS) \
	$(LIBEVENT_OPENSSL_CFLAGS) $(OPENSSL_CFLAGS) $(PROTOBUF_CFLAGS) $(NLOHMANN_JSON_CFLAGS)
src_sync_server_libmsserver_la_LIBADD = src/sync_server/libmsstore.la \
	src/sync_server/libmsdevicereq.la src/wire/libmswire.la src/common/libmscommon.la \
	$(LIBEVENT_OPENSSL_LIBS) $(LIBEVENT_LIBS) $(OPENSSL_LIBS) $(PROTOBUF_LIBS)
$(src_sync_server_libmsserver_la_OBJECTS): $(WIRE_PROTO_GEN)

bin_PROGRAMS += src/sync_server/mobilesync-server
src_sync_server_mobilesync_server_SOURCES = src/sync_server/server_main.cc
src_sync_server_mobilesync_server_CXXFLAGS = $(AM_CXXFLAGS) $(LIBEVENT_CFLAGS)
src_sync_server_mobilesync_server_LDADD = src/sync_server/libmsserver.la $(LIBEVENT_LIBS)

bin_PROGRAMS += src/sync_server/mobilesync-device
src_sync_server_mobilesync_device_SOURCES = src/sync_server/device_main.cc \
	src/sync_server/device_client.cc src/sync_server/device_client.h
src_sync_server_mobilesync_device_CXXFLAGS = $(AM_CXXFLAGS) $(NLOHMANN_JSON_CFLAGS)
src_sync_server_mobilesync_device_LDADD = src/sync_server/libmsdevicereq.la src/common/libmscommon.la
