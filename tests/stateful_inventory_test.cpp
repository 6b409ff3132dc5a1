// Model-based tests of Inventory Intel (rapidcheck/state.h): random command sequences run
// against the real service (memory bus, SQLite store, crashes and restarts) and against a
// plain in-memory model; after every command the two must agree on every product's stock,
// shortfall and restock state, and on the restocks raised. The same property must find a
// small counterexample for the broken variants.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <map>
#include <set>
#include <sstream>

#include "core/codec.h"
#include "services/inventory_intel.h"
#include "sim/bugs/broken_services.h"
#include "stateful_support.h"

namespace eventmart::test {
namespace {

// ---- the model ------------------------------------------------------------------------------

struct ModelProduct {
  std::int64_t stock = 0;
  std::int64_t shortfall = 0;
  std::int64_t threshold = 0;
  std::int64_t restock_quantity = 0;
  bool armed = true;
  std::int64_t restocks = 0;  // RestockNeeded raised so far
};

struct InventoryModel {
  std::map<Sku, ModelProduct> products;
  std::size_t sent = 0;  // events published so far (DeliverAgain picks one of them)

  void sell(Sku sku, std::int64_t quantity) {
    auto it = products.find(sku);
    if (it == products.end()) return;  // unknown sku: skipped by the service
    ModelProduct& p = it->second;
    const std::int64_t from_stock = std::min(p.stock, quantity);
    p.stock -= from_stock;
    p.shortfall += quantity - from_stock;
    if (p.armed && p.stock - p.shortfall < p.threshold) {
      p.armed = false;
      ++p.restocks;
    }
  }
  void replenish(Sku sku, std::int64_t quantity) {
    ModelProduct& p = products.at(sku);
    const std::int64_t settle = std::min(p.shortfall, quantity);
    p.shortfall -= settle;
    p.stock += quantity - settle;
    if (p.stock - p.shortfall >= p.threshold) p.armed = true;
  }
};

// ---- the system under test ------------------------------------------------------------------

struct InventorySut {
  explicit InventorySut(Rig::Factory factory, std::function<std::unique_ptr<Bus>(Bus&)> wrap = {})
      : rig(std::string(kInventoryIntel), std::move(factory), true, std::move(wrap)) {
    rig.logistics_probe().subscribe(rig.topics().restock_needed, [this](const Delivery& d) {
      if (auto order = decode_restock_needed(d.envelope.payload)) {
        restock_ids[order.value().sku].insert(d.envelope.event_id);
        skus_of_order[d.envelope.event_id].insert(order.value().sku);
      }
    });
  }
  InventoryIntel& inventory() { return rig.service<InventoryIntel>(); }
  Rig rig;
  std::map<Sku, std::set<std::string>> restock_ids;  // distinct RestockNeeded per sku
  // The products each order id was raised for: logistics deduplicates by id, so an id that
  // names two products loses one of the orders.
  std::map<std::string, std::set<Sku>> skus_of_order;
};

// After a command: the real service agrees with the model on everything.
void expect_agreement(const InventoryModel& model, InventorySut& sut) {
  RC_ASSERT(sut.rig.dead_letters() == 0u);  // every event here is sound: none refused
  for (const auto& [sku, p] : model.products) {
    const std::optional<StockRecord> record = sut.inventory().store().find(sku);
    RC_ASSERT(record.has_value());
    RC_ASSERT(record->stock == p.stock);
    RC_ASSERT(record->shortfall == p.shortfall);
    RC_ASSERT(record->restock_armed == p.armed);
    RC_ASSERT(static_cast<std::int64_t>(sut.restock_ids[sku].size()) == p.restocks);
  }
  for (const auto& [order, skus] : sut.skus_of_order) RC_ASSERT(skus.size() == 1u);
}

std::string event_id(const InventoryModel& model) {
  return "event-" + std::to_string(model.sent);
}

using Command = rc::state::Command<InventoryModel, InventorySut>;

std::vector<LineItem> basket_from(const InventoryModel& model) {
  // Each catalog product with even odds (so baskets often take two products at once), now
  // and then one the catalog does not know; each sku once, as the gate sends them.
  std::vector<LineItem> items;
  for (const auto& [sku, p] : model.products) {
    if (*rc::gen::inRange(0, 2) == 1) {
      items.push_back(LineItem{sku, *rc::gen::inRange<std::int64_t>(1, 9)});
    }
  }
  if (*rc::gen::inRange(0, 4) == 3) items.push_back(LineItem{999, 1});
  return items;
}

// A departure; with `crash`, the service dies while handling it (and is restarted).
struct Depart : Command {
  std::vector<LineItem> items;
  std::optional<CrashSite> crash;
  explicit Depart(const InventoryModel& m)
      : items(basket_from(m)),
        crash(*rc::gen::element(std::optional<CrashSite>{},
                                std::optional<CrashSite>{CrashSite::kBeforeCommit},
                                std::optional<CrashSite>{CrashSite::kAfterCommit})) {}
  void apply(InventoryModel& m) const override {
    for (const LineItem& item : items) m.sell(item.sku, item.quantity);
    ++m.sent;
  }
  void run(const InventoryModel& m, InventorySut& sut) const override {
    InventoryModel next = m;
    apply(next);
    if (crash) sut.rig.arm_crash(*crash);
    RC_ASSERT(sut.rig.publish(false, sut.rig.topics().customer_departure,
                              make_envelope(EventType::kCustomerDeparted, event_id(m), "gate", 0,
                                            "scan", CustomerDeparted{1, items})));
    expect_agreement(next, sut);
  }
  void show(std::ostream& os) const override { show_departure(os, items, crash); }
};

struct Replenish : Command {
  Sku sku;
  std::int64_t quantity;
  explicit Replenish(const InventoryModel& m)
      : sku(*rc::gen::elementOf(std::vector<Sku>{1, 2, 3})),
        quantity(*rc::gen::inRange<std::int64_t>(1, 60)) {}
  void apply(InventoryModel& m) const override {
    m.replenish(sku, quantity);
    ++m.sent;
  }
  void run(const InventoryModel& m, InventorySut& sut) const override {
    InventoryModel next = m;
    apply(next);
    RC_ASSERT(sut.rig.publish(true, sut.rig.topics().stock_replenished,
                              make_envelope(EventType::kStockReplenished, event_id(m), "logistics",
                                            0, "order", StockReplenished{sku, quantity, "order"})));
    expect_agreement(next, sut);
  }
  void show(std::ostream& os) const override { os << "Replenish sku " << sku << " +" << quantity; }
};

struct DeliverAgain : Command {
  std::size_t index;
  explicit DeliverAgain(const InventoryModel& m)
      : index((RC_PRE(m.sent > 0u), *rc::gen::inRange<std::size_t>(0, m.sent))) {}
  void checkPreconditions(const InventoryModel& m) const override { RC_PRE(index < m.sent); }
  void apply(InventoryModel&) const override {}  // at-least-once: nothing changes
  void run(const InventoryModel& m, InventorySut& sut) const override {
    RC_ASSERT(sut.rig.deliver_again(index));
    expect_agreement(m, sut);
  }
  void show(std::ostream& os) const override { os << "DeliverAgain event-" << index; }
};

struct CrashAndRestart : Command {
  explicit CrashAndRestart(const InventoryModel&) {}
  void apply(InventoryModel&) const override {}
  void run(const InventoryModel& m, InventorySut& sut) const override {
    sut.rig.restart();
    expect_agreement(m, sut);
  }
  void show(std::ostream& os) const override { os << "CrashAndRestart"; }
};

// Three products stocked a few units above small thresholds, so a departure often takes one
// or two of them below theirs (two at once is where orders could share an id).
InventoryModel initial_model() {
  InventoryModel m;
  m.products[1] = ModelProduct{8, 0, 5, 20, true, 0};
  m.products[2] = ModelProduct{5, 0, 3, 10, true, 0};
  m.products[3] = ModelProduct{2, 0, 4, 15, false, 0};  // opens below its threshold
  return m;
}

std::vector<Product> catalog(const InventoryModel& m) {
  std::vector<Product> products;
  for (const auto& [sku, p] : m.products) {
    products.push_back(
        Product{sku, product_name(sku), 100, p.stock, p.threshold, p.restock_quantity});
  }
  return products;
}

// Runs one generated command sequence against a fresh service built by `factory`.
// `last_failing_length` receives the length of each failing sequence (the last one is the
// shrunk counterexample).
void run_inventory_property(const Rig::Factory& factory,
                            std::function<std::unique_ptr<Bus>(Bus&)> wrap,
                            std::size_t* last_failing_length) {
  const InventoryModel model = initial_model();
  InventorySut sut(factory, std::move(wrap));
  sut.inventory().store().seed(catalog(model));
  const auto commands = *rc::state::gen::commands(
      model, rc::state::gen::execOneOfWithArgs<Depart, Replenish, DeliverAgain, CrashAndRestart>());
  RC_CLASSIFY(contains_command<DeliverAgain>(commands), "delivers an event again");
  RC_CLASSIFY(std::any_of(commands.begin(), commands.end(),
                          [](const auto& c) {
                            const auto* depart = dynamic_cast<const Depart*>(c.get());
                            return depart != nullptr && depart->crash.has_value();
                          }),
              "crashes inside a transaction");
  run_commands(commands, model, sut, last_failing_length);
}

std::unique_ptr<Service> real_inventory(const ServiceContext& c) {
  return std::make_unique<InventoryIntel>(c);
}

RC_GTEST_PROP(InventoryModel, TheRealServiceAgreesWithTheModelAfterEveryCommand, ()) {
  run_inventory_property(real_inventory, {}, nullptr);
}

// ---- the harness can fail: each broken variant is caught, with a small counterexample ----

BoundedCheck check_variant(const Rig::Factory& factory,
                           std::function<std::unique_ptr<Bus>(Bus&)> wrap = {}) {
  return check_bounded(
      [&](std::size_t* failing) { run_inventory_property(factory, wrap, failing); });
}

TEST(InventoryModelHarness, FindsTheNoDedupBugWithASmallCounterexample) {
  const BoundedCheck c = check_variant([](const ServiceContext& ctx) {
    return std::make_unique<sim::NoDedup<InventoryIntel>>(ctx);
  });
  expect_caught(c, "no-dedup", 200, kMaxShrunkCommands);
}

TEST(InventoryModelHarness, FindsTheRestockEveryEventBugWithASmallCounterexample) {
  const BoundedCheck c = check_variant([](const ServiceContext& ctx) {
    return std::make_unique<sim::RestockEveryEventInventory>(ctx);
  });
  expect_caught(c, "restock-every-event", 200, kMaxShrunkCommands);
}

TEST(InventoryModelHarness, FindsTheAckBeforeCommitBugWithASmallCounterexample) {
  const BoundedCheck c = check_variant(real_inventory, [](Bus& bus) -> std::unique_ptr<Bus> {
    return std::make_unique<sim::AckBeforeCommitBus>(bus);
  });
  expect_caught(c, "ack-before-commit", 200, kMaxShrunkCommands);
}

TEST(InventoryModelHarness, FindsTheNoOutboxBugWithASmallCounterexample) {
  const BoundedCheck c = check_variant([](const ServiceContext& ctx) {
    return std::make_unique<sim::NoOutbox<InventoryIntel>>(ctx);
  });
  expect_caught(c, "no-outbox", 200, kMaxShrunkCommands);
}

TEST(InventoryModelHarness, FindsRestockOrdersSharingAnIdWithASmallCounterexample) {
  const BoundedCheck c = check_variant([](const ServiceContext& ctx) {
    return std::make_unique<sim::SharedRestockIdInventory>(ctx);
  });
  expect_caught(c, "shared-restock-id", 200, kMaxShrunkCommands);
}

TEST(InventoryModelHarness, AStandardRunReachesEveryInterestingPath) {
  const BoundedCheck c = check_bounded(
      [](std::size_t* failing) { run_inventory_property(real_inventory, {}, failing); }, 100, 7);
  ASSERT_FALSE(c.gave_up) << c.counterexample;
  ASSERT_FALSE(c.failed) << c.counterexample;
  EXPECT_TRUE(c.classes.count("delivers an event again"));
  EXPECT_TRUE(c.classes.count("crashes inside a transaction"));
}

TEST(InventoryModelHarness, TheRealServicePassesTheSameBoundedCheck) {
  const BoundedCheck c = check_variant(real_inventory);
  EXPECT_FALSE(c.gave_up) << c.counterexample;
  EXPECT_FALSE(c.failed) << c.counterexample;
}

}  // namespace
}  // namespace eventmart::test
