#include "sync_agent/engine/update_sync.h"

#include <set>

namespace mobilesync::engine {

ReplayPlan PlanReplay(const std::vector<Action>& entries, const LocalView& local,
                      const IdMap& map, const WindowPolicy& window) {
  ReplayPlan plan;
  std::vector<LocalMessage> list = local.List();
  std::set<LocalId> chosen;
  for (size_t i : SelectWindow(list, window)) chosen.insert(list[i].id);

  for (const Action& entry : entries) {
    Action a = entry;
    switch (a.kind) {
      case ActionKind::kInsert: {
        const LocalMessage* m = local.Find(a.local);
        if (m == nullptr) {
          plan.skip.emplace_back(a.seq, "insert of a message that is gone");
        } else if (map.HasLocal(a.local)) {
          plan.skip.emplace_back(a.seq, "insert of a mapped message");
        } else if (chosen.count(a.local) == 0) {
          plan.skip.emplace_back(a.seq, "insert of a message outside the "
                                        "window");
        } else {
          a.meta = m->meta;
          plan.send.push_back(std::move(a));
        }
        break;
      }
      case ActionKind::kMarkRead:
      case ActionKind::kMarkUnread:
      case ActionKind::kMoveToTrash:
      case ActionKind::kRestoreFromTrash:
      case ActionKind::kDestroy: {
        const RemoteId* r = map.FindRemote(a.local);
        if (r == nullptr) {
          plan.skip.emplace_back(a.seq, std::string(ActionKindName(a.kind)) +
                                            " of a message outside the window");
        } else {
          a.remote = *r;
          plan.send.push_back(std::move(a));
        }
        break;
      }
      case ActionKind::kFiledAsSent:
        plan.send.push_back(std::move(a));
        break;
      case ActionKind::kUnmap:
      case ActionKind::kDeliver:
        plan.skip.emplace_back(a.seq, std::string(ActionKindName(a.kind)) +
                                          " is not a local action");
        break;
    }
  }
  return plan;
}

RemoteApply PlanRemoteApply(const Action& action, const LocalView& local,
                            const IdMap& map) {
  RemoteApply out;
  const LocalId* mapped = map.FindLocal(action.remote);
  auto noop = [&](const char* why) {
    out.step = RemoteApply::Step::kAckNow;
    out.outcome = AckOutcome::kNoop;
    out.note = std::string(ActionKindName(action.kind)) + " of remote " +
               std::to_string(action.remote) + ": " + why;
    return out;
  };
  switch (action.kind) {
    case ActionKind::kInsert: {
      if (mapped != nullptr) return out;  // already inserted and mapped
      const LocalMessage* m =
          local.FindUnmappedByKey(action.meta.match_key, map);
      if (m != nullptr) {
        out.step = RemoteApply::Step::kMapExisting;
        out.local = m->id;
        return out;
      }
      out.step = RemoteApply::Step::kAppend;
      return out;
    }
    case ActionKind::kMarkRead:
    case ActionKind::kMarkUnread:
    case ActionKind::kMoveToTrash:
    case ActionKind::kRestoreFromTrash: {
      if (mapped == nullptr) return noop("not mapped");
      const LocalMessage* m = local.Find(*mapped);
      if (m == nullptr) return noop("local message is gone");
      if (m->meta.state == action.meta.state) return out;
      out.step = RemoteApply::Step::kSetState;
      out.local = *mapped;
      out.state = action.meta.state;
      return out;
    }
    case ActionKind::kDestroy:
      if (mapped == nullptr) return noop("not mapped");
      // Even when the local copy is already gone, destroy again (a no-op for
      // the driver) so that the pairing goes only after the destroy.
      out.step = RemoteApply::Step::kDestroy;
      out.local = *mapped;
      return out;
    case ActionKind::kUnmap:
      if (mapped == nullptr) return noop("not mapped");
      out.step = RemoteApply::Step::kUnmap;
      out.local = *mapped;
      return out;
    case ActionKind::kDeliver:
      out.step = RemoteApply::Step::kSubmit;
      return out;
    case ActionKind::kFiledAsSent:
      out.step = RemoteApply::Step::kFileSent;
      return out;
  }
  return out;
}

}  // namespace mobilesync::engine
