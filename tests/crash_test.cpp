// Crashes against a real broker, during a load run: `kill -9` of Inventory Intel and of
// Fastlane Finale (separate `eventmart serve` processes) and a restart of each; the broker
// stopped and started. Afterwards every departure was paid exactly once with the right total,
// and the stock is exactly the opening stock minus what was sold: nothing lost, nothing
// applied twice.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "runtime/live_store.h"
#include "apps/load.h"
#include "core/wire.h"
#include "services/catalog.h"
#include "services/fastlane_finale.h"
#include "services/inventory_intel.h"
#include "testkit/broker_probe.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

// Stock - shortfall of every sku is the opening stock minus the units sold.
void expect_stock_is_opening_minus_sold(const std::string& db_file, const apps::LoadReport& r) {
  Database db(db_file);
  InventoryStore inventory(db);
  for (const Product& p : default_store().products) {
    const auto record = inventory.find(p.sku);
    ASSERT_TRUE(record.has_value());
    const auto sold = r.units_sold.count(p.sku) ? r.units_sold.at(p.sku) : 0;
    EXPECT_EQ(record->level(), p.stock - sold) << "sku " << p.sku;
  }
}

std::int64_t payments_in(const std::string& db_file) {
  Database db(db_file);
  return PriceStore(db).payments_recorded();
}

TEST(Crash, KillNineOfInventoryAndFastlaneDuringALoadRunLosesAndRepeatsNothing) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  Probe status(broker.uri(), "status-watch", logger);
  status.record(topics.chain + "/" + topics.store + "/status/#");
  status.bus().start();
  auto serve = [&](const std::string& service) {
    return std::make_unique<ServeProcess>(
        std::vector<std::string>{"--service", service, "--broker", broker.uri(), "--data-dir",
                                 data.file(""), "--no-stdin", "--log-level", "warning"},
        data.file(service + ".log"));
  };
  auto inventory = serve("inventory-intel");
  auto fastlane = serve("fastlane-finale");
  const std::string inventory_status = topics.status("inventory-intel");
  const std::string fastlane_status = topics.status("fastlane-finale");
  ASSERT_TRUE(wait_until([&] {
    return status.count_saying(inventory_status, "online") >= 1 &&
           status.count_saying(fastlane_status, "online") >= 1;
  }));

  apps::LoadOptions load;
  load.connection.broker = broker.uri();
  load.customers = 1500;
  load.rate = 500;
  load.send_arrivals = false;
  load.timeout_s = 30;
  auto run = std::async(std::launch::async, [&] { return apps::run_load(load, logger); });

  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  inventory->kill_now();
  ASSERT_TRUE(wait_until([&] { return status.count_saying(inventory_status, "offline") >= 1; }))
      << "the broker publishes the last will of a killed service";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  inventory->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  fastlane->kill_now();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  fastlane->start();

  const apps::LoadReport report = run.get();
  EXPECT_TRUE(report.ok()) << report.to_text();
  EXPECT_EQ(report.departures_sent, 1500);
  EXPECT_EQ(report.payments_received, 1500);
  EXPECT_EQ(report.duplicate_payments, 0);
  EXPECT_EQ(report.wrong_totals, 0);
  EXPECT_GE(status.count_saying(inventory_status, "online"), 2u) << "it came back";

  // Inventory Intel consumes departures on its own: let it drain, then stop both cleanly.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(inventory->terminate(), 0);
  EXPECT_EQ(fastlane->terminate(), 0);
  expect_stock_is_opening_minus_sold(data.file("inventory-intel.sqlite"), report);
  EXPECT_EQ(payments_in(data.file("fastlane-finale.sqlite")), 1500);
}

TEST(Crash, ABrokerRestartDuringALoadRunLosesAndRepeatsNothing) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  runtime::LiveOptions options;
  options.connection.broker = broker.uri();
  options.data_dir = data.file("");
  options.services = {"inventory-intel", "fastlane-finale"};
  runtime::LiveStore store(options, logger);
  store.start();
  ASSERT_TRUE(wait_until([&] { return store.all_ready(); }));

  apps::LoadOptions load;
  load.connection.broker = broker.uri();
  load.customers = 1200;
  load.rate = 400;
  load.send_arrivals = false;
  load.timeout_s = 40;
  auto run = std::async(std::launch::async, [&] { return apps::run_load(load, logger); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  broker.stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  broker.start();

  const apps::LoadReport report = run.get();
  EXPECT_TRUE(report.ok()) << report.to_text();
  EXPECT_EQ(report.payments_received, 1200);
  EXPECT_TRUE(logger.contains("lost the connection"));
  ASSERT_TRUE(wait_until(
      [&] {
        std::uint64_t consumed = 0;
        store.with_service("inventory-intel", [&](Service& s) { consumed = s.stats().consumed; });
        return consumed == 1200;
      },
      std::chrono::seconds(20)));
  store.stop();
  expect_stock_is_opening_minus_sold(data.file("inventory-intel.sqlite"), report);
  EXPECT_EQ(payments_in(data.file("fastlane-finale.sqlite")), 1200);
}

}  // namespace
}  // namespace eventmart::test

namespace eventmart::test {
namespace {

// Exit-gate readings on the device topic while Gate-exit Guardian is killed with -9 and
// restarted: a reading with a scan id is paid exactly once (its id cannot change with a
// redelivery); a reading without one is refused (dead-lettered), never charged. The id of
// such a reading used to depend on the time it was handled: 8,002 payments for 8,000 readings.
TEST(Crash, ExitGateReadingsUnderKillNineArePaidOnceOrRefusedNeverTwice) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  Probe probe(broker.uri(), "gate-probe", logger);
  probe.record(topics.payment_due);
  probe.record(topics.dead_letter("gate-exit-guardian"));
  probe.record(topics.chain + "/" + topics.store + "/status/#");
  ASSERT_TRUE(probe.start(3));
  auto serve = [&](const std::string& service) {
    return std::make_unique<ServeProcess>(
        std::vector<std::string>{"--service", service, "--broker", broker.uri(), "--data-dir",
                                 data.file(""), "--no-stdin", "--log-level", "warning"},
        data.file(service + ".log"));
  };
  auto fastlane = serve("fastlane-finale");
  auto gate = serve("gate-exit-guardian");
  ASSERT_TRUE(wait_until([&] {
    return probe.count_saying(topics.status("gate-exit-guardian"), "online") >= 1 &&
           probe.count_saying(topics.status("fastlane-finale"), "online") >= 1;
  }));

  constexpr int kWithId = 600;
  constexpr int kWithout = 60;
  std::atomic<bool> sending{true};
  std::thread readings([&] {
    for (int i = 0; i < kWithId + kWithout; ++i) {
      const bool with_id = i % 11 != 10;
      // Without an id, each reading's bytes differ (the same bytes are dead-lettered once).
      const std::string customer = std::to_string(with_id ? 1 + i % 40 : 1000 + i);
      const std::string line =
          "departure " + customer + " 5:1,9:2" + (with_id ? " scan=gate/" + std::to_string(i) : "");
      probe.publish(topics.exit_gate, line);
      std::this_thread::sleep_for(std::chrono::milliseconds(4));
    }
    sending = false;
  });
  for (int kill = 0; kill < 3; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    gate->kill_now();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    gate->start();
  }
  readings.join();
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.payment_due) >= kWithId; },
                         std::chrono::seconds(30)))
      << probe.count(topics.payment_due) << " payments";
  ASSERT_TRUE(
      wait_until([&] { return probe.count(topics.dead_letter("gate-exit-guardian")) >= kWithout; },
                 std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::set<std::string> departures;
  for (const Message& m : probe.messages(topics.payment_due)) {
    auto e = decode_wire(WireFormat::kCapnp, topics, m.topic, m.bytes);
    ASSERT_TRUE(e);
    departures.insert(e.value().caused_by);
  }
  EXPECT_EQ(departures.size(), static_cast<std::size_t>(kWithId)) << "one departure per reading";
  std::set<std::string> refused;  // distinct dead letters (a redelivery is dead-lettered once)
  for (const Message& m : probe.messages(topics.dead_letter("gate-exit-guardian"))) {
    EXPECT_NE(m.bytes.find("without a scan id"), std::string::npos) << m.bytes;
    refused.insert(m.bytes.substr(m.bytes.find("\"payload_base64\"")));
  }
  EXPECT_EQ(refused.size(), static_cast<std::size_t>(kWithout));
  EXPECT_EQ(gate->terminate(), 0);
  EXPECT_EQ(fastlane->terminate(), 0);
  EXPECT_EQ(payments_in(data.file("fastlane-finale.sqlite")), kWithId);
}

}  // namespace
}  // namespace eventmart::test

namespace eventmart::test {
namespace {

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A replica killed and not restarted kept receiving its share of a shared subscription: 607
// of 2,000 departures waited until it came back. Now the live replica drains what the broker
// queued for it once it has been offline for --adopt-after, and it leaves the group until it
// starts again; when it does, it takes its share again.
TEST(Crash, ADeadReplicasShareIsDrainedByTheLiveOneAndItRejoinsWhenBack) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  Probe status(broker.uri(), "status-watch", logger);
  status.record(topics.chain + "/" + topics.store + "/status/#");
  ASSERT_TRUE(status.start(1));
  auto replica = [&](const std::string& instance, const std::string& log) {
    return std::make_unique<ServeProcess>(
        std::vector<std::string>{"--service", "fastlane-finale", "--instance", instance,
                                 "--adopt-after", "2", "--broker", broker.uri(), "--data-dir",
                                 data.file(""), "--no-stdin"},
        data.file(log));
  };
  const auto online = [&](const std::string& instance, std::size_t times) {
    return wait_until(
        [&] {
          return status.count_saying(topics.status("fastlane-finale", instance), "online") >= times;
        },
        std::chrono::seconds(30));
  };
  // One after the other: starting both at once on a fresh data dir is the next test's case.
  auto a = replica("a", "a.log");
  ASSERT_TRUE(online("a", 1)) << file_text(data.file("a.log"));
  auto b = replica("b", "b.log");
  ASSERT_TRUE(online("b", 1)) << file_text(data.file("b.log"));

  b->kill_now();  // not restarted for now: its share queues at the broker
  apps::LoadOptions load;
  load.connection.broker = broker.uri();
  load.customers = 600;
  load.rate = 300;
  load.send_arrivals = false;
  load.timeout_s = 25;
  const apps::LoadReport report = apps::run_load(load, logger);
  EXPECT_TRUE(report.ok()) << report.to_text();
  EXPECT_EQ(report.payments_received, 600) << "the dead replica's share was drained";
  EXPECT_TRUE(wait_until([&] {
    return file_text(data.file("a.log")).find("drained") != std::string::npos;
  })) << file_text(data.file("a.log"));

  b = replica("b", "b2.log");
  ASSERT_TRUE(online("b", 2)) << file_text(data.file("b2.log"));
  load.customers = 200;
  load.run_id = "after-rejoin";
  const apps::LoadReport again = apps::run_load(load, logger);
  EXPECT_TRUE(again.ok()) << again.to_text();
  const std::string b_log = file_text(data.file("b2.log"));
  EXPECT_NE(b_log.find("payment due from customer"), std::string::npos)
      << "the restarted replica takes its share again";
  EXPECT_EQ(a->terminate(), 0);
  EXPECT_EQ(b->terminate(), 0);
  EXPECT_EQ(payments_in(data.file("fastlane-finale.sqlite")), 800);
}

}  // namespace
}  // namespace eventmart::test

namespace eventmart::test {
namespace {

// Two replicas started at the same moment on a fresh data dir both open and seed the shared
// database (one used to exit with "database is locked": the busy timeout came after the switch
// to WAL).
TEST(Crash, TwoReplicasStartedAtOnceOnAFreshDataDirBothComeUp) {
  Mosquitto broker;
  SharedLogger logger;
  const Topics topics;
  for (int round = 0; round < 8; ++round) {
    TempDir data;
    const auto replica = [&](const std::string& instance) {
      return std::make_unique<ServeProcess>(
          std::vector<std::string>{"--service", "inventory-intel", "--instance", instance,
                                   "--broker", broker.uri(), "--data-dir", data.file(""),
                                   "--no-stdin", "--log-level", "warning"},
          data.file(instance + ".log"));
    };
    auto a = replica("a");
    auto b = replica("b");
    Probe status(broker.uri(), "status-" + std::to_string(round), logger);
    status.record(topics.chain + "/" + topics.store + "/status/inventory-intel/#");
    ASSERT_TRUE(status.start(1));
    EXPECT_TRUE(wait_until([&] {
      return status.count_saying(topics.status("inventory-intel", "a"), "online") > 0 &&
             status.count_saying(topics.status("inventory-intel", "b"), "online") > 0;
    })) << "round "
        << round << ": " << file_text(data.file("a.log")) << file_text(data.file("b.log"));
    EXPECT_EQ(a->terminate(), 0);
    EXPECT_EQ(b->terminate(), 0);
  }
}

}  // namespace
}  // namespace eventmart::test
