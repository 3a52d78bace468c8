# src/plugin: the Dovecot modules. They link no sanitizer runtime but UBSan:
# Dovecot's binaries are not ASan-built, so an ASan module could not load.
# Sources they share with the daemons (Status) are compiled in again with
# the plugin's flags.
PLUGIN_COMMON_SOURCES = \
	src/common/status.cc src/common/status.h \
	src/plugin/mobilesync_plugin.h \
	src/plugin/plugin_settings.cc src/plugin/plugin_settings.h \
	src/plugin/action_record.cc src/plugin/action_record.h

# -fvisibility=hidden cannot hide libstdc++ template instances (std:: is
# declared visibility("default")); with RTLD_GLOBAL they would interpose
# between modules. A version script exports the entry points only (libtool's
# -export-symbols-regex uses -retain-symbols-file, which keeps them).
PLUGIN_EXPORTS = -Wl,--version-script=$(top_srcdir)/src/plugin/plugin.map
EXTRA_DIST += src/plugin/plugin.map

module_LTLIBRARIES += src/plugin/lib20_mobilesync_plugin.la
src_plugin_lib20_mobilesync_plugin_la_SOURCES = \
	src/plugin/mobilesync_plugin.cc $(PLUGIN_COMMON_SOURCES)
src_plugin_lib20_mobilesync_plugin_la_CPPFLAGS = $(DOVECOT_CPPFLAGS)
src_plugin_lib20_mobilesync_plugin_la_CXXFLAGS = $(PLUGIN_CXXFLAGS)
src_plugin_lib20_mobilesync_plugin_la_LIBADD = $(PLUGIN_LIBS)
src_plugin_lib20_mobilesync_plugin_la_LDFLAGS = $(PLUGIN_LDFLAGS) $(PLUGIN_EXPORTS)

module_LTLIBRARIES += src/plugin/lib95_mobilesync_lda_plugin.la
src_plugin_lib95_mobilesync_lda_plugin_la_SOURCES = \
	src/plugin/mobilesync_lda_plugin.cc src/plugin/mobilesync_plugin.h \
	src/plugin/trigger_header.cc src/plugin/trigger_header.h \
	$(PLUGIN_COMMON_SOURCES)
src_plugin_lib95_mobilesync_lda_plugin_la_CPPFLAGS = $(DOVECOT_CPPFLAGS) $(OPENSSL_CFLAGS)
src_plugin_lib95_mobilesync_lda_plugin_la_CXXFLAGS = $(PLUGIN_CXXFLAGS)
# libcrypto for HMAC-SHA256 (Dovecot's own lib links it too on Debian).
src_plugin_lib95_mobilesync_lda_plugin_la_LIBADD = $(PLUGIN_LIBS) $(OPENSSL_LIBS)
src_plugin_lib95_mobilesync_lda_plugin_la_LDFLAGS = $(PLUGIN_LDFLAGS) $(PLUGIN_EXPORTS)

# A copy of the main module claiming a wrong ABI: the integration test shows
# that Dovecot refuses it. Built for tests only, never installed.
check_LTLIBRARIES += tests/integration/wrong_abi/lib20_mobilesync_plugin.la
tests_integration_wrong_abi_lib20_mobilesync_plugin_la_SOURCES = \
	src/plugin/mobilesync_plugin.cc $(PLUGIN_COMMON_SOURCES)
tests_integration_wrong_abi_lib20_mobilesync_plugin_la_CPPFLAGS = \
	$(DOVECOT_CPPFLAGS) -DMOBILESYNC_ABI_VERSION='"0.0.ABIv0(0.0.0)"'
tests_integration_wrong_abi_lib20_mobilesync_plugin_la_CXXFLAGS = $(PLUGIN_CXXFLAGS)
tests_integration_wrong_abi_lib20_mobilesync_plugin_la_LIBADD = $(PLUGIN_LIBS)
tests_integration_wrong_abi_lib20_mobilesync_plugin_la_LDFLAGS = $(PLUGIN_LDFLAGS) $(PLUGIN_EXPORTS) -rpath /nowhere
