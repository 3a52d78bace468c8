// Shared by the fuzz targets of whole configuration files: the loaders
// take a path, so the input is written to a file first. "@DIR@" in the
// input stands for a private directory holding a readable "ca.pem" and a
// mode-0600 "secret", so that seeds can reach the checks after parsing.
#ifndef MOBILESYNC_TESTS_FUZZ_CONFIG_FUZZ_UTIL_H_
#define MOBILESYNC_TESTS_FUZZ_CONFIG_FUZZ_UTIL_H_

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      abort();                                                                       \
    }                                                                                \
  } while (0)

namespace mobilesync::fuzz {

inline const std::string& FuzzDir() {
  static const std::string dir = [] {
    const char* t = getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/msfuzz.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) abort();
    std::ofstream(tmpl + "/ca.pem") << "not really a certificate\n";
    std::ofstream(tmpl + "/secret") << "s3cret\n";
    if (chmod((tmpl + "/secret").c_str(), 0600) != 0) abort();
    // Removed at exit (libFuzzer exits through exit() on every normal path).
    static std::string copy = tmpl;
    atexit([] {
      for (const char* f : {"/ca.pem", "/secret", "/input.conf"}) unlink((copy + f).c_str());
      rmdir(copy.c_str());
    });
    return tmpl;
  }();
  return dir;
}

// Writes the input, with @DIR@ expanded, to FuzzDir()/input.conf.
inline std::string WriteInput(std::string_view in) {
  std::string text;
  const std::string_view mark = "@DIR@";
  size_t i = 0;
  while (i < in.size()) {
    size_t m = in.find(mark, i);
    if (m == std::string_view::npos) m = in.size();
    text.append(in.substr(i, m - i));
    if (m < in.size()) text += FuzzDir();
    i = m + (m < in.size() ? mark.size() : 0);
  }
  const std::string path = FuzzDir() + "/input.conf";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) abort();
  return path;
}

}  // namespace mobilesync::fuzz

#endif  // MOBILESYNC_TESTS_FUZZ_CONFIG_FUZZ_UTIL_H_
