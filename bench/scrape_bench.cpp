// What scrapes of /metrics cost the service they look at, on a real broker: Fastlane Finale with
// a large inbox (default 2,000,000 event ids, as a store keeps for its 30-day retention), driven
// at 200 departures/s, without scrapers and then with 8 scrapers asking /metrics as fast as they
// are answered. Departure -> payment-due p50/p99 both ways, in one run, and the ratio.
//
// A scrape used to count the whole inbox under the service's lock: with 2 M rows and 8
// scrapers, p99 went from about 50 ms to about 12 s. Scrapes now share one collection a second,
// and count rows on a connection of their own, outside the lock (apps/metrics.h).
//
// Usage: eventmart-scrape-bench [INBOX_ROWS]   (default 2000000)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "apps/load.h"
#include "runtime/live_store.h"
#include "runtime/metrics.h"
#include "testkit/broker_probe.h"
#include "testkit/mosquitto.h"

namespace {

class QuietLogger final : public eventmart::Logger {
 public:
  void log(eventmart::LogLevel level, std::string_view, std::string_view) override {}
  bool wants(eventmart::LogLevel) const override { return false; }
};

// GET /metrics; true when answered 200.
bool scrape(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) > 0) {
      std::string answer;
      char buf[16384];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, n);
      ok = answer.rfind("HTTP/1.1 200", 0) == 0;
    }
  }
  ::close(fd);
  return ok;
}

eventmart::apps::LoadReport drive(const std::string& broker, std::uint64_t seed,
                                  eventmart::Logger& logger) {
  eventmart::apps::LoadOptions load;
  load.connection.broker = broker;
  load.customers = 3000;
  load.rate = 200;
  load.seed = seed;
  load.send_arrivals = false;
  load.linger_s = 0;
  return eventmart::apps::run_load(load, logger);
}

}  // namespace

int main(int argc, char** argv) {
  const long long rows = argc > 1 ? std::atoll(argv[1]) : 2'000'000;
  if (rows < 0) {
    std::fprintf(stderr, "usage: eventmart-scrape-bench [INBOX_ROWS >= 0]\n");
    return 2;
  }
  eventmart::test::Mosquitto broker;
  QuietLogger logger;
  char dir[] = "/tmp/eventmart-scrape-bench-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return 1;
  eventmart::runtime::LiveOptions options;
  options.connection.broker = broker.uri();
  options.data_dir = dir;
  options.services = {"fastlane-finale"};
  options.durability = eventmart::Durability::kNormal;
  { eventmart::runtime::LiveStore born(options, logger); }  // the database, born
  {
    eventmart::Database db(std::string(dir) + "/fastlane-finale.sqlite");
    db.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
            std::to_string(rows) +
            ") INSERT INTO inbox(event_id, received_at_us, content_hash) "
            "SELECT printf('old-departure-%012d', i), " +
            std::to_string(eventmart::mqtt::wall_clock_us()) +
            " - i, i FROM n");                   // received within the retention: kept, not pruned
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");  // in the file, as a long-running store has it
  }
  eventmart::runtime::LiveStore store(options, logger);
  store.start();
  eventmart::test::wait_until([&] { return store.all_ready(); });
  eventmart::runtime::MetricsServer server(
      "127.0.0.1:0", {[&] { return store.metrics(); }, [&] { return store.readiness(); }});

  std::printf(
      "eventmart-scrape-bench: Fastlane Finale with %lld inbox rows, 3,000 departures at "
      "200/s\n",
      rows);
  drive(broker.uri(), 9, logger);  // warm-up: caches, the first checkpoints
  const auto quiet = drive(broker.uri(), 1, logger);
  const auto seen = store.metrics();
  std::printf("  inbox rows when the scrapers start: %lld\n",
              static_cast<long long>(seen.at(0).inbox));
  std::atomic<bool> stop{false};
  std::atomic<long long> scrapes{0}, failed{0};
  std::vector<std::thread> scrapers;
  for (int i = 0; i < 8; ++i) {
    scrapers.emplace_back([&] {
      while (!stop) (scrape(server.port()) ? scrapes : failed)++;
    });
  }
  const auto scraped = drive(broker.uri(), 2, logger);
  stop = true;
  for (std::thread& t : scrapers) t.join();
  store.stop();
  std::printf("  no scrapers      p50 %8.3f ms  p99 %8.3f ms  (%s)\n", quiet.latency_p50_ms,
              quiet.latency_p99_ms, quiet.ok() ? "all paid once" : "FAILED");
  std::printf(
      "  8 scrapers       p50 %8.3f ms  p99 %8.3f ms  (%s; %lld scrapes answered, %lld "
      "failed, %.0f/s)\n",
      scraped.latency_p50_ms, scraped.latency_p99_ms, scraped.ok() ? "all paid once" : "FAILED",
      scrapes.load(), failed.load(), static_cast<double>(scrapes.load()) / scraped.duration_s);
  std::printf("  p99 with scrapers / without: %.2f\n",
              scraped.latency_p99_ms / quiet.latency_p99_ms);
  std::filesystem::remove_all(dir);
  return quiet.ok() && scraped.ok() ? 0 : 1;
}
