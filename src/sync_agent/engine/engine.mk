# src/sync_agent/engine: the sans-I/O sync engine (lists in, operations out).
# No sockets, no libevent, no Dovecot, no protobuf: the agent and the
# reference server link it and translate its frames and ops.
noinst_LTLIBRARIES += src/sync_agent/engine/libmsengine.la
src_sync_agent_engine_libmsengine_la_SOURCES = \
	src/sync_agent/engine/action_list.cc src/sync_agent/engine/action_list.h \
	src/sync_agent/engine/action_window.cc src/sync_agent/engine/action_window.h \
	src/sync_agent/engine/id_map.cc src/sync_agent/engine/id_map.h \
	src/sync_agent/engine/initial_sync.cc src/sync_agent/engine/initial_sync.h \
	src/sync_agent/engine/list_compare.cc src/sync_agent/engine/list_compare.h \
	src/sync_agent/engine/local_view.cc src/sync_agent/engine/local_view.h \
	src/sync_agent/engine/precedence.cc src/sync_agent/engine/precedence.h \
	src/sync_agent/engine/remote_store_model.cc \
	src/sync_agent/engine/remote_store_model.h \
	src/sync_agent/engine/sync_session.cc src/sync_agent/engine/sync_session.h \
	src/sync_agent/engine/types.cc src/sync_agent/engine/types.h \
	src/sync_agent/engine/update_sync.cc src/sync_agent/engine/update_sync.h \
	src/sync_agent/engine/window.cc src/sync_agent/engine/window.h
