#include "harness/system_fixture.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <sstream>

#include "harness/metadata.h"

namespace mobilesync::testing {
namespace {

std::string Bin(const std::string& rel) {
  return BuildDir() + "/src/" + rel;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string Tail(const std::string& text, size_t bytes) {
  if (text.size() <= bytes) return text;
  return "[...]\n" + text.substr(text.size() - bytes);
}

// Case-insensitive header value from a header block ("Name: value" lines).
std::string HeaderValue(const std::string& headers, const std::string& name) {
  std::istringstream in(headers);
  std::string line;
  std::string lname = name + ":";
  std::transform(lname.begin(), lname.end(), lname.begin(), ::tolower);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string low = line.substr(0, lname.size());
    std::transform(low.begin(), low.end(), low.begin(), ::tolower);
    if (low == lname) {
      std::string v = line.substr(lname.size());
      size_t b = v.find_first_not_of(" \t");
      return b == std::string::npos ? "" : v.substr(b);
    }
  }
  return "";
}

bool MailGroup(gid_t* gid) {
  if (geteuid() != 0) {
    *gid = getegid();
    return true;
  }
  struct passwd* pw = getpwnam("mail");
  if (pw == nullptr) return false;
  *gid = pw->pw_gid;
  return true;
}

}  // namespace

std::string DeviceToken(const std::string& user) {
  return user + "-e2e-device-token-0123456789";
}

MobilesyncSystem::~MobilesyncSystem() {
  if (agent_.running()) agent_.Stop(milliseconds(5000));
  if (server_.running()) server_.Stop(milliseconds(5000));
  if (mta_.running()) mta_.Stop(milliseconds(5000));
  dovecot_.Stop();
}

Status MobilesyncSystem::Start(const SystemOptions& options) {
  options_ = options;
  server_port_ = FreeLoopbackPort();
  api_port_ = FreeLoopbackPort();
  smtp_port_ = FreeLoopbackPort();
  if (!server_port_ || !api_port_ || !smtp_port_) return Status::IOError("no free port");
  Status s = WriteFiles();
  if (!s.ok()) return s;

  DovecotOptions d;
  d.mail_debug = options_.mail_debug;
  for (const auto& u : options_.users) {
    auto extra = options_.user_fields.find(u);
    d.users.push_back({u, u + "-pw",
                       "userdb_mobilesync_enabled=yes" +
                           (extra == options_.user_fields.end() ? "" : " " + extra->second)});
  }
  d.plugin_settings = "mobilesync_agent_socket = " + control_socket() + "\n" +
                      "mobilesync_trigger_secret_file = " + tmp_.Sub("trigger.secret") + "\n" +
                      options_.dovecot_plugin_settings;
  d.extra_config = options_.dovecot_extra_config;
  if (!options_.attribute_dict.empty()) d.attribute_dict = options_.attribute_dict;
  s = dovecot_.Start(d);
  if (!s.ok()) return s;
  s = StartMta();
  if (s.ok()) s = StartServer();
  if (s.ok()) s = WriteAgentConfig();
  if (!s.ok()) return s;
  started_ = true;
  if (!options_.start_agent) return Status::OK();
  s = StartAgent();
  if (!s.ok()) return s;
  if (options_.enable_users) {
    for (const auto& u : options_.users) {
      s = Enable(u);
      if (!s.ok()) return s;
    }
  }
  return Status::OK();
}

Status MobilesyncSystem::WriteFiles() {
  Status s = ca_.Create(tmp_.path(), "e2e");
  if (s.ok()) s = ca_.Issue(CertSpec(), tmp_.path(), "server", &server_cert_);
  if (!s.ok()) return s;
  // The trigger secret is read by the server and the agent (this user) and
  // by Dovecot's LMTP processes (the mail user): 0640 <us>:<mail group>.
  gid_t mail_gid;
  if (!MailGroup(&mail_gid)) return Status::NotFound("system user 'mail' is missing");
  const std::string secret = tmp_.Sub("trigger.secret");
  s = WriteFile(secret, kSystemTriggerSecret + "\n", 0640);
  if (s.ok() && chown(secret.c_str(), geteuid(), mail_gid) != 0) {
    return Status::FromErrno("chown " + secret, errno);
  }
  // The server keeps its own copy, 0600 (it lives on another host).
  if (s.ok()) s = WriteFile(tmp_.Sub("server-trigger.secret"), kSystemTriggerSecret + "\n", 0600);
  std::string users;
  std::string devices;
  for (const auto& u : options_.users) {
    users += (users.empty() ? "" : ",") + u;
    auto w = options_.windows.find(u);
    devices += u + "  token_sha256=" + Sha256Hex(DeviceToken(u)) + "  address=" + u + "@" +
               kLocalDomain +
               (w == options_.windows.end() ? "" : "  window=" + std::to_string(w->second)) + "\n";
    if (s.ok()) s = WriteFile(token_file(u), DeviceToken(u) + "\n", 0600);
  }
  if (s.ok()) {
    s = WriteFile(tmp_.Sub("agents"),
                  "# the organisation's agent: deployment token, serves these users\n"
                  "corp  token_sha256=" +
                      Sha256Hex(kSystemAgentToken) + "  users=" + users + "\n",
                  0600);
  }
  if (s.ok()) s = WriteFile(tmp_.Sub("devices"), devices, 0600);
  if (s.ok()) s = WriteFile(tmp_.Sub("agent.token"), kSystemAgentToken + "\n", 0600);
  if (s.ok()) {
    s = WriteFile(tmp_.Sub("master.pw"), DovecotOptions().master_password + "\n", 0600);
  }
  if (s.ok()) s = MakeDirs(tmp_.Sub("agent-state"), 0700);
  if (s.ok()) s = MakeDirs(tmp_.Sub("mta"), 0755);
  if (!s.ok()) return s;
  const std::string conf =
      "listen = 127.0.0.1:" + std::to_string(server_port_) + "\n" +
      "tls_cert_file = " + server_cert_.cert + "\n" + "tls_key_file = " + server_cert_.key + "\n" +
      "agents_file = " + tmp_.Sub("agents") + "\n" + "database = " + tmp_.Sub("server.db") + "\n" +
      "default_window = 10\n" + "device_api_listen = " + api() + "\n" +
      "devices_file = " + tmp_.Sub("devices") + "\n" +
      "smtp = 127.0.0.1:" + std::to_string(smtp_port_) + "\n" +
      "trigger_secret_file = " + tmp_.Sub("server-trigger.secret") + "\n" +
      "trigger_from = mobilesync@remote.example\n" + "log_level = " + options_.log_level + "\n";
  return WriteFile(server_config(), conf, 0644);
}

Status MobilesyncSystem::StartMta() {
  Status s = mta_.Start({"/usr/bin/python3", SourceDir() + "/scripts/ms-mta.py", "smtpd",
                         "--listen", "127.0.0.1:" + std::to_string(smtp_port_), "--lmtp",
                         "127.0.0.1:" + std::to_string(dovecot_.lmtp_port()), "--local-domain",
                         kLocalDomain, "--spool", tmp_.Sub("mta")},
                        tmp_.Sub("mta.log"));
  if (!s.ok()) return s;
  if (!WaitFor([&] {
        if (!mta_.running()) return true;
        LineSocket probe;
        std::string greeting;
        return probe.Connect("127.0.0.1", smtp_port_, 1000).ok() &&
               probe.ReadLine(&greeting).ok() && greeting.rfind("220", 0) == 0;
      }) ||
      !mta_.running()) {
    return Status::Unavailable("ms-mta smtpd did not start", ReadLog("mta.log"));
  }
  return Status::OK();
}

Status MobilesyncSystem::StartServer() {
  const size_t offset = ServerLog().size();
  Status s = server_.Start({Bin("sync_server/mobilesync-server"), "-c", server_config(), "-F"},
                           tmp_.Sub("server.log"));
  if (!s.ok()) return s;
  // Both listeners are bound before the server logs "started": below info
  // level that line is not logged, so the device API port is probed instead
  // (a connection closed without a request is not logged either).
  const bool verbose = LogsReadiness();
  if (!WaitFor(
          [&] {
            if (!server_.running()) return true;
            if (verbose) return ServerLog().find("started (listen", offset) != std::string::npos;
            LineSocket probe;
            return probe.Connect("127.0.0.1", api_port_, 1000).ok();
          },
          options_.start_timeout)) {
    return Status::Timeout("server did not start", Tail(ServerLog(), 4000));
  }
  if (!server_.running()) return Status::Unavailable("server exited", Tail(ServerLog(), 4000));
  return Status::OK();
}

Status MobilesyncSystem::WriteAgentConfig() {
  // The sendmail program the agent submits with: ms-mta.py, told where
  // Dovecot's LMTP and the spool are (the agent may not pass our env on).
  const std::string wrapper = tmp_.Sub("sendmail");
  Status s =
      WriteFile(wrapper,
                "#!/bin/sh\n"
                "MS_MTA_LMTP=127.0.0.1:" +
                    std::to_string(dovecot_.lmtp_port()) + " MS_MTA_SPOOL=" + tmp_.Sub("mta") +
                    " MS_MTA_LOCAL_DOMAIN=" + kLocalDomain + " exec /usr/bin/python3 " +
                    SourceDir() + "/scripts/ms-mta.py sendmail \"$@\"\n",
                0755);
  if (!s.ok()) return s;
  const uint16_t dial = options_.agent_route ? options_.agent_route(server_port_) : server_port_;
  if (dial == 0) return Status::IOError("agent_route gave no port");
  std::string base =
      "server = 127.0.0.1:" + std::to_string(dial) + "\n" + "server_name = localhost\n" +
      "tls_ca_file = " + ca_.ca_paths().cert + "\n" +
      "deployment_token_file = " + tmp_.Sub("agent.token") + "\n" +
      "connect_timeout = " + options_.connect_timeout + "\n" +
      "keepalive_interval = " + options_.keepalive_interval + "\n" +
      "reconnect_min = " + options_.reconnect_min + "\n" +
      "reconnect_max = " + options_.reconnect_max + "\n" +
      "imap = 127.0.0.1:" + std::to_string(dovecot_.imap_port()) + "\n" +
      "master_user = " + dovecot_.options().master_user + "\n" +
      "master_password_file = " + tmp_.Sub("master.pw") + "\n" +
      "trigger_secret_file = " + tmp_.Sub("trigger.secret") + "\n" +
      "imap_timeout = " + options_.imap_timeout + "\n" +
      "control_socket = " + control_socket() + "\n" +
      // The plugin runs as the mail user: it must be let in.
      (geteuid() == 0 ? "control_group = mail\n" : "") + "state_dir = " + tmp_.Sub("agent-state") +
      "\n" + "sync_interval = " + options_.sync_interval + "\n" +
      "coalesce_delay = " + options_.coalesce_delay + "\n" + "retry_min = 200ms\n" +
      "retry_max = 2s\n" + "max_sessions = " + std::to_string(options_.max_sessions) + "\n" + "shutdown_timeout = 5s\n" +
      "doveadm_config = " + dovecot_.config_path() + "\n" + "log_level = " + options_.log_level +
      "\n";
  // sendmail_path arrives with the sync engine (MailSubmitter); an agent
  // without it refuses the unknown key, so ask the agent itself.
  const std::string with_sendmail = base + "sendmail_path = " + wrapper + "\n";
  s = WriteFile(agent_config(), with_sendmail, 0644);
  if (!s.ok()) return s;
  CommandResult r;
  s = RunCommand({Bin("sync_agent/mobilesync-agent"), "-c", agent_config(), "--check-config"}, &r,
                 milliseconds(30000));
  if (!s.ok()) return s;
  sendmail_configured_ = r.exit_code == 0;
  if (r.exit_code != 0) {
    if (r.output.find("sendmail_path") == std::string::npos) {
      return Status::InvalidArgument("agent refused the generated configuration", r.output);
    }
    s = WriteFile(agent_config(), base, 0644);
  }
  return s;
}

Status MobilesyncSystem::StartAgent() {
  const size_t offset = AgentLog().size();
  Status s = agent_.Start({Bin("sync_agent/mobilesync-agent"), "-c", agent_config(), "-F"},
                          tmp_.Sub("agent.log"));
  if (!s.ok()) return s;
  if (!LogsReadiness()) {
    // Below info level neither "started" nor the handshake is logged: ask
    // the agent (its control socket answers once it runs; the connection
    // state is "connected" after the server's WELCOME).
    if (!WaitFor([&] { return !agent_.running() || AgentConnected(); },
                 options_.start_timeout + milliseconds(20000))) {
      return Status::Timeout("agent did not connect to the server",
                             Tail(AgentLog(), 3000) + Tail(ServerLog(), 3000));
    }
    if (!agent_.running()) return Status::Unavailable("agent exited", Tail(AgentLog(), 4000));
    return Status::OK();
  }
  if (!WaitFor(
          [&] {
            return !agent_.running() ||
                   AgentLog().find("started (server", offset) != std::string::npos;
          },
          options_.start_timeout)) {
    return Status::Timeout("agent did not start", Tail(AgentLog(), 4000));
  }
  if (!agent_.running()) return Status::Unavailable("agent exited", Tail(AgentLog(), 4000));
  return WaitForHandshake(offset);
}

Status MobilesyncSystem::WaitForHandshake(size_t offset, milliseconds timeout) {
  if (WaitFor(
          [&] { return AgentLog().find("remote: handshake done", offset) != std::string::npos; },
          timeout)) {
    return Status::OK();
  }
  return Status::Timeout("agent did not complete the handshake with the server",
                         Tail(AgentLog(), 3000) + Tail(ServerLog(), 3000));
}

void MobilesyncSystem::KillAgent() {
  agent_.Signal(SIGKILL);
  agent_.Wait(milliseconds(10000));
}
Status MobilesyncSystem::RestartAgent() {
  if (agent_.running()) KillAgent();
  return StartAgent();
}
int MobilesyncSystem::StopAgent() {
  return agent_.Stop(milliseconds(15000));
}

void MobilesyncSystem::KillServer() {
  server_.Signal(SIGKILL);
  server_.Wait(milliseconds(10000));
}
int MobilesyncSystem::StopServer() {
  return server_.Stop(milliseconds(15000));
}
Status MobilesyncSystem::RestartServer() {
  if (server_.running()) KillServer();
  return StartServer();
}

void MobilesyncSystem::KillDovecot() {
  dovecot_.Kill();
}
Status MobilesyncSystem::RestartDovecot() {
  return dovecot_.Restart();
}

void MobilesyncSystem::KillMta() {
  mta_.Signal(SIGKILL);
  mta_.Wait(milliseconds(10000));
}
Status MobilesyncSystem::RestartMta() {
  if (mta_.running()) KillMta();
  return StartMta();
}

// ---------------------------------------------------------------- agent

CommandResult MobilesyncSystem::Ctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {Bin("sync_agent/mobilesyncctl"), "-c", agent_config()};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r;
  Status s = RunCommand(argv, &r, milliseconds(60000));
  if (!s.ok()) r.output += "\n[RunCommand: " + s.ToString() + "]";
  return r;
}

Status MobilesyncSystem::Enable(const std::string& user) {
  CommandResult r = Ctl({"enable", user});
  if (r.exit_code != 0) return Status::IOError("mobilesyncctl enable " + user, r.output);
  return Status::OK();
}

Status MobilesyncSystem::Disable(const std::string& user) {
  CommandResult r = Ctl({"disable", user});
  if (r.exit_code != 0) return Status::IOError("mobilesyncctl disable " + user, r.output);
  return Status::OK();
}

Status MobilesyncSystem::SyncWait(const std::string& user) {
  CommandResult r = Ctl({"sync", user, "--wait"});
  if (r.exit_code != 0 || r.output.find("user " + user + ": ok") == std::string::npos) {
    return Status::IOError("mobilesyncctl sync " + user + " --wait", r.output);
  }
  return Status::OK();
}

bool MobilesyncSystem::AgentConnected() {
  CommandResult r = Ctl({"--json", "status"});
  if (r.exit_code != 0) return false;
  nlohmann::json j = nlohmann::json::parse(r.output, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  return j.value("/connection/state"_json_pointer, std::string()) == "connected";
}

// --------------------------------------------------------------- device

DeviceResult MobilesyncSystem::Device(const std::string& user, const std::vector<std::string>& args,
                                      const std::string& stdin_data) {
  std::vector<std::string> argv = {Bin("sync_server/mobilesync-device"),
                                   "--api",
                                   api(),
                                   "--token-file",
                                   token_file(user),
                                   "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r;
  DeviceResult out;
  Status s = RunCommand(argv, &r, milliseconds(30000), stdin_data);
  out.exit_code = r.exit_code;
  out.output = r.output;
  if (!s.ok()) out.output += "\n[RunCommand: " + s.ToString() + "]";
  out.json = nlohmann::json::parse(r.output, nullptr, false);
  return out;
}

Status MobilesyncSystem::DeviceList(const std::string& user, std::vector<DeviceMessage>* out) {
  out->clear();
  DeviceResult r = Device(user, {"list"});
  if (r.exit_code != 0 || r.json.is_discarded() || !r.json.is_object() ||
      !r.json.contains("messages") || !r.json["messages"].is_array()) {
    return Status::IOError("mobilesync-device list", r.output);
  }
  for (const auto& m : r.json["messages"]) {
    if (!m.is_object()) continue;
    DeviceMessage d;
    if (m.contains("id") && m["id"].is_number_unsigned()) d.id = m["id"].get<uint64_t>();
    d.subject = m.value("subject", std::string());
    d.state = m.value("state", std::string());
    d.message_id = m.value("message_id", std::string());
    d.from = m.value("from", std::string());
    if (m.contains("date") && m["date"].is_number()) d.date = m["date"].get<int64_t>();
    out->push_back(d);
  }
  return Status::OK();
}

bool MobilesyncSystem::DeviceFind(const std::string& user, const std::string& subject,
                                  DeviceMessage* out) {
  std::vector<DeviceMessage> list;
  if (!DeviceList(user, &list).ok()) return false;
  for (const auto& m : list) {
    if (m.subject == subject) {
      if (out) *out = m;
      return true;
    }
  }
  return false;
}

Status MobilesyncSystem::DeviceInject(const std::string& user, const std::string& subject,
                                      int64_t date, uint64_t* id) {
  nlohmann::json body{
      {"message", "From: someone@elsewhere.test\r\nTo: " + user + "@" + kLocalDomain +
                      "\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject +
                      "@elsewhere.test>\r\n\r\nBody of " + subject + "\r\n"},
      {"date", date}};
  const std::string payload = body.dump();
  LineSocket sock;
  Status s = sock.Connect("127.0.0.1", api_port_);
  if (s.ok()) {
    s = sock.Send(
        "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Authorization: Bearer " +
        DeviceToken(user) + "\r\nContent-Type: application/json\r\nContent-Length: " +
        std::to_string(payload.size()) + "\r\n\r\n" + payload);
  }
  std::string status_line, line, response;
  if (s.ok()) s = sock.ReadLine(&status_line);
  // Headers, then the body up to EOF (Connection: close).
  while (s.ok()) {
    Status r = sock.ReadLine(&line);
    if (!r.ok()) break;
    response += line + "\n";
  }
  if (!s.ok()) return s;
  if (status_line.find(" 201 ") == std::string::npos) {
    return Status::IOError("POST /v1/messages: " + status_line, response);
  }
  size_t brace = response.find('{');
  nlohmann::json j = nlohmann::json::parse(brace == std::string::npos ? "" : response.substr(brace),
                                           nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_number_unsigned()) {
    return Status::Corruption("no id in the answer", response);
  }
  *id = j["id"].get<uint64_t>();
  return Status::OK();
}

// -------------------------------------------------------------- Dovecot

Status MobilesyncSystem::Deliver(const std::string& user, const std::string& subject,
                                 const std::string& body, const std::string& extra_headers) {
  static int counter = 0;
  const std::string msg = "From: Sender <sender@elsewhere.test>\r\nTo: " + user + "@" +
                          kLocalDomain + "\r\nSubject: " + subject + "\r\nMessage-ID: <e2e-" +
                          std::to_string(getpid()) + "-" + std::to_string(++counter) +
                          "@elsewhere.test>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
                          extra_headers + "\r\n" + body;
  return dovecot_.Deliver(user, msg);
}

Status MobilesyncSystem::ImapLogin(const std::string& user, ImapTestClient* client) {
  return dovecot_.Login(user, client);
}

Status MobilesyncSystem::ImapList(const std::string& user, const std::string& mailbox,
                                  std::vector<ImapMessage>* out) {
  out->clear();
  ImapTestClient imap;
  Status s = ImapLogin(user, &imap);
  if (!s.ok()) return s;
  ImapResponse r;
  s = imap.Command("EXAMINE " + ImapQuote(mailbox), &r);
  if (s.ok() && !r.ok()) s = Status::IOError("EXAMINE " + mailbox, r.tagged);
  if (s.ok())
    s = imap.Command("UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])", &r);
  if (s.ok() && !r.ok()) s = Status::IOError("UID FETCH", r.tagged);
  imap.Logout();
  if (!s.ok()) return s;
  for (const auto& line : r.untagged) {
    if (line.find(" FETCH ") == std::string::npos) continue;
    ImapMessage m;
    const std::string head = line.substr(0, line.find('\n'));
    size_t p = head.find("UID ");
    if (p != std::string::npos)
      m.uid = static_cast<uint32_t>(strtoul(head.c_str() + p + 4, nullptr, 10));
    p = head.find("FLAGS (");
    if (p != std::string::npos) {
      size_t end = head.find(')', p);
      if (end != std::string::npos) m.flags = head.substr(p + 7, end - p - 7);
    }
    size_t nl = line.find('\n');
    if (nl != std::string::npos) {
      std::string headers = line.substr(nl + 1);
      m.subject = HeaderValue(headers, "Subject");
      m.message_id = HeaderValue(headers, "Message-ID");
    }
    out->push_back(m);
  }
  return Status::OK();
}

bool MobilesyncSystem::ImapFind(const std::string& user, const std::string& mailbox,
                                const std::string& subject, ImapMessage* out) {
  std::vector<ImapMessage> list;
  if (!ImapList(user, mailbox, &list).ok()) return false;
  for (const auto& m : list) {
    if (m.subject == subject) {
      if (out) *out = m;
      return true;
    }
  }
  return false;
}

namespace {
Status Run(ImapTestClient* imap, const std::string& command) {
  ImapResponse r;
  Status s = imap->Command(command, &r);
  if (s.ok() && !r.ok()) s = Status::IOError(command, r.tagged);
  return s;
}
}  // namespace

Status MobilesyncSystem::ImapSetSeen(const std::string& user, const std::string& mailbox,
                                     uint32_t uid, bool seen) {
  ImapTestClient imap;
  Status s = ImapLogin(user, &imap);
  if (s.ok()) s = Run(&imap, "SELECT " + ImapQuote(mailbox));
  if (s.ok()) {
    s = Run(&imap,
            "UID STORE " + std::to_string(uid) + (seen ? " +" : " -") + "FLAGS.SILENT (\\Seen)");
  }
  imap.Logout();
  return s;
}

Status MobilesyncSystem::ImapMove(const std::string& user, const std::string& from, uint32_t uid,
                                  const std::string& to) {
  ImapTestClient imap;
  Status s = ImapLogin(user, &imap);
  if (s.ok()) s = Run(&imap, "SELECT " + ImapQuote(from));
  if (s.ok()) s = Run(&imap, "UID MOVE " + std::to_string(uid) + " " + ImapQuote(to));
  imap.Logout();
  return s;
}

Status MobilesyncSystem::ImapExpunge(const std::string& user, const std::string& mailbox,
                                     uint32_t uid) {
  ImapTestClient imap;
  Status s = ImapLogin(user, &imap);
  if (s.ok()) s = Run(&imap, "SELECT " + ImapQuote(mailbox));
  if (s.ok()) s = Run(&imap, "UID STORE " + std::to_string(uid) + " +FLAGS.SILENT (\\Deleted)");
  if (s.ok()) s = Run(&imap, "UID EXPUNGE " + std::to_string(uid));
  imap.Logout();
  return s;
}

Status MobilesyncSystem::PendingActions(const std::string& user, size_t* count) {
  ImapTestClient imap;
  Status s = dovecot_.LoginAsMaster(user, &imap);
  std::map<std::string, std::string> entries;
  if (s.ok()) s = GetMetadata(&imap, "", "/private/vendor/vendor.mobilesync/action", &entries);
  imap.Logout();
  if (s.ok()) *count = entries.size();
  return s;
}

// ------------------------------------------------------------------ MTA

std::vector<SubmittedMail> MobilesyncSystem::Submitted() const {
  std::vector<SubmittedMail> out;
  std::string log;
  (void)ReadFile(tmp_.Sub("mta/sendmail.log"), &log);
  std::vector<std::string> files;
  if (DIR* d = opendir(tmp_.Sub("mta").c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      const std::string suffix = "-sendmail.eml";
      if (name[0] != '.' && name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        files.push_back(name);
      }
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());  // named by time
  std::istringstream lines(log);
  for (const auto& f : files) {
    SubmittedMail m;
    std::getline(lines, m.log_line);
    (void)ReadFile(tmp_.Sub("mta/" + f), &m.message);
    out.push_back(m);
  }
  return out;
}

std::string MobilesyncSystem::MtaLog() const {
  return ReadLog("mta/mta.log");
}

// ----------------------------------------------------------------- logs

std::string MobilesyncSystem::ReadLog(const std::string& name) const {
  std::string text;
  (void)ReadFile(tmp_.Sub(name), &text);
  return text;
}
std::string MobilesyncSystem::AgentLog() const {
  return ReadLog("agent.log");
}
std::string MobilesyncSystem::ServerLog() const {
  return ReadLog("server.log");
}

std::string MobilesyncSystem::Logs(size_t bytes) const {
  std::string out;
  auto section = [&](const std::string& title, const std::string& text) {
    out += "\n===== " + title + " =====\n" + Tail(text, bytes);
  };
  section("agent (" + tmp_.Sub("agent.log") + ")", AgentLog());
  section("server (" + tmp_.Sub("server.log") + ")", ServerLog());
  section("mta (" + tmp_.Sub("mta.log") + ")", ReadLog("mta.log"));
  if (!dovecot_.config_path().empty()) {
    // Without its debug lines: the plugin's info, warnings and errors.
    std::istringstream in(dovecot_.Log());
    std::string line, kept;
    while (std::getline(in, line)) {
      if (line.find(": Debug: ") == std::string::npos) kept += line + "\n";
    }
    section("dovecot (" + dovecot_.dir() + "/dovecot.log, no debug lines)", kept);
  }
  return out;
}

}  // namespace mobilesync::testing
