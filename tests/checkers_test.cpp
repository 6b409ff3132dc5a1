// The invariant checkers under test: for every way an invariant can break (too much and too
// little, early and late in the history, once and twice), a small hand-made history that must
// fail and its nearest legal neighbour that must pass. A checker that misses one direction of
// a violation, or forgives one under some condition, fails here (scripts/mutants.list has a
// mutant of each such kind).
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "properties/invariants.h"

namespace eventmart::properties {
namespace {

using sim::History;
using Checker = std::function<InvariantResult(const History&)>;

// `legal` must hold and `broken`, one step away from it, must not.
void expect_pair(const Checker& check, const History& legal, const History& broken,
                 const std::string& why) {
  const InvariantResult ok = check(legal);
  EXPECT_TRUE(ok.held()) << why << ": the legal neighbour failed: "
                         << (ok.examples.empty() ? "" : ok.examples[0]);
  const InvariantResult bad = check(broken);
  EXPECT_FALSE(bad.held()) << why << ": the violation passed " << bad.name;
}

// Two customers: one bought 2 x sku 1 (129 cents each) and 1 x sku 2 (250), the other 3 x
// sku 2; both paid once. Sku 1's level went 25 -> 23 (threshold 20), sku 2's 12 -> 11 -> 8
// (threshold 10: one crossing, one order, delivered +10). Shelves and database agree.
History base() {
  History h;
  h.price_cents = {{1, 129}, {2, 250}};
  h.restock_threshold = {{1, 20}, {2, 10}};
  h.departures = {{"exit-1/1", 8, {{1, 2}, {2, 1}}, 100, "dep-1"},
                  {"exit-1/2", 9, {{2, 3}}, 200, "dep-2"}};
  h.payments = {{"pay-1", "dep-1", 8, 508, 110}, {"pay-2", "dep-2", 9, 750, 210}};
  h.stock_readings = {{1, 25, 0, 0, {}},        {2, 12, 0, 0, {}},       {1, 23, 0, 105, "dep-1"},
                      {2, 11, 0, 105, "dep-1"}, {2, 8, 0, 205, "dep-2"}, {2, 18, 0, 400, "repl-1"}};
  h.restocks = {{"order-1", 2, 206, 8}};
  h.restock_deliveries = {{"order-1", 2, 400}};
  h.final_stock = {{1, {23, 0}}, {2, {18, 0}}};
  h.final_shelves = {{1, 23}, {2, 18}};
  h.arrivals = {{"entrance-1/1", 8, "Ada Lovelace", 10, "arr-1"},
                {"entrance-1/2", 9, "", 20, "arr-2"},
                {"entrance-1/3", 8, "Ada Lovelace", 30, "arr-3"}};
  h.welcomes = {{"arr-1", 8, "Welcome, Ada Lovelace!", 11},
                {"arr-2", 9, std::string(kGenericWelcomeText), 21},
                {"arr-3", 8, "Welcome back, Ada Lovelace!", 31}};
  h.quiescent = true;
  return h;
}

TEST(Checkers, TheBaseHistoryHoldsEveryInvariant) {
  for (const InvariantResult& r : check_all(base())) {
    EXPECT_TRUE(r.held()) << r.name << ": " << (r.examples.empty() ? "" : r.examples[0]);
  }
}

// ---- stock_never_negative ---------------------------------------------------------------------

TEST(Checkers, StockNeverNegativeSeesEveryReadingFirstToLastAndTheEnd) {
  const Checker check = check_stock_never_negative;
  History legal = base(), broken = base();
  legal.stock_readings.front().stock = 0;  // the first reading: empty is legal
  broken.stock_readings.front().stock = -1;
  expect_pair(check, legal, broken, "first reading");
  legal = base(), broken = base();
  legal.stock_readings.back().stock = 0;
  broken.stock_readings.back().stock = -1;
  expect_pair(check, legal, broken, "last reading");
  legal = base(), broken = base();
  legal.stock_readings[3].shortfall = 0;
  broken.stock_readings[3].shortfall = -1;
  expect_pair(check, legal, broken, "a shortfall below zero");
  legal = base(), broken = base();
  legal.final_stock[2] = {0, 0};
  broken.final_stock[2] = {-1, 0};
  expect_pair(check, legal, broken, "the final stock");
  broken = base();
  broken.final_stock[2] = {0, -1};
  expect_pair(check, legal, broken, "the final shortfall");
}

// ---- payment_equals_basket --------------------------------------------------------------------

TEST(Checkers, APaymentOneCentTooHighOrTooLowFails) {
  const Checker check = check_payment_equals_basket;
  History high = base(), low = base();
  high.payments[0].total_cents += 1;
  low.payments[0].total_cents -= 1;
  expect_pair(check, base(), high, "a payment too high");
  expect_pair(check, base(), low, "a payment too low");
  History late = base();  // the last payment of the day, wrong
  late.payments[1].total_cents = 751;
  expect_pair(check, base(), late, "the last payment");
}

TEST(Checkers, APaymentMustCountEveryUnitNotEveryLine) {
  History per_line = base();  // 129 + 250: each line once, quantities ignored
  per_line.payments[0].total_cents = 379;
  expect_pair(check_payment_equals_basket, base(), per_line, "quantities ignored");
  History zero = base();
  zero.payments[0].total_cents = 0;
  expect_pair(check_payment_equals_basket, base(), zero, "nothing charged");
}

TEST(Checkers, EveryCopyOfAPaymentIsCheckedNotOnlyTheFirst) {
  History same = base(), changed = base();
  same.payments.push_back(same.payments[0]);  // a redelivery: the same amount
  changed.payments.push_back(changed.payments[0]);
  changed.payments.back().total_cents = 1;  // the same id, another amount
  expect_pair(check_payment_equals_basket, same, changed, "a later copy wrong");
}

TEST(Checkers, APaymentForNoDepartureFails) {
  History broken = base();
  broken.payments[1].departure_event_id = "dep-unknown";
  expect_pair(check_payment_equals_basket, base(), broken, "a payment for no departure");
}

// ---- restock_once_per_crossing ----------------------------------------------------------------

TEST(Checkers, ACrossingNeedsExactlyOneOrderNeitherNoneNorTwo) {
  const Checker check = check_restock_once_per_crossing;
  History none = base();
  none.restocks.clear();
  none.restock_deliveries.clear();
  expect_pair(check, base(), none, "a crossing without an order");
  History two = base();
  two.restocks.push_back({"order-2", 2, 300});
  two.restock_deliveries.push_back({"order-2", 2, 410});
  expect_pair(check, base(), two, "two orders for one crossing");
  History copy = base();  // the same order delivered to logistics twice: one order
  copy.restocks.push_back(copy.restocks[0]);
  EXPECT_TRUE(check(copy).held());
}

TEST(Checkers, AnOrderWithoutACrossingFails) {
  History broken = base();  // sku 1 never went below 20
  broken.restocks.push_back({"order-9", 1, 120});
  broken.restock_deliveries.push_back({"order-9", 1, 500});
  expect_pair(check_restock_once_per_crossing, base(), broken, "an order without a crossing");
}

TEST(Checkers, ALevelAtTheThresholdIsNoCrossingOneBelowIs) {
  History at = base(), below = base();
  at.stock_readings.push_back({1, 20, 0, 500, "dep-3"});  // 23 -> 20: not below 20
  below.stock_readings.push_back({1, 19, 0, 500, "dep-3"});
  expect_pair(check_restock_once_per_crossing, at, below, "one below the threshold");
}

TEST(Checkers, ACrossingLateInTheDayNeedsItsOrderToo) {
  History legal = base(), broken = base();
  for (History* h : {&legal, &broken}) {
    h->stock_readings.push_back({2, 9, 0, 900, "dep-9"});  // 18 -> 9: the second crossing
    h->final_stock[2] = {9, 0};
    h->final_shelves[2] = 9;
  }
  legal.restocks.push_back({"order-2", 2, 901, 9});
  legal.restock_deliveries.push_back({"order-2", 2, 950});
  legal.final_stock[2] = {19, 0};
  legal.final_shelves[2] = 19;
  expect_pair(check_restock_once_per_crossing, legal, broken, "the day's last crossing");
}

TEST(Checkers, AnOrderStatesTheLevelTheProductFellToNotTheThreshold) {
  History threshold = base(), above = base();
  threshold.restocks[0].stock_level = 10;  // the threshold written as the level
  above.restocks[0].stock_level = 11;      // the level before the sale
  expect_pair(check_restock_once_per_crossing, base(), threshold, "the threshold as the level");
  expect_pair(check_restock_once_per_crossing, base(), above, "the level before the crossing");
  History other = base();  // below the threshold, but not a level the product fell to
  other.restocks[0].stock_level = 7;
  expect_pair(check_restock_once_per_crossing, base(), other, "a level never recorded");
  History live = other;  // a live run reads the records only now and then: below is enough
  live.levels_by_commit = live.stock_readings;
  EXPECT_TRUE(check_restock_once_per_crossing(live).held());
}

TEST(Checkers, AnOrderNeverDeliveredOrDeliveredElsewhereFails) {
  History lost = base();
  lost.restock_deliveries.clear();
  expect_pair(check_restock_once_per_crossing, base(), lost, "an order never delivered");
  History elsewhere = base();
  elsewhere.restock_deliveries[0].sku = 1;
  expect_pair(check_restock_once_per_crossing, base(), elsewhere, "delivered to another shelf");
}

TEST(Checkers, AtQos0AMissingOrderIsAllowedASecondOneNever) {
  History legal = base(), two = base();
  legal.at_most_once = two.at_most_once = true;
  legal.restocks.clear();
  two.restocks.push_back({"order-2", 2, 300});
  expect_pair(check_restock_once_per_crossing, legal, two, "two orders at QoS 0");
}

// ---- no_product_left_short --------------------------------------------------------------------

TEST(Checkers, AProductEndingBelowItsThresholdNeedsAnOrderSinceItsLastCrossing) {
  const Checker check = check_no_product_left_short;
  History legal = base(), broken = base();
  for (History* h : {&legal, &broken}) {
    h->stock_readings.push_back({2, 9, 0, 900, "dep-9"});
    h->final_stock[2] = {9, 0};
  }
  legal.restocks.push_back({"order-2", 2, 901});  // outstanding at the end: covered
  expect_pair(check, legal, broken, "left short");
  History older = broken;  // only the order from before the last crossing
  older.restock_deliveries.clear();
  expect_pair(check, legal, older, "an order older than the last crossing");
  History at = base();  // ends exactly at the threshold: not short
  at.final_stock[2] = {10, 0};
  EXPECT_TRUE(check(at).held());
}

// ---- departure_paid_once ----------------------------------------------------------------------

TEST(Checkers, EveryDepartureIsPaidOnceNeitherNeverNorTwice) {
  const Checker check = check_departure_paid_once;
  History never_first = base(), never_last = base(), twice = base();
  never_first.payments.erase(never_first.payments.begin());
  never_last.payments.pop_back();
  twice.payments.push_back({"pay-1b", "dep-1", 8, 508, 300});
  expect_pair(check, base(), never_first, "the first departure never paid");
  expect_pair(check, base(), never_last, "the last departure never paid");
  expect_pair(check, base(), twice, "a departure charged twice");
  History redelivered = base();
  redelivered.payments.push_back(redelivered.payments[1]);
  EXPECT_TRUE(check(redelivered).held());
}

TEST(Checkers, AtQos0ALossIsCountedADoubleChargeStillFails) {
  History lost = base(), twice = base();
  lost.at_most_once = twice.at_most_once = true;
  lost.payments.pop_back();
  twice.payments.push_back({"pay-2b", "dep-2", 9, 750, 300});
  expect_pair(check_departure_paid_once, lost, twice, "a double charge at QoS 0");
  EXPECT_EQ(check_departure_paid_once(lost).lost, 1u);
}

TEST(Checkers, ADeadLetterExcusesOnlyTheDepartureItNames) {
  sim::DeadLetter dead;
  dead.service = "fastlane-finale";
  dead.event_id = "dep-2";
  dead.type = EventType::kCustomerDeparted;
  History legal = base(), broken = base();
  legal.payments.pop_back();
  legal.dead_letters = {dead};
  broken.payments.erase(broken.payments.begin());  // dep-1 unpaid, dep-2 paid
  broken.dead_letters = {dead};
  expect_pair(check_departure_paid_once, legal, broken, "a dead letter for another departure");
}

// ---- inventory_matches_shelves ----------------------------------------------------------------

TEST(Checkers, TheDatabaseMustHoldWhatTheShelvesHoldNeitherMoreNorLess) {
  const Checker check = check_inventory_matches_shelves;
  History more = base(), less = base(), owed = base(), unsettled = base();
  more.final_stock[1].stock += 1;
  less.final_stock[2].stock -= 1;
  owed.final_stock[2] = {18, 1};
  unsettled.quiescent = false;
  expect_pair(check, base(), more, "one unit more in the database");
  expect_pair(check, base(), less, "one unit less in the database");
  expect_pair(check, base(), owed, "a shortfall left unsettled");
  expect_pair(check, base(), unsettled, "a run that never settled");
}

TEST(Checkers, ABookedSaleMustBeInTheInventorysInbox) {
  History legal = base(), broken = base();
  legal.inventory_booked = std::set<std::string>{"dep-1", "dep-2"};
  broken.inventory_booked = std::set<std::string>{"dep-1"};
  expect_pair(check_inventory_matches_shelves, legal, broken, "a sale missing from the books");
}

// ---- welcome_once_per_arrival -----------------------------------------------------------------

TEST(Checkers, EveryArrivalIsWelcomedOnceNeitherNeverNorTwice) {
  const Checker check = check_welcome_once_per_arrival;
  History never = base(), twice = base();
  never.welcomes.pop_back();
  twice.welcomes.push_back({"arr-1", 8, "Welcome, Ada Lovelace!", 40});
  expect_pair(check, base(), never, "an arrival never welcomed");
  expect_pair(check, base(), twice, "an arrival welcomed twice");
  History stranger = base();
  stranger.welcomes.push_back({"arr-x", 7, "Welcome, Nobody!", 50});
  expect_pair(check, base(), stranger, "a welcome for no arrival");
}

TEST(Checkers, TheWelcomeTextsAreTheSpecificationsToTheLetter) {
  const Checker check = check_welcome_once_per_arrival;
  const std::vector<std::string> wrong_first = {"Welcome, Ada Lovelace.", "Welcome Ada Lovelace!",
                                                "Welcome, ada lovelace!", "Welcome, !"};
  for (const std::string& text : wrong_first) {
    History broken = base();
    broken.welcomes[0].text = text;
    expect_pair(check, base(), broken, "first visit as '" + text + "'");
  }
  const std::vector<std::string> wrong_back = {"Welcome back, Ada Lovelace.",
                                               "Welcome back Ada Lovelace!", "Welcome back!"};
  for (const std::string& text : wrong_back) {
    History broken = base();
    broken.welcomes[2].text = text;
    expect_pair(check, base(), broken, "later visit as '" + text + "'");
  }
  History generic = base();
  generic.welcomes[1].text = "Welcome to our store!";
  expect_pair(check, base(), generic, "an unknown card's text cut short");
}

TEST(Checkers, OneFirstVisitPerCustomerNeitherNoneNorTwoEvenWhenMessagesWereLost) {
  const Checker check = check_welcome_once_per_arrival;
  History two = base();
  two.welcomes[2].text = "Welcome, Ada Lovelace!";
  expect_pair(check, base(), two, "two first visits");
  History none = base();
  none.welcomes[0].text = "Welcome back, Ada Lovelace!";
  expect_pair(check, base(), none, "no first visit");
  // A run that lost messages may miss the first visit, never show two.
  History lossy = base(), lossy_two = base();
  lossy.at_most_once = lossy_two.at_most_once = true;
  lossy.welcomes.erase(lossy.welcomes.begin());
  lossy_two.welcomes[2].text = "Welcome, Ada Lovelace!";
  expect_pair(check, lossy, lossy_two, "two first visits at QoS 0");
  History unsettled = base(), unsettled_two = base();
  unsettled.quiescent = unsettled_two.quiescent = false;
  unsettled.welcomes.erase(unsettled.welcomes.begin());
  unsettled_two.welcomes[2].text = "Welcome, Ada Lovelace!";
  expect_pair(check, unsettled, unsettled_two, "two first visits in a run that did not settle");
}

// ---- event_id_one_cause -----------------------------------------------------------------------

TEST(Checkers, APaymentIdSettlesOneDepartureForOneAmount) {
  const Checker check = check_event_id_one_cause;
  History shared = base();  // both departures paid under one id
  shared.payments[1].event_id = "pay-1";
  expect_pair(check, base(), shared, "one payment id for two departures");
  History same_amount = base();  // two departures of the same customer, the same amount
  same_amount.payments[1] = {"pay-2", "dep-2", 8, 508, 210};
  History shared_same_amount = same_amount;
  shared_same_amount.payments[1].event_id = "pay-1";
  expect_pair(check, same_amount, shared_same_amount,
              "one payment id for two departures of one amount");
  History redelivered = base(), changed = base();
  redelivered.payments.push_back(redelivered.payments[0]);
  changed.payments.push_back(changed.payments[0]);
  changed.payments.back().total_cents += 100;
  expect_pair(check, redelivered, changed, "one payment id, two amounts");
}

TEST(Checkers, AnEventIdAnswersOneReading) {
  const Checker check = check_event_id_one_cause;
  History departures = base();
  departures.departures[1].event_id = "dep-1";
  expect_pair(check, base(), departures, "one departure id for two gate scans");
  History arrivals = base();
  arrivals.arrivals[2].event_id = "arr-1";
  expect_pair(check, base(), arrivals, "one arrival id for two entrance scans");
  History unanswered = base();  // scans never answered have no id: no collision
  unanswered.departures[0].event_id.clear();
  unanswered.departures[1].event_id.clear();
  EXPECT_TRUE(check(unanswered).held());
}

}  // namespace
}  // namespace eventmart::properties
