# src/sync_agent: mobilesync-agent (the daemon) and mobilesyncctl.
noinst_LTLIBRARIES += src/sync_agent/libmsagent.la
src_sync_agent_libmsagent_la_SOURCES = \
	src/sync_agent/agent_config.cc src/sync_agent/agent_config.h
src_sync_agent_libmsagent_la_LIBADD = src/common/libmscommon.la

sbin_PROGRAMS += src/sync_agent/mobilesync-agent
src_sync_agent_mobilesync_agent_SOURCES = src/sync_agent/agent_main.cc
src_sync_agent_mobilesync_agent_CXXFLAGS = $(AM_CXXFLAGS) $(LIBEVENT_CFLAGS)
src_sync_agent_mobilesync_agent_LDADD = src/sync_agent/libmsagent.la $(LIBEVENT_LIBS)

sbin_PROGRAMS += src/sync_agent/mobilesyncctl
src_sync_agent_mobilesyncctl_SOURCES = src/sync_agent/ctl_main.cc
src_sync_agent_mobilesyncctl_LDADD = src/sync_agent/libmsagent.la
