// An explicit scenario for one simulated run: the store, every visit with the basket the
// customer wants, and the faults by name (which packet, which crash when). Property tests
// generate and shrink scenarios; a scenario runs through the same world as a seeded day.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/bus.h"
#include "services/catalog.h"
#include "sim/trace.h"
#include "transports/memory/memory_broker.h"

namespace eventmart::sim {

struct ScenarioVisit {
  CustomerId customer_id = 1;
  std::int64_t arrives_at_us = 0;  // after opening
  std::int64_t shopping_us = 60'000'000;
  std::vector<LineItem> wanted;  // taken off the shelves at departure, as far as they hold
};

// How a scenario names a leg: "publish from", "delivery to", ...
std::string_view packet_leg_name(memory::PacketKind leg);

// A fault on one packet during opening hours: the n-th (0-based) first transmission on one leg
// of one client's link ("the 3rd delivery to inventory-intel"). Retransmissions and the copies
// a fault makes are not counted, so removing one fault leaves the packets the others name
// alone (a global packet number shifted whenever an earlier fault was removed, and shrinking
// stalled).
struct PacketFault {
  enum class Kind : std::uint8_t { kDrop, kDuplicate, kDelay };
  Kind kind = Kind::kDrop;
  BusId bus = BusId::kStore;
  std::string client;  // the service's client id
  memory::PacketKind leg = memory::PacketKind::kDeliver;
  std::uint64_t nth = 0;
  std::int64_t delay_us = 0;  // kDelay only
};

// A service's process dies at `at_us` after opening: at once, or inside the next
// transaction it runs, before or after the commit.
struct ScheduledCrash {
  enum class When : std::uint8_t { kNow, kBeforeCommit, kAfterCommit };
  std::string service;
  std::int64_t at_us = 0;
  When when = When::kNow;
};

struct Scenario {
  std::vector<Product> products;
  std::vector<ScenarioVisit> visits;
  std::vector<PacketFault> packet_faults;
  std::vector<ScheduledCrash> crashes;
  Qos qos = Qos::kAtLeastOnce;

  // Events that make the scenario: visits, packet faults and crashes.
  std::size_t size() const { return visits.size() + packet_faults.size() + crashes.size(); }
  // Opening hours long enough for every arrival and crash.
  std::int64_t open_duration_us() const;
};

// Prints the scenario as a person reads it, one event per line.
void print(const Scenario& scenario, std::ostream& os);

}  // namespace eventmart::sim
