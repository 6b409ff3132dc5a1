// Model-based tests of Fastlane Finale (rapidcheck/state.h): random command sequences run
// against the real service (memory bus, SQLite price table and payments ledger, crashes and
// restarts) and a plain model; after every command both agree on which departures were
// charged and how much, in integer cents. A redelivered departure is never charged again,
// even after its prices changed.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <map>
#include <set>

#include "core/codec.h"
#include "services/fastlane_finale.h"
#include "sim/bugs/broken_services.h"
#include "stateful_support.h"

namespace eventmart::test {
namespace {

struct FastlaneModel {
  std::map<Sku, std::int64_t> price_cents;
  std::map<std::string, std::int64_t> charged;  // departure id -> total, once each
  std::size_t sent = 0;

  std::int64_t total(const std::vector<LineItem>& items) const {
    std::int64_t cents = 0;
    for (const LineItem& item : items) {
      auto price = price_cents.find(item.sku);
      if (price != price_cents.end()) cents += price->second * item.quantity;  // unknown: free
    }
    return cents;
  }
};

struct FastlaneSut {
  FastlaneSut(Rig::Factory factory, std::function<std::unique_ptr<Bus>(Bus&)> wrap)
      : rig(std::string(kFastlaneFinale), std::move(factory), false, std::move(wrap)) {
    rig.probe().subscribe(rig.topics().payment_due, [this](const Delivery& d) {
      if (auto due = decode_payment_due(d.envelope.payload)) {
        payments[due.value().departure_event_id][d.envelope.event_id] = due.value().total_cents;
      }
    });
  }
  FastlaneFinale& fastlane() { return rig.service<FastlaneFinale>(); }
  Rig rig;
  // departure id -> (payment id -> total): every distinct PaymentDue seen.
  std::map<std::string, std::map<std::string, std::int64_t>> payments;
};

void expect_agreement(const FastlaneModel& model, FastlaneSut& sut) {
  RC_ASSERT(sut.rig.dead_letters() == 0u);  // every event here is sound: none refused
  RC_ASSERT(sut.payments.size() == model.charged.size());
  for (const auto& [departure, total] : model.charged) {
    auto it = sut.payments.find(departure);
    RC_ASSERT(it != sut.payments.end());             // paid ...
    RC_ASSERT(it->second.size() == 1u);              // ... exactly once ...
    RC_ASSERT(it->second.begin()->second == total);  // ... the right amount
  }
}

using Command = rc::state::Command<FastlaneModel, FastlaneSut>;

std::string event_id(const FastlaneModel& m) {
  return "departure-" + std::to_string(m.sent);
}

std::vector<LineItem> basket_from(const FastlaneModel& m) {
  std::vector<Sku> skus;
  for (const auto& [sku, price] : m.price_cents) skus.push_back(sku);
  skus.push_back(999);  // not in the price table
  const auto chosen = *rc::gen::unique<std::vector<Sku>>(rc::gen::elementOf(skus));
  std::vector<LineItem> items;
  for (Sku sku : chosen) items.push_back(LineItem{sku, *rc::gen::inRange<std::int64_t>(1, 7)});
  return items;
}

struct Depart : Command {
  std::vector<LineItem> items;
  std::optional<CrashSite> crash;  // the service dies while handling it
  explicit Depart(const FastlaneModel& m)
      : items(basket_from(m)),
        crash(*rc::gen::element(std::optional<CrashSite>{}, std::optional<CrashSite>{},
                                std::optional<CrashSite>{CrashSite::kBeforeCommit},
                                std::optional<CrashSite>{CrashSite::kAfterCommit})) {}
  void apply(FastlaneModel& m) const override {
    m.charged[event_id(m)] = m.total(items);
    ++m.sent;
  }
  void run(const FastlaneModel& m, FastlaneSut& sut) const override {
    FastlaneModel next = m;
    apply(next);
    if (crash) sut.rig.arm_crash(*crash);
    RC_ASSERT(sut.rig.publish(false, sut.rig.topics().customer_departure,
                              make_envelope(EventType::kCustomerDeparted, event_id(m), "gate", 0,
                                            "scan", CustomerDeparted{7, items})));
    expect_agreement(next, sut);
  }
  void show(std::ostream& os) const override { show_departure(os, items, crash); }
};

struct DeliverAgain : Command {
  std::size_t index;
  explicit DeliverAgain(const FastlaneModel& m)
      : index((RC_PRE(m.sent > 0u), *rc::gen::inRange<std::size_t>(0, m.sent))) {}
  void checkPreconditions(const FastlaneModel& m) const override { RC_PRE(index < m.sent); }
  void apply(FastlaneModel&) const override {}
  void run(const FastlaneModel& m, FastlaneSut& sut) const override {
    RC_ASSERT(sut.rig.deliver_again(index));
    expect_agreement(m, sut);
  }
  void show(std::ostream& os) const override { os << "DeliverAgain departure-" << index; }
};

struct ChangePrice : Command {
  Sku sku;
  std::int64_t price_cents;
  explicit ChangePrice(const FastlaneModel&)
      : sku(*rc::gen::element<Sku>(1, 2, 3)),
        // Prices that no binary fraction represents exactly, and a free item.
        price_cents(*rc::gen::element<std::int64_t>(0, 1, 10, 29, 129, 279, 999, 1999)) {}
  void apply(FastlaneModel& m) const override { m.price_cents[sku] = price_cents; }
  void run(const FastlaneModel& m, FastlaneSut& sut) const override {
    sut.fastlane().store().set_price(sku, product_name(sku), price_cents);
    expect_agreement(m, sut);
  }
  void show(std::ostream& os) const override {
    os << "ChangePrice sku " << sku << " to " << price_cents << " cents";
  }
};

struct CrashAndRestart : Command {
  explicit CrashAndRestart(const FastlaneModel&) {}
  void apply(FastlaneModel&) const override {}
  void run(const FastlaneModel& m, FastlaneSut& sut) const override {
    sut.rig.restart();
    expect_agreement(m, sut);
  }
  void show(std::ostream& os) const override { os << "CrashAndRestart"; }
};

FastlaneModel initial_model() {
  FastlaneModel m;
  m.price_cents = {{1, 129}, {2, 279}, {3, 5}};
  return m;
}

void run_fastlane_property(const Rig::Factory& factory,
                           std::function<std::unique_ptr<Bus>(Bus&)> wrap,
                           std::size_t* failing_length) {
  const FastlaneModel model = initial_model();
  FastlaneSut sut(factory, std::move(wrap));
  std::vector<Product> catalog;
  for (const auto& [sku, price] : model.price_cents) {
    catalog.push_back(Product{sku, product_name(sku), price, 10, 1, 5});
  }
  sut.fastlane().store().seed(catalog);
  const auto commands = *rc::state::gen::commands(
      model,
      rc::state::gen::execOneOfWithArgs<Depart, DeliverAgain, ChangePrice, CrashAndRestart>());
  RC_CLASSIFY(contains_command<DeliverAgain>(commands), "delivers a departure again");
  RC_CLASSIFY(contains_command<ChangePrice>(commands), "changes a price");
  run_commands(commands, model, sut, failing_length);
}

std::unique_ptr<Service> real_fastlane(const ServiceContext& c) {
  return std::make_unique<FastlaneFinale>(c);
}

RC_GTEST_PROP(FastlaneModel, TheRealServiceChargesEveryDepartureOnceAndCorrectly, ()) {
  run_fastlane_property(real_fastlane, {}, nullptr);
}

BoundedCheck check_variant(const Rig::Factory& factory,
                           std::function<std::unique_ptr<Bus>(Bus&)> wrap = {}) {
  return check_bounded(
      [&](std::size_t* failing) { run_fastlane_property(factory, wrap, failing); });
}

TEST(FastlaneModelHarness, FindsTheFloatMoneyBugWithASmallCounterexample) {
  const BoundedCheck c = check_variant(
      [](const ServiceContext& ctx) { return std::make_unique<sim::FloatMoneyFastlane>(ctx); });
  expect_caught(c, "float-money", 200, kMaxShrunkCommands);
}

TEST(FastlaneModelHarness, FindsTheNoDedupBugWithASmallCounterexample) {
  const BoundedCheck c = check_variant([](const ServiceContext& ctx) {
    return std::make_unique<sim::NoDedup<FastlaneFinale>>(ctx);
  });
  expect_caught(c, "no-dedup", 200, kMaxShrunkCommands);
}

TEST(FastlaneModelHarness, FindsTheAckBeforeCommitBugWithASmallCounterexample) {
  const BoundedCheck c = check_variant(real_fastlane, [](Bus& bus) -> std::unique_ptr<Bus> {
    return std::make_unique<sim::AckBeforeCommitBus>(bus);
  });
  expect_caught(c, "ack-before-commit", 200, kMaxShrunkCommands);
}

TEST(FastlaneModelHarness, FindsTheNoOutboxBugWithASmallCounterexample) {
  const BoundedCheck c = check_variant([](const ServiceContext& ctx) {
    return std::make_unique<sim::NoOutbox<FastlaneFinale>>(ctx);
  });
  expect_caught(c, "no-outbox", 200, kMaxShrunkCommands);
}

TEST(FastlaneModelHarness, AStandardRunReachesEveryInterestingPath) {
  const BoundedCheck c = check_bounded(
      [](std::size_t* failing) { run_fastlane_property(real_fastlane, {}, failing); }, 100, 7);
  ASSERT_FALSE(c.gave_up) << c.counterexample;
  ASSERT_FALSE(c.failed) << c.counterexample;
  EXPECT_TRUE(c.classes.count("delivers a departure again"));
  EXPECT_TRUE(c.classes.count("changes a price"));
}

TEST(FastlaneModelHarness, TheRealServicePassesTheSameBoundedCheck) {
  const BoundedCheck c = check_variant(real_fastlane);
  EXPECT_FALSE(c.gave_up) << c.counterexample;
  EXPECT_FALSE(c.failed) << c.counterexample;
}

}  // namespace
}  // namespace eventmart::test
