// NotifyServiceManager: the sd_notify datagram of systemd's Type=notify.
#include "common/daemon.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "harness/temp_dir.h"

namespace mobilesync {
namespace {

class NotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("notify.sock");
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    ASSERT_LT(path_.size(), sizeof(addr.sun_path));
    memcpy(addr.sun_path, path_.c_str(), path_.size());
    ASSERT_EQ(bind(fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
  }
  void TearDown() override {
    unsetenv("NOTIFY_SOCKET");
    if (fd_ >= 0) close(fd_);
  }
  std::string Receive() {
    char buf[256];
    ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
  }
  testing::TempDir dir_;
  std::string path_;
  int fd_ = -1;
};

TEST_F(NotifyTest, SendsTheStateAsOneDatagram) {
  setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  ASSERT_TRUE(NotifyServiceManager("READY=1\nSTATUS=running").ok());
  EXPECT_EQ(Receive(), "READY=1\nSTATUS=running");
}

TEST_F(NotifyTest, DoesNothingWithoutTheVariable) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(NotifyServiceManager("READY=1").ok());
  EXPECT_EQ(Receive(), "");
}

TEST_F(NotifyTest, ReportsAMissingSocketWithoutCrashing) {
  std::string gone = dir_.Sub("absent.sock");
  setenv("NOTIFY_SOCKET", gone.c_str(), 1);
  EXPECT_FALSE(NotifyServiceManager("READY=1").ok());
  setenv("NOTIFY_SOCKET", "relative/path", 1);
  EXPECT_FALSE(NotifyServiceManager("READY=1").ok());
}

}  // namespace
}  // namespace mobilesync
