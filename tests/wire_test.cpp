// The byte-level pieces of the real transport that need no broker: wire formats by topic, the
// dead-letter document, scanner input, and a service dead-lettering what it cannot consume.
#include "core/wire.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/json.h"
#include "core/json_wire.h"
#include "services/fastlane_finale.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

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

// A welcome is written directly when its strings need no escaping; every welcome must be
// byte for byte what the JSON writer makes of the same document, and read back the same.
TEST(Wire, AWelcomeDocumentIsWhatTheJsonWriterWritesWhateverItsText) {
  const std::vector<std::string> texts = {"Welcome, Grace Hopper!",
                                          "",
                                          "Welcome back, \"Ada\" \\ Lovelace!",
                                          "tab\there\nnew line",
                                          std::string("nul\0inside", 10),
                                          "Zoë Ünal",
                                          "bad \xff byte",
                                          std::string(300, 'x'),
                                          "del\x7f",
                                          "<script>&amp;"};
  const std::vector<std::string> ids = {"hello-helper-0123456789abcdef", "a\"b", "", "é"};
  for (const std::string& text : texts) {
    for (const std::string& id : ids) {
      for (const std::int64_t at_us : {std::int64_t{0}, std::int64_t{1'790'000'000'123'456}}) {
        json::Document doc = json::Document::object();
        doc["timestamp"] = json_wire::format_timestamp(at_us);
        doc["customer_id"] = std::int64_t{-42};
        doc["message"] = text;
        doc["arrival_event_id"] = id;
        const std::string written = welcome_document(-42, text, id, at_us);
        EXPECT_EQ(written, json::dump(doc)) << "text '" << text << "', id '" << id << "'";
        const auto read = read_welcome_document(written);
        ASSERT_TRUE(read) << read.error();
        EXPECT_EQ(read.value().customer_id, -42);
        EXPECT_EQ(read.value().at_us, at_us);
      }
    }
  }
}

TEST(Wire, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
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
}  // namespace eventmart::test
