// properties/: each checker holds on a correct history and fails on a hand-made violation.
#include "properties/invariants.h"

#include <gtest/gtest.h>

namespace eventmart::properties {
namespace {

using sim::History;

// One customer bought 2 x sku 1 (129 cents) and was charged once; the level went 25 -> 23
// with threshold 20; the shelves and the database agree at the end.
History good_history() {
  History h;
  h.price_cents = {{1, 129}};
  h.restock_threshold = {{1, 20}};
  h.departures = {{"exit-1/1", 8, {{1, 2}}, 100, "dep-1"}};
  h.payments = {{"pay-1", "dep-1", 8, 258, 200}};
  h.stock_readings = {{1, 25, 0, 0}, {1, 23, 0, 150}};
  h.final_stock = {{1, {23, 0}}};
  h.final_shelves = {{1, 23}};
  h.quiescent = true;
  return h;
}

TEST(Invariants, AllHoldOnACorrectHistory) {
  for (const InvariantResult& r : check_all(good_history())) {
    EXPECT_TRUE(r.held()) << r.name << ": " << (r.examples.empty() ? "" : r.examples[0]);
  }
  EXPECT_EQ(check_all(good_history()).size(), 5u);
}

TEST(Invariants, NegativeStockInAnyReadingIsCaught) {
  History h = good_history();
  h.stock_readings.push_back({1, -1, 0, 300});
  const InvariantResult r = check_stock_never_negative(h);
  EXPECT_EQ(r.violations, 1u);
  EXPECT_NE(r.examples.at(0).find("sku 1"), std::string::npos);
}

TEST(Invariants, APaymentThatDiffersFromTheBasketIsCaught) {
  History h = good_history();
  h.payments[0].total_cents = 257;  // a cent lost to rounding
  const InvariantResult r = check_payment_equals_basket(h);
  EXPECT_EQ(r.violations, 1u);
  EXPECT_NE(r.examples.at(0).find("258"), std::string::npos);
}

TEST(Invariants, APaymentForADepartureNobodyMadeIsCaught) {
  History h = good_history();
  h.payments.push_back({"pay-x", "dep-unknown", 9, 100, 300});
  EXPECT_EQ(check_payment_equals_basket(h).violations, 1u);
}

TEST(Invariants, TheSamePaymentDeliveredTwiceIsNotADoubleCharge) {
  History h = good_history();
  h.payments.push_back(h.payments[0]);  // at-least-once delivery of the same event
  EXPECT_TRUE(check_departure_paid_once(h).held());
  EXPECT_TRUE(check_payment_equals_basket(h).held());
}

TEST(Invariants, TwoDistinctPaymentsForOneDepartureAreADoubleCharge) {
  History h = good_history();
  h.payments.push_back({"pay-2", "dep-1", 8, 258, 300});
  const InvariantResult r = check_departure_paid_once(h);
  EXPECT_EQ(r.violations, 1u);
  EXPECT_NE(r.examples.at(0).find("charged 2 times"), std::string::npos);
}

TEST(Invariants, ADepartureWithoutPaymentIsCaught) {
  History h = good_history();
  h.payments.clear();
  const InvariantResult r = check_departure_paid_once(h);
  EXPECT_EQ(r.violations, 1u);
  EXPECT_NE(r.examples.at(0).find("never paid"), std::string::npos);
}

TEST(Invariants, ACrossingWithoutARestockIsCaught) {
  History h = good_history();
  h.stock_readings.push_back({1, 19, 0, 300});  // 23 -> 19 crosses below 20
  EXPECT_EQ(check_restock_once_per_crossing(h).violations, 1u);
  h.restocks.push_back({"restock-1", 1, 310});
  h.restock_deliveries.push_back("restock-1");
  EXPECT_TRUE(check_restock_once_per_crossing(h).held());
}

TEST(Invariants, TwoRestocksForOneCrossingAreCaughtButOneRedeliveredIsNot) {
  History h = good_history();
  h.stock_readings.push_back({1, 19, 0, 300});
  h.stock_readings.push_back({1, 17, 0, 400});  // still below: no new crossing
  h.restocks = {{"restock-1", 1, 310}, {"restock-1", 1, 320}};
  h.restock_deliveries = {"restock-1"};
  EXPECT_TRUE(check_restock_once_per_crossing(h).held());
  h.restocks.push_back({"restock-2", 1, 410});
  h.restock_deliveries.push_back("restock-2");
  EXPECT_EQ(check_restock_once_per_crossing(h).violations, 1u);
}

TEST(Invariants, EveryNewCrossingAfterRecoveryNeedsItsOwnRestock) {
  History h = good_history();
  h.stock_readings = {{1, 25, 0, 0}, {1, 19, 0, 1}, {1, 119, 0, 2}, {1, 18, 0, 3}};
  h.restocks = {{"restock-1", 1, 1}};
  h.restock_deliveries = {"restock-1"};
  EXPECT_EQ(check_restock_once_per_crossing(h).violations, 1u);
  h.restocks.push_back({"restock-2", 1, 3});
  h.restock_deliveries.push_back("restock-2");
  EXPECT_TRUE(check_restock_once_per_crossing(h).held());
}

TEST(Invariants, ARestockNeverDeliveredByTheEndIsCaught) {
  History h = good_history();
  h.stock_readings.push_back({1, 19, 0, 300});
  h.restocks.push_back({"restock-1", 1, 310});
  const InvariantResult r = check_restock_once_per_crossing(h);
  EXPECT_EQ(r.violations, 1u);
  EXPECT_NE(r.examples.at(0).find("never delivered"), std::string::npos);
}

TEST(Invariants, AtQos0ALostDepartureIsCountedNotAViolation) {
  History h = good_history();
  h.at_most_once = true;
  h.payments.clear();
  const InvariantResult paid = check_departure_paid_once(h);
  EXPECT_TRUE(paid.held());
  EXPECT_EQ(paid.lost, 1u);
  h.final_stock[1] = {25, 0};  // the lost departure never reached the inventory either
  const InvariantResult shelves = check_inventory_matches_shelves(h);
  EXPECT_TRUE(shelves.held());
  EXPECT_FALSE(shelves.checked);
}

TEST(Invariants, AtQos0SafetyStillHolds) {
  History h = good_history();
  h.at_most_once = true;
  h.payments.push_back({"pay-2", "dep-1", 8, 258, 300});  // a double charge is never allowed
  EXPECT_EQ(check_departure_paid_once(h).violations, 1u);
  h = good_history();
  h.at_most_once = true;
  h.stock_readings.push_back({1, 19, 0, 300});  // crossing, restock lost: allowed
  EXPECT_TRUE(check_restock_once_per_crossing(h).held());
  h.restocks = {{"r1", 1, 310}, {"r2", 1, 320}};  // two for one crossing: never allowed
  EXPECT_EQ(check_restock_once_per_crossing(h).violations, 1u);
}

TEST(Invariants, ALevelBelowTheThresholdThroughAShortfallCounts) {
  History h = good_history();
  h.stock_readings.push_back({1, 0, 3, 300});  // level -3
  EXPECT_EQ(check_restock_once_per_crossing(h).violations, 1u);
}

TEST(Invariants, InventoryThatDisagreesWithTheShelvesIsCaught) {
  History h = good_history();
  h.final_stock[1] = {22, 0};
  EXPECT_EQ(check_inventory_matches_shelves(h).violations, 1u);
  h.final_stock[1] = {23, 1};  // an unsettled shortfall is a mismatch too
  EXPECT_EQ(check_inventory_matches_shelves(h).violations, 1u);
  h = good_history();
  h.final_shelves[2] = 5;  // a product the database does not know
  EXPECT_EQ(check_inventory_matches_shelves(h).violations, 1u);
}

TEST(Invariants, ARunThatNeverSettledFailsTheShelvesCheck) {
  History h = good_history();
  h.quiescent = false;
  EXPECT_FALSE(check_inventory_matches_shelves(h).held());
}

}  // namespace
}  // namespace eventmart::properties
