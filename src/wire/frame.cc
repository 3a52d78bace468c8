#include "wire/frame.h"

#include <array>
#include <cstdio>

namespace mobilesync::wire {

namespace {

constexpr std::array kTypeByIndex = {
#define MS_WIRE_ENTRY(name, value, msg, scope, body) FrameType::name,
    MS_WIRE_FRAME_TYPES(MS_WIRE_ENTRY)
#undef MS_WIRE_ENTRY
};

}  // namespace

FrameType Frame::type() const {
  // monostate is the last alternative: one past the table.
  return kTypeByIndex[message.index() < kTypeByIndex.size() ? message.index() : 0];
}

std::string DescribeFrame(const Frame& frame) {
  size_t meta = std::visit(
      [](const auto& m) -> size_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, std::monostate>) {
          return 0;
        } else {
          return m.ByteSizeLong();
        }
      },
      frame.message);
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%s session=%u meta=%zu body=%zu",
                std::string(FrameTypeName(frame.type())).c_str(), frame.session_id, meta,
                frame.body.size());
  return buf;
}

}  // namespace mobilesync::wire
