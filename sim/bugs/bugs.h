// Deliberately broken variants of the services, so anyone can watch the harness catch them
// (`eventmart sim --bug NAME`). They live here, apart from the real services, and are built
// only into the simulator. Each overrides one seam of a real service (services/service.h,
// inventory_intel.h, fastlane_finale.h) or wraps its bus.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/registry.h"

namespace eventmart::sim {

enum class Bug : std::uint8_t {
  kNone,
  kNoDedup,            // Inventory Intel skips its inbox: a redelivered event is applied again
  kAckBeforeCommit,    // consumers' deliveries are acknowledged before the transaction commits
  kRestockEveryEvent,  // Inventory Intel restocks on every sale below the threshold
  kNoOutbox,           // consumers commit, then publish directly: a crash in between loses it
  kFloatMoney,         // Fastlane Finale sums prices as double currency units, truncates to cents
  kSharedRestockId,    // one basket's restock orders share an event id: logistics drops all but one
  kRelaySkipsFailed,   // the outbox relay treats a failed publish as settled and deletes it
  kNoSync,             // the services' databases never sync (synchronous=OFF)
  // Deep: each needs two rare events in sequence (BugInfo::deep).
  kCatchUpAcksEarly,      // after a late delivery, consumers acknowledge before committing
  kCatchUpDefersInbox,    // after a late delivery, Inventory Intel records events after commit
  kCatchUpSkipsSync,      // after a late delivery, consumers stop syncing for two minutes
  kCatchUpHoldsRestocks,  // after a late delivery, Inventory Intel holds restock orders in memory
};

struct BugInfo {
  Bug bug;
  std::string_view name;
  std::string_view what;             // what is broken
  std::string_view expected_caught;  // the invariant that catches it
  // Needs two rare events in sequence: fails fewer than 1 in 1,000 default swarm seeds
  // (docs/simulation.md, "The bug zoo"), where the explorer should beat the swarm.
  bool deep = false;
};

// Every bug, in a fixed order (`--bug list`).
const std::vector<BugInfo>& all_bugs();
std::optional<Bug> parse_bug(std::string_view name);
std::string_view bug_name(Bug bug);

// The factory hook that builds the variant (services/registry.h); null for Bug::kNone.
const ServiceVariant* variant_of(Bug bug);
// The variant for services on a real broker (`serve --bug`, test build only): the same as
// variant_of, except where the simulated one leans on the simulator's crash (ack-before-commit
// defers its handlers instead, so a real kill -9 shows it).
const ServiceVariant* live_variant_of(Bug bug);

}  // namespace eventmart::sim
