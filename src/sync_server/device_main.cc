// mobilesync-device: the command-line client of the reference server's
// device API (it plays the mobile device's mail application).
// Exit codes: 0 done; 1 the API refused (unknown id, bad input); 64 usage;
// 69 server down or failing; 77 bad or missing token.
//
//   mobilesync-device [--api HOST:PORT] [--token-file FILE] [--json] COMMAND
//   list | show ID | read ID | unread ID | trash ID | restore ID | destroy ID
//   | compose --to A --subject S [--via-sync] (body on stdin) | sync-now
#include <getopt.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <ctime>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "common/config_file.h"
#include "common/daemon.h"
#include "common/secret_file.h"
#include "sync_server/device_client.h"
#include "sync_server/device_request.h"

namespace mobilesync::server {
namespace {

constexpr const char* kProgram = "mobilesync-device";
constexpr int kExitApiError = 1;     // the server refused the request
constexpr int kExitNoPermission = 77;  // EX_NOPERM: bad or missing token

using Json = nlohmann::json;

struct DeviceCommand {
  std::string verb;
  std::vector<std::string> args;
  std::string to;
  std::string subject;
  bool via_sync = false;
  bool json = false;
};

void Usage(FILE* out) {
  fprintf(out,
          "Usage: %s [--api HOST:PORT] [--token-file FILE] [--json] COMMAND\n"
          "Commands:\n"
          "  list                   the messages in the device's window\n"
          "  show ID                one message with its body\n"
          "  read ID | unread ID    mark read or unread\n"
          "  trash ID | restore ID  move to or back from Trash\n"
          "  destroy ID             delete for good\n"
          "  compose --to A --subject S [--via-sync]   body on stdin\n"
          "  sync-now               ask for a sync now\n"
          "Environment: MOBILESYNC_DEVICE_API, MOBILESYNC_DEVICE_TOKEN_FILE\n",
          kProgram);
}

bool ValidId(const std::string& s) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string ValidateCommand(const DeviceCommand& c) {
  static const char* const kIdVerbs[] = {"show", "read", "unread", "trash",
                                         "restore", "destroy"};
  for (const char* v : kIdVerbs) {
    if (c.verb == v) {
      if (c.args.size() != 1) return c.verb + " needs exactly one message id";
      if (!ValidId(c.args[0])) return "bad message id '" + c.args[0].substr(0, 32) + "'";
      return "";
    }
  }
  if (c.verb == "list" || c.verb == "sync-now") {
    return c.args.empty() ? "" : c.verb + " takes no arguments";
  }
  if (c.verb == "compose") {
    if (!c.args.empty()) return "compose takes --to and --subject, body on stdin";
    if (c.to.empty() || c.to.find('@') == std::string::npos || c.to.size() > 254)
      return "compose needs --to with an e-mail address";
    if (c.subject.size() > 998) return "subject longer than 998 bytes";
    return "";
  }
  return "unknown command '" + c.verb + "'";
}

std::string DateText(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

// Fits `s` in `width` columns (bytes; good enough for a terminal table).
std::string Cell(const std::string& s, size_t width) {
  std::string out = s.size() > width ? s.substr(0, width - 1) + "~" : s;
  out.resize(width, ' ');
  return out;
}

// Readable output of a successful call.
void PrintText(const DeviceCommand& cmd, const Json& j) {
  if (cmd.verb == "list") {
    const Json& msgs = j.at("messages");
    printf("%-8s %-16s %-8s %-24s %s\n", "ID", "DATE (UTC)", "STATE", "FROM", "SUBJECT");
    for (const Json& m : msgs) {
      printf("%-8s %-16s %-8s %s %s\n", std::to_string(m.value("id", 0ull)).c_str(),
             DateText(m.value("date", 0ll)).c_str(), m.value("state", "").c_str(),
             Cell(m.value("from", ""), 24).c_str(), m.value("subject", "").c_str());
    }
    printf("%zu of %llu slots used\n", msgs.size(),
           static_cast<unsigned long long>(j.value("window_size", 0ull)));
  } else if (cmd.verb == "show") {
    printf("Id:      %s\nDate:    %s\nState:   %s\nFrom:    %s\nSubject: %s\n\n%s",
           std::to_string(j.value("id", 0ull)).c_str(), DateText(j.value("date", 0ll)).c_str(),
           j.value("state", "").c_str(), j.value("from", "").c_str(),
           j.value("subject", "").c_str(), j.value("body", "").c_str());
    const std::string b = j.value("body", "");
    if (!b.empty() && b.back() != '\n') printf("\n");
  } else if (cmd.verb == "compose") {
    const bool queued = j.value("queued", false);
    printf("message %s %s\n", std::to_string(j.value("id", 0ull)).c_str(),
           queued ? "queued: the organisation sends it at the next sync" : "sent by SMTP");
  } else if (cmd.verb == "sync-now") {
    const std::string via = j.value("via", "");
    if (via == "connection") {
      printf("sync requested over the agent's connection\n");
    } else if (j.value("rate_limited", false)) {
      printf("a trigger e-mail was sent moments ago; not sending another\n");
    } else {
      printf("no agent connected: trigger e-mail sent\n");
    }
  } else {
    printf("message %s: %s\n", std::to_string(j.value("id", 0ull)).c_str(),
           j.value("state", cmd.verb).c_str());
  }
}

int Run(int argc, char** argv) {
  static const struct option kLong[] = {
      {"api", required_argument, nullptr, 'a'},
      {"token-file", required_argument, nullptr, 't'},
      {"json", no_argument, nullptr, 'j'},
      {"to", required_argument, nullptr, 'T'},
      {"subject", required_argument, nullptr, 'S'},
      {"via-sync", no_argument, nullptr, 'v'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  const char* env_api = getenv("MOBILESYNC_DEVICE_API");
  std::string api = env_api ? env_api : "127.0.0.1:8080";
  DeviceCommand cmd;
  const char* env_token = getenv("MOBILESYNC_DEVICE_TOKEN_FILE");
  std::string token_file = env_token ? env_token : "";
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":a:t:jh", kLong, nullptr)) != -1) {
    switch (c) {
      case 'a': api = optarg; break;
      case 't': token_file = optarg; break;
      case 'j': cmd.json = true; break;
      case 'T': cmd.to = optarg; break;
      case 'S': cmd.subject = optarg; break;
      case 'v': cmd.via_sync = true; break;
      case 'h': Usage(stdout); return kExitOk;
      case ':':
        fprintf(stderr, "%s: option %s needs an argument\n", kProgram, argv[optind - 1]);
        return kExitUsage;
      default:
        fprintf(stderr, "%s: unknown option '%s' (try --help)\n", kProgram, argv[optind - 1]);
        return kExitUsage;
    }
  }
  if (optind >= argc) {
    Usage(stderr);
    return kExitUsage;
  }
  cmd.verb = argv[optind++];
  for (; optind < argc; ++optind) cmd.args.emplace_back(argv[optind]);
  std::string err = ValidateCommand(cmd);
  if (err.empty() && (cmd.via_sync || !cmd.to.empty()) && cmd.verb != "compose")
    err = "--to, --subject and --via-sync only apply to compose";
  if (!err.empty()) {
    fprintf(stderr, "%s: %s (try --help)\n", kProgram, err.c_str());
    return kExitUsage;
  }
  std::string cfg_text = "api = " + api + "\n";
  ConfigFile f;
  std::string host;
  uint16_t port = 0;
  Status s = ConfigFile::Parse(cfg_text, "--api", &f);
  if (s.ok()) s = f.GetHostPort("api", &host, &port);
  if (!s.ok()) {
    fprintf(stderr, "%s: bad --api value '%s': expected HOST:PORT\n", kProgram, api.c_str());
    return kExitUsage;
  }
  std::string body;
  if (cmd.verb == "compose") {
    // The message text comes on stdin, bounded like the API's requests.
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (text.size() > kMaxDeviceRequestBody - 4096) {
      fprintf(stderr, "%s: message body larger than %zu bytes\n", kProgram, kMaxDeviceRequestBody - 4096);
      return kExitUsage;
    }
    Json j{{"to", cmd.to}, {"subject", cmd.subject}, {"body", text}, {"via_sync", cmd.via_sync}};
    body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  std::string token;
  if (!token_file.empty()) {
    s = ReadSecretFile(token_file, 4096, &token);
    if (!s.ok()) {
      fprintf(stderr, "%s: cannot use the token file: %s\n", kProgram, s.message().c_str());
      return kExitNoPermission;
    }
  }
  std::string method = "POST";
  std::string path;
  if (cmd.verb == "list") {
    method = "GET";
    path = "/v1/messages";
  } else if (cmd.verb == "show") {
    method = "GET";
    path = "/v1/messages/" + cmd.args[0];
  } else if (cmd.verb == "compose") {
    path = "/v1/compose";
  } else if (cmd.verb == "sync-now") {
    path = "/v1/sync-now";
  } else {
    path = "/v1/messages/" + cmd.args[0] + "/" + cmd.verb;
  }
  HttpResponse resp;
  s = HttpCall(host, port, method, path, token, body, &resp);
  if (!s.ok()) {
    if (s.IsUnavailable()) {
      fprintf(stderr, "%s: cannot reach the device API at %s: %s (is mobilesync-server running?)\n",
              kProgram, api.c_str(), s.message().c_str());
    } else {
      fprintf(stderr, "%s: device API at %s: %s\n", kProgram, api.c_str(), s.ToString().c_str());
    }
    return kExitUnavailable;
  }
  Json j = Json::parse(resp.body, nullptr, false);
  if (j.is_discarded()) {
    fprintf(stderr, "%s: the device API answered HTTP %d without JSON\n", kProgram, resp.status);
    return kExitUnavailable;
  }
  if (resp.status >= 400) {
    std::string code = j.value("/error/code"_json_pointer, std::string("error"));
    std::string message = j.value("/error/message"_json_pointer, std::string("request failed"));
    if (cmd.json) printf("%s\n", j.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
    if (resp.status == 401 && token.empty()) {
      message = "no device token: use --token-file FILE or MOBILESYNC_DEVICE_TOKEN_FILE";
    }
    fprintf(stderr, "%s: %s (HTTP %d, %s)\n", kProgram, message.c_str(), resp.status, code.c_str());
    return resp.status == 401 ? kExitNoPermission : resp.status >= 500 ? kExitUnavailable : kExitApiError;
  }
  if (cmd.json) {
    printf("%s\n", j.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
    return kExitOk;
  }
  PrintText(cmd, j);
  return kExitOk;
}

}  // namespace
}  // namespace mobilesync::server

int main(int argc, char** argv) {
  // nlohmann::json throws on a reply of an unexpected shape: a clear error,
  // never an abort.
  try {
    return mobilesync::server::Run(argc, argv);
  } catch (const std::exception& e) {
    fprintf(stderr, "mobilesync-device: unexpected reply from the device API (%s)\n", e.what());
    return mobilesync::kExitUnavailable;
  }
}
