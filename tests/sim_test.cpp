// sim/: whole store days. Determinism (same seed, same trace hash), the invariants on clean
// days, and the run options.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "core/event_id.h"
#include "core/rng.h"
#include "properties/invariants.h"
#include "sim/world.h"

namespace eventmart::sim {
namespace {

SimOptions small_day(std::uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.customers = 300;
  o.open_duration_us = 4 * kHourUs;
  return o;
}

void expect_all_invariants_hold(const SimResult& r) {
  for (const auto& inv : properties::check_all(r.history)) {
    EXPECT_TRUE(inv.held()) << "seed " << r.options.seed << ": " << inv.name << ": "
                            << (inv.examples.empty() ? "" : inv.examples[0]);
  }
}

TEST(Rng, SameSeedSameStreamAndNamedStreamsDiffer) {
  Rng a(7), b(7);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next(), b.next());
  Rng w = Rng(7).derive("workload"), f = Rng(7).derive("faults");
  EXPECT_NE(w.next(), f.next());
  EXPECT_EQ(Rng(7).derive("workload").next(), Rng(7).derive("workload").next());
}

TEST(Rng, UniformStaysInRangeAndHitsBothEnds) {
  Rng r(1);
  std::set<std::int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto v = r.uniform(-2, 2);
    ASSERT_GE(v, -2);
    ASSERT_LE(v, 2);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(r.uniform(5, 5), 5);
}

TEST(Simulation, SameSeedGivesTheSameTraceHash) {
  const SimResult a = run_simulation(small_day(42));
  const SimResult b = run_simulation(small_day(42));
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.stats.trace_entries, b.stats.trace_entries);
  EXPECT_EQ(a.stats.revenue_cents, b.stats.revenue_cents);
}

// Behaviour is pinned: a refactoring that changes what a fault-free day does (the order of
// events, a payment, a cent) changes these. Recorded before issue 10 moved the assembly into
// services/registry (which kept them); changed once since, with the same payments and revenue,
// when Hello Helper's welcome moved into its outbox (issue 11: a crash after its commit lost
// the welcome), which adds the welcome's publish and delivery to every trace. Change them only
// with a reason in the commit that does.
TEST(Simulation, FaultFreeDaysKeepTheirRecordedTraceHashesPaymentsAndRevenue) {
  struct Pinned {
    std::uint64_t seed;
    const char* trace_hash;
    std::int64_t payments;
    std::int64_t revenue_cents;
  };
  for (const Pinned& p :
       {Pinned{1, "28f1aa19b44c7869", 1000, 1376334}, Pinned{2, "e95670602b380ec2", 1000, 1295459},
        Pinned{3, "22eb02ce9d953c53", 1000, 1373946},
        Pinned{8, "5891bf87e6953513", 1000, 1284117}}) {
    SimOptions o;
    o.seed = p.seed;
    o.customers = 1000;
    const SimResult r = run_simulation(o);
    EXPECT_EQ(to_hex64(r.trace_hash), p.trace_hash) << "seed " << p.seed;
    EXPECT_EQ(r.stats.payments, p.payments) << "seed " << p.seed;
    EXPECT_EQ(r.stats.revenue_cents, p.revenue_cents) << "seed " << p.seed;
  }
}

TEST(Simulation, DifferentSeedsGiveDifferentTraceHashes) {
  std::set<std::uint64_t> hashes;
  for (std::uint64_t seed = 1; seed <= 5; ++seed)
    hashes.insert(run_simulation(small_day(seed)).trace_hash);
  EXPECT_EQ(hashes.size(), 5u);
}

TEST(Simulation, ACleanStoreDayHoldsEveryInvariantAndSettles) {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    const SimResult r = run_simulation(small_day(seed));
    expect_all_invariants_hold(r);
    EXPECT_TRUE(r.history.quiescent);
    EXPECT_EQ(r.stats.customers, 300);
    EXPECT_EQ(r.stats.arrivals, 300);
    EXPECT_EQ(r.stats.welcomes_shown, 300);
    EXPECT_EQ(r.stats.departures, 300);
    EXPECT_EQ(r.stats.payments, 300);
    EXPECT_EQ(r.stats.handler_failures, 0);
    EXPECT_EQ(r.stats.rejected_events, 0);
    EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  }
}

TEST(Simulation, ABusyDayRunsShelvesLowAndEveryRestockIsDelivered) {
  SimOptions o = small_day(9);
  o.customers = 3000;
  o.products = 20;  // few products: many threshold crossings
  const SimResult r = run_simulation(o);
  expect_all_invariants_hold(r);
  EXPECT_GT(r.stats.restocks_requested, 20);
  EXPECT_EQ(r.stats.restocks_delivered, r.stats.restocks_requested);
}

TEST(Simulation, ALargerCatalogIsGeneratedFromTheSeed) {
  SimOptions o = small_day(3);
  o.products = 250;
  const SimResult r = run_simulation(o);
  expect_all_invariants_hold(r);
  EXPECT_EQ(r.history.final_stock.size(), 250u);
  EXPECT_EQ(make_catalog(250, Rng(3)).back().sku, 250);
  EXPECT_EQ(make_catalog(250, Rng(3)).back().price_cents,
            make_catalog(250, Rng(3)).back().price_cents);
}

TEST(Simulation, AnEmptyDayIsValidAndQuiet) {
  SimOptions o = small_day(1);
  o.customers = 0;
  const SimResult r = run_simulation(o);
  expect_all_invariants_hold(r);
  EXPECT_EQ(r.stats.payments, 0);
}

// The simulator's supervisor restarts a service whose start failed as production's does: the
// delay is the RestartSec of the systemd unit the services run under.
TEST(Simulation, ARestartAfterAFailedStartWaitsAsLongAsTheSystemdUnitSays) {
  std::ifstream unit(EVENTMART_SOURCE_DIR "/deploy/systemd/eventmart@.service");
  ASSERT_TRUE(unit) << "deploy/systemd/eventmart@.service not found";
  std::stringstream text;
  text << unit.rdbuf();
  const std::string content = text.str();
  const std::string key = "\nRestartSec=";
  const std::size_t at = content.find(key);
  ASSERT_NE(at, std::string::npos) << "no RestartSec= line in the unit";
  const std::size_t end = content.find('\n', at + key.size());
  const std::string seconds = content.substr(at + key.size(), end - at - key.size());
  ASSERT_FALSE(seconds.empty());
  ASSERT_TRUE(
      std::all_of(seconds.begin(), seconds.end(), [](char c) { return c >= '0' && c <= '9'; }))
      << "RestartSec=" << seconds << " is not a plain number of seconds";
  EXPECT_EQ(std::stoll(seconds) * kSecondUs, kSupervisorRestartUs);
}

TEST(Simulation, InvalidOptionsAreRejectedWithTheReason) {
  SimOptions o;
  o.customers = -1;
  ASSERT_TRUE(validate(o));
  EXPECT_EQ(validate(o)->option, SimOption::kCustomers);
  EXPECT_THROW(run_simulation(o), std::invalid_argument);
  o = SimOptions{};
  o.products = 0;
  ASSERT_TRUE(validate(o));
  EXPECT_EQ(validate(o)->option, SimOption::kProducts);
  o = SimOptions{};
  o.store = "a/b";
  EXPECT_TRUE(validate(o));
}

}  // namespace
}  // namespace eventmart::sim
