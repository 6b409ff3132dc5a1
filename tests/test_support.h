// Shared set-up for service and transport tests: a virtual clock, an in-memory broker for the
// store bus and one for the logistics bus, and a probe client that publishes like any other
// service and records what it receives.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/codec.h"
#include "core/log.h"
#include "core/topics.h"
#include "services/service.h"
#include "sim/scheduler.h"
#include "sim/world.h"
#include "transports/memory/memory_broker.h"

namespace eventmart::test {

struct Received {
  std::string topic;
  Envelope envelope;
  bool redelivered;
};

class BusFixture : public ::testing::Test {
 protected:
  BusFixture()
      : scheduler(sim::kStoreOpensAtUs),
        store_broker(scheduler, {100}),
        logistics_broker(scheduler, {100}),
        probe(store_broker.connect("probe")),
        logistics_probe(logistics_broker.connect("logistics-probe")) {}

  ServiceContext context(memory::MemoryClient& bus, Database& db,
                         memory::MemoryClient* logistics = nullptr) {
    return ServiceContext{bus, logistics, scheduler, db, topics, logger};
  }

  // Records everything published on `filter` of the given client's bus.
  void record(memory::MemoryClient& client, const std::string& filter,
              std::vector<Received>& into) {
    client.subscribe(filter, [&into](const Delivery& d) {
      into.push_back(Received{d.topic, d.envelope, d.redelivered});
    });
  }

  // Publishes from the probe and runs the clock until everything settled.
  void publish_and_settle(memory::MemoryClient& from, const std::string& topic,
                          const Envelope& envelope) {
    from.publish(topic, envelope, Qos::kAtLeastOnce, {});
    scheduler.run_until_idle();
  }

  sim::Scheduler scheduler;
  Topics topics;
  RecordingLogger logger;
  memory::MemoryBroker store_broker;
  memory::MemoryBroker logistics_broker;
  std::unique_ptr<memory::MemoryClient> probe;
  std::unique_ptr<memory::MemoryClient> logistics_probe;
};

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "eventmart-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline CustomerDeparted departed(CustomerId customer, std::vector<LineItem> items) {
  return CustomerDeparted{customer, std::move(items)};
}

inline Envelope departure_envelope(const std::string& id, const CustomerDeparted& event) {
  return make_envelope(EventType::kCustomerDeparted, id, "gate-exit-guardian", sim::kStoreOpensAtUs,
                       "scan-" + id, event);
}

}  // namespace eventmart::test
