// The JSON wire format: messages exactly as the reference implementation sends them are
// consumed; eventmart's messages parse as the reference formats; money is exact cents.
#include "core/json_wire.h"

#include <gtest/gtest.h>

#include "core/codec.h"
#include "core/json.h"

namespace eventmart {
namespace {

const std::string kArrivalTopic = "spectrum-grocers/fresh-frontier/customer-arrival";
const std::string kDepartureTopic = "spectrum-grocers/fresh-frontier/customer-departure";
const std::string kPaymentTopic = "spectrum-grocers/fresh-frontier/payment-due";

TEST(Json, ParsesDocumentsAndKeepsNumbersAsWritten) {
  auto doc = json::parse(
      R"( {"a": [1, -2.50, 3e2], "b": {"c": null, "d": true}, "s": "x\"\u00e9\ud83d\ude00"} )");
  ASSERT_TRUE(doc) << doc.error();
  const json::Value& v = doc.value();
  ASSERT_EQ(v.find("a")->items.size(), 3u);
  EXPECT_EQ(v.find("a")->items[1].text, "-2.50");
  EXPECT_EQ(v.find("b")->find("c")->kind, json::Value::Kind::kNull);
  EXPECT_TRUE(v.find("b")->find("d")->boolean);
  EXPECT_EQ(v.find("s")->text, "x\"\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(v.find("missing"), nullptr);
}

TEST(Json, RejectsMalformedDocumentsWithThePosition) {
  for (const char* bad : {"", "{", "{\"a\" 1}", "{\"a\": 01}", "[1,]", "{\"a\": 1} x", "\"\\q\"",
                          "\"a\nb\"", "{\"a\": -}", "[1.]", "\"\\ud800\"", "tru"}) {
    auto doc = json::parse(bad);
    EXPECT_FALSE(doc) << bad;
    if (!doc) {
      EXPECT_NE(doc.error().find("at byte"), std::string::npos) << doc.error();
    }
  }
  EXPECT_FALSE(json::parse(std::string(100, '[') + std::string(100, ']')));  // too deep
}

TEST(Json, AmountsBecomeExactCentsOrNothing) {
  const auto cents = [](const char* text) { return json::as_cents(json::parse(text).value()); };
  EXPECT_EQ(cents("53.46"), 5346);
  EXPECT_EQ(cents("5"), 500);
  EXPECT_EQ(cents("5.5"), 550);
  EXPECT_EQ(cents("0.07"), 7);
  EXPECT_EQ(cents("5.555"), std::nullopt);  // no rounding of money
  EXPECT_EQ(cents("-1.00"), std::nullopt);
  EXPECT_EQ(cents("1e2"), std::nullopt);
  EXPECT_EQ(cents("\"5\""), std::nullopt);
  EXPECT_EQ(cents("92233720368547758.08"), std::nullopt);  // overflows int64 cents
}

TEST(JsonWire, TimestampsRoundTripAtMicrosecondPrecision) {
  const auto at = json_wire::parse_timestamp("2026-11-26T03:11:26.745261");
  ASSERT_TRUE(at);
  EXPECT_EQ(json_wire::format_timestamp(*at), "2026-11-26T03:11:26.745261");
  EXPECT_EQ(*json_wire::parse_timestamp("2026-11-26T03:11:26Z"),
            *json_wire::parse_timestamp("2026-11-26T03:11:26.000000"));
  EXPECT_EQ(*json_wire::parse_timestamp("1970-01-01T00:00:00.5"), 500'000);
  EXPECT_EQ(json_wire::format_timestamp(1'795'680'000'000'000), "2026-11-26T08:00:00.000000");
  for (const char* bad : {"2026-13-01T00:00:00", "2026-11-26", "2026-11-26T03:11:26.1234567",
                          "2026-11-26T03:11:26+02:00", "yesterday"}) {
    EXPECT_FALSE(json_wire::parse_timestamp(bad)) << bad;
  }
}

TEST(JsonWire, ConsumesTheReferenceArrival) {
  const std::string msg = R"({"timestamp": "2026-11-26T03:11:26.745261", "customer_id": 2})";
  auto e = json_wire::decode(EventType::kCustomerArrival, kArrivalTopic, msg);
  ASSERT_TRUE(e) << e.error();
  EXPECT_EQ(decode_customer_arrival(e.value().payload).value().customer_id, 2);
  EXPECT_EQ(json_wire::format_timestamp(e.value().occurred_at_us), "2026-11-26T03:11:26.745261");
}

TEST(JsonWire, ConsumesTheReferenceDepartureWithOneIdPerUnit) {
  const std::string msg =
      R"({"timestamp": "2026-11-26T03:11:26.745261", "customer_id": 8, "product_ids": [59, 52, 47, 11, 68, 68]})";
  auto e = json_wire::decode(EventType::kCustomerDeparted, kDepartureTopic, msg);
  ASSERT_TRUE(e) << e.error();
  EXPECT_EQ(decode_customer_departed(e.value().payload).value(),
            (CustomerDeparted{8, {{59, 1}, {52, 1}, {47, 1}, {11, 1}, {68, 2}}}));
}

TEST(JsonWire, ConsumesTheReferencePaymentAsExactCents) {
  const std::string msg =
      R"({"timestamp": "2026-11-26T03:11:26.745261", "customer_id": 8, "amount": 53.46})";
  auto e = json_wire::decode(EventType::kPaymentDue, kPaymentTopic, msg);
  ASSERT_TRUE(e) << e.error();
  EXPECT_EQ(decode_payment_due(e.value().payload).value().total_cents, 5346);
}

TEST(JsonWire, AReferenceMessageGetsAnIdFromTopicAndPayload) {
  const std::string a = R"({"timestamp": "2026-11-26T03:11:26.745261", "customer_id": 2})";
  const std::string b = R"({"timestamp": "2026-11-26T03:11:27.000000", "customer_id": 2})";
  const auto id = [](const std::string& topic, const std::string& msg) {
    return json_wire::decode(EventType::kCustomerArrival, topic, msg).value().event_id;
  };
  EXPECT_EQ(id(kArrivalTopic, a), id(kArrivalTopic, a));  // a redelivery deduplicates
  EXPECT_NE(id(kArrivalTopic, a), id(kArrivalTopic, b));
  EXPECT_NE(id(kArrivalTopic, a), id("other-chain/store/customer-arrival", a));
}

TEST(JsonWire, UnknownFieldsAreIgnored) {
  const std::string msg =
      R"({"timestamp": "2026-11-26T03:11:26.745261", "customer_id": 2, "firmware": "1.2", "extra": {"x": [1]}})";
  EXPECT_TRUE(json_wire::decode(EventType::kCustomerArrival, kArrivalTopic, msg));
}

TEST(JsonWire, MalformedMessagesSayWhatIsWrong) {
  const auto error = [](EventType type, const std::string& msg) {
    auto e = json_wire::decode(type, "t/s/x", msg);
    return e ? std::string("accepted") : e.error();
  };
  EXPECT_NE(error(EventType::kCustomerArrival, "not json").find("JSON:"), std::string::npos);
  EXPECT_NE(error(EventType::kCustomerArrival, "[1]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error(EventType::kCustomerArrival, R"({"customer_id": 2})").find("\"timestamp\""),
            std::string::npos);
  EXPECT_NE(error(EventType::kCustomerArrival,
                  R"({"timestamp": "2026-11-26T03:11:26", "customer_id": "2"})")
                .find("\"customer_id\" must be an integer"),
            std::string::npos);
  EXPECT_NE(
      error(EventType::kCustomerDeparted,
            R"({"timestamp": "2026-11-26T03:11:26", "customer_id": 8, "product_ids": [1, 0]})")
          .find("product id"),
      std::string::npos);
  EXPECT_NE(error(EventType::kPaymentDue,
                  R"({"timestamp": "2026-11-26T03:11:26", "customer_id": 8, "amount": 1.005})")
                .find("at most two decimals"),
            std::string::npos);
  EXPECT_NE(
      error(
          EventType::kPaymentDue,
          R"({"timestamp": "2026-11-26T03:11:26", "customer_id": 8, "amount": 1.00, "total_cents": 99})")
          .find("disagree"),
      std::string::npos);
}

TEST(JsonWire, EventmartPaymentsParseAsTheReferenceFormatWithTwoDecimals) {
  for (const std::int64_t cents : {5346LL, 500LL, 7LL, 0LL, 123456789LL, 999999999999999LL}) {
    const Envelope e =
        make_envelope(EventType::kPaymentDue, "pay-1", "fastlane-finale", 1'795'680'000'000'000,
                      "dep-1", PaymentDue{8, cents, "dep-1", {}});
    auto text = json_wire::encode(e);
    ASSERT_TRUE(text) << text.error();
    auto doc = json::parse(text.value());
    ASSERT_TRUE(doc) << doc.error();
    // The reference reader's view: a timestamp string, an integer customer, an amount.
    EXPECT_TRUE(json_wire::parse_timestamp(doc.value().find("timestamp")->text));
    EXPECT_EQ(json::as_int64(*doc.value().find("customer_id")), 8);
    // A number of currency units with at most two decimals, exactly the cents.
    const std::string amount = doc.value().find("amount")->text;
    ASSERT_NE(amount.find('.'), std::string::npos) << amount;
    EXPECT_LE(amount.size() - amount.find('.'), 3u) << amount;
    EXPECT_EQ(json::as_cents(*doc.value().find("amount")), cents);
  }
}

TEST(JsonWire, EventmartArrivalsParseAsTheReferenceFormat) {
  const Envelope e = make_envelope(EventType::kCustomerArrival, "arr-1", "gateway-guardian",
                                   1'795'680'000'000'000, "scan-1", CustomerArrival{2});
  auto doc = json::parse(json_wire::encode(e).value());
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc.value().find("timestamp")->text, "2026-11-26T08:00:00.000000");
  EXPECT_EQ(json::as_int64(*doc.value().find("customer_id")), 2);
}

TEST(JsonWire, EveryEventRoundTripsWithItsEnvelope) {
  const std::int64_t at = 1'795'680'000'123'456;
  const std::vector<Envelope> envelopes = {
      make_envelope(EventType::kCustomerArrival, "a", "gateway-guardian", at, "scan",
                    CustomerArrival{2}),
      make_envelope(EventType::kCustomerDeparted, "d", "gate-exit-guardian", at, "scan",
                    CustomerDeparted{8, {{59, 1}, {68, 2}}}),
      make_envelope(EventType::kPaymentDue, "p", "fastlane-finale", at, "d",
                    PaymentDue{8, 5346, "d", {77}}),
      make_envelope(EventType::kRestockNeeded, "r", "inventory-intel", at, "d",
                    RestockNeeded{3, 120, 19, 20}),
      make_envelope(EventType::kStockReplenished, "s", "logistics", at, "r",
                    StockReplenished{3, 120, "r"}),
  };
  for (const Envelope& e : envelopes) {
    auto text = json_wire::encode(e);
    ASSERT_TRUE(text) << text.error();
    auto back = json_wire::decode(e.type, "t/s/x", text.value());
    ASSERT_TRUE(back) << back.error() << "\n" << text.value();
    EXPECT_EQ(back.value(), e) << text.value();
  }
}

}  // namespace
}  // namespace eventmart
