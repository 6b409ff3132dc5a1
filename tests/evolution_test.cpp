// Both wires evolve: a store runs two releases side by side while it is upgraded one service at
// a time. A message of a later release (fields added at the end, tests/evolution/
// events_next.capnp) is consumed by this one, and a later release reads this one's messages
// with its new fields at their defaults. Before, the Cap'n Proto decoder refused any struct
// whose size differed from this build's: adding a field dead-lettered every message across the
// version boundary.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "core/codec.h"
#include "core/json_wire.h"
#include "core/wire.h"
#include "tests/evolution/events_next.capnp.h"

namespace eventmart::test {
namespace {

std::string bytes_of(capnp::MessageBuilder& message) {
  const kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  return std::string(reinterpret_cast<const char*>(words.asBytes().begin()),
                     words.asBytes().size());
}

// A message read with the later release's schema (the words kept alive with the reader).
class NextReader {
 public:
  explicit NextReader(const std::string& bytes)
      : words_(kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word))) {
    std::memcpy(words_.begin(), bytes.data(), bytes.size());
    reader_ = std::make_unique<capnp::FlatArrayMessageReader>(words_);
  }
  template <typename Root>
  typename Root::Reader root() {
    return reader_->getRoot<Root>();
  }

 private:
  kj::Array<capnp::word> words_;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
};

TEST(Evolution, EveryEventOfALaterReleaseIsReadByThisOne) {
  {
    capnp::MallocMessageBuilder m;
    auto a = m.initRoot<wire_next::CustomerArrival>();
    a.setCustomerId(8);
    a.setEntrance("north");
    auto decoded = decode_customer_arrival(bytes_of(m));
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(decoded.value().customer_id, 8);
  }
  {
    capnp::MallocMessageBuilder m;
    auto d = m.initRoot<wire_next::CustomerDeparted>();
    d.setCustomerId(8);
    auto items = d.initItems(2);
    items[0].setSku(5);
    items[0].setQuantity(2);
    items[0].setDiscountCents(10);
    items[1].setSku(7);
    items[1].setQuantity(1);
    d.setCheckoutLane(3);
    d.setReceiptNote("thanks");
    auto decoded = decode_customer_departed(bytes_of(m));
    ASSERT_TRUE(decoded) << decoded.error();
    ASSERT_EQ(decoded.value().items.size(), 2u);
    EXPECT_EQ(decoded.value().items[0].sku, 5);
    EXPECT_EQ(decoded.value().items[0].quantity, 2);
    EXPECT_EQ(decoded.value().items[1].sku, 7);
  }
  {
    capnp::MallocMessageBuilder m;
    auto p = m.initRoot<wire_next::PaymentDue>();
    p.setCustomerId(8);
    p.setTotalCents(5346);
    p.setDepartureEventId("dep-1");
    p.initUnpricedSkus(1).set(0, 44);
    p.setLoyaltyPoints(53);
    p.setCurrency("EUR");
    auto decoded = decode_payment_due(bytes_of(m));
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(decoded.value().total_cents, 5346);
    EXPECT_EQ(decoded.value().departure_event_id, "dep-1");
    EXPECT_EQ(decoded.value().unpriced_skus, std::vector<Sku>{44});
  }
  {
    capnp::MallocMessageBuilder m;
    auto r = m.initRoot<wire_next::RestockNeeded>();
    r.setSku(5);
    r.setQuantity(40);
    r.setStockLevel(3);
    r.setThreshold(4);
    r.setSupplier("acme");
    auto decoded = decode_restock_needed(bytes_of(m));
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(decoded.value().quantity, 40);
    EXPECT_EQ(decoded.value().threshold, 4);
  }
  {
    capnp::MallocMessageBuilder m;
    auto s = m.initRoot<wire_next::StockReplenished>();
    s.setSku(5);
    s.setQuantity(40);
    s.setRestockEventId("restock-1");
    s.setBatch("b-7");
    auto decoded = decode_stock_replenished(bytes_of(m));
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(decoded.value().restock_event_id, "restock-1");
  }
}

TEST(Evolution, AnEnvelopeOfALaterReleaseIsReadAndItsEventConsumed) {
  capnp::MallocMessageBuilder event;
  auto d = event.initRoot<wire_next::CustomerDeparted>();
  d.setCustomerId(8);
  auto items = d.initItems(1);
  items[0].setSku(5);
  items[0].setQuantity(2);
  d.setCheckoutLane(3);
  const std::string payload = bytes_of(event);

  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire_next::Envelope>();
  e.setEventId("gate-exit-guardian-1");
  e.setType(wire_next::EventType::CUSTOMER_DEPARTED);
  e.setSource("gate-exit-guardian");
  e.setOccurredAtUs(1795680000123456);
  e.setCausedBy("scan-1");
  e.setPayload(kj::arrayPtr(reinterpret_cast<const kj::byte*>(payload.data()), payload.size()));
  e.setTraceParent("00-abc-def-01");
  e.setSchemaRelease(2);
  const Topics topics;
  auto decoded = decode_wire(WireFormat::kCapnp, topics, topics.customer_departure, bytes_of(m));
  ASSERT_TRUE(decoded) << decoded.error();
  EXPECT_EQ(decoded.value().event_id, "gate-exit-guardian-1");
  EXPECT_EQ(decoded.value().type, EventType::kCustomerDeparted);
  auto departed = decode_customer_departed(decoded.value().payload);
  ASSERT_TRUE(departed) << departed.error();
  EXPECT_EQ(departed.value().items.at(0).quantity, 2);
}

TEST(Evolution, ALaterReleaseReadsThisOnesMessagesWithItsNewFieldsAtTheirDefaults) {
  NextReader reader(encode(PaymentDue{8, 5346, "dep-1", {44}}));
  auto p = reader.root<wire_next::PaymentDue>();
  EXPECT_EQ(p.getTotalCents(), 5346);
  EXPECT_EQ(p.getLoyaltyPoints(), 0);
  EXPECT_FALSE(p.hasCurrency());
}

TEST(Evolution, AStructSmallerThanAnyReleaseOfItsTypeIsStillRefused) {
  // A CustomerArrival (1 data word) where a RestockNeeded (4 since the first release) belongs.
  auto decoded = decode_restock_needed(encode(CustomerArrival{8}));
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().find("smaller than any RestockNeeded"), std::string::npos)
      << decoded.error();
}

TEST(Evolution, TheJsonWireReadsFieldsItDoesNotKnowAndOptionalOnesThatAreMissing) {
  const Topics topics;
  // A later release's departure: fields this one does not know, at every level.
  const std::string later =
      R"({"event_id":"d-1","customer_id":8,"timestamp":"2026-12-07T10:00:00Z",)"
      R"("items":[{"sku":5,"quantity":2,"discount_cents":10}],"checkout_lane":3,)"
      R"("trace":{"parent":"00-abc"}})";
  auto decoded = decode_wire(WireFormat::kJson, topics, topics.customer_departure, later);
  ASSERT_TRUE(decoded) << decoded.error();
  auto departed = decode_customer_departed(decoded.value().payload);
  ASSERT_TRUE(departed) << departed.error();
  EXPECT_EQ(departed.value().items.at(0).quantity, 2);
  // An earlier one's payment, without the optional fields (exact cents, unpriced skus).
  const std::string earlier =
      R"({"event_id":"p-1","customer_id":8,"amount":53.46,"timestamp":"2026-12-07T10:00:00Z"})";
  auto payment = decode_wire(WireFormat::kJson, topics, topics.payment_due, earlier);
  ASSERT_TRUE(payment) << payment.error();
  auto due = decode_payment_due(payment.value().payload);
  ASSERT_TRUE(due) << due.error();
  EXPECT_EQ(due.value().total_cents, 5346);
  EXPECT_TRUE(due.value().unpriced_skus.empty());
}

}  // namespace
}  // namespace eventmart::test
