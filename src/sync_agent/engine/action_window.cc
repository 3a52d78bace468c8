#include "sync_agent/engine/action_window.h"

#include <unordered_set>
#include <utility>

namespace mobilesync::engine {

void ActionWindow::Enqueue(std::string subject, size_t payload) {
  Entry e;
  e.subject = std::move(subject);
  e.payload = payload;
  queue_.push_back(std::move(e));
}

std::vector<ActionWindow::Entry> ActionWindow::TakeSendable(int64_t now_ms) {
  std::vector<Entry> out;
  // Subjects of entries we skipped: later entries of the same subject must
  // wait behind them to keep per-message order.
  std::unordered_set<std::string> skipped;
  for (auto it = queue_.begin();
       it != queue_.end() && in_flight_.size() < options_.max_in_flight;) {
    if (busy_subjects_.count(it->subject) != 0 ||
        skipped.count(it->subject) != 0) {
      skipped.insert(it->subject);
      ++it;
      continue;
    }
    Entry e = std::move(*it);
    it = queue_.erase(it);
    e.tag = next_tag_++;
    e.sent_at_ms = now_ms;
    e.attempts = 1;
    ++busy_subjects_[e.subject];
    in_flight_.emplace(e.tag, e);
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<size_t> ActionWindow::Complete(uint64_t tag) {
  auto it = in_flight_.find(tag);
  if (it == in_flight_.end()) return std::nullopt;
  size_t payload = it->second.payload;
  auto busy = busy_subjects_.find(it->second.subject);
  if (--busy->second == 0) busy_subjects_.erase(busy);
  in_flight_.erase(it);
  return payload;
}

std::vector<ActionWindow::Entry> ActionWindow::TakeExpired(int64_t now_ms,
                                                           bool* exhausted) {
  std::vector<Entry> out;
  *exhausted = false;
  for (auto& [tag, e] : in_flight_) {
    if (now_ms < e.sent_at_ms + options_.timeout_ms) continue;
    if (e.attempts >= options_.max_attempts) {
      *exhausted = true;
      continue;
    }
    ++e.attempts;
    e.sent_at_ms = now_ms;
    out.push_back(e);
  }
  return out;
}

std::vector<ActionWindow::Entry> ActionWindow::RestartAll(int64_t now_ms) {
  std::vector<Entry> out;
  for (auto& [tag, e] : in_flight_) {
    e.sent_at_ms = now_ms;
    out.push_back(e);
  }
  return out;
}

std::optional<int64_t> ActionWindow::next_deadline() const {
  std::optional<int64_t> best;
  for (const auto& [tag, e] : in_flight_) {
    int64_t d = e.sent_at_ms + options_.timeout_ms;
    if (!best || d < *best) best = d;
  }
  return best;
}

}  // namespace mobilesync::engine
