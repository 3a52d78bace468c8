// The device API: HTTP/JSON on loopback (libevent evhttp) that plays the
// mobile device's mail application against the reference server's store.
// docs/device-api.md documents every call; device_request.h parses them.
//
// Every request carries "Authorization: Bearer <token>"; devices_file says
// which user the token belongs to, and a device only ever sees its user's
// mailbox. Every change made here goes into that user's action list (the
// store records it in the same transaction as the change itself).
#ifndef MOBILESYNC_SYNC_SERVER_DEVICE_API_H_
#define MOBILESYNC_SYNC_SERVER_DEVICE_API_H_

#include <event2/http.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "sync_server/device_request.h"
#include "sync_server/provisioning.h"
#include "common/smtp_client.h"
#include "sync_server/store/message_store.h"

namespace mobilesync::server {

// How the device API reaches the agent side (implemented by the agent
// listener; a stub while no protocol handler is linked).
class SyncNotifier {
 public:
  virtual ~SyncNotifier() = default;
  // Asks the agent serving `user` to sync now over its live connection.
  // Returns false when no agent for `user` is connected.
  virtual bool NotifyConnectedAgent(const std::string& user, const char* reason) = 0;
  virtual bool AgentConnected(const std::string& user) const = 0;
};

struct DeviceApiOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;               // 0: any free port (tests)
  std::string trigger_secret;      // empty: no trigger e-mails
  std::string trigger_from = "mobilesync-server@localhost";
  int trigger_min_interval_s = 5;  // per user, so a device cannot mail-bomb
};

struct EvHttpDeleter {
  void operator()(evhttp* http) const { evhttp_free(http); }
};
using EvHttpPtr = std::unique_ptr<evhttp, EvHttpDeleter>;

class DeviceApi {
 public:
  // REQUIRES: every pointer outlives this object.
  DeviceApi(event_base* base, MessageStore* store, const DeviceDirectory* devices,
            SmtpSender* smtp, SyncNotifier* notifier, DeviceApiOptions options);
  ~DeviceApi();
  DeviceApi(const DeviceApi&) = delete;
  DeviceApi& operator=(const DeviceApi&) = delete;

  // Binds and starts serving.
  [[nodiscard]] Status Start();
  uint16_t port() const { return port_; }

 private:
  struct Call;
  static void OnRequest(evhttp_request* req, void* arg);
  void Handle(evhttp_request* req);
  void Dispatch(Call* call, const DeviceRequest& r);
  void DoSetState(Call* call, const DeviceRequest& r);
  void DoCompose(Call* call, const DeviceRequest& r);
  void DoSyncNow(Call* call);
  std::string AddressOf(const DeviceUser& u) const;

  event_base* base_;
  MessageStore* store_;
  const DeviceDirectory* devices_;
  SmtpSender* smtp_;
  SyncNotifier* notifier_;
  DeviceApiOptions options_;
  EvHttpPtr http_;
  uint16_t port_ = 0;
  std::map<std::string, int64_t> last_trigger_;  // user -> unix seconds
  // Set in the destructor: SMTP callbacks still queued must not reply.
  std::shared_ptr<bool> alive_;
};

}  // namespace mobilesync::server

#endif  // MOBILESYNC_SYNC_SERVER_DEVICE_API_H_
