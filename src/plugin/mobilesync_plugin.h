/* The C boundary of the mobilesync Dovecot plugin.
 *
 * Dovecot looks these symbols up by name after dlopen(); they are the only
 * symbols the modules export (everything else is built -fvisibility=hidden).
 * The delivery module (lib95_mobilesync_lda_plugin.so) reaches the main
 * module's per-user state only through mobilesync_user_enabled() and
 * mobilesync_user_request_sync(). */
#ifndef MOBILESYNC_PLUGIN_H
#define MOBILESYNC_PLUGIN_H

#define MOBILESYNC_EXPORT __attribute__((visibility("default")))

struct module;
struct mail_user;

extern "C" {
MOBILESYNC_EXPORT extern const char* mobilesync_plugin_version;
MOBILESYNC_EXPORT extern const char* mobilesync_plugin_dependencies[];
MOBILESYNC_EXPORT void mobilesync_plugin_init(struct module* module);
MOBILESYNC_EXPORT void mobilesync_plugin_deinit(void);

/* Returns true if mobilesync is enabled for this user (its user context is
   attached). Never throws. */
MOBILESYNC_EXPORT bool mobilesync_user_enabled(struct mail_user* user);
/* Asks the agent for a sync of this user ("sync <user>" on its socket,
   batched like the pokes). No-op for users without mobilesync. Never
   throws. */
MOBILESYNC_EXPORT void mobilesync_user_request_sync(struct mail_user* user);

MOBILESYNC_EXPORT extern const char* mobilesync_lda_plugin_version;
MOBILESYNC_EXPORT extern const char* mobilesync_lda_plugin_dependencies[];
MOBILESYNC_EXPORT extern const char mobilesync_lda_plugin_binary_dependency[];
MOBILESYNC_EXPORT void mobilesync_lda_plugin_init(struct module* module);
MOBILESYNC_EXPORT void mobilesync_lda_plugin_deinit(void);
}

#endif
