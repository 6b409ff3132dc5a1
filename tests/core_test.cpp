// core/: topic matching, topic naming, derived event ids, the Cap'n Proto codecs.
#include <gtest/gtest.h>

#include "core/codec.h"
#include "core/event_id.h"
#include "core/topic_filter.h"
#include "core/topics.h"

namespace eventmart {
namespace {

TEST(TopicMatching, ExactFilterMatchesOnlyTheSameTopic) {
  EXPECT_TRUE(topic_matches("a/b/c", "a/b/c"));
  EXPECT_FALSE(topic_matches("a/b/c", "a/b"));
  EXPECT_FALSE(topic_matches("a/b", "a/b/c"));
  EXPECT_FALSE(topic_matches("a/b/c", "a/b/d"));
  EXPECT_FALSE(topic_matches("A/b", "a/b"));  // case-sensitive
}

TEST(TopicMatching, PlusMatchesExactlyOneLevelIncludingAnEmptyOne) {
  EXPECT_TRUE(topic_matches("a/+/c", "a/b/c"));
  EXPECT_TRUE(topic_matches("a/+", "a/"));  // the empty level after the slash
  EXPECT_TRUE(topic_matches("+/+", "/b"));
  EXPECT_FALSE(topic_matches("a/+", "a"));
  EXPECT_FALSE(topic_matches("a/+", "a/b/c"));
  EXPECT_TRUE(topic_matches("+", "a"));
  EXPECT_FALSE(topic_matches("+", "/a"));
}

TEST(TopicMatching, HashMatchesTheParentAndEveryLevelBelow) {
  EXPECT_TRUE(topic_matches("a/#", "a"));
  EXPECT_TRUE(topic_matches("a/#", "a/b"));
  EXPECT_TRUE(topic_matches("a/#", "a/b/c/d"));
  EXPECT_TRUE(topic_matches("#", "a/b"));
  EXPECT_TRUE(topic_matches("a/+/#", "a/b"));
  EXPECT_FALSE(topic_matches("a/b/#", "a"));
  EXPECT_FALSE(topic_matches("a/#", "b/a"));
}

TEST(TopicMatching, WildcardsAtTheFirstLevelDoNotMatchDollarTopics) {
  EXPECT_FALSE(topic_matches("#", "$SYS/broker/uptime"));
  EXPECT_FALSE(topic_matches("+/broker/uptime", "$SYS/broker/uptime"));
  EXPECT_TRUE(topic_matches("$SYS/#", "$SYS/broker/uptime"));
  EXPECT_TRUE(topic_matches("$SYS/+/uptime", "$SYS/broker/uptime"));
}

TEST(TopicMatching, InvalidFiltersAndTopicsNeverMatch) {
  EXPECT_FALSE(is_valid_topic_filter(""));
  EXPECT_FALSE(is_valid_topic_filter("a/#/b"));  // '#' not last
  EXPECT_FALSE(is_valid_topic_filter("a#"));     // '#' not a whole level
  EXPECT_FALSE(is_valid_topic_filter("a/b+"));   // '+' not a whole level
  EXPECT_FALSE(is_valid_topic_filter(std::string("a\0b", 3)));
  EXPECT_TRUE(is_valid_topic_filter("+/+/#"));
  EXPECT_TRUE(is_valid_topic_filter("/"));
  EXPECT_FALSE(is_valid_topic_name("a/+"));
  EXPECT_FALSE(is_valid_topic_name("a/#"));
  EXPECT_FALSE(is_valid_topic_name(""));
  EXPECT_FALSE(is_valid_topic_name(std::string(65536, 'a')));
  EXPECT_TRUE(is_valid_topic_name(std::string(65535, 'a')));
  EXPECT_FALSE(topic_matches("a/#/b", "a/x/b"));
  EXPECT_FALSE(topic_matches("a/+", "a/+"));  // a wildcard in a topic name is invalid
}

TEST(Topics, FollowTheReferenceLayoutAndKeepLogisticsApart) {
  const Topics t("spectrum-grocers", "fresh-frontier");
  EXPECT_EQ(t.customer_arrival, "spectrum-grocers/fresh-frontier/customer-arrival");
  EXPECT_EQ(t.customer_departure, "spectrum-grocers/fresh-frontier/customer-departure");
  EXPECT_EQ(t.payment_due, "spectrum-grocers/fresh-frontier/payment-due");
  EXPECT_EQ(t.restock_needed, "logistics/spectrum-grocers/fresh-frontier/restock-needed");
  EXPECT_EQ(t.stock_replenished, "logistics/spectrum-grocers/fresh-frontier/stock-replenished");
  EXPECT_EQ(t.dead_letter("hello-helper"),
            "spectrum-grocers/fresh-frontier/dead-letter/hello-helper");
  EXPECT_TRUE(topic_matches("spectrum-grocers/+/customer-arrival", t.customer_arrival));
}

TEST(Topics, RejectChainOrStoreNamesThatAreNotOneLevel) {
  EXPECT_THROW(Topics("a/b", "store"), std::invalid_argument);
  EXPECT_THROW(Topics("chain", "+"), std::invalid_argument);
  EXPECT_THROW(Topics("", "store"), std::invalid_argument);
}

TEST(EventIds, DerivedIdsAreStableAndDependOnCauseServiceAndDiscriminator) {
  const std::string id = derive_event_id("exit-1/7", "fastlane-finale");
  EXPECT_EQ(id, derive_event_id("exit-1/7", "fastlane-finale"));
  EXPECT_NE(id, derive_event_id("exit-1/8", "fastlane-finale"));
  EXPECT_NE(id, derive_event_id("exit-1/7", "inventory-intel"));
  EXPECT_NE(derive_event_id("e", "s", "restock/1"), derive_event_id("e", "s", "restock/2"));
  EXPECT_EQ(id.rfind("fastlane-finale-", 0), 0u);
  EXPECT_EQ(id.size(), std::string("fastlane-finale-").size() + 16);
}

TEST(EventIds, StableHashIsPinnedSoTracesReplayAcrossBuilds) {
  // These values are part of the replay contract: a failing seed recorded today must give
  // the same trace hash after a rebuild on another machine.
  EXPECT_EQ(to_hex64(stable_hash("eventmart")), "5f762a834f873fdc");
  EXPECT_NE(stable_hash("eventmart", 1), stable_hash("eventmart", 2));
  EXPECT_EQ(derive_event_id("exit-1/1", "fastlane-finale"), "fastlane-finale-08fa168c8a0841a2");
}

TEST(Codec, EveryEventRoundTrips) {
  const CustomerArrival arrival{42};
  EXPECT_EQ(decode_customer_arrival(encode(arrival)).value(), arrival);
  const CustomerDeparted departed{8, {{59, 1}, {68, 2}}};
  EXPECT_EQ(decode_customer_departed(encode(departed)).value(), departed);
  const PaymentDue due{8, 5346, "gate-exit-guardian-00", {77}};
  EXPECT_EQ(decode_payment_due(encode(due)).value(), due);
  const RestockNeeded restock{3, 120, 19, 20};
  EXPECT_EQ(decode_restock_needed(encode(restock)).value(), restock);
  const StockReplenished replenished{3, 120, "inventory-intel-00"};
  EXPECT_EQ(decode_stock_replenished(encode(replenished)).value(), replenished);
}

// The inbox tells a redelivery (same content) from an id reused for another event (a conflict)
// by this hash: every field must be in it, or a conflicting event passes as a duplicate.
TEST(Codec, EveryFieldOfAnEventChangesItsContentHash) {
  const CustomerDeparted departed{8, {{1, 2}, {7, 3}}};
  std::vector<CustomerDeparted> others(5, departed);
  others[0].customer_id = 9;
  others[1].items[0].sku = 2;
  others[2].items[1].quantity = 4;
  others[3].items.pop_back();
  others[4].items.push_back({9, 1});
  for (const CustomerDeparted& other : others) {
    EXPECT_NE(content_hash(other), content_hash(departed));
  }
  EXPECT_EQ(content_hash(CustomerDeparted{8, {{1, 2}, {7, 3}}}), content_hash(departed));

  const PaymentDue due{8, 1234, "dep-1", {5}};
  std::vector<PaymentDue> dues(4, due);
  dues[0].customer_id = 9;
  dues[1].total_cents = 1235;
  dues[2].departure_event_id = "dep-2";
  dues[3].unpriced_skus = {6};
  for (const PaymentDue& other : dues) EXPECT_NE(content_hash(other), content_hash(due));

  const RestockNeeded order{3, 50, 9, 10};
  std::vector<RestockNeeded> orders(4, order);
  orders[0].sku = 4;
  orders[1].quantity = 51;
  orders[2].stock_level = 8;
  orders[3].threshold = 11;
  for (const RestockNeeded& other : orders) EXPECT_NE(content_hash(other), content_hash(order));

  const StockReplenished delivery{3, 50, "order-1"};
  std::vector<StockReplenished> deliveries(3, delivery);
  deliveries[0].sku = 4;
  deliveries[1].quantity = 49;
  deliveries[2].restock_event_id = "order-2";
  for (const StockReplenished& other : deliveries) {
    EXPECT_NE(content_hash(other), content_hash(delivery));
  }
  EXPECT_NE(content_hash(CustomerArrival{8}), content_hash(CustomerArrival{9}));
}

TEST(Codec, EnvelopeRoundTripsWithItsPayload) {
  const Envelope envelope = make_envelope(EventType::kPaymentDue, "id-1", "fastlane-finale", 123,
                                          "cause-1", PaymentDue{1, 250, "cause-1", {}});
  auto decoded = decode_envelope(encode_envelope(envelope));
  ASSERT_TRUE(decoded) << decoded.error();
  EXPECT_EQ(decoded.value(), envelope);
}

TEST(Codec, MalformedBytesAreAnErrorNotACrash) {
  EXPECT_FALSE(decode_customer_departed(""));
  EXPECT_FALSE(decode_customer_departed("not capnp"));  // 9 bytes: not whole words
  auto garbage = decode_customer_departed(std::string(16, '\xff'));
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().find("CustomerDeparted"), std::string::npos);
  EXPECT_FALSE(decode_envelope(std::string(64, '\x01')));
}

TEST(Codec, ContractViolationsAreRejectedWithTheReason) {
  auto zero = decode_customer_departed(encode(CustomerDeparted{1, {{5, 0}}}));
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().find("quantity 0"), std::string::npos);
  auto twice = decode_customer_departed(encode(CustomerDeparted{1, {{5, 1}, {5, 2}}}));
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().find("listed twice"), std::string::npos);
  EXPECT_FALSE(decode_restock_needed(encode(RestockNeeded{1, 0, 0, 0})));
  EXPECT_FALSE(decode_stock_replenished(encode(StockReplenished{1, -3, ""})));
  EXPECT_FALSE(decode_payment_due(encode(PaymentDue{1, -1, "x", {}})));
  // Wrong type: a departure's bytes read as an envelope without an id.
  EXPECT_FALSE(decode_envelope(encode(CustomerArrival{1})));
}

}  // namespace
}  // namespace eventmart
