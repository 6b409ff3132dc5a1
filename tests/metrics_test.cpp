// `serve --metrics-listen`: the Prometheus exposition and the health endpoints, over HTTP, on
// the store's services against a real mosquitto. A scrape during a load run counts what was
// consumed; /readyz follows the broker going away and coming back.
#include "runtime/metrics.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <sstream>
#include <thread>

#include "apps/cli.h"
#include "runtime/live_store.h"
#include "apps/load.h"
#include "testkit/broker_probe.h"
#include "testkit/mosquitto.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

struct Reply {
  int status = 0;
  std::string body;
  std::string content_type;
};

Reply get(std::uint16_t port, const std::string& target) {
  boost::asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "127.0.0.1");
  http::write(socket, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(socket, buffer, response);
  return Reply{static_cast<int>(response.result_int()), response.body(),
               std::string(response[http::field::content_type])};
}

// "name{service="x",instance=""} value" lines, keyed by name and service.
std::map<std::string, double> samples(const std::string& text, const std::string& service) {
  std::map<std::string, double> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line.find("service=\"" + service + "\"") == std::string::npos) continue;
    const auto brace = line.find('{');
    const auto space = line.rfind(' ');
    std::string name = line.substr(0, brace);
    const auto le = line.find("le=\"");
    if (le != std::string::npos)
      name += "[" + line.substr(le + 4, line.find('"', le + 4) - le - 4) + "]";
    const auto reason = line.find("reason=\"");
    if (reason != std::string::npos) {
      name += "[" + line.substr(reason + 8, line.find('"', reason + 8) - reason - 8) + "]";
    }
    out[name] = std::stod(line.substr(space + 1));
  }
  return out;
}

runtime::LiveOptions store_on(const Mosquitto& broker, const std::string& data_dir) {
  runtime::LiveOptions o;
  o.connection.broker = broker.uri();
  o.data_dir = data_dir;
  o.services = runtime::all_service_names();
  return o;
}

TEST(Metrics, AScrapeDuringALoadRunCountsEveryDepartureConsumed) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  runtime::LiveStore store(store_on(broker, data.file("")), logger);
  runtime::MetricsServer server("127.0.0.1:0",
                             {[&] { return store.metrics(); }, [&] { return store.readiness(); }});
  store.start();
  ASSERT_TRUE(wait_until([&] { return store.all_ready(); }));
  EXPECT_EQ(get(server.port(), "/readyz").status, 200);

  apps::LoadOptions load;
  load.connection.broker = broker.uri();
  load.customers = 600;
  load.rate = 300;
  apps::LoadReport report;
  std::thread run([&] { report = apps::run_load(load, logger); });
  int scrapes = 0;
  double seen_during = 0;
  while (scrapes < 200) {  // scrapes while the load runs: answered, and the counter only grows
    const Reply r = get(server.port(), "/metrics");
    ASSERT_EQ(r.status, 200);
    const double consumed = samples(r.body, "fastlane-finale")["eventmart_events_consumed_total"];
    EXPECT_GE(consumed, seen_during);
    seen_during = consumed;
    ++scrapes;
    if (consumed >= 600) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  run.join();
  ASSERT_TRUE(report.ok()) << report.to_text();
  EXPECT_GT(scrapes, 1);

  const Reply r = get(server.port(), "/metrics");
  EXPECT_NE(r.content_type.find("version=0.0.4"), std::string::npos);
  auto fastlane = samples(r.body, "fastlane-finale");
  EXPECT_EQ(fastlane["eventmart_events_consumed_total"], report.departures_sent);
  EXPECT_EQ(fastlane["eventmart_messages_received_total"], report.departures_sent);
  EXPECT_EQ(fastlane["eventmart_duplicates_total"], 0);
  EXPECT_EQ(fastlane["eventmart_dead_letters_total[rejected]"], 0);
  EXPECT_EQ(fastlane["eventmart_ready"], 1);
  // Every attempt at handling is in the histogram; the buckets are cumulative up to +Inf.
  EXPECT_EQ(fastlane["eventmart_handler_seconds_count"], report.departures_sent);
  EXPECT_EQ(fastlane["eventmart_handler_seconds_bucket[+Inf]"], report.departures_sent);
  EXPECT_LE(fastlane["eventmart_handler_seconds_bucket[0.001]"],
            fastlane["eventmart_handler_seconds_bucket[0.01]"]);
  EXPECT_GT(fastlane["eventmart_handler_seconds_sum"], 0);
  auto hello = samples(r.body, "hello-helper");
  EXPECT_EQ(hello["eventmart_events_consumed_total"], report.arrivals_sent);
  // Each payment was published; once confirmed (and the hold of 2 s passed) the outbox empties.
  EXPECT_GE(fastlane["eventmart_events_published_total"], report.departures_sent);
  EXPECT_TRUE(wait_until([&] {
    return samples(get(server.port(), "/metrics").body,
                   "fastlane-finale")["eventmart_outbox_depth"] == 0;
  })) << "the outbox did not drain";
  EXPECT_EQ(get(server.port(), "/healthz").status, 200);
  EXPECT_EQ(get(server.port(), "/nothing").status, 404);
  store.stop();
}

TEST(Metrics, ReadyzTurnsUnreadyWhenTheBrokerStopsAndReadyWhenItReturns) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  runtime::LiveStore store(store_on(broker, data.file("")), logger);
  runtime::MetricsServer server("127.0.0.1:0",
                             {[&] { return store.metrics(); }, [&] { return store.readiness(); }});
  store.start();
  ASSERT_TRUE(wait_until([&] { return get(server.port(), "/readyz").status == 200; }));

  broker.stop();
  ASSERT_TRUE(wait_until([&] { return get(server.port(), "/readyz").status == 503; }))
      << "still ready with the broker gone";
  const Reply unready = get(server.port(), "/readyz");
  EXPECT_NE(unready.body.find("not connected"), std::string::npos) << unready.body;
  EXPECT_EQ(get(server.port(), "/healthz").status, 200) << "the process still runs";
  EXPECT_EQ(samples(get(server.port(), "/metrics").body, "inventory-intel")["eventmart_connected"],
            0);

  broker.start();
  ASSERT_TRUE(wait_until([&] { return get(server.port(), "/readyz").status == 200; },
                         std::chrono::milliseconds(40000)))
      << "not ready again after the broker came back: " << get(server.port(), "/readyz").body;
  auto after = samples(get(server.port(), "/metrics").body, "inventory-intel");
  EXPECT_GE(after["eventmart_reconnects_total"], 1);
  EXPECT_GE(after["eventmart_connection_losses_total"], 1);
  store.stop();
}

TEST(Metrics, TheExpositionDeclaresEachFamilyOnceBeforeItsSamples) {
  runtime::ServiceMetrics m;
  m.service = "odd\"name\\";
  m.bus.handler_seconds_counts[0] = 2;
  m.bus.handler_seconds_counts.back() = 1;
  const std::string text = runtime::prometheus_text({m});
  std::map<std::string, int> types;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      ++types[line.substr(7, line.find(' ', 7) - 7)];
      continue;
    }
    if (line[0] == '#') continue;
    std::string family = line.substr(0, line.find('{'));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (family.size() > s.size() && family.compare(family.size() - s.size(), s.size(), s) == 0 &&
          types.count(family.substr(0, family.size() - s.size()))) {
        family = family.substr(0, family.size() - s.size());
      }
    }
    EXPECT_EQ(types.count(family), 1u) << "a sample before its # TYPE: " << line;
    EXPECT_NE(line.find("service=\"odd\\\"name\\\\\""), std::string::npos) << "label unescaped";
  }
  for (const auto& [family, n] : types) EXPECT_EQ(n, 1) << family << " declared twice";
  EXPECT_NE(text.find("eventmart_handler_seconds_bucket{service=\"odd\\\"name\\\\\",instance=\"\","
                      "le=\"+Inf\"} 3"),
            std::string::npos);
}

TEST(Metrics, AnAddressThatIsNotOneIsRefused) {
  EXPECT_THROW(apps::check_listen_address("--metrics-listen", "localhost"), apps::UsageError);
  EXPECT_THROW(apps::check_listen_address("--metrics-listen", "example.org:80"), apps::UsageError);
  EXPECT_THROW(apps::check_listen_address("--metrics-listen", "127.0.0.1:70000"), apps::UsageError);
  EXPECT_NO_THROW(apps::check_listen_address("--metrics-listen", "[::1]:9464"));
  EXPECT_NO_THROW(apps::check_listen_address("--metrics-listen", "0.0.0.0:0"));
}

}  // namespace
}  // namespace eventmart::test
