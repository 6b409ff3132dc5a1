// rapidcheck generators for whole-store scenarios (sim/scenario.h) and the property every
// scenario must satisfy: run it through the simulated world with the real services (or a
// bug variant) and hold every invariant. Generated scenarios shrink by removing visits,
// faults and crashes and by shrinking what remains, down to the few events that matter.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "properties/invariants.h"
#include "services/logistics_desk.h"
#include "services/service.h"
#include "sim/logistics.h"
#include "sim/scenario.h"
#include "sim/scenario_file.h"
#include "sim/world.h"

namespace eventmart::sim {

// rapidcheck shows a scenario this way in counterexamples.
inline void showValue(const Scenario& scenario, std::ostream& os) {
  print(scenario, os);
}

}  // namespace eventmart::sim

namespace eventmart::properties {

inline constexpr std::int64_t kGenMinuteUs = 60'000'000;

inline rc::Gen<std::vector<Product>> gen_store() {
  return rc::gen::exec([] {
    const int n = *rc::gen::inRange(1, 5);
    std::vector<Product> products;
    for (int sku = 1; sku <= n; ++sku) {
      Product p;
      p.sku = sku;
      p.name = "product " + std::to_string(sku);
      p.price_cents = *rc::gen::inRange<std::int64_t>(0, 1000);
      p.restock_threshold = *rc::gen::inRange<std::int64_t>(0, 6);
      p.stock = *rc::gen::inRange<std::int64_t>(0, 15);
      p.restock_quantity = p.restock_threshold + *rc::gen::inRange<std::int64_t>(1, 15);
      products.push_back(std::move(p));
    }
    return products;
  });
}

inline rc::Gen<sim::ScenarioVisit> gen_visit(int products) {
  return rc::gen::exec([products] {
    sim::ScenarioVisit v;
    v.customer_id = *rc::gen::element<CustomerId>(1, 2, 3, 900'001);  // the last: unknown card
    v.arrives_at_us = *rc::gen::inRange<std::int64_t>(0, 30 * kGenMinuteUs);
    v.shopping_us = *rc::gen::inRange<std::int64_t>(kGenMinuteUs / 6, 20 * kGenMinuteUs);
    for (Sku sku = 1; sku <= products; ++sku) {
      // About one product in three; shrinks towards an empty basket.
      if (*rc::gen::inRange(0, 3) == 2) {
        v.wanted.push_back(LineItem{sku, *rc::gen::inRange<std::int64_t>(1, 6)});
      }
    }
    return v;
  });
}

inline rc::Gen<sim::PacketFault> gen_packet_fault() {
  return rc::gen::exec([] {
    sim::PacketFault f;
    f.kind = *rc::gen::element(sim::PacketFault::Kind::kDrop, sim::PacketFault::Kind::kDuplicate,
                               sim::PacketFault::Kind::kDelay);
    // A link of one of the services, on the store bus or (Inventory Intel and the logistics
    // desk) on the logistics bus.
    const int link = *rc::gen::inRange(0, 7);
    f.bus = link < 5 ? sim::BusId::kStore : sim::BusId::kLogistics;
    // (The simulated logistics department is "logistics"; it used to be named
    // "logistics-desk" here, which matched no client: those faults never fired.)
    constexpr std::string_view kClients[] = {
        kGatewayGuardian, kHelloHelper,    kGateExitGuardian,    kInventoryIntel,
        kFastlaneFinale,  kInventoryIntel, sim::kLogisticsClient};
    f.client = std::string(kClients[link]);
    f.leg = *rc::gen::element(memory::PacketKind::kPublish, memory::PacketKind::kPuback,
                              memory::PacketKind::kDeliver, memory::PacketKind::kDeliverAck);
    f.nth = *rc::gen::inRange<std::uint64_t>(0, 40);
    f.delay_us = *rc::gen::inRange<std::int64_t>(1, 60'000);
    return f;
  });
}

inline rc::Gen<sim::ScheduledCrash> gen_crash() {
  return rc::gen::exec([] {
    sim::ScheduledCrash c;
    c.service = *rc::gen::element<std::string>(
        std::string(kGatewayGuardian), std::string(kHelloHelper), std::string(kGateExitGuardian),
        std::string(kInventoryIntel), std::string(kFastlaneFinale));
    c.at_us = *rc::gen::inRange<std::int64_t>(0, 40 * kGenMinuteUs);
    c.when =
        *rc::gen::element(sim::ScheduledCrash::When::kNow, sim::ScheduledCrash::When::kBeforeCommit,
                          sim::ScheduledCrash::When::kAfterCommit);
    return c;
  });
}

inline rc::Gen<sim::Scenario> gen_scenario() {
  return rc::gen::exec([] {
    sim::Scenario s;
    s.products = *gen_store();
    const int n = static_cast<int>(s.products.size());
    s.visits = *rc::gen::container<std::vector<sim::ScenarioVisit>>(gen_visit(n));
    s.packet_faults = *rc::gen::container<std::vector<sim::PacketFault>>(gen_packet_fault());
    s.crashes =
        *rc::gen::resize(10, rc::gen::container<std::vector<sim::ScheduledCrash>>(gen_crash()));
    s.qos = *rc::gen::weightedElement<Qos>({{4, Qos::kAtLeastOnce}, {1, Qos::kAtMostOnce}});
    return s;
  });
}

// Writes a failing scenario as a scenario file, in counterexamples/ under the working folder
// (the build's tests/ folder under ctest), named by its content; returns the command that
// replays it. Every failing case of a shrink is written; the one the failure names is the
// shrunk counterexample.
inline std::string save_counterexample(const sim::Scenario& scenario, sim::Bug bug,
                                       const std::string& found) {
  sim::ScenarioFile file;
  file.options.scenario = std::make_shared<const sim::Scenario>(scenario);
  file.options.bug = bug;
  file.found = found;
  const std::string text = sim::to_json(file);
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a of the file's text
  for (unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ULL;
  std::ostringstream name;
  name << "scenario-" << sim::bug_name(bug) << "-" << std::hex << hash << ".json";
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::current_path(ec) / "counterexamples";
  std::filesystem::create_directories(dir, ec);
  const std::filesystem::path path = dir / name.str();
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  std::string quoted = "'";  // one shell word, whatever the folder is called
  for (char c : path.string()) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return "eventmart sim --scenario " + quoted + "'";
}

// Runs `scenario` with `bug` and asserts every invariant (RC_FAIL on a violation, with the
// scenario and the violations in the log). `failing_size`, if set, receives the size of each
// failing scenario: the last one is the shrunk counterexample.
inline void check_scenario(const sim::Scenario& scenario, sim::Bug bug,
                           std::size_t* failing_size = nullptr) {
  sim::SimOptions options;
  options.scenario = std::make_shared<const sim::Scenario>(scenario);
  options.bug = bug;
  const sim::SimResult r = sim::run_simulation(options);
  const sim::FaultCounts& f = r.stats.faults;
  RC_CLASSIFY(f.dropped + f.duplicated + f.delayed > 0, "faults hit");
  RC_CLASSIFY(r.stats.duplicates_detected > 0, "duplicates detected");
  RC_CLASSIFY(r.stats.restocks_requested > 0, "restocks fired");
  RC_CLASSIFY(r.stats.crash_recoveries > 0, "crashes recovered");
  std::ostringstream violations;
  for (const InvariantResult& inv : check_all(r.history)) {
    if (!inv.held()) violations << "  " << inv.name << ": " << inv.examples.front() << "\n";
  }
  if (r.stats.handler_failures > 0)
    violations << "  handler failures: " << r.warnings.front() << "\n";
  if (violations.str().empty()) return;
  if (failing_size != nullptr) *failing_size = scenario.size();
  print(scenario, RC_LOG());
  const std::string first = violations.str().substr(2, violations.str().find('\n') - 2);
  RC_FAIL(
      "invariants violated:\n" + violations.str() + "replay: " +
      save_counterexample(
          scenario, bug, "property tests (bug " + std::string(sim::bug_name(bug)) + "): " + first) +
      "\n");
}

}  // namespace eventmart::properties
