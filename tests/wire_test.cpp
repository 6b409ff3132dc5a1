// The byte-level pieces of the real transport that need no broker: wire formats by topic, the
// dead-letter document, scanner input, and a service dead-lettering what it cannot consume.
#include "core/wire.h"

#include <gtest/gtest.h>

#include "apps/scanner_input.h"
#include "core/json.h"
#include "services/fastlane_finale.h"
#include "tests/test_support.h"

namespace eventmart::testing {
namespace {

using apps::ScanRequest;

TEST(Wire, EachStoreAndLogisticsTopicNamesTheEventItCarries) {
  const Topics t("chain", "store");
  EXPECT_EQ(event_type_of_topic(t, t.customer_arrival), EventType::kCustomerArrival);
  EXPECT_EQ(event_type_of_topic(t, t.customer_departure), EventType::kCustomerDeparted);
  EXPECT_EQ(event_type_of_topic(t, t.payment_due), EventType::kPaymentDue);
  EXPECT_EQ(event_type_of_topic(t, t.restock_needed), EventType::kRestockNeeded);
  EXPECT_EQ(event_type_of_topic(t, t.stock_replenished), EventType::kStockReplenished);
  EXPECT_EQ(event_type_of_topic(t, t.display_entrance), EventType::kUnknown);
}

TEST(Wire, BothFormatsRoundTripAnEnvelope) {
  const Topics t;
  const Envelope e = make_envelope(EventType::kPaymentDue, "fastlane-finale-1", "fastlane-finale",
                                   1795680000123456, "dep-1", PaymentDue{8, 5346, "dep-1", {}});
  for (WireFormat f : {WireFormat::kCapnp, WireFormat::kJson}) {
    auto bytes = encode_wire(f, e);
    ASSERT_TRUE(bytes) << bytes.error();
    auto back = decode_wire(f, t, t.payment_due, bytes.value());
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(back.value().event_id, e.event_id);
    EXPECT_EQ(back.value().caused_by, "dep-1");
    EXPECT_EQ(decode_payment_due(back.value().payload).value().total_cents, 5346);
  }
}

TEST(Wire, AnEventOnAnotherEventsTopicIsRejected) {
  const Topics t;
  const Envelope e =
      make_envelope(EventType::kCustomerArrival, "a", "x", 1, "", CustomerArrival{2});
  auto back = decode_wire(WireFormat::kCapnp, t, t.payment_due, encode_envelope(e));
  ASSERT_FALSE(back);
  EXPECT_NE(back.error().find("does not belong"), std::string::npos);
}

TEST(Wire, JsonNeedsATopicWithAKnownFormat) {
  const Topics t;
  auto back = decode_wire(WireFormat::kJson, t, "somewhere/else", R"({"customer_id": 2})");
  ASSERT_FALSE(back);
  EXPECT_NE(back.error().find("somewhere/else"), std::string::npos);
}

TEST(Wire, ADeadLetterTravelsAsItsDocumentInEveryFormat) {
  Envelope e;
  e.type = EventType::kDeadLetter;
  e.payload = R"({"reason": "x"})";
  for (WireFormat f : {WireFormat::kCapnp, WireFormat::kJson}) {
    EXPECT_EQ(encode_wire(f, e).value(), e.payload);
  }
}

TEST(Wire, TheDeadLetterDocumentKeepsTheExactBytes) {
  const std::string bytes("\x00\xff\x01 binary", 10);
  const auto doc = json::parse(dead_letter_document("inventory-intel", "a/b", "bad", bytes, 0));
  ASSERT_TRUE(doc) << doc.error();
  EXPECT_EQ(doc.value().find("service")->text, "inventory-intel");
  EXPECT_EQ(doc.value().find("topic")->text, "a/b");
  EXPECT_EQ(doc.value().find("reason")->text, "bad");
  EXPECT_EQ(doc.value().find("payload"), nullptr) << "not text: base64 only";
  EXPECT_EQ(doc.value().find("payload_base64")->text, base64_encode(bytes));
  const auto text = json::parse(dead_letter_document("s", "t", "r", "plain \"text\"", 0));
  EXPECT_EQ(text.value().find("payload")->text, "plain \"text\"");
}

TEST(Wire, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(ScannerInput, ReadsArrivalAndDepartureLines) {
  auto a = apps::parse_scan_line("arrival 2");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a.value().kind, ScanRequest::Kind::kArrival);
  EXPECT_EQ(a.value().card, "2");
  EXPECT_TRUE(a.value().scan_id.empty());
  auto d = apps::parse_scan_line("  departure 8 59:2,7 scan=gate-1/42 ");
  ASSERT_TRUE(d) << d.error();
  EXPECT_EQ(d.value().lines, (std::vector<LineItem>{{59, 2}, {7, 1}}));
  EXPECT_EQ(d.value().scan_id, "gate-1/42");
  auto empty_bag = apps::parse_scan_line("departure 8");
  ASSERT_TRUE(empty_bag);
  EXPECT_TRUE(empty_bag.value().lines.empty());
}

TEST(ScannerInput, SaysWhatIsWrongWithABadLine) {
  EXPECT_NE(apps::parse_scan_line("checkout 2").error().find("arrival"), std::string::npos);
  EXPECT_NE(apps::parse_scan_line("arrival").error().find("no customer"), std::string::npos);
  EXPECT_NE(apps::parse_scan_line("departure 8 5:0").error().find("quantity"), std::string::npos);
  EXPECT_NE(apps::parse_scan_line("departure 8 x:1").error().find("sku"), std::string::npos);
  EXPECT_FALSE(apps::parse_scan_line("arrival 2 3"));
  EXPECT_TRUE(apps::is_blank_line("   "));
  EXPECT_TRUE(apps::is_blank_line("# a comment"));
}

TEST(ScannerInput, DeviceMessagesAreTextOrTheReferenceJson) {
  auto text = apps::parse_device_message(ScanRequest::Kind::kArrival, "2\n");
  ASSERT_TRUE(text);
  EXPECT_EQ(text.value().card, "2");
  auto json = apps::parse_device_message(
      ScanRequest::Kind::kDeparture,
      R"({"timestamp": "2026-11-26T03:11:26.745261", "customer_id": 8, "product_ids": [59, 59]})");
  ASSERT_TRUE(json) << json.error();
  EXPECT_EQ(json.value().lines, (std::vector<LineItem>{{59, 1}, {59, 1}}));
  // Idempotent by timestamp (as microseconds since the epoch) and card.
  EXPECT_EQ(json.value().scan_id, "ts/1795662686745261/8");
  EXPECT_FALSE(apps::parse_device_message(ScanRequest::Kind::kArrival, "departure 8 1:1"))
      << "a bag reading on the entrance scanner's topic";
  EXPECT_FALSE(apps::parse_device_message(ScanRequest::Kind::kDeparture, R"({"customer_id": 8})"));
  EXPECT_FALSE(apps::parse_device_message(
      ScanRequest::Kind::kArrival, R"({"timestamp": "2026-02-30T03:11:26", "customer_id": 8})"))
      << "February 30th is not a day";
}

TEST(ScannerInput, AHugeBagIsRefusedAtTheFirstItemOverTheLimitWithoutExpandingIt) {
  // 1 MB of "1:1000," items: refused after 10 items (10,000 units), not expanded to 150 M.
  std::string items;
  while (items.size() < 1'000'000) items += "1:1000,";
  items.pop_back();
  auto huge = apps::parse_items(items);
  ASSERT_FALSE(huge);
  EXPECT_NE(huge.error().find("limit per basket"), std::string::npos) << huge.error();
  EXPECT_FALSE(apps::parse_items("1:1001")) << "over the per-line default of 1000";
  EXPECT_FALSE(apps::parse_items("2147483648:1")) << "a sku past 2^31 - 1";
  // The same on a device topic, in both forms, and a payload over the size limit.
  EXPECT_FALSE(apps::parse_device_message(ScanRequest::Kind::kDeparture, "8 " + items));
  std::string ids = R"({"timestamp": "2026-11-26T03:11:26", "customer_id": 8, "product_ids": [)";
  for (int i = 0; i < 10'001; ++i) ids += (i ? ",1" : "1");
  ids += "]}";
  EXPECT_FALSE(apps::parse_device_message(ScanRequest::Kind::kDeparture, ids));
  EXPECT_FALSE(
      apps::parse_device_message(ScanRequest::Kind::kArrival, std::string(70'000, ' ') + "8"));
}

TEST(ScannerInput, TheLineScanSendsReadsBackAsTheSameReading) {
  ScanRequest r;
  r.kind = ScanRequest::Kind::kDeparture;
  r.card = "8";
  r.lines = {{5, 2}, {9, 1}, {5, 3}};
  r.scan_id = "manual/1";
  auto back = apps::parse_scan_line(apps::format_scan_line(r));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back.value().lines, r.lines);
  EXPECT_EQ(back.value().scan_id, r.scan_id);
}

class DeadLetters : public BusFixture {};

TEST_F(DeadLetters, AServiceDeadLettersWhatItCannotConsumeOnceAndGoesOn) {
  Database db(":memory:");
  auto bus = store_broker.connect("fastlane-finale");
  FastlaneFinale fastlane(context(*bus, db));
  fastlane.store().seed(default_store().products);
  fastlane.start();
  std::vector<Received> dead;
  record(*probe, topics.chain + "/" + topics.store + "/dead-letter/#", dead);
  scheduler.run_until_idle();
  // A well-formed envelope of the wrong type on the departure topic, twice (a redelivery).
  const Envelope wrong =
      make_envelope(EventType::kCustomerArrival, "a-1", "probe", 1, "", CustomerArrival{2});
  publish_and_settle(*probe, topics.customer_departure, wrong);
  publish_and_settle(*probe, topics.customer_departure, wrong);
  ASSERT_EQ(dead.size(), 1u) << "the same bytes are dead-lettered once";
  EXPECT_EQ(dead[0].topic, topics.dead_letter("fastlane-finale"));
  EXPECT_EQ(dead[0].envelope.type, EventType::kDeadLetter);
  const auto doc = json::parse(dead[0].envelope.payload);
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc.value().find("topic")->text, topics.customer_departure);
  EXPECT_EQ(fastlane.stats().rejected, 2u);
  EXPECT_EQ(fastlane.journal().outbox_size(), 0) << "confirmed and gone";
  // And the next good departure is paid.
  std::vector<Received> paid;
  record(*probe, topics.payment_due, paid);
  publish_and_settle(*probe, topics.customer_departure,
                     make_envelope(EventType::kCustomerDeparted, "d-1", "probe", 1, "",
                                   CustomerDeparted{8, {{1, 1}}}));
  EXPECT_EQ(paid.size(), 1u);
}

}  // namespace
}  // namespace eventmart::testing
