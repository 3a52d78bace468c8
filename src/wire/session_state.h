// Per-session order checker (docs/protocol.md, section 6).
//
// Both peers run one SessionState per open session and pass it every frame of
// that session, the ones they send (to catch our own bugs before they reach
// the wire) and the ones they receive. It knows the phases of a sync session
//
//   IDLE -BEGIN_SESSION-> OPENING -BEGIN_SESSION_REPLY-> AGENT_PHASE
//   AGENT_PHASE -SWAP-> SERVER_PHASE -SYNC_COMPLETE-> PULL_PHASE   (update)
//   AGENT_PHASE | PULL_PHASE -END_SESSION(agent)-> ENDING -END_SESSION-> CLOSED
//   any -ERROR-> CLOSED
//
// and, per direction, the action sequence numbers, the window of actions in
// flight and which of them an ACK or NACK may cover. Frames must already be
// valid (message_validator.h); this class checks order only.
#ifndef MOBILESYNC_WIRE_SESSION_STATE_H_
#define MOBILESYNC_WIRE_SESSION_STATE_H_

#include <cstdint>
#include <deque>
#include <set>
#include <string_view>

#include "common/status.h"
#include "wire/frame.h"
#include "wire/limits.h"

namespace mobilesync::wire {

enum class Direction : uint8_t { kAgentToServer, kServerToAgent };

class SessionState {
 public:
  enum class Phase : uint8_t {
    kIdle,
    kOpening,
    kAgentPhase,
    kServerPhase,
    kPullPhase,
    kEnding,
    kClosed,
  };

  // What the receiver of an accepted frame does with it.
  enum class Verdict : uint8_t {
    kApply,      // new: apply it (and, for an ACTION, acknowledge it)
    kDuplicate,  // an ACTION or ACK/NACK seen before: re-ack, never re-apply
    kIgnore,     // in flight when the agent aborted the session: drop it
  };

  // `window`: the W agreed in the handshake (1..kMaxWindow).
  explicit SessionState(uint32_t window = kDefaultWindow);

  // Checks that `frame` may come next, travelling in `dir`, and advances the
  // state. On failure (InvalidArgument naming the rule) the state is
  // unchanged; the peer that broke the rule gets ERROR(PROTOCOL).
  [[nodiscard]] Status Observe(Direction dir, const Frame& frame, Verdict* verdict);

  Phase phase() const { return phase_; }
  pb::SyncKind kind() const { return kind_; }
  // Actions sent in `dir` and not yet acknowledged.
  uint64_t in_flight(Direction dir) const {
    const Stream& s = stream(dir);
    return s.highest_seq - s.acked_through;
  }

  static std::string_view PhaseName(Phase phase);

 private:
  // The actions travelling in one direction.
  struct Stream {
    uint64_t highest_seq = 0;    // last new seq accepted
    uint64_t acked_through = 0;  // every seq <= this is acked or nacked
    std::deque<pb::ActionKind> in_flight;  // kinds of acked_through+1..highest
  };

  Stream& stream(Direction dir) { return streams_[static_cast<int>(dir)]; }
  const Stream& stream(Direction dir) const { return streams_[static_cast<int>(dir)]; }

  Status OnAction(Direction dir, const pb::Action& m, Verdict* verdict);
  Status OnAck(Direction dir, const pb::Ack& m, Verdict* verdict);
  Status OnNack(Direction dir, const pb::Nack& m, Verdict* verdict);
  Status OnEndSession(Direction dir, const pb::EndSession& m);
  Status Violation(const Frame& frame, std::string_view rule) const;
  Status Violation(FrameType type, std::string_view rule) const;

  uint32_t window_;
  Phase phase_ = Phase::kIdle;
  pb::SyncKind kind_ = pb::SYNC_KIND_UNSPECIFIED;
  bool agent_ended_ok_ = false;
  bool list_outstanding_ = false;
  std::set<uint32_t> fetches_;  // outstanding FETCH request ids
  Stream streams_[2];
};

}  // namespace mobilesync::wire

#endif  // MOBILESYNC_WIRE_SESSION_STATE_H_
