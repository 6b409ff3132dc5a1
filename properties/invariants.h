// The business invariants, checked over a run's History (sim/history.h). Each checker reads
// only the history, so it can be pinned by a hand-made violating history in a unit test.
//
//  stock_never_negative       every reading of Inventory Intel's database has stock >= 0
//                             and shortfall >= 0
//  payment_equals_basket      each PaymentDue equals sum(price x quantity) of the basket the
//                             customer physically carried out
//  restock_once_per_crossing  per product, distinct RestockNeeded events == downward
//                             crossings of the threshold by the recorded level; each order
//                             its own (one id for two products is a violation); every one
//                             delivered by logistics by the end of the run, to its product
//  no_product_left_short      after quiescence, no product is below its threshold without an
//                             order outstanding or delivered for it since it last crossed
//  departure_paid_once        every departure through the gate has exactly one PaymentDue
//                             (by distinct event id): none lost, none charged twice
//  inventory_matches_shelves  after quiescence the database's stock equals the units on the
//                             physical shelves, with no shortfall left unsettled
//  welcome_once_per_arrival   every accepted arrival is welcomed on the display exactly once
//                             (a redelivery shows nothing new): a known customer by name, with
//                             exactly one "Welcome" (the first visit) and "Welcome back" for
//                             the others, in the order Hello Helper took the arrivals; an
//                             unknown card with the generic welcome (the texts are stated
//                             here, kGenericWelcomeText and the two with a name, not taken
//                             from Hello Helper)
//  event_id_one_cause         an event id belongs to one cause: a departure or arrival id
//                             answers one reading, a payment id settles one departure for one
//                             amount in every copy (an id reused for another event would be
//                             dropped as a duplicate by every consumer)
//
// A dead letter (history.dead_letters: the service gave up on an event after every retry and
// published it, with the reason, on its dead-letter topic) is a visible loss: the departure it
// did not charge, the arrival it did not welcome, the stock change it did not make are counted
// in `dead_lettered`, not as violations. A departure that simply never got paid still is one.
//
// At QoS 0 (history.at_most_once) delivery is at most once, so losses are expected: a
// departure never paid is counted in `lost`, a crossing without a restock is allowed (a
// restock too many is not), and inventory_matches_shelves is not checked. Every safety
// property (never negative, never a wrong amount, never charged twice) still must hold.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/history.h"

namespace eventmart::properties {

// What a violation is about, for a report to link it to the run: the event (by id), the
// virtual time, the product. Any of them may be unknown (empty, -1, 0).
struct Evidence {
  std::string event_id;
  std::int64_t at_us = -1;
  Sku sku = 0;
};

struct InvariantResult {
  std::string name;
  std::uint64_t violations = 0;
  std::vector<std::string> examples;  // the first few violations, readable
  std::vector<Evidence> evidence;     // ... and what each is about, in the same order
  bool checked = true;     // false: does not apply to this run (a liveness check at QoS 0)
  std::uint64_t lost = 0;  // at QoS 0: what went missing without being a violation
  // Events a service dead-lettered, with a reason, after its handler failed every attempt:
  // losses an operator sees (and can replay), counted here instead of as violations.
  std::uint64_t dead_lettered = 0;

  bool held() const { return violations == 0; }
  void violate(std::string what, Evidence about = {});
};

InvariantResult check_stock_never_negative(const sim::History& history);
InvariantResult check_payment_equals_basket(const sim::History& history);
InvariantResult check_restock_once_per_crossing(const sim::History& history);
InvariantResult check_no_product_left_short(const sim::History& history);
InvariantResult check_welcome_once_per_arrival(const sim::History& history);
InvariantResult check_departure_paid_once(const sim::History& history);
InvariantResult check_inventory_matches_shelves(const sim::History& history);
InvariantResult check_event_id_one_cause(const sim::History& history);

// What an unknown card is welcomed with (the specification's text).
inline constexpr std::string_view kGenericWelcomeText =
    "Welcome to our store! Ask at the desk for a loyalty card.";

// All of the above, in the order listed.
std::vector<InvariantResult> check_all(const sim::History& history);

// True when `name` is the name of one of the invariants above.
bool is_invariant_name(std::string_view name);

}  // namespace eventmart::properties
