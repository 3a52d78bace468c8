/* mobilesync Dovecot plugin (lib20_mobilesync_plugin.so).
 *
 * Attaches a user context to every mail user with mobilesync_enabled = yes
 * (plugin setting, overridable per user from userdb) and registers with the
 * notify plugin. Users without it get no context, and every callback returns
 * at once for them.
 *
 * The C/C++ boundary: Dovecot's headers are included inside extern "C"; the
 * entry points are the only exported symbols; every callback Dovecot calls
 * catches all exceptions (none may unwind through Dovecot's C frames); the
 * pool-allocated user context is trivially destructible and holds its C++
 * state behind a pointer deleted in the user's deinit. */
#include "mobilesync-config.h"

extern "C" {
#include "lib.h"
#include "mail-storage-hooks.h"
#include "mail-storage.h"
#include "mail-user.h"
#include "module-context.h"
#include "notify-plugin.h"
}

#include <new>
#include <type_traits>

#include "plugin/mobilesync_plugin.h"
#include "plugin/plugin_settings.h"

#ifndef MOBILESYNC_ABI_VERSION
/* Only the wrong-ABI test build overrides this. */
#define MOBILESYNC_ABI_VERSION DOVECOT_ABI_VERSION
#endif

#define MOBILESYNC_USER_CONTEXT(obj) \
  static_cast<struct mobilesync_user*>(MODULE_CONTEXT(obj, mobilesync_user_module))

namespace {

/* The C++ side of a user's state; grows with the action-list issue. */
struct UserState {
  mobilesync::plugin::PluginSettings settings;
};

}  // namespace

struct mobilesync_user {
  union mail_user_module_context module_ctx;
  UserState* state;
};
static_assert(std::is_trivially_destructible<mobilesync_user>::value,
              "pool memory runs no destructors");

static MODULE_CONTEXT_DEFINE_INIT(mobilesync_user_module, &mail_user_module_register);

static struct notify_context* mobilesync_notify_ctx;

static void mobilesync_user_deinit(struct mail_user* user) {
  struct mobilesync_user* muser = MOBILESYNC_USER_CONTEXT(user);
  delete muser->state;
  muser->state = nullptr;
  muser->module_ctx.super.deinit(user);
}

static void mobilesync_mail_user_created(struct mail_user* user) {
  try {
    /* LMTP's raw user and shared-namespace owners are not real logins. */
    if (user->autocreated) return;
    mobilesync::plugin::PluginSettings settings;
    mobilesync::Status s = mobilesync::plugin::LoadPluginSettings(
        [user](const char* name) { return mail_user_plugin_getenv(user, name); }, &settings);
    if (!s.ok()) {
      e_error(user->event, "mobilesync: disabled for this user: %s", s.message().c_str());
      return;
    }
    if (!settings.enabled) return;

    struct mail_user_vfuncs* v = user->vlast;
    struct mobilesync_user* muser = p_new(user->pool, struct mobilesync_user, 1);
    muser->state = new UserState{settings};
    muser->module_ctx.super = *v;
    user->vlast = &muser->module_ctx.super;
    v->deinit = mobilesync_user_deinit;
    MODULE_CONTEXT_SET(user, mobilesync_user_module, muser);
    e_debug(user->event, "mobilesync: enabled for user %s", user->username);
  } catch (const std::bad_alloc&) {
    i_fatal_status(FATAL_OUTOFMEM, "mobilesync: out of memory");
  } catch (...) {
    e_error(user->event, "mobilesync: internal error, disabled for this user");
  }
}

static struct mail_storage_hooks mobilesync_mail_storage_hooks;
static struct notify_vfuncs mobilesync_vfuncs;

extern "C" {

const char* mobilesync_plugin_version = MOBILESYNC_ABI_VERSION;
const char* mobilesync_plugin_dependencies[] = {"notify", nullptr};

bool mobilesync_user_enabled(struct mail_user* user) {
  return user != nullptr && MOBILESYNC_USER_CONTEXT(user) != nullptr;
}

void mobilesync_plugin_init(struct module* module) {
  /* Filled by assignment: designated initialisers of C structs in C++ must
     follow declaration order and name every member before the last. */
  mobilesync_mail_storage_hooks.mail_user_created = mobilesync_mail_user_created;
  mail_storage_hooks_add(module, &mobilesync_mail_storage_hooks);
  mobilesync_notify_ctx = notify_register(&mobilesync_vfuncs);
}

void mobilesync_plugin_deinit(void) {
  mail_storage_hooks_remove(&mobilesync_mail_storage_hooks);
  notify_unregister(mobilesync_notify_ctx);
}

}  // extern "C"
