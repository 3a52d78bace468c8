# src/sync_agent: mobilesync-agent (the daemon) and mobilesyncctl.
noinst_LTLIBRARIES += src/sync_agent/libmsagent.la
src_sync_agent_libmsagent_la_SOURCES = \
	src/sync_agent/agent.cc src/sync_agent/agent.h \
	src/sync_agent/agent_config.cc src/sync_agent/agent_config.h \
	src/sync_agent/attribute_fields.cc src/sync_agent/attribute_fields.h \
	src/sync_agent/cache_file.cc src/sync_agent/cache_file.h \
	src/sync_agent/control_server.cc src/sync_agent/control_server.h \
	src/sync_agent/event_ptrs.h \
	src/sync_agent/id_map_cache.cc src/sync_agent/id_map_cache.h \
	src/sync_agent/imap/imap_client.cc src/sync_agent/imap/imap_client.h \
	src/sync_agent/imap/imap_parser.cc src/sync_agent/imap/imap_parser.h \
	src/sync_agent/imap/uid_set.cc src/sync_agent/imap/uid_set.h \
	src/sync_agent/listing_cache.cc src/sync_agent/listing_cache.h \
	src/sync_agent/local_mailbox.cc src/sync_agent/local_mailbox.h \
	src/sync_agent/mail_submitter.cc src/sync_agent/mail_submitter.h \
	src/plugin/action_record.cc src/plugin/action_record.h \
	src/sync_agent/quick_token.cc src/sync_agent/quick_token.h \
	src/sync_agent/remote_connection.cc src/sync_agent/remote_connection.h \
	src/sync_agent/scheduler.cc src/sync_agent/scheduler.h \
	src/sync_agent/session_codec.cc src/sync_agent/session_codec.h \
	src/sync_agent/session_runner.cc src/sync_agent/session_runner.h \
	src/sync_agent/sync_driver.cc src/sync_agent/sync_driver.h \
	src/sync_agent/tls_context.cc src/sync_agent/tls_context.h \
	src/sync_agent/user_registry.cc src/sync_agent/user_registry.h \
	src/sync_agent/wire_protocol.cc src/sync_agent/wire_protocol.h
src_sync_agent_libmsagent_la_CXXFLAGS = $(AM_CXXFLAGS) $(LIBEVENT_CFLAGS) \
	$(LIBEVENT_OPENSSL_CFLAGS) $(OPENSSL_CFLAGS) $(SQLITE3_CFLAGS) $(PROTOBUF_CFLAGS)
src_sync_agent_libmsagent_la_LIBADD = src/sync_agent/engine/libmsengine.la \
	src/wire/libmswire.la src/common/libmscommon.la \
	$(LIBEVENT_OPENSSL_LIBS) $(LIBEVENT_LIBS) $(OPENSSL_LIBS) $(SQLITE3_LIBS) $(PROTOBUF_LIBS)
$(src_sync_agent_libmsagent_la_OBJECTS): $(WIRE_PROTO_GEN)

sbin_PROGRAMS += src/sync_agent/mobilesync-agent
src_sync_agent_mobilesync_agent_SOURCES = src/sync_agent/agent_main.cc
src_sync_agent_mobilesync_agent_CXXFLAGS = $(AM_CXXFLAGS) $(LIBEVENT_CFLAGS)
src_sync_agent_mobilesync_agent_LDADD = src/sync_agent/libmsagent.la $(LIBEVENT_LIBS)

sbin_PROGRAMS += src/sync_agent/mobilesyncctl
src_sync_agent_mobilesyncctl_SOURCES = src/sync_agent/ctl_main.cc
src_sync_agent_mobilesyncctl_LDADD = src/sync_agent/libmsagent.la
