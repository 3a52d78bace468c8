// ActionWindow: the bounded window of actions in flight (isync's
// max_in_progress gate plus tag matching).
//
// A mobile link has 50-300 ms of latency, so the engine keeps up to W actions
// unacknowledged at once. Every entry ends exactly once: completed by its
// ack, or the whole window fails when one entry has timed out too often.
// Two entries about the same message are never in flight together: an
// action is sent only after every earlier action on its message was acked,
// so a re-sent (or duplicated) frame can never overtake a later change of the
// same message and flip its state back.
#ifndef MOBILESYNC_SYNC_AGENT_ENGINE_ACTION_WINDOW_H_
#define MOBILESYNC_SYNC_AGENT_ENGINE_ACTION_WINDOW_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace mobilesync::engine {

struct FlightOptions {
  size_t max_in_flight = 16;   // W
  int64_t timeout_ms = 10000;  // per attempt
  int max_attempts = 4;        // sends of one entry before the session fails
};

class ActionWindow {
 public:
  struct Entry {
    uint64_t tag = 0;     // unique in this window's session
    std::string subject;  // the message it is about (exclusion key)
    size_t payload = 0;   // the caller's index of the action
    int64_t sent_at_ms = 0;
    int attempts = 0;
  };

  explicit ActionWindow(const FlightOptions& options) : options_(options) {}

  // Queues an action for sending, behind earlier ones.
  void Enqueue(std::string subject, size_t payload);

  // Moves queued entries into flight while fewer than W are in flight, in
  // queue order, skipping entries whose subject is blocked. Returns them: the
  // caller sends each with its tag.
  std::vector<Entry> TakeSendable(int64_t now_ms);

  // The ack for `tag` arrived. Returns the entry's payload, or nullopt for an
  // unknown tag (a duplicate or stale ack: ignore it).
  std::optional<size_t> Complete(uint64_t tag);

  // Entries whose attempt timed out, to be re-sent now (their attempt count
  // and send time are updated). Sets *exhausted when an entry has used up its
  // attempts: the caller fails the session; the entry stays unacknowledged.
  std::vector<Entry> TakeExpired(int64_t now_ms, bool* exhausted);

  // Every entry in flight, for a caller that re-sends them all (e.g. after
  // the peer asked for a re-send); their timers restart.
  std::vector<Entry> RestartAll(int64_t now_ms);

  bool idle() const { return queue_.empty() && in_flight_.empty(); }
  size_t in_flight() const { return in_flight_.size(); }
  size_t queued() const { return queue_.size(); }
  // When the oldest attempt in flight times out; nullopt when none is.
  std::optional<int64_t> next_deadline() const;

 private:
  FlightOptions options_;
  uint64_t next_tag_ = 1;
  std::deque<Entry> queue_;
  std::map<uint64_t, Entry> in_flight_;                 // by tag
  std::unordered_map<std::string, int> busy_subjects_;  // in flight, counts
};

}  // namespace mobilesync::engine

#endif  // MOBILESYNC_SYNC_AGENT_ENGINE_ACTION_WINDOW_H_
