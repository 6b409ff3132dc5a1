// eventmart on a 3-node RabbitMQ 3.10 cluster (deploy/rabbitmq/cluster.sh), label "cluster":
// Inventory Intel and Fastlane Finale as `eventmart serve` processes, each given the three
// nodes in its own order (so they sit on different nodes), MQTT 3.1.1, durable sessions in
// quorum queues; `eventmart load` on a third node. Every run must pay every departure once,
// with Inventory Intel consuming each once and its stock matching what was sold, through a
// node killed with -9 (and rejoining) and a node paused with SIGSTOP.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "apps/load.h"
#include "core/log.h"
#include "services/catalog.h"
#include "services/inventory_intel.h"
#include "testkit/broker_probe.h"
#include "testkit/rabbit_cluster.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

class Cluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new RabbitCluster(); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->ok()) << "the cluster did not start"; }

  // Inventory Intel first on node 1, Fastlane Finale on node 2, each with the others after.
  void start_services() {
    const std::vector<std::pair<std::string, std::vector<int>>> services = {
        {"inventory-intel", {1, 2, 3}}, {"fastlane-finale", {2, 3, 1}}};
    for (const auto& [service, order] : services) {
      serves_.push_back(std::make_unique<ServeProcess>(
          std::vector<std::string>{"--service", service, "--data-dir", data_.path(), "--no-stdin",
                                   "--mqtt-version", "3.1.1", "--broker", cluster_->brokers(order),
                                   "--username", service, "--password", cluster_->password(service),
                                   "--log-level", "warning"},
          data_.file(service + ".log")));  // started by the constructor
    }
    std::this_thread::sleep_for(std::chrono::seconds(3));  // connected and subscribed
  }

  apps::LoadReport load(std::int64_t customers, std::uint64_t seed) {
    apps::LoadOptions o;
    o.connection.version = mqtt::MqttVersion::k311;
    o.connection.broker = cluster_->brokers({3, 1});
    o.connection.username = "load";
    o.connection.password = cluster_->password("load");
    o.customers = customers;
    o.rate = 400;
    o.seed = seed;
    o.timeout_s = 60;
    o.linger_s = 2;
    return apps::run_load(o, logger_);
  }

  // Inventory Intel consumed every departure once, and its stock is what was sold.
  void expect_inventory_matches(const apps::LoadReport& report) {
    // Inventory Intel consumes the departures on its own, and may still be behind.
    const auto consumed = [&] {
      Database db(data_.file("inventory-intel.sqlite"));
      Statement count = db.prepare("SELECT count(*) FROM inbox");
      count.step();
      return count.column_int64(0);
    };
    const auto started = std::chrono::steady_clock::now();
    wait_until([&] { return consumed() >= report.departures_sent; }, std::chrono::seconds(120));
    std::printf("inventory-intel done %.1f s after the last payment\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    std::this_thread::sleep_for(std::chrono::seconds(1));  // a copy would show now
    for (auto& s : serves_) s->terminate();
    if (consumed() != report.departures_sent) {
      std::ifstream log(data_.file("inventory-intel.log"));
      std::cout << "inventory-intel's log:\n" << log.rdbuf();
    }
    EXPECT_EQ(consumed(), report.departures_sent) << "each departure consumed once";
    Database db(data_.file("inventory-intel.sqlite"));
    InventoryStore stock(db);
    for (const Product& p : default_store().products) {
      const auto sold = report.units_sold.find(p.sku);
      const std::int64_t units = sold == report.units_sold.end() ? 0 : sold->second;
      const auto record = stock.find(p.sku);
      ASSERT_TRUE(record.has_value()) << p.sku;
      EXPECT_EQ(record->stock, p.stock - units) << "sku " << p.sku;
    }
  }

  static RabbitCluster* cluster_;
  TempDir data_;
  SharedLogger logger_;
  std::vector<std::unique_ptr<ServeProcess>> serves_;
};

RabbitCluster* Cluster::cluster_ = nullptr;

void expect_paid_once(const apps::LoadReport& r, std::int64_t customers) {
  EXPECT_TRUE(r.ok()) << r.to_text();
  EXPECT_EQ(r.departures_sent, customers);
  EXPECT_EQ(r.payments_received, customers);
  EXPECT_EQ(r.missing_payments, 0);
  EXPECT_EQ(r.duplicate_payments, 0);
}

TEST_F(Cluster, AStoreSpreadOverThreeNodesPaysEveryDepartureOnce) {
  start_services();
  const apps::LoadReport r = load(2000, 1);
  expect_paid_once(r, 2000);
  expect_inventory_matches(r);
}

// kill -9 of the node Fastlane Finale is connected to, in the middle of the run: it goes on
// to the next node, the quorum queue of its session still holds what was queued for it.
TEST_F(Cluster, KillingTheNodeOfAServiceMidRunLosesAndDoublesNothing) {
  start_services();
  std::thread killer([] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    cluster_->kill(2);
  });
  const apps::LoadReport r = load(2000, 2);
  killer.join();
  expect_paid_once(r, 2000);
  expect_inventory_matches(r);
  ASSERT_EQ(cluster_->start(2), 0) << "the node starts again";
  EXPECT_TRUE(wait_until([] { return cluster_->all_running(); }, std::chrono::seconds(60)))
      << "and rejoins the cluster";
}

// A node paused with SIGSTOP (a stalled machine) for 8 s in the middle of a run, then resumed.
TEST_F(Cluster, ANodePausedAndResumedMidRunLosesAndDoublesNothing) {
  start_services();
  std::thread pauser([] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    cluster_->signal(1, SIGSTOP);
    std::this_thread::sleep_for(std::chrono::seconds(8));
    cluster_->signal(1, SIGCONT);
  });
  const apps::LoadReport r = load(2000, 3);
  pauser.join();
  expect_paid_once(r, 2000);
  expect_inventory_matches(r);
  EXPECT_TRUE(wait_until([] { return cluster_->all_running(); }, std::chrono::seconds(60)));
}

}  // namespace
}  // namespace eventmart::test
