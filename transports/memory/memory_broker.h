// The deterministic in-memory transport. A MemoryBroker stands for the MQTT broker; each
// service connects a MemoryClient, which is its Bus. Every hop (client -> broker, broker ->
// client, the broker's confirmation back to a publisher) is a timer on the Clock after
// `latency_us`, so on the virtual clock the order of deliveries is a pure function of the
// order of publishes: identical inputs give identical runs.
//
// Semantics, as an MQTT broker has them:
//  - a client receives one copy of a message however many of its filters match, and the
//    client dispatches it to every matching handler in subscription order;
//  - the delivery is acknowledged only after every handler returned; a handler that throws
//    leaves the delivery unacknowledged (reported to the observer);
//  - a publisher's PublishCallback runs when the broker's confirmation arrives.
// REQUIRES: single-threaded use, on the thread that runs the Clock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/bus.h"
#include "core/clock.h"

namespace eventmart::memory {

struct MemoryBrokerOptions {
  // One-way network latency between any client and the broker, in microseconds. A message
  // reaches a subscriber two hops after it was published.
  std::int64_t latency_us = 200;
};

// Told of every step a message takes; the simulator folds these into its trace.
class TransportObserver {
 public:
  virtual ~TransportObserver() = default;
  virtual void on_published(std::string_view client_id, const std::string& topic,
                            const Envelope& envelope) {}
  virtual void on_delivered(std::string_view client_id, const std::string& topic,
                            const Envelope& envelope, bool redelivered) {}
  virtual void on_acknowledged(std::string_view client_id, const std::string& topic,
                               const Envelope& envelope) {}
  virtual void on_confirmed(std::string_view client_id, const std::string& topic,
                            const Envelope& envelope) {}
  virtual void on_handler_failed(std::string_view client_id, const std::string& topic,
                                 const Envelope& envelope, std::string_view what) {}
};

struct MemoryBrokerStats {
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;
  std::uint64_t acknowledged = 0;
  std::uint64_t confirmed = 0;
  std::uint64_t handler_failures = 0;
  std::uint64_t undeliverable = 0;  // routed to a client that disconnected before arrival
};

class MemoryClient;

class MemoryBroker {
 public:
  // `clock` and `observer` (may be null) must outlive the broker and its clients.
  MemoryBroker(Clock& clock, MemoryBrokerOptions options, TransportObserver* observer = nullptr);
  MemoryBroker(const MemoryBroker&) = delete;
  MemoryBroker& operator=(const MemoryBroker&) = delete;
  ~MemoryBroker();

  // Connects a client. The client must be destroyed before the broker; messages routed to
  // it after it is destroyed are counted as undeliverable.
  std::unique_ptr<MemoryClient> connect(std::string client_id);

  const MemoryBrokerStats& stats() const { return stats_; }
  const MemoryBrokerOptions& options() const { return options_; }

 private:
  friend class MemoryClient;
  struct Message;
  // One scheduled hop. Timers capture only (broker, slot index) so the Clock stores them
  // without an allocation.
  struct Hop {
    std::shared_ptr<const Message> message;
    std::uint32_t client = 0;
    PublishCallback on_done;
  };

  void publish(std::uint32_t client, const std::string& topic, Envelope envelope, Qos qos,
               PublishCallback on_done);
  void arrive_at_broker(std::uint32_t hop);
  void deliver(std::uint32_t hop);
  void confirm(std::uint32_t hop);
  std::uint32_t store_hop(Hop hop);
  Hop take_hop(std::uint32_t index);
  void fail_later(PublishCallback on_done);

  Clock& clock_;
  MemoryBrokerOptions options_;
  TransportObserver* observer_;
  std::vector<MemoryClient*> clients_;  // index = client number; null once disconnected
  std::vector<Hop> hops_;
  std::vector<std::uint32_t> free_hops_;
  MemoryBrokerStats stats_;
};

class MemoryClient final : public Bus {
 public:
  ~MemoryClient() override;

  void publish(const std::string& topic, Envelope envelope, Qos qos,
               PublishCallback on_done) override;
  SubscriptionId subscribe(const std::string& filter, MessageHandler handler) override;
  void unsubscribe(SubscriptionId id) override;

  const std::string& client_id() const { return client_id_; }

 private:
  friend class MemoryBroker;
  struct Subscription {
    SubscriptionId id;
    std::string filter;
    MessageHandler handler;
    bool active;
  };

  MemoryClient(MemoryBroker& broker, std::uint32_t index, std::string client_id);
  bool wants(const std::string& topic) const;
  // Runs every matching handler; true when all returned (the delivery may be acknowledged).
  bool dispatch(const std::string& topic, const Envelope& envelope, bool redelivered);

  MemoryBroker& broker_;
  std::uint32_t index_;
  std::string client_id_;
  std::vector<Subscription> subscriptions_;
  std::vector<Subscription> added_during_dispatch_;
  SubscriptionId next_subscription_ = 1;
  int dispatch_depth_ = 0;
};

}  // namespace eventmart::memory
