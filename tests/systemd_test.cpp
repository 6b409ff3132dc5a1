// systemd's service protocol (apps/systemd_notify.h), read from a notify socket of the test's
// own as systemd would: READY=1 once subscribed, STATUS= lines with the connection state, and
// WATCHDOG=1 only while the process is healthy or actively reconnecting.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "runtime/systemd_notify.h"
#include "testkit/broker_probe.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

// A notify socket (AF_UNIX datagrams) that keeps every message sent to it.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot bind " + path);
    }
    timeval tv{0, 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    reader_ = std::thread([this] {
      char buf[4096];
      while (!stop_) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) continue;
        std::lock_guard lock(mutex_);
        messages_.emplace_back(buf, static_cast<std::size_t>(n));
      }
    });
  }
  ~NotifySocket() {
    stop_ = true;
    reader_.join();
    ::close(fd_);
  }
  const std::string& path() const { return path_; }
  // How many messages so far carried `line` (e.g. "READY=1"), or a line starting with it.
  std::size_t count(const std::string& line) const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const std::string& m : messages_) {
      n += ("\n" + m).find("\n" + line) != std::string::npos;
    }
    return n;
  }
  std::string all() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const std::string& m : messages_) out += m + "|";
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
  std::thread reader_;
};

// Sets an environment variable for the scope (the child processes started in it inherit it).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(Systemd, ServeSaysReadyOnceSubscribedAndPetsTheWatchdogWhileItReconnects) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  NotifySocket notify(data.file("notify.sock"));
  std::unique_ptr<ServeProcess> process;
  {
    // For serve only: Debian's mosquitto, restarted below, speaks the protocol too.
    ScopedEnv socket("NOTIFY_SOCKET", notify.path());
    ScopedEnv watchdog("WATCHDOG_USEC", "600000");
    process = std::make_unique<ServeProcess>(
        std::vector<std::string>{"--service", "fastlane-finale", "--broker", broker.uri(),
                                 "--data-dir", data.file(""), "--no-stdin"},
        data.file("serve.log"));
  }
  ServeProcess& serve = *process;
  ASSERT_TRUE(wait_until([&] { return notify.count("READY=1") == 1; }, std::chrono::seconds(15)))
      << notify.all();
  EXPECT_GE(notify.count("STATUS=1 of 1 services ready"), 1u) << notify.all();
  ASSERT_TRUE(wait_until([&] { return notify.count("WATCHDOG=1") >= 3; })) << notify.all();

  broker.stop();  // reconnecting: still healthy, the watchdog is still petted
  ASSERT_TRUE(wait_until([&] {
    return notify.count(
               "STATUS=0 of 1 services ready: fastlane-finale: not connected "
               "(reconnecting)") >= 1;
  })) << notify.all();
  const std::size_t pets = notify.count("WATCHDOG=1");
  EXPECT_TRUE(wait_until([&] { return notify.count("WATCHDOG=1") >= pets + 3; }));
  broker.start();
  EXPECT_TRUE(wait_until([&] { return notify.count("STATUS=1 of 1 services ready") >= 2; },
                         std::chrono::seconds(40)))
      << notify.all();
  EXPECT_EQ(notify.count("READY=1"), 1u) << "READY=1 is said once";
  EXPECT_EQ(serve.terminate(), 0);
  EXPECT_TRUE(wait_until([&] { return notify.count("STOPPING=1") == 1; }));
}

// The watchdog is not petted while a service has stopped trying to connect, or while the timer
// thread (which runs every reconnect) is stuck; it is again once they are back.
TEST(Systemd, TheWatchdogGoesUnpettedWhileAServiceStoppedReconnectingOrTheTimersAreStuck) {
  TempDir dir;
  NotifySocket notify(dir.file("notify.sock"));
  ScopedEnv socket("NOTIFY_SOCKET", notify.path());
  ScopedEnv watchdog("WATCHDOG_USEC", "300000");
  std::atomic<bool> going{true};
  std::atomic<std::int64_t> beat{mqtt::wall_clock_us()};
  std::atomic<bool> beating{true};
  std::thread timers([&] {
    while (beating) {
      beat = mqtt::wall_clock_us();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  {
    runtime::SystemdNotifier notifier(
        {[&] {
           return std::vector<runtime::ServiceReadiness>{
               {"inventory-intel", going.load(), going.load(), 0, going.load()}};
         },
         [&] { return beat.load(); }},
        std::chrono::milliseconds(500));
    ASSERT_TRUE(notifier.enabled());
    ASSERT_TRUE(wait_until([&] { return notify.count("WATCHDOG=1") >= 3; }));

    going = false;
    ASSERT_TRUE(wait_until([&] {
      return notify.count(
                 "STATUS=0 of 1 services ready: inventory-intel: not "
                 "connected, not reconnecting") == 1;
    }));
    std::size_t pets = notify.count("WATCHDOG=1");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(notify.count("WATCHDOG=1"), pets) << "petted while not reconnecting";

    going = true;
    ASSERT_TRUE(wait_until([&] { return notify.count("WATCHDOG=1") > pets; }));
    beating = false;  // the timer thread stops beating
    timers.join();
    ASSERT_TRUE(wait_until(
        [&] { return notify.all().find("timer thread has not run") != std::string::npos; }));
    pets = notify.count("WATCHDOG=1");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(notify.count("WATCHDOG=1"), pets) << "petted while the timers were stuck";
  }
  EXPECT_TRUE(wait_until([&] { return notify.count("STOPPING=1") == 1; }));
}

}  // namespace
}  // namespace eventmart::test
