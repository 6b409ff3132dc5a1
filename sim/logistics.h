// The logistics department, outside the store: it listens on the external logistics bus,
// answers each RestockNeeded (deduplicated by event id) by putting the units on the shelves
// after a lead time, then publishes StockReplenished.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "core/bus.h"
#include "core/clock.h"
#include "core/rng.h"
#include "core/topics.h"
#include "sim/history.h"
#include "sim/trace.h"
#include "sim/workload.h"

namespace eventmart::sim {

// The simulated logistics department's client id on the logistics bus.
inline constexpr std::string_view kLogisticsClient = "logistics";

struct LogisticsOptions {
  std::int64_t min_lead_time_us = 30 * kMinuteUs;  // order to delivery, shortest
  std::int64_t max_lead_time_us = 2 * kHourUs;     // order to delivery, longest
  std::int64_t retry_interval_us = kMinuteUs;      // resend a notice the broker did not take
};

class LogisticsModel {
 public:
  // All references must outlive the model.
  LogisticsModel(const LogisticsOptions& options, Bus& bus, Clock& clock, const Topics& topics,
                 Qos qos, Rng rng, Shelves& shelves, History& history, Trace& trace);
  void start();
  // Draws from `rng` from now on (an explorer's split, sim/recipe.h).
  void reseed(Rng rng) { rng_ = rng; }

  std::uint64_t requested() const { return requested_; }  // distinct orders received
  std::uint64_t delivered() const { return delivered_; }
  std::uint64_t rejected() const { return rejected_; }  // undecodable orders

 private:
  void on_restock_needed(const Delivery& delivery);
  void publish_until_confirmed(Envelope envelope);

  LogisticsOptions options_;
  Bus& bus_;
  Clock& clock_;
  const Topics& topics_;
  Qos qos_;
  Rng rng_;
  Shelves& shelves_;
  History& history_;
  Trace& trace_;
  std::set<std::string> orders_seen_;
  std::uint64_t requested_ = 0;
  std::uint64_t delivered_ = 0;
  std::uint64_t rejected_ = 0;
};

}  // namespace eventmart::sim
