#include "harness/convergence.h"

#include <map>
#include <utility>
#include <vector>

namespace mobilesync::testing {

std::string CompareSides(MobilesyncSystem* sys, const std::string& user, const Expected& want) {
  std::vector<ImapMessage> inbox, trash;
  std::vector<DeviceMessage> device;
  if (!sys->ImapList(user, "INBOX", &inbox).ok()) return "IMAP INBOX unreadable";
  if (!sys->ImapList(user, "Trash", &trash).ok()) return "IMAP Trash unreadable";
  if (!sys->DeviceList(user, &device).ok()) return "device list unreadable";
  std::string problems;
  std::map<std::string, int> local_count;
  std::map<std::string, std::pair<bool, bool>> local;  // subject -> (seen, in trash)
  for (const auto& m : inbox) {
    ++local_count[m.subject];
    local[m.subject] = {m.seen(), false};
  }
  for (const auto& m : trash) {
    ++local_count[m.subject];
    local[m.subject] = {m.seen(), true};
  }
  for (const auto& [subject, n] : local_count) {
    if (n > 1) problems += "duplicate in Dovecot: " + subject + "\n";
  }
  for (const std::string& s : want.alive) {
    if (local_count.count(s) == 0) problems += "lost from Dovecot: " + s + "\n";
  }
  for (const std::string& s : want.destroyed) {
    if (local_count.count(s) != 0) problems += "destroyed but in Dovecot: " + s + "\n";
  }
  std::map<std::string, int> device_count;
  for (const auto& m : device) {
    if (++device_count[m.subject] == 2) problems += "duplicate on the device: " + m.subject + "\n";
    if (want.destroyed.count(m.subject) != 0) {
      problems += "destroyed but on the device: " + m.subject + "\n";
    }
    auto it = local.find(m.subject);
    if (it == local.end()) {
      problems += "on the device, not in Dovecot: " + m.subject + "\n";
      continue;
    }
    const bool dev_trash = m.state == "trash";
    const bool dev_read = m.state == "read";
    if (dev_trash != it->second.second) {
      problems += "trash state differs: " + m.subject + " device=" + m.state + "\n";
    } else if (!dev_trash && dev_read != it->second.first) {
      problems += "read state differs: " + m.subject + " device=" + m.state + "\n";
    }
  }
  auto w = sys->options().windows.find(user);
  if (w != sys->options().windows.end() && device.size() > w->second) {
    problems += "window over N: " + std::to_string(device.size()) + "\n";
  }
  return problems;
}

std::string SyncUntilConverged(MobilesyncSystem* sys, const std::string& user, const Expected& want,
                               milliseconds timeout) {
  std::string last = "never compared";
  WaitFor(
      [&] {
        (void)sys->SyncWait(user);
        (void)sys->SyncWait(user);
        last = CompareSides(sys, user, want);
        return last.empty();
      },
      timeout);
  return last;
}

size_t CountOf(const std::string& text, const std::string& needle, size_t offset) {
  size_t n = 0;
  for (size_t p = text.find(needle, offset); p != std::string::npos;
       p = text.find(needle, p + needle.size())) {
    ++n;
  }
  return n;
}

}  // namespace mobilesync::testing
