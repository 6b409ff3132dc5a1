// properties/: each checker holds on a correct history and fails on a hand-made violation.
#include "properties/invariants.h"

#include <gtest/gtest.h>

#include <set>

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
  h.stock_readings = {{1, 25, 0, 0, {}}, {1, 23, 0, 150, {}}};
  h.final_stock = {{1, {23, 0}}};
  h.final_shelves = {{1, 23}};
  h.quiescent = true;
  return h;
}

TEST(Invariants, AllHoldOnACorrectHistory) {
  for (const InvariantResult& r : check_all(good_history())) {
    EXPECT_TRUE(r.held()) << r.name << ": " << (r.examples.empty() ? "" : r.examples[0]);
  }
  EXPECT_EQ(check_all(good_history()).size(), 8u);
}

TEST(Invariants, NegativeStockInAnyReadingIsCaught) {
  History h = good_history();
  h.stock_readings.push_back({1, -1, 0, 300, {}});
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
  h.stock_readings.push_back({1, 19, 0, 300, {}});  // 23 -> 19 crosses below 20
  EXPECT_EQ(check_restock_once_per_crossing(h).violations, 1u);
  h.restocks.push_back({"restock-1", 1, 310, 19});
  h.restock_deliveries.push_back({"restock-1", 1, 0});
  EXPECT_TRUE(check_restock_once_per_crossing(h).held());
}

TEST(Invariants, TwoRestocksForOneCrossingAreCaughtButOneRedeliveredIsNot) {
  History h = good_history();
  h.stock_readings.push_back({1, 19, 0, 300, {}});
  h.stock_readings.push_back({1, 17, 0, 400, {}});  // still below: no new crossing
  h.restocks = {{"restock-1", 1, 310, 19}, {"restock-1", 1, 320, 19}};
  h.restock_deliveries = {{"restock-1", 1, 0}};
  EXPECT_TRUE(check_restock_once_per_crossing(h).held());
  h.restocks.push_back({"restock-2", 1, 410, 19});
  h.restock_deliveries.push_back({"restock-2", 1, 0});
  EXPECT_EQ(check_restock_once_per_crossing(h).violations, 1u);
}

TEST(Invariants, EveryNewCrossingAfterRecoveryNeedsItsOwnRestock) {
  History h = good_history();
  h.stock_readings = {{1, 25, 0, 0, {}}, {1, 19, 0, 1, {}}, {1, 119, 0, 2, {}}, {1, 18, 0, 3, {}}};
  h.restocks = {{"restock-1", 1, 1, 19}};
  h.restock_deliveries = {{"restock-1", 1, 0}};
  EXPECT_EQ(check_restock_once_per_crossing(h).violations, 1u);
  h.restocks.push_back({"restock-2", 1, 3, 18});
  h.restock_deliveries.push_back({"restock-2", 1, 0});
  EXPECT_TRUE(check_restock_once_per_crossing(h).held());
}

TEST(Invariants, ARestockNeverDeliveredByTheEndIsCaught) {
  History h = good_history();
  h.stock_readings.push_back({1, 19, 0, 300, {}});
  h.restocks.push_back({"restock-1", 1, 310, 19});
  const InvariantResult r = check_restock_once_per_crossing(h);
  EXPECT_EQ(r.violations, 1u);
  EXPECT_NE(r.examples.at(0).find("never delivered"), std::string::npos);
}

// Two products crossing in one basket whose orders share an id: logistics takes the second as
// a duplicate and that product is never restocked. Every count per product still agrees; the
// shared id, the delivery to the other shelf and the product left short do not.
TEST(Invariants, TwoProductsSharingOneRestockOrderIdAreCaughtThreeWays) {
  History h = good_history();
  h.restock_threshold[2] = 10;
  h.stock_readings.push_back({2, 12, 0, 0, {}});
  h.stock_readings.push_back({1, 19, 0, 300, {}});  // both cross in one departure
  h.stock_readings.push_back({2, 9, 0, 300, {}});
  h.restocks = {{"restock-shared", 1, 310, 19}, {"restock-shared", 2, 310, 9}};
  h.restock_deliveries = {{"restock-shared", 1, 0}};  // the second one was "a duplicate"
  h.final_stock[1] = {119, 0};
  h.final_stock[2] = {9, 0};
  const InvariantResult r = check_restock_once_per_crossing(h);
  EXPECT_GE(r.violations, 2u);
  std::string all;
  for (const std::string& e : r.examples) all += e + "\n";
  EXPECT_NE(all.find("raised for 2 products"), std::string::npos) << all;
  EXPECT_NE(all.find("delivered to another product"), std::string::npos) << all;
  const InvariantResult short_of = check_no_product_left_short(h);
  ASSERT_EQ(short_of.violations, 1u);
  EXPECT_NE(short_of.examples[0].find("sku 2 ends below its threshold"), std::string::npos);

  h.restocks[1].event_id = "restock-own";  // each its own order, each delivered
  h.restock_deliveries.push_back({"restock-own", 2, 0});
  h.final_stock[2] = {109, 0};
  EXPECT_TRUE(check_restock_once_per_crossing(h).held());
  EXPECT_TRUE(check_no_product_left_short(h).held());
}

TEST(Invariants, EveryArrivalIsWelcomedOnceByNameInTheOrderShown) {
  History h = good_history();
  h.arrivals = {{"entrance-1/1", 1, "Ada Lovelace", 10, "arr-1"},
                {"entrance-1/2", 900001, "", 20, "arr-2"},
                {"entrance-1/3", 1, "Ada Lovelace", 30, "arr-3"}};
  h.welcomes = {{"arr-1", 1, "Welcome, Ada Lovelace!", 11},
                {"arr-2", 900001, std::string(kGenericWelcomeText), 21},
                {"arr-3", 1, "Welcome back, Ada Lovelace!", 31}};
  EXPECT_TRUE(check_welcome_once_per_arrival(h).held());

  History twice = h;  // a redelivered arrival shown again
  twice.welcomes.push_back({"arr-3", 1, "Welcome back, Ada Lovelace!", 40});
  EXPECT_EQ(check_welcome_once_per_arrival(twice).violations, 1u);

  History missing = h;
  missing.welcomes.pop_back();
  EXPECT_EQ(check_welcome_once_per_arrival(missing).violations, 1u);

  History wrong_name = h;
  wrong_name.welcomes[0].text = "Welcome, Grace Hopper!";
  const InvariantResult named = check_welcome_once_per_arrival(wrong_name);
  ASSERT_GE(named.violations, 1u);
  EXPECT_NE(named.examples[0].find("Grace Hopper"), std::string::npos);

  History counted_twice = h;  // the second visit shown as a first one
  counted_twice.welcomes[2].text = "Welcome, Ada Lovelace!";
  EXPECT_EQ(check_welcome_once_per_arrival(counted_twice).violations, 1u);

  History reordered = h;  // the display got the second welcome first: still one first visit
  std::swap(reordered.welcomes[0], reordered.welcomes[2]);
  EXPECT_TRUE(check_welcome_once_per_arrival(reordered).held());

  History stranger = h;  // an unknown card must get the generic welcome
  stranger.welcomes[1].text = "Welcome, 900001!";
  EXPECT_EQ(check_welcome_once_per_arrival(stranger).violations, 1u);
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
  h.stock_readings.push_back({1, 19, 0, 300, {}});  // crossing, restock lost: allowed
  EXPECT_TRUE(check_restock_once_per_crossing(h).held());
  h.restocks = {{"r1", 1, 310, 19}, {"r2", 1, 320, 19}};  // two for one crossing: never allowed
  EXPECT_EQ(check_restock_once_per_crossing(h).violations, 1u);
}

TEST(Invariants, ALevelBelowTheThresholdThroughAShortfallCounts) {
  History h = good_history();
  h.stock_readings.push_back({1, 0, 3, 300, {}});  // level -3
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

// ---- dead letters: visible losses, counted; silent ones stay violations ----------------------

sim::DeadLetter dead_letter(std::string service, std::string event_id, EventType type,
                            std::vector<LineItem> items = {}) {
  sim::DeadLetter d;
  d.service = std::move(service);
  d.event_id = std::move(event_id);
  d.type = type;
  d.reason = "handling failed 8 times; last: disk I/O error";
  d.items = std::move(items);
  return d;
}

TEST(Invariants, ADepartureDeadLetteredByFastlaneIsCountedNotAViolation) {
  History h = good_history();
  h.payments.clear();
  h.dead_letters = {dead_letter("fastlane-finale", "dep-1", EventType::kCustomerDeparted)};
  const InvariantResult r = check_departure_paid_once(h);
  EXPECT_TRUE(r.held());
  EXPECT_EQ(r.dead_lettered, 1u);
  // Dead-lettered by someone else, or applied after all: the missing payment is a violation.
  h.dead_letters[0].service = "inventory-intel";
  EXPECT_EQ(check_departure_paid_once(h).violations, 1u);
  h.dead_letters[0].service = "fastlane-finale";
  h.dead_letters[0].applied_later = true;
  EXPECT_EQ(check_departure_paid_once(h).violations, 1u);
}

TEST(Invariants, ASaleDeadLetteredByInventoryExplainsTheShelvesGapAndNothingElseDoes) {
  History h = good_history();
  h.inventory_booked = std::set<std::string>{};  // the sale never reached the books
  h.final_stock = {{1, {25, 0}}};                // so the database still has the 2 units
  EXPECT_EQ(check_inventory_matches_shelves(h).violations, 2u)
      << "the stock differs and the departure is named";
  const InvariantResult named = check_inventory_matches_shelves(h);
  EXPECT_NE(named.examples.front().find("departure exit-1/1"), std::string::npos)
      << named.examples.front();
  // Given up twice (the departure was delivered twice, both copies failed): one loss.
  h.dead_letters = {
      dead_letter("inventory-intel", "dep-1", EventType::kCustomerDeparted, {{1, 2}}),
      dead_letter("inventory-intel", "dep-1", EventType::kCustomerDeparted, {{1, 2}})};
  const InvariantResult r = check_inventory_matches_shelves(h);
  EXPECT_TRUE(r.held()) << (r.examples.empty() ? "" : r.examples[0]);
  EXPECT_EQ(r.dead_lettered, 1u);
}

TEST(Invariants, ADepartureMissingFromInventorysBooksIsNamed) {
  History h = good_history();
  h.inventory_booked = std::set<std::string>{"dep-1"};
  EXPECT_TRUE(check_inventory_matches_shelves(h).held());
  h.inventory_booked->clear();  // stock agrees by chance, but the sale was taken back
  const InvariantResult r = check_inventory_matches_shelves(h);
  ASSERT_EQ(r.violations, 1u);
  EXPECT_NE(r.examples[0].find("departure exit-1/1 (customer 8, event dep-1)"), std::string::npos)
      << r.examples[0];
}

TEST(Invariants, AnArrivalDeadLetteredByHelloHelperIsCountedNotAViolation) {
  History h = good_history();
  h.arrivals = {{"entrance-1/1", 8, "", 50, "arr-1"}};
  EXPECT_EQ(check_welcome_once_per_arrival(h).violations, 1u) << "never welcomed";
  h.dead_letters = {dead_letter("hello-helper", "arr-1", EventType::kCustomerArrival)};
  const InvariantResult r = check_welcome_once_per_arrival(h);
  EXPECT_TRUE(r.held());
  EXPECT_EQ(r.dead_lettered, 1u);
}

TEST(Invariants, ARunThatNeverSettledFailsTheShelvesCheck) {
  History h = good_history();
  h.quiescent = false;
  EXPECT_FALSE(check_inventory_matches_shelves(h).held());
}

}  // namespace
}  // namespace eventmart::properties
