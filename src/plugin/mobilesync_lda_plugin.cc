/* mobilesync delivery module (lib95_mobilesync_lda_plugin.so).
 *
 * Loaded only into lda and lmtp (mail_deliver_hook_set exists only there).
 * It recognises trigger messages: a message to an enabled user with a valid
 * X-Mobilesync-Trigger header (docs/attributes.md, "Trigger header") is
 * accepted without being stored and asks the agent for a sync. Anything
 * short of valid (no secret configured, bad MAC, another user, stale,
 * replayed, over the rate limit, malformed) is delivered as a normal message
 * and logged: a trigger is never a way to lose mail.
 *
 * Replay and rate state: one empty file per accepted nonce in
 * ~/.mobilesync/trigger-nonces/, created with O_EXCL (atomic across the
 * user's concurrent LMTP processes), removed after 2 * max_age + 60 s. The
 * files of the last minute are the rate counter. */
#include "mobilesync-config.h"

extern "C" {
#include "lib.h"
#include "mail-deliver.h"
#include "mail-storage.h"
#include "mail-user.h"
}

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "plugin/mobilesync_plugin.h"
#include "plugin/plugin_settings.h"
#include "plugin/trigger_header.h"

#ifndef MOBILESYNC_ABI_VERSION
#define MOBILESYNC_ABI_VERSION DOVECOT_ABI_VERSION
#endif

/* A secret file larger than this is a configuration mistake. */
#define MOBILESYNC_MAX_SECRET_SIZE 4096
#define MOBILESYNC_NONCE_DIR "/.mobilesync/trigger-nonces"

static deliver_mail_func_t* mobilesync_next_deliver_mail;

namespace {

using mobilesync::Status;

/* Reads the shared trigger secret. The file must be a regular file owned by
   root or by us, with no group-write and no other bits (0600, 0400 or 0640
   root:mail: LMTP reads it with the mail user's euid). Its content is never
   logged. */
Status ReadTriggerSecret(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::FromErrno("open(" + path + ")", errno);
  struct stat st;
  Status s;
  if (fstat(fd, &st) != 0) {
    s = Status::FromErrno("fstat(" + path + ")", errno);
  } else if (!S_ISREG(st.st_mode)) {
    s = Status::PermissionDenied(path, "trigger secret is not a regular file");
  } else if (st.st_uid != 0 && st.st_uid != geteuid()) {
    s = Status::PermissionDenied(path, "trigger secret must be owned by root or the mail user");
  } else if ((st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO)) != 0) {
    s = Status::PermissionDenied(path, "trigger secret has group-write or other bits; chmod 0600");
  } else if (st.st_size > MOBILESYNC_MAX_SECRET_SIZE) {
    s = Status::InvalidArgument(path, "trigger secret file is too large");
  }
  std::string data;
  if (s.ok()) {
    char buf[MOBILESYNC_MAX_SECRET_SIZE + 1];
    ssize_t n;
    do {
      n = read(fd, buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      s = Status::FromErrno("read(" + path + ")", errno);
    } else {
      data.assign(buf, static_cast<size_t>(n));
    }
  }
  (void)close(fd);
  if (!s.ok()) return s;
  if (!data.empty() && data.back() == '\n') data.pop_back();
  if (data.size() < mobilesync::plugin::kMinTriggerSecretLength) {
    return Status::InvalidArgument(path, "trigger secret is shorter than 32 bytes");
  }
  *out = std::move(data);
  return Status::OK();
}

std::string LowerCase(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

/* Counts nonce files younger than a minute and removes those older than
   `keep_s`. */
int ScanNonceDir(const std::string& dir, time_t now, time_t keep_s) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  int recent = 0;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string path = dir + "/" + e->d_name;
    struct stat st;
    if (stat(path.c_str(), &st) != 0) continue;
    if (now - st.st_mtime < 60) ++recent;
    /* Expired: its trigger's ts is out of the accepted window, so the
       staleness check alone now refuses a replay. */
    if (now - st.st_mtime > keep_s) (void)unlink(path.c_str());
  }
  closedir(d);
  return recent;
}

/* Records the nonce. Returns OK if it is new and within the rate limit;
   Aborted with a reason otherwise. */
Status ClaimNonce(struct mail_user* user, const mobilesync::plugin::PluginSettings& set,
                  const std::string& nonce) {
  const char* home = nullptr;
  if (mail_user_get_home(user, &home) <= 0 || home == nullptr || *home == '\0') {
    return Status::Aborted("user has no home directory to remember nonces in");
  }
  std::string base = std::string(home) + "/.mobilesync";
  std::string dir = std::string(home) + MOBILESYNC_NONCE_DIR;
  if ((mkdir(base.c_str(), 0700) != 0 && errno != EEXIST) ||
      (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)) {
    return Status::FromErrno("mkdir(" + dir + ")", errno);
  }
  time_t now = time(nullptr);
  int recent = ScanNonceDir(dir, now, 2 * static_cast<time_t>(set.trigger_max_age_s) + 60);
  if (recent >= static_cast<int>(set.trigger_rate_limit)) {
    return Status::Aborted("rate limit reached", std::to_string(recent) + " in the last minute");
  }
  std::string path = dir + "/" + LowerCase(nonce);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) return Status::Aborted("replayed (nonce already seen)");
  if (fd < 0) return Status::FromErrno("open(" + path + ")", errno);
  (void)close(fd);
  return Status::OK();
}

/* Returns true if the message is a valid trigger (then the caller swallows
   it). Logs why a trigger-looking message is delivered normally. */
bool HandleTrigger(struct mail_deliver_context* ctx) {
  struct mail_user* user = ctx->rcpt_user;
  const char* value = nullptr;
  if (mail_get_first_header(ctx->src_mail,
                            std::string(mobilesync::plugin::kTriggerHeaderName).c_str(),
                            &value) <= 0 ||
      value == nullptr) {
    return false;
  }
  mobilesync::plugin::PluginSettings set;
  Status s = mobilesync::plugin::LoadPluginSettings(
      [user](const char* name) { return mail_user_plugin_getenv(user, name); }, &set);
  if (!s.ok()) return false;  // the main module already logged it at login
  if (set.trigger_secret_file.empty()) {
    e_warning(ctx->event,
              "mobilesync: trigger message delivered as normal mail: "
              "mobilesync_trigger_secret_file is not set");
    return false;
  }
  mobilesync::plugin::TriggerHeader header;
  s = mobilesync::plugin::ParseTriggerHeader(value, &header);
  if (!s.ok()) {
    e_warning(ctx->event, "mobilesync: malformed trigger delivered as normal mail: %s",
              s.message().c_str());
    return false;
  }
  std::string secret;
  s = ReadTriggerSecret(set.trigger_secret_file, &secret);
  if (!s.ok()) {
    e_error(ctx->event, "mobilesync: trigger delivered as normal mail: %s",
            s.ToString().c_str());
    return false;
  }
  mobilesync::plugin::TriggerVerdict verdict = mobilesync::plugin::VerifyTrigger(
      header, secret, user->username, static_cast<uint64_t>(time(nullptr)),
      set.trigger_max_age_s);
  /* Wipe the secret copy: it should not outlive its use in this process. */
  std::fill(secret.begin(), secret.end(), '\0');
  if (verdict != mobilesync::plugin::TriggerVerdict::kValid) {
    e_warning(ctx->event, "mobilesync: trigger rejected (%s), delivered as normal mail",
              std::string(mobilesync::plugin::TriggerVerdictName(verdict)).c_str());
    return false;
  }
  s = ClaimNonce(user, set, header.nonce);
  if (!s.ok()) {
    e_warning(ctx->event, "mobilesync: trigger rejected (%s), delivered as normal mail",
              s.message().c_str());
    return false;
  }
  mobilesync_user_request_sync(user);
  e_info(ctx->event, "mobilesync: trigger accepted, sync requested");
  return true;
}

}  // namespace

/* Returns >0 when the message was handled (not stored), 0 to let Dovecot
   deliver it normally, <0 on error. */
static int mobilesync_lda_deliver_mail(struct mail_deliver_context* ctx,
                                       struct mail_storage** storage_r) {
  try {
    if (mobilesync_user_enabled(ctx->rcpt_user) && HandleTrigger(ctx)) return 1;
  } catch (const std::bad_alloc&) {
    i_fatal_status(FATAL_OUTOFMEM, "mobilesync: out of memory");
  } catch (...) {
    e_error(ctx->event, "mobilesync: internal error checking for a trigger; delivering");
  }
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
