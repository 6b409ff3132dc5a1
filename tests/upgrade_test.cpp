// An upgrade one service at a time, on the real stack (`make upgrade-test`,
// scripts/upgrade-test.sh): a store of five `serve` processes of the previous release
// ($EVENTMART_PREVIOUS_BINARY) on a real mosquitto, under load; each service in turn is stopped
// (one of them killed with -9, and the broker restarted once on the way) and started again with
// this build's binary on the same data folder. Two releases run side by side throughout, on one
// wire, and the databases are migrated as the new binary opens them. Afterwards the same
// invariants as every other run: every departure paid exactly once with the right total, the
// stock exactly the opening stock minus what was sold, every arrival consumed once by Hello
// Helper; and every database migrated to this release's schema.
#include <gtest/gtest.h>

#include <cstdlib>
#include <future>
#include <thread>

#include "apps/load.h"
#include "runtime/store_database.h"
#include "services/catalog.h"
#include "services/fastlane_finale.h"
#include "services/hello_helper.h"
#include "services/inventory_intel.h"
#include "testkit/broker_probe.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

std::int64_t scalar(Database& db, const std::string& sql) {
  Statement s = db.prepare(sql);
  return s.step() ? s.column_int64(0) : -1;
}

TEST(Upgrade, EachServiceReplacedByTheNewReleaseUnderLoadLosesAndRepeatsNothing) {
  const char* previous = std::getenv("EVENTMART_PREVIOUS_BINARY");
  ASSERT_NE(previous, nullptr) << "set EVENTMART_PREVIOUS_BINARY (scripts/upgrade-test.sh does)";
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  Probe status(broker.uri(), "status-watch", logger);
  status.record(topics.chain + "/" + topics.store + "/status/#");
  ASSERT_TRUE(status.start(1));

  const std::vector<std::string> services = {"gateway-guardian", "hello-helper",
                                             "gate-exit-guardian", "inventory-intel",
                                             "fastlane-finale"};
  std::map<std::string, std::unique_ptr<ServeProcess>> running;
  auto serve = [&](const std::string& service, const std::string& binary, const char* release) {
    return std::make_unique<ServeProcess>(
        std::vector<std::string>{"--service", service, "--broker", broker.uri(), "--data-dir",
                                 data.file(""), "--no-stdin", "--log-level", "warning"},
        data.file(service + "-" + release + ".log"),
        ServeProcess::Options{false, 0, "serve", binary});
  };
  for (const std::string& s : services) running[s] = serve(s, previous, "previous");
  const auto online_times = [&](const std::string& s) {
    return status.count_saying(topics.status(s), "online");
  };
  for (const std::string& s : services) {
    ASSERT_TRUE(wait_until([&] { return online_times(s) >= 1; }, std::chrono::seconds(20)))
        << s << " of the previous release never came online";
  }

  apps::LoadOptions load;
  load.connection.broker = broker.uri();
  load.customers = 2000;
  load.rate = 100;  // 20 s of traffic: every replacement happens under load
  load.timeout_s = 60;
  auto run = std::async(std::launch::async, [&] { return apps::run_load(load, logger); });

  std::this_thread::sleep_for(std::chrono::seconds(2));
  for (std::size_t i = 0; i < services.size(); ++i) {
    const std::string& s = services[i];
    if (i == 3) {
      running[s]->kill_now();  // a fault: the previous release dies mid-commit
    } else {
      EXPECT_EQ(running[s]->terminate(), 0) << s;
    }
    if (i == 2) {  // a fault: the broker restarts while one service is between releases
      broker.stop();
      broker.start();
    }
    running[s] = serve(s, ServeProcess::binary(), "new");
    EXPECT_TRUE(wait_until([&] { return online_times(s) >= 2; }, std::chrono::seconds(30)))
        << s << " of this release never came online";
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }

  const apps::LoadReport report = run.get();
  EXPECT_TRUE(report.ok()) << report.to_text();
  EXPECT_EQ(report.departures_sent, load.customers);
  EXPECT_EQ(report.payments_received, load.customers);
  EXPECT_EQ(report.duplicate_payments, 0);
  EXPECT_EQ(report.wrong_totals, 0);

  // Let the consumers drain, then stop them cleanly and look at their databases.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  for (const std::string& s : services) EXPECT_EQ(running[s]->terminate(), 0) << s;
  {
    Database db(data.file("inventory-intel.sqlite"));
    InventoryStore inventory(db);
    for (const Product& p : default_store().products) {
      const auto record = inventory.find(p.sku);
      ASSERT_TRUE(record.has_value());
      const auto sold = report.units_sold.count(p.sku) ? report.units_sold.at(p.sku) : 0;
      EXPECT_EQ(record->level(), p.stock - sold) << "sku " << p.sku;
    }
  }
  {
    Database db(data.file("fastlane-finale.sqlite"));
    EXPECT_EQ(PriceStore(db).payments_recorded(), load.customers);
  }
  {
    Database db(data.file("hello-helper.sqlite"));
    EXPECT_EQ(scalar(db, "SELECT count(*) FROM inbox"), load.customers)
        << "every arrival consumed once";
  }
  for (const std::string& s : services) {
    Database db(data.file(s + ".sqlite"));
    EXPECT_EQ(scalar(db, "PRAGMA user_version"), runtime::kSchemaVersion) << s << " migrated";
    EXPECT_EQ(scalar(db, "SELECT count(*) FROM eventmart_identity"), 1) << s;
  }
}

}  // namespace
}  // namespace eventmart::test
