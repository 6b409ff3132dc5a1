// Validation at the boundary: every field of every input is checked, on both wires, and what
// fails is refused with its reason (a dead letter) before it can change stock or money.
// Each case here was a live defect: an overflowing quantity applied to stock, a JSON basket
// that wrapped around to 5 units, a NUL inside an event id, an envelope around the wrong
// event, a reused id silently dropped.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include "core/codec.h"
#include "core/events.capnp.h"
#include "core/json.h"
#include "core/json_wire.h"
#include "core/wire.h"
#include "services/fastlane_finale.h"
#include "services/inventory_intel.h"
#include "services/logistics_desk.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

// A CustomerDeparted payload as a hostile client would write it: any quantities, repeated
// skus, no checks.
std::string raw_departure(CustomerId customer, const std::vector<LineItem>& items) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::CustomerDeparted>();
  root.setCustomerId(customer);
  auto list = root.initItems(static_cast<unsigned>(items.size()));
  for (unsigned i = 0; i < items.size(); ++i) {
    list[i].setSku(items[i].sku);
    list[i].setQuantity(items[i].quantity);
  }
  auto words = capnp::messageToFlatArray(message);
  return std::string(reinterpret_cast<const char*>(words.asBytes().begin()),
                     words.asBytes().size());
}

TEST(Boundary, AQuantityBeyondTheLimitsIsRefusedByTheDecoderOfEveryEvent) {
  EXPECT_FALSE(decode_customer_departed(raw_departure(8, {{1, INT64_MAX}})));
  EXPECT_FALSE(decode_customer_departed(raw_departure(8, {{1, 1001}})));       // per line
  EXPECT_FALSE(decode_customer_departed(raw_departure(8, {{1, 1}, {1, 1}})));  // repeated sku
  std::vector<LineItem> many;
  for (Sku sku = 1; sku <= 11; ++sku) many.push_back({sku, 1000});  // 11,000 units
  EXPECT_FALSE(decode_customer_departed(raw_departure(8, many)));
  EXPECT_FALSE(decode_customer_departed(raw_departure(0, {{1, 1}})));  // customer 0
  EXPECT_FALSE(decode_customer_departed(raw_departure(8, {{kMaxSku + 1, 1}})));
  EXPECT_TRUE(decode_customer_departed(raw_departure(8, {{1, 1000}, {2, 3}})));
  EXPECT_FALSE(decode_restock_needed(encode(RestockNeeded{1, INT64_MAX, 0, 5})));
  EXPECT_FALSE(decode_stock_replenished(encode(StockReplenished{1, INT64_MAX, "r"})));
  EXPECT_TRUE(decode_stock_replenished(encode(StockReplenished{1, kMaxDeliveryUnits, "r"})));
}

TEST(Boundary, AnEnvelopeAroundAnotherEventTypeIsRefused) {
  // A CustomerArrival payload under the type CustomerDeparted would read as an empty basket.
  Envelope wrong =
      make_envelope(EventType::kCustomerArrival, "e-1", "gate", 1, "", CustomerArrival{8});
  wrong.type = EventType::kCustomerDeparted;
  auto decoded = decode_envelope(encode_envelope(wrong));
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().find("not a CustomerDeparted"), std::string::npos) << decoded.error();
  // Same pointer count, fewer data words than any RestockNeeded. (The other way round, a larger
  // struct than the type's, is how a later release's event with added fields looks: it is read,
  // tests/evolution_test.cpp; the envelope's type names the event.)
  Envelope arrival = make_envelope(EventType::kCustomerArrival, "e-2", "gateway-guardian", 1, "",
                                   CustomerArrival{8});
  arrival.type = EventType::kRestockNeeded;
  EXPECT_FALSE(decode_envelope(encode_envelope(arrival)));
}

TEST(Boundary, EventIdsAreCheckedSoTwoIdsThatDifferAfterANulCannotCollide) {
  const std::string with_nul("dep-1\0a", 7);
  Envelope e = departure_envelope(with_nul, departed(8, {{1, 1}}));
  auto decoded = decode_envelope(encode_envelope(e));
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().find("0x00"), std::string::npos) << decoded.error();
  for (const std::string& bad :
       {std::string(), std::string(129, 'a'), std::string("a b"), std::string("caf\xc3\xa9")}) {
    e.event_id = bad;
    EXPECT_FALSE(decode_envelope(encode_envelope(e))) << bad;
  }
  e.event_id = "dep-1";
  e.caused_by = "scan-1";
  e.occurred_at_us = -1;
  EXPECT_FALSE(decode_envelope(encode_envelope(e))) << "a time before the epoch";
  e.occurred_at_us = sim::kStoreOpensAtUs;
  auto sound = decode_envelope(encode_envelope(e));
  EXPECT_TRUE(sound) << sound.error();
}

TEST(Boundary, TheJsonWireChecksEveryFieldAndNeverWrapsABasket) {
  const Topics topics;
  const auto decode = [&](EventType type, const std::string& text) {
    return json_wire::decode(type, topics.customer_departure, text);
  };
  // Two lines of INT64_MAX and one of 7 used to wrap to a basket of 5 units, charged for 5.
  auto wrapped = decode(
      EventType::kCustomerDeparted,
      R"({"timestamp": "2026-11-26T03:11:26", "customer_id": 8, "items": [{"sku": 1, "quantity": 9223372036854775807}, {"sku": 1, "quantity": 9223372036854775807}, {"sku": 1, "quantity": 7}]})");
  ASSERT_FALSE(wrapped);
  EXPECT_NE(wrapped.error().find("quantity"), std::string::npos) << wrapped.error();
  EXPECT_FALSE(decode(
      EventType::kCustomerDeparted,
      R"({"timestamp": "2026-11-26T03:11:26", "customer_id": 8, "items": [{"sku": 1, "quantity": 600}, {"sku": 1, "quantity": 600}]})"))
      << "1,200 units of one sku: over the per-line limit once merged";
  EXPECT_FALSE(decode(EventType::kCustomerArrival,
                      R"({"timestamp": "2026-02-29T03:11:26", "customer_id": 8})"))
      << "2026 is not a leap year";
  EXPECT_TRUE(decode(EventType::kCustomerArrival,
                     R"({"timestamp": "2028-02-29T03:11:26", "customer_id": 8})"));
  EXPECT_FALSE(decode(EventType::kCustomerArrival,
                      R"({"timestamp": "2026-11-26T03:11:26", "customer_id": 9007199254740992})"));
  EXPECT_FALSE(decode(EventType::kCustomerArrival,
                      R"({"timestamp": "2026-11-26T03:11:26", "customer_id": 8, "event_id": 7})"))
      << "an event id that is not a string";
  EXPECT_FALSE(
      decode(EventType::kCustomerArrival,
             R"({"timestamp": "2026-11-26T03:11:26", "customer_id": 8, "event_id": "a\u0000b"})"));
  EXPECT_FALSE(decode(
      EventType::kPaymentDue,
      R"({"timestamp": "2026-11-26T03:11:26", "customer_id": 8, "amount": 1.5, "unpriced_skus": ["x"]})"));
  EXPECT_FALSE(
      decode(EventType::kStockReplenished,
             R"({"timestamp": "2026-11-26T03:11:26", "sku": 1, "quantity": 9223372036854775807})"));
  EXPECT_FALSE(decode(EventType::kCustomerArrival, "{\"timestamp\": \"\xff\", \"customer_id\": 8}"))
      << "not UTF-8";
}

TEST(Boundary, AMessageOverThePayloadLimitIsRefusedBeforeItIsParsed) {
  const Topics topics;
  InputLimits limits;
  limits.max_payload_bytes = 1024;
  const std::string big = R"({"timestamp": "2026-11-26T03:11:26", "customer_id": 8, "x": ")" +
                          std::string(2000, 'a') + "\"}";
  auto decoded = decode_wire(WireFormat::kJson, topics, topics.customer_arrival, big, limits);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().find("over the limit"), std::string::npos) << decoded.error();
  // Its dead letter keeps no more than the limit, and says how big it was and what it hashed to.
  const auto doc = json::parse(dead_letter_document("s", "t", decoded.error(), big, 0, 1024));
  ASSERT_TRUE(doc) << doc.error();
  EXPECT_EQ(json::as_int64(*doc.value().find("payload_bytes")),
            static_cast<std::int64_t>(big.size()));
  EXPECT_NE(doc.value().find("payload_truncated"), nullptr);
  EXPECT_LE(doc.value().find("payload_base64")->text.size(), 4u * 1024 / 3 + 4);
}

TEST(Boundary, WhatEventmartWritesIsValidJsonWhateverCameIn) {
  // Invalid UTF-8 in a reason (from a card a scanner read) still makes a valid document.
  const std::string doc =
      dead_letter_document("s", "t", "unreadable card '\xff\xfe'", std::string("\x00\xff", 2), 0);
  auto parsed = json::parse(doc);
  ASSERT_TRUE(parsed) << parsed.error() << "\n" << doc;
  EXPECT_EQ(parsed.value().find("payload"), nullptr) << "not UTF-8: base64 only";
}

class BoundaryServices : public BusFixture {
 protected:
  void SetUp() override {
    inventory_bus = store_broker.connect("inventory-intel");
    inventory_logistics = logistics_broker.connect("inventory-intel");
    fastlane_bus = store_broker.connect("fastlane-finale");
    inventory = std::make_unique<InventoryIntel>(
        context(*inventory_bus, inventory_db, inventory_logistics.get()));
    fastlane = std::make_unique<FastlaneFinale>(context(*fastlane_bus, fastlane_db));
    inventory->store().seed(default_store().products);
    fastlane->store().seed(default_store().products);
    inventory->start();
    fastlane->start();
    record(*probe, topics.payment_due, payments);
    record(*probe, topics.chain + "/" + topics.store + "/dead-letter/#", dead);
    scheduler.run_until_idle();
  }

  Database inventory_db{":memory:"};
  Database fastlane_db{":memory:"};
  std::unique_ptr<memory::MemoryClient> inventory_bus;
  std::unique_ptr<memory::MemoryClient> inventory_logistics;
  std::unique_ptr<memory::MemoryClient> fastlane_bus;
  std::unique_ptr<InventoryIntel> inventory;
  std::unique_ptr<FastlaneFinale> fastlane;
  std::vector<Received> payments;
  std::vector<Received> dead;
};

TEST_F(BoundaryServices, AnOverflowingDepartureIsRefusedByBothConsumersAndChangesNothing) {
  const StockRecord before = *inventory->store().find(1);
  Envelope hostile = departure_envelope("dep-max", departed(8, {}));
  hostile.payload = raw_departure(8, {{1, INT64_MAX}});
  publish_and_settle(*probe, topics.customer_departure, hostile);
  EXPECT_EQ(*inventory->store().find(1), before) << "stock untouched";
  EXPECT_TRUE(payments.empty()) << "nothing charged";
  ASSERT_EQ(dead.size(), 2u) << "each consumer dead-letters it, with its reason";
  EXPECT_NE(dead[0].envelope.payload.find("quantity"), std::string::npos);
  EXPECT_EQ(inventory->stats().consumed, 0u);
}

TEST_F(BoundaryServices, ADeliveryOfMaxUnitsIsRefusedAndStockStaysSane) {
  const StockRecord before = *inventory->store().find(1);
  publish_and_settle(*logistics_probe, topics.stock_replenished,
                     make_envelope(EventType::kStockReplenished, "delivery-max", "logistics",
                                   sim::kStoreOpensAtUs, "", StockReplenished{1, INT64_MAX, "r"}));
  EXPECT_EQ(*inventory->store().find(1), before);
  EXPECT_EQ(inventory->stats().rejected, 1u);
}

TEST_F(BoundaryServices, AnIdReusedForOtherContentIsDeadLetteredAsAConflictNotDropped) {
  publish_and_settle(*probe, topics.customer_departure,
                     departure_envelope("dep-7", departed(8, {{1, 1}})));
  ASSERT_EQ(payments.size(), 1u);
  // The same id again with another basket: not a redelivery, and not silently ignored.
  publish_and_settle(*probe, topics.customer_departure,
                     departure_envelope("dep-7", departed(8, {{2, 5}})));
  EXPECT_EQ(payments.size(), 1u);
  ASSERT_EQ(dead.size(), 2u);
  for (const Received& d : dead) {
    EXPECT_NE(d.envelope.payload.find("consumed before with other content"), std::string::npos)
        << d.envelope.payload;
  }
  // A true redelivery (same id, same content) is a plain duplicate: nothing dead-lettered.
  publish_and_settle(*probe, topics.customer_departure,
                     departure_envelope("dep-7", departed(8, {{1, 1}})));
  EXPECT_EQ(dead.size(), 2u);
  EXPECT_EQ(payments.size(), 1u);
}

TEST_F(BoundaryServices, ADepartureFullOfUnknownSkusIsLoggedOnceNotOncePerSku) {
  std::vector<LineItem> unknown;
  for (Sku sku = 100'001; sku <= 100'400; ++sku) unknown.push_back({sku, 1});
  publish_and_settle(*probe, topics.customer_departure,
                     departure_envelope("dep-unknown", departed(8, unknown)));
  std::size_t lines = 0;
  for (const auto& entry : logger.entries()) {
    if (entry.source == kInventoryIntel) ++lines;
  }
  EXPECT_EQ(lines, 1u);
  for (const auto& entry : logger.entries()) {
    if (entry.source == kInventoryIntel) {
      EXPECT_NE(entry.message.find("400 unknown skus"), std::string::npos) << entry.message;
    }
  }
}

TEST_F(BoundaryServices, TheLogisticsDeskRefusesAnAbsurdRestockOrder) {
  Database desk_db(":memory:");
  auto desk_bus = logistics_broker.connect("logistics-desk");
  LogisticsDesk desk(context(*desk_bus, desk_db, desk_bus.get()));
  desk.start();
  std::vector<Received> deliveries;
  record(*logistics_probe, topics.stock_replenished, deliveries);
  const Envelope order = make_envelope(EventType::kRestockNeeded, "restock-max", "inventory-intel",
                                       sim::kStoreOpensAtUs, "", RestockNeeded{1, INT64_MAX, 0, 5});
  publish_and_settle(*logistics_probe, topics.restock_needed, order);
  EXPECT_TRUE(deliveries.empty());
  EXPECT_EQ(desk.stats().rejected, 1u);
}

}  // namespace
}  // namespace eventmart::test
