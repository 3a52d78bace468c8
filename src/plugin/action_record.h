// The action list's on-disk model: one Dovecot attribute per recorded change.
//
// Pure C++ (no Dovecot headers): the plugin formats records, the agent parses
// them. The full specification is docs/attributes.md; in short:
//
//   key   (server attribute, mailbox ""):
//         /private/vendor/vendor.mobilesync/action/<16 hex ts_us>-<8 hex pid>-<8 hex counter>
//   value v1 kind=<kind> box=<pct-encoded name> uidvalidity=<u32> uid=<u32>
//            guid=<pct-encoded> ts=<unix microseconds>
//            [src_box=.. src_uidvalidity=.. src_uid=..] [reason=..]
//
// Values are single lines of printable ASCII (never NUL), at most
// kMaxActionValueLength bytes, so they survive IMAP, doveadm and every dict.
#ifndef MOBILESYNC_PLUGIN_ACTION_RECORD_H_
#define MOBILESYNC_PLUGIN_ACTION_RECORD_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mobilesync::plugin {

// Attribute names as Dovecot's internal API sees them (type private, no
// "/private/" prefix). Server attributes live in INBOX under Dovecot's
// pvt/server/ prefix; IMAP `GETMETADATA ""` and `doveadm mailbox metadata
// ... ""` add and strip that prefix themselves.
inline constexpr std::string_view kVendorPrefix = "vendor/vendor.mobilesync/";
inline constexpr std::string_view kDovecotServerPrefix = "vendor/vendor.dovecot/pvt/server/";
inline constexpr std::string_view kActionDir = "action/";
inline constexpr std::string_view kMapDir = "map/";
inline constexpr std::string_view kGenerationKey = "generation";

// A value longer than this is Corruption (mailbox names are bounded by
// Dovecot to 1024 bytes, but we never need that much: a longer name is
// recorded truncated-as-resync instead, see FormatActionValue).
inline constexpr size_t kMaxActionValueLength = 2048;
// The sortable key suffix: 16 + 1 + 8 + 1 + 8.
inline constexpr size_t kActionKeyIdLength = 34;

enum class ActionKind {
  kInsert,   // new message in INBOX (delivered or appended)
  kRead,     // \Seen set on an INBOX message
  kUnread,   // \Seen cleared on an INBOX message
  kTrash,    // INBOX message moved to Trash (box/uid name the Trash copy)
  kRestore,  // Trash message moved back to INBOX (box/uid name the INBOX copy)
  kDestroy,  // message expunged from INBOX or Trash without a move
  kSent,     // message filed in the Sent mailbox
  kResync,   // INBOX/Trash/Sent renamed, deleted or its UIDVALIDITY changed
};

// The wire name of a kind ("insert", "read", ...).
std::string_view ActionKindName(ActionKind kind);
// Parses a kind name; false if unknown.
bool ParseActionKind(std::string_view name, ActionKind* out);

struct ActionRecord {
  ActionKind kind = ActionKind::kInsert;
  std::string box;            // mailbox name (UTF-8 vname); may be empty for resync
  uint32_t uidvalidity = 0;   // 0 only for resync
  uint32_t uid = 0;           // 0 only for resync
  std::string guid;           // message GUID; empty when Dovecot had none
  uint64_t ts_us = 0;         // when the change happened (unix microseconds)
  // Where the message came from (kTrash, kRestore): the source mailbox's ids.
  std::string src_box;
  uint32_t src_uidvalidity = 0;
  uint32_t src_uid = 0;
  // Why a resync was asked for ("rename", "delete", "uidvalidity"), free text.
  std::string reason;

  bool operator==(const ActionRecord& o) const;
};

// Appends the v1 line for `record` to `*out`. REQUIRES: the record is valid
// (see ValidateActionRecord); fields that would make the value longer than
// kMaxActionValueLength are a caller bug reported as InvalidArgument.
[[nodiscard]] Status FormatActionValue(const ActionRecord& record, std::string* out);

// Parses a value. Unknown fields are ignored (later v1 writers may add
// some); a missing required field, a duplicate field, a malformed number or
// escape, a NUL or control byte, or an over-long value is Corruption.
[[nodiscard]] Status ParseActionValue(std::string_view value, ActionRecord* out);

// Checks the per-kind required fields.
[[nodiscard]] Status ValidateActionRecord(const ActionRecord& record);

// The sortable id of an action key: lower-case hex, fixed width,
// "<ts_us:016x>-<pid:08x>-<counter:08x>". Lexicographic order is time order.
std::string FormatActionKeyId(uint64_t ts_us, uint32_t pid, uint32_t counter);
// Parses an id made by FormatActionKeyId (exactly, lower-case only).
[[nodiscard]] Status ParseActionKeyId(std::string_view id, uint64_t* ts_us, uint32_t* pid,
                                      uint32_t* counter);

// Percent-encoding used for box, guid and the poke line's user name: bytes
// outside 0x21..0x7e and '%' and '=' become %XX (upper-case hex).
std::string PercentEncode(std::string_view in);
// Decodes; false on a malformed escape or a decoded NUL.
bool PercentDecode(std::string_view in, std::string* out);

}  // namespace mobilesync::plugin

#endif  // MOBILESYNC_PLUGIN_ACTION_RECORD_H_
