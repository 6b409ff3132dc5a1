// transports/memory: latency, ordering, acknowledgement after the handler, one copy per client.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "sim/scheduler.h"
#include "transports/memory/memory_broker.h"

namespace eventmart::memory {
namespace {

class RecordingObserver final : public TransportObserver {
 public:
  void on_delivered(std::string_view client, const std::string&, const Envelope& e, bool) override {
    log.push_back("deliver " + std::string(client) + " " + e.event_id);
  }
  void on_acknowledged(std::string_view client, const std::string&, const Envelope& e) override {
    log.push_back("ack " + std::string(client) + " " + e.event_id);
  }
  void on_handler_failed(std::string_view client, const std::string&, const Envelope& e,
                         std::string_view what) override {
    log.push_back("failed " + std::string(client) + " " + e.event_id + " " + std::string(what));
  }
  std::vector<std::string> log;
};

Envelope envelope(const std::string& id) {
  Envelope e;
  e.event_id = id;
  e.type = EventType::kCustomerArrival;
  return e;
}

class MemoryTransport : public ::testing::Test {
 protected:
  sim::Scheduler clock{0};
  RecordingObserver observer;
  MemoryBroker broker{clock, {250}, &observer};
};

TEST_F(MemoryTransport, DeliveryTakesTwoHopsOfLatency) {
  auto pub = broker.connect("pub");
  auto sub = broker.connect("sub");
  std::vector<std::int64_t> delivered_at;
  sub->subscribe("store/#", [&](const Delivery&) { delivered_at.push_back(clock.now_us()); });
  pub->publish("store/arrival", envelope("e1"), Qos::kAtLeastOnce, {});
  clock.run_until_idle();
  EXPECT_EQ(delivered_at, (std::vector<std::int64_t>{500}));
}

TEST_F(MemoryTransport, MessagesFromOnePublisherArriveInPublishOrder) {
  auto pub = broker.connect("pub");
  auto sub = broker.connect("sub");
  std::vector<std::string> ids;
  sub->subscribe("t", [&](const Delivery& d) { ids.push_back(d.envelope.event_id); });
  for (int i = 0; i < 100; ++i)
    pub->publish("t", envelope(std::to_string(i)), Qos::kAtLeastOnce, {});
  clock.run_until_idle();
  ASSERT_EQ(ids.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(ids[static_cast<std::size_t>(i)], std::to_string(i));
}

TEST_F(MemoryTransport, AcknowledgementComesOnlyAfterTheHandlerReturned) {
  auto pub = broker.connect("pub");
  auto sub = broker.connect("sub");
  sub->subscribe("t", [&](const Delivery& d) {
    // Inside the handler the delivery must not be acknowledged yet.
    observer.log.push_back("handler " + d.envelope.event_id);
  });
  pub->publish("t", envelope("e1"), Qos::kAtLeastOnce, {});
  clock.run_until_idle();
  EXPECT_EQ(observer.log, (std::vector<std::string>{"deliver sub e1", "handler e1", "ack sub e1"}));
  EXPECT_EQ(broker.stats().acknowledged, 1u);
}

TEST_F(MemoryTransport, AHandlerThatThrowsLeavesTheDeliveryUnacknowledged) {
  auto pub = broker.connect("pub");
  auto sub = broker.connect("sub");
  sub->subscribe("t", [](const Delivery&) { throw std::runtime_error("disk full"); });
  pub->publish("t", envelope("e1"), Qos::kAtLeastOnce, {});
  clock.run_until_idle();
  EXPECT_EQ(observer.log, (std::vector<std::string>{"deliver sub e1", "failed sub e1 disk full"}));
  EXPECT_EQ(broker.stats().acknowledged, 0u);
  EXPECT_EQ(broker.stats().handler_failures, 1u);
}

TEST_F(MemoryTransport, AClientGetsOneCopyDispatchedToEachMatchingHandler) {
  auto pub = broker.connect("pub");
  auto sub = broker.connect("sub");
  int wide = 0, narrow = 0, other = 0;
  sub->subscribe("store/#", [&](const Delivery&) { ++wide; });
  sub->subscribe("store/+/arrival", [&](const Delivery&) { ++narrow; });
  sub->subscribe("logistics/#", [&](const Delivery&) { ++other; });
  pub->publish("store/x/arrival", envelope("e1"), Qos::kAtLeastOnce, {});
  clock.run_until_idle();
  EXPECT_EQ(wide, 1);
  EXPECT_EQ(narrow, 1);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(broker.stats().delivered, 1u);  // one copy to the client
}

TEST_F(MemoryTransport, PublisherIsToldOfTheBrokersConfirmationAfterARoundTrip) {
  auto pub = broker.connect("pub");
  std::vector<std::int64_t> confirmed_at;
  pub->publish("t", envelope("e1"), Qos::kAtLeastOnce, [&](PublishOutcome outcome) {
    EXPECT_EQ(outcome, PublishOutcome::kConfirmed);
    confirmed_at.push_back(clock.now_us());
  });
  EXPECT_TRUE(confirmed_at.empty());  // never from inside publish()
  clock.run_until_idle();
  EXPECT_EQ(confirmed_at, (std::vector<std::int64_t>{500}));
}

TEST_F(MemoryTransport, PublishingToAnInvalidTopicFailsLaterNotInline) {
  auto pub = broker.connect("pub");
  std::vector<PublishOutcome> outcomes;
  pub->publish("a/+", envelope("e1"), Qos::kAtLeastOnce,
               [&](PublishOutcome o) { outcomes.push_back(o); });
  EXPECT_TRUE(outcomes.empty());
  clock.run_until_idle();
  EXPECT_EQ(outcomes, (std::vector<PublishOutcome>{PublishOutcome::kFailed}));
  EXPECT_THROW(pub->subscribe("a/#/b", [](const Delivery&) {}), std::invalid_argument);
}

TEST_F(MemoryTransport, UnsubscribedAndDisconnectedClientsReceiveNothing) {
  auto pub = broker.connect("pub");
  auto sub = broker.connect("sub");
  int received = 0;
  const SubscriptionId id = sub->subscribe("t", [&](const Delivery&) { ++received; });
  sub->unsubscribe(id);
  pub->publish("t", envelope("e1"), Qos::kAtLeastOnce, {});
  clock.run_until_idle();
  EXPECT_EQ(received, 0);

  auto gone = broker.connect("gone");
  gone->subscribe("t", [&](const Delivery&) { ++received; });
  pub->publish("t", envelope("e2"), Qos::kAtLeastOnce, {});
  clock.run_until(clock.now_us() + 250);  // the message reached the broker and was routed to "gone"
  gone.reset();                           // ... which disconnects before it arrives
  clock.run_until_idle();
  EXPECT_EQ(received, 0);
  EXPECT_EQ(broker.stats().undeliverable, 1u);
}

TEST_F(MemoryTransport, AHandlerMaySubscribeWhileBeingDispatched) {
  auto pub = broker.connect("pub");
  auto sub = broker.connect("sub");
  int later = 0;
  sub->subscribe("t", [&](const Delivery&) {
    for (int i = 0; i < 64; ++i) sub->subscribe("t", [&](const Delivery&) { ++later; });
  });
  pub->publish("t", envelope("e1"), Qos::kAtLeastOnce, {});
  clock.run_until_idle();
  EXPECT_EQ(later, 0);  // subscribed after e1 arrived
  pub->publish("t", envelope("e2"), Qos::kAtLeastOnce, {});
  clock.run_until_idle();
  EXPECT_EQ(later, 64);
}

}  // namespace
}  // namespace eventmart::memory
