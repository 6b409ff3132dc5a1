// What a simulation run records for the invariant checkers (properties/): the ground truth
// of the physical store and what the services were observed to do. Checkers read only this,
// so a hand-made History can pin each checker down in a unit test.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/events.h"

namespace eventmart::sim {

// Ground truth: a customer walked out through the exit gate with this basket.
struct DepartureTruth {
  std::string scan_id;  // the gate's reading
  CustomerId customer_id = 0;
  std::vector<LineItem> basket;
  std::int64_t at_us = 0;
  // The CustomerDeparted id Gate-exit Guardian answered the gate's scanner with; empty if
  // the scan was never answered.
  std::string event_id;
};

// Ground truth: a customer's card was read at the entrance and the reading accepted.
struct ArrivalTruth {
  std::string scan_id;
  CustomerId customer_id = 0;
  // The customer's name in the loyalty database; empty for an unknown card.
  std::string name;
  std::int64_t at_us = 0;
  // The CustomerArrival id Gateway Guardian answered the scanner with.
  std::string event_id;
};

// What the entrance display showed, in the order it showed it.
struct ShownWelcome {
  std::string arrival_event_id;  // the arrival it welcomes
  CustomerId customer_id = 0;
  std::string text;
  std::int64_t at_us = 0;
};

// A PaymentDue event as seen by the payment terminal (every delivery, duplicates included).
struct ObservedPayment {
  std::string event_id;
  std::string departure_event_id;
  CustomerId customer_id = 0;
  std::int64_t total_cents = 0;
  std::int64_t at_us = 0;
};

// Inventory Intel's record of one product, read from its database right after a committed
// transaction touched it (or at the start of the run).
struct StockReading {
  Sku sku = 0;
  std::int64_t stock = 0;
  std::int64_t shortfall = 0;
  std::int64_t at_us = 0;
  // The delivery whose committed transaction this reading follows (empty at the start).
  std::string event_id;
};

// A RestockNeeded event as seen by logistics (every delivery, duplicates included).
struct ObservedRestock {
  std::string event_id;
  Sku sku = 0;
  std::int64_t at_us = 0;
  std::int64_t stock_level = 0;  // the level the order says the product fell to
};

// Logistics unloaded an order's units onto a product's shelf.
struct RestockDelivery {
  std::string order_id;  // the RestockNeeded it answered
  Sku sku = 0;           // the shelf the units went to
  std::int64_t at_us = 0;
};

// A delivery a service dead-lettered after its handler failed every attempt (HandlerRetry):
// a visible loss, with its reason, that an operator can act on.
struct DeadLetter {
  std::string service;
  std::string event_id;
  EventType type = EventType::kCustomerArrival;
  std::string reason;
  std::int64_t at_us = 0;
  // The units the event would have moved: a departure's basket, a delivery's units.
  std::vector<LineItem> items;
  // The service consumed the event after all (a duplicate of it came later and was applied).
  bool applied_later = false;
};

struct FinalStock {
  std::int64_t stock = 0;
  std::int64_t shortfall = 0;
};

struct History {
  std::map<Sku, std::int64_t> price_cents;        // the prices Fastlane Finale knows
  std::map<Sku, std::int64_t> restock_threshold;  // the catalog's thresholds
  std::vector<DepartureTruth> departures;
  std::vector<ArrivalTruth> arrivals;  // accepted entrance readings
  std::vector<ShownWelcome> welcomes;  // the entrance display, in order
  std::int64_t junk_published = 0;     // malformed events a rogue client published
  std::vector<ObservedPayment> payments;
  // Inventory Intel's records as read from its database: in the simulator after every commit
  // (in commit order), in a live run sampled while it runs and at the end.
  std::vector<StockReading> stock_readings;
  // Where the records were not read after every commit (a live run): the level after each
  // commit, in commit order, rebuilt from what the inventory consumed (stock = the level,
  // shortfall 0), for the crossings. Unset: the crossings come from stock_readings.
  std::optional<std::vector<StockReading>> levels_by_commit;
  std::vector<ObservedRestock> restocks;
  // At the end of the run (after quiescence): the database and the physical shelves.
  std::map<Sku, FinalStock> final_stock;
  std::map<Sku, std::int64_t> final_shelves;
  bool quiescent = false;  // the run reached a state with nothing left in flight
  // QoS 0: delivery is at most once, so a lost event is expected. The liveness checks
  // (departure paid, inventory matches shelves, restock raised) then count, not fail.
  bool at_most_once = false;
  std::vector<RestockDelivery> restock_deliveries;  // what logistics delivered, per order
  std::vector<DeadLetter> dead_letters;             // in the order they were given up
  // Events the configuration lets go, visibly, as QoS 0 losses are (the reason says which): a
  // broker dropped them because their client's session expired while it was away (a long
  // outage), or the service refused them as older than its inbox can tell a redelivery from a
  // first delivery (services/service.h, max_event_age_us; the world predicts which from the
  // event's age, independently of the service).
  std::vector<DeadLetter> expected_losses;
  // At the end of the run: which departures (by event id) Inventory Intel's inbox holds, i.e.
  // whose sale it booked. Unset in a history that did not read it.
  std::optional<std::set<std::string>> inventory_booked;
};

}  // namespace eventmart::sim
