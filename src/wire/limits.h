// Hard limits of the sync protocol (docs/protocol.md, section 8).
//
// A peer that exceeds a hard limit is broken or hostile: the receiver sends
// ERROR(LIMIT_EXCEEDED or PROTOCOL) and closes the connection. Soft,
// per-deployment limits (Welcome.max_message_bytes, store quotas) are below
// these and are answered with a NACK or FETCH_RESULT_TOO_LARGE instead.
#ifndef MOBILESYNC_WIRE_LIMITS_H_
#define MOBILESYNC_WIRE_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace mobilesync::wire {

inline constexpr uint32_t kProtocolVersion = 1;

// Frame header: meta length, body length, session id (u32 big-endian each),
// type, 3 reserved zero bytes.
inline constexpr size_t kFrameHeaderBytes = 16;

// Largest protobuf part of a frame. A LIST of kMaxListEntries entries at the
// string limits below stays under it (about 4096 * 1.3 KiB = 5.3 MiB).
inline constexpr uint32_t kMaxMetaBytes = 8u << 20;
// Largest meta while the handshake is not done: a peer that has not
// authenticated cannot make us buffer more than this.
inline constexpr uint32_t kMaxHandshakeMetaBytes = 64u << 10;
// Largest message (body trailer). Mail systems commonly cap messages at
// 25-50 MB including base64; 64 MiB leaves room and bounds per-frame memory.
inline constexpr uint32_t kMaxBodyBytes = 64u << 20;

// Strings (bytes of UTF-8).
inline constexpr size_t kMaxUserBytes = 255;
inline constexpr size_t kMaxRemoteIdBytes = 128;
inline constexpr size_t kMaxInsertKeyBytes = 256;
inline constexpr size_t kMaxGuidBytes = 128;
inline constexpr size_t kMaxMessageIdBytes = 998;  // RFC 5322 line length
inline constexpr size_t kMaxNameBytes = 255;       // agent_name, server_name
inline constexpr size_t kMaxTokenBytes = 1024;
inline constexpr size_t kMaxCapabilityBytes = 64;
inline constexpr size_t kMaxCapabilities = 32;
inline constexpr size_t kMaxDetailBytes = 1024;    // Error, Nack, EndSession

// Lists and windows.
inline constexpr uint32_t kMaxListEntries = 4096;  // per LIST frame
inline constexpr uint32_t kMaxRemoteWindow = 1000000;  // N, messages
inline constexpr uint32_t kMaxWindow = 256;        // actions in flight
inline constexpr uint32_t kDefaultWindow = 128;
inline constexpr uint32_t kMaxPingIntervalSeconds = 3600;
// Sessions open at once on one connection; more get ERROR(LIMIT_EXCEEDED)
// on that session id and the agent queues them.
inline constexpr uint32_t kMaxOpenSessions = 1024;

}  // namespace mobilesync::wire

#endif  // MOBILESYNC_WIRE_LIMITS_H_
