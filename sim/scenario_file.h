// Scenario files: one simulated run as a readable JSON file, replayed with
// `eventmart sim --scenario FILE`. Two forms:
//  - a seeded run: the seed and the options (customers, products, hours, the faults or
//    "swarm", durability, bug). The day, its faults and its trace come from the seed, so the
//    replay is exact: the same trace hash.
//  - an explicit scenario (sim/scenario.h), as the property tests generate and shrink them:
//    the store's products, every visit with its basket, packet faults by name and crashes.
// Either may say what it once found ("found"): the regression corpus (tests/regressions/).
//
// {"eventmart_scenario": 1, "found": "...", "seed": 317, "bug": "none", "durability": "full",
//  "customers": 2000, "products": 100, "hours": 12, "faults": "swarm"}
//
// {"eventmart_scenario": 1, "seed": 1, "bug": "no-dedup", "qos": 1,
//  "store": [{"sku": 1, "name": "Tea", "price_cents": 129, "stock": 20,
//             "restock_threshold": 5, "restock_quantity": 10}],
//  "visits": [{"customer": 3, "arrives_at_us": 0, "shopping_us": 60000000,
//              "wanted": [{"sku": 1, "quantity": 2}]}],
//  "packet_faults": [{"fault": "duplicate", "bus": "store", "leg": "deliver",
//                     "client": "inventory-intel", "nth": 0}],
//  "crashes": [{"service": "fastlane-finale", "at_us": 30000000, "when": "before-commit"}]}
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/codec.h"
#include "sim/world.h"

namespace eventmart::sim {

inline constexpr int kScenarioFileVersion = 1;

struct ScenarioFile {
  SimOptions options;  // options.scenario is set for an explicit scenario
  bool swarm = false;  // a seeded run whose faults and kind of day the seed draws (with_swarm)
  std::string found;   // what this run once found (a bug, by name and how); may be empty
  // With a bug variant: the invariants its run violated when saved, which a replay must
  // violate too (the harness still catches the bug). Empty for the real services: a replay
  // must hold every invariant.
  std::vector<std::string> violates;
};

// The file's text: pretty-printed JSON, one key per line, ending in a newline.
std::string to_json(const ScenarioFile& file);

// Reads a file's text. Errors name the key and what was wrong with it ("visits[2].wanted[0]:
// quantity must be an integer 1..1000"). Refused too: an unknown key, a sku twice in the store
// or in a basket, a visit wanting what the store does not stock, a fault or crash naming a
// client without a link, `violates` without a bug. Not checked here: the options' ranges
// (sim::validate) and `violates`' names (the invariants live in properties/).
Result<ScenarioFile> parse_scenario_file(std::string_view text);

}  // namespace eventmart::sim
