/* mobilesync delivery module (lib95_mobilesync_lda_plugin.so).
 *
 * Loaded only into lda and lmtp (mail_deliver_hook_set exists only there).
 * It will recognise trigger messages; for now it chains to the previous
 * delivery hook untouched. */
#include "mobilesync-config.h"

extern "C" {
#include "lib.h"
#include "mail-deliver.h"
#include "mail-user.h"
}

#include "plugin/mobilesync_plugin.h"

#ifndef MOBILESYNC_ABI_VERSION
#define MOBILESYNC_ABI_VERSION DOVECOT_ABI_VERSION
#endif

static deliver_mail_func_t* mobilesync_next_deliver_mail;

/* Returns >0 when the message was handled (not stored), 0 to let Dovecot
   deliver it normally, <0 on error. */
static int mobilesync_lda_deliver_mail(struct mail_deliver_context* ctx,
                                       struct mail_storage** storage_r) {
  if (mobilesync_next_deliver_mail != nullptr) {
    return mobilesync_next_deliver_mail(ctx, storage_r);
  }
  return 0;
}

extern "C" {

const char* mobilesync_lda_plugin_version = MOBILESYNC_ABI_VERSION;
const char* mobilesync_lda_plugin_dependencies[] = {"mobilesync", nullptr};
const char mobilesync_lda_plugin_binary_dependency[] = "lda lmtp";

void mobilesync_lda_plugin_init(struct module* /*module*/) {
  mobilesync_next_deliver_mail = mail_deliver_hook_set(mobilesync_lda_deliver_mail);
}

void mobilesync_lda_plugin_deinit(void) {
  mail_deliver_hook_set(mobilesync_next_deliver_mail);
}

}  // extern "C"
