// Production that keeps going: `serve` and `display` against a hostile or broken client on the
// same network and the ordinary accidents of a back office, on a real mosquitto. Each test was
// written against the failure it names and failed before the fix.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "runtime/display.h"
#include "runtime/live_store.h"
#include "runtime/metrics.h"
#include "core/wire.h"
#include "testkit/broker_probe.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

// A TCP connection to 127.0.0.1:port (-1 when refused); closed by the caller.
int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends `request` on `fd` and reads until the peer closes (or `timeout_s` passes).
std::string talk(int fd, const std::string& request, int timeout_s = 10) {
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (!request.empty() && ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) return "";
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string http_get(int port, const std::string& path) {
  const int fd = connect_to(port);
  if (fd < 0) return "";
  const std::string out =
      talk(fd, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ::close(fd);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t open_files(pid_t pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// CPU seconds (user + system) the process used so far.
double cpu_seconds(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;  // fields 3..13
  long utime = 0, stime = 0;
  fields >> utime >> stime;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

bool running(pid_t pid) {
  return pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0;
}

// Holds connections to `port` until the process `pid` has no descriptor left (its open files
// reach `limit`), then returns them.
std::vector<int> exhaust_descriptors(int port, pid_t pid, std::size_t limit) {
  std::vector<int> held;
  for (int i = 0; i < 400 && open_files(pid) < limit; ++i) {
    const int fd = connect_to(port);
    if (fd >= 0) held.push_back(fd);
    if (i % 20 == 19) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  wait_until([&] { return open_files(pid) >= limit; }, std::chrono::seconds(5));
  return held;
}

constexpr int kFileLimit = 64;

// A process out of file descriptors when its broker connection dropped (its HTTP port held by
// many clients) used to stop reconnecting for good: Asio opened the descriptors of the timer
// thread's reactor only for the first timer, that failed, and the exception ended the process
// (or, elsewhere on the path, left no reconnect scheduled). And while out of descriptors, a
// failing accept() was retried at once: a core spun until one came free.
TEST(OutOfDescriptors, ServeReconnectsOnceTheyAreBackAndDoesNotSpinMeanwhile) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  const int metrics = free_loopback_port();
  ServeProcess serve({"--service", "fastlane-finale", "--broker", broker.uri(), "--data-dir",
                      data.file(""), "--no-stdin", "--metrics-listen",
                      "127.0.0.1:" + std::to_string(metrics), "--http-max-connections", "1000"},
                     data.file("serve.log"), ServeProcess::Options{false, kFileLimit, "serve", ""});
  Probe status(broker.uri(), "status", logger);
  status.record(topics.status("fastlane-finale"));
  ASSERT_TRUE(status.start(1));
  ASSERT_TRUE(wait_until([&] {
    return status.count_saying(topics.status("fastlane-finale"), "online") == 1;
  })) << read_file(data.file("serve.log"));

  std::vector<int> held = exhaust_descriptors(metrics, serve.pid(), kFileLimit);
  ASSERT_GE(open_files(serve.pid()), static_cast<std::size_t>(kFileLimit));
  broker.stop();  // the connection drops while no descriptor is free
  const double cpu_before = cpu_seconds(serve.pid());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const double cpu_used = cpu_seconds(serve.pid()) - cpu_before;
  broker.start();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  for (int fd : held) ::close(fd);

  EXPECT_LT(cpu_used, 1.0) << "out of descriptors, the process used " << cpu_used
                           << " s of CPU in 3 s: accept() spinning?";
  EXPECT_TRUE(running(serve.pid())) << read_file(data.file("serve.log"));
  EXPECT_TRUE(wait_until(
      [&] { return status.count_saying(topics.status("fastlane-finale"), "online") >= 2; },
      std::chrono::seconds(60)))
      << "never reconnected:\n"
      << read_file(data.file("serve.log"));
  const std::string ready = http_get(metrics, "/readyz");
  EXPECT_NE(ready.find("200 OK"), std::string::npos) << ready;
  EXPECT_EQ(serve.terminate(), 0);
}

TEST(OutOfDescriptors, TheDisplayComesBackOnlineOnceTheyAreBack) {
  Mosquitto broker;
  TempDir data;
  const int port = free_loopback_port();
  ServeProcess display({"--broker", broker.uri(), "--listen", "127.0.0.1:" + std::to_string(port),
                        "--http-max-connections", "1000"},
                       data.file("display.log"),
                       ServeProcess::Options{false, kFileLimit, "display", ""});
  const auto online = [&] {
    return http_get(port, "/state").find("\"online\":true") != std::string::npos;
  };
  ASSERT_TRUE(wait_until(online, std::chrono::seconds(15))) << read_file(data.file("display.log"));

  std::vector<int> held = exhaust_descriptors(port, display.pid(), kFileLimit);
  broker.stop();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  broker.start();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  for (int fd : held) ::close(fd);

  EXPECT_TRUE(running(display.pid())) << read_file(data.file("display.log"));
  EXPECT_TRUE(wait_until(online, std::chrono::seconds(60))) << "stayed offline:\n"
                                                            << read_file(data.file("display.log"));
  EXPECT_EQ(display.terminate(), 0);
}

// The HTTP servers had no limit on connections: each one held a descriptor (and /events its
// queue) for as long as the client liked. Beyond the limit a client is told 503 at once; an
// idle one is closed after the request timeout, and its slot is free again.
TEST(HttpLimits, ABusyEndpointTurnsTheNextClientAwayAndFreesTheSlotsOfIdleOnes) {
  runtime::HttpLimits limits;
  limits.max_connections = 4;
  limits.request_timeout = std::chrono::milliseconds(500);
  runtime::MetricsServer server("127.0.0.1:0",
                             {[] { return std::vector<runtime::ServiceMetrics>{}; },
                              [] { return std::vector<runtime::ServiceReadiness>{}; }},
                             limits);
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(connect_to(server.port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // all four accepted
  const std::string turned_away = http_get(server.port(), "/healthz");
  EXPECT_NE(turned_away.find("503"), std::string::npos) << turned_away;
  EXPECT_NE(turned_away.find("too many connections"), std::string::npos) << turned_away;
  // The idle four said nothing within the timeout: closed by the server.
  for (int fd : idle) {
    EXPECT_EQ(talk(fd, "", 5), "") << "an idle connection was answered";
    ::close(fd);
  }
  EXPECT_TRUE(wait_until(
      [&] { return http_get(server.port(), "/healthz").find("200 OK") != std::string::npos; }));
}

// /healthz and /readyz waited for the service's lock (a scrape took it to read the service),
// which a handler on a locked database holds for up to 5 s: a 1 s liveness probe then killed a
// healthy service.
TEST(HttpLimits, LivenessAndReadinessAnswerWhileAHandlerHoldsItsService) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  runtime::LiveOptions o;
  o.connection.broker = broker.uri();
  o.data_dir = data.file("");
  o.services = {"fastlane-finale"};
  runtime::LiveStore store(o, logger);
  store.start();
  ASSERT_TRUE(wait_until([&] { return store.all_ready(); }));
  runtime::MetricsServer server("127.0.0.1:0",
                             {[&] { return store.metrics(); }, [&] { return store.readiness(); }});
  std::atomic<bool> holding{false};
  std::promise<void> release;
  auto held = release.get_future();
  std::thread handler([&] {
    store.with_service("fastlane-finale", [&](Service&) {
      holding = true;
      held.wait();  // as a handler retrying on a locked database does
    });
  });
  ASSERT_TRUE(wait_until([&] { return holding.load(); }));
  // A scrape that waits for the service is under way...
  auto scrape = std::async(std::launch::async, [&] { return http_get(server.port(), "/metrics"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // ... and the probes answer all the same.
  const std::string health = http_get(server.port(), "/healthz");
  const std::string ready = http_get(server.port(), "/readyz");
  const bool still_held = holding.load();
  release.set_value();
  handler.join();
  EXPECT_TRUE(still_held);
  EXPECT_NE(health.find("200 OK"), std::string::npos) << health;
  EXPECT_NE(ready.find("200 OK"), std::string::npos) << ready;
  const std::string metrics = scrape.get();
  EXPECT_NE(metrics.find("eventmart_events_consumed_total"), std::string::npos) << metrics;
  store.stop();
}

// A stalled viewer of /events (a browser tab that stopped reading) made the display queue every
// later welcome for it, forever: 50 stalled viewers and 300 welcomes of 8 KB took it from 11 MB
// to 123 MB. A viewer that does not take what is sent is dropped; a live one keeps its page.
TEST(HttpLimits, AStalledDisplayViewerIsDroppedAndAReadingOneKeepsItsPage) {
  runtime::DisplayOptions options;
  options.listen = "127.0.0.1:0";
  runtime::DisplayServer server(options, [] { return true; });
  constexpr int kStalled = 20;
  std::vector<int> stalled;
  for (int i = 0; i < kStalled; ++i) {
    const int fd = connect_to(server.port());
    const int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const std::string request = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    stalled.push_back(fd);  // and never read
  }
  ASSERT_TRUE(wait_until([&] { return server.viewers() == kStalled; }));
  const std::string big(8000, 'x');
  const std::int64_t now_us = mqtt::wall_clock_us();
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(server.on_welcome(
        welcome_document(3, "Welcome " + big, "arrival-" + std::to_string(i), now_us)));
  }
  EXPECT_TRUE(wait_until([&] { return server.viewers() == 0; }, std::chrono::seconds(20)))
      << server.viewers() << " stalled viewers still queued for";
  EXPECT_EQ(server.viewers_dropped(), static_cast<std::uint64_t>(kStalled));
  for (int fd : stalled) ::close(fd);
  // A viewer that reads gets the current state.
  const int fd = connect_to(server.port());
  const std::string request = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char buf[65536];
  while (got.find("arrival-299") == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_NE(got.find("arrival-299"), std::string::npos);
  ::close(fd);
}

// The display kept every arrival id it had shown, forever (a store open for years). It keeps
// the last few thousand: enough to recognise a redelivery, which comes within minutes.
TEST(HttpLimits, TheDisplayRemembersABoundedNumberOfArrivals) {
  runtime::DisplayOptions options;
  options.listen = "127.0.0.1:0";
  runtime::DisplayServer server(options, [] { return true; });
  const std::int64_t now_us = mqtt::wall_clock_us();
  for (int i = 0; i < 10'000; ++i) {
    server.on_welcome(welcome_document(3, "Welcome", "arrival-" + std::to_string(i), now_us));
  }
  ASSERT_TRUE(wait_until([&] { return server.arrivals_shown() == 10'000; }));
  EXPECT_LE(server.arrivals_remembered(), 4096u);
  // A redelivery of a recent one changes nothing.
  server.on_welcome(welcome_document(3, "Other text", "arrival-9999", now_us));
  server.on_welcome(welcome_document(3, "Welcome", "arrival-10000", now_us));
  ASSERT_TRUE(wait_until([&] { return server.arrivals_shown() == 10'001; }));
}

}  // namespace
}  // namespace eventmart::test
