// The deterministic in-memory transport. A MemoryBroker stands for the MQTT broker; each
// service connects a MemoryClient, which is its Bus. Every packet (PUBLISH, PUBACK, in both
// directions) is a timer on the Clock after `latency_us`, so on the virtual clock the order
// of deliveries is a pure function of the order of publishes and of the NetworkModel's
// decisions: identical inputs give identical runs.
//
// MQTT semantics modelled:
//  - Persistent sessions: a session is keyed by client id and outlives its connection. Its
//    subscriptions keep routing while the client is away; QoS 1 messages queue in it and
//    are retransmitted when the client connects again. QoS 0 messages to an absent client
//    are dropped.
//  - QoS 1: the publishing client retransmits an unacknowledged PUBLISH every
//    `retry_interval_us` (with the DUP flag; one sweep finds what is due, and sweeps are at
//    least an eighth of the interval apart) until the broker's PUBACK arrives; the broker
//    does the same towards each subscriber until the subscriber acknowledges. A lost packet
//    therefore becomes a late duplicate, never a loss. A client's in-flight publishes die
//    with the client (a crash); what the application kept (an outbox) must be sent again.
//  - A client that cannot reach the broker (a partition, the broker down) notices at the next
//    retransmission sweep, as a real client notices by its keepalive: every QoS 1 publish it
//    has in flight is reported kFailed to its publisher and forgotten (the publisher, an
//    outbox relay, sends it again). A NetworkModel may also refuse a publish outright.
//  - QoS 0: sent once; the publisher is told "confirmed" when the packet leaves.
//  - A client receives one copy of a message however many of its filters match, dispatched
//    to every matching handler in subscription order; the delivery is acknowledged only after
//    every handler returned.
//  - A handler that throws: the policy of core/bus.h (HandlerRetry), as the MQTT transport
//    does it. The delivery stays unacknowledged and is dispatched again after a backoff; until
//    it is handled, everything else that arrives for that connection (deliveries, PUBACKs)
//    waits in order, as it waits behind Paho's blocked receive thread. After max_attempts the
//    message goes to the client's malformed handler (the service dead-letters it) and is
//    acknowledged. A client that disconnects meanwhile (a crash) leaves it unacknowledged in
//    its session: delivered again on the next connection. While a client is busy so, nothing
//    is retransmitted to it or by it (it reads nothing, so a missing PUBACK is no loss).
// REQUIRES: single-threaded use, on the thread that runs the Clock (checked: the broker's
// calls come from the thread that made it).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/bus.h"
#include "core/clock.h"
#include "transports/memory/slab.h"

namespace eventmart::memory {

// The packets of the protocol, as the network model sees them.
enum class PacketKind : std::uint8_t {
  kPublish,     // client -> broker
  kPuback,      // broker -> publishing client
  kDeliver,     // broker -> subscribing client (a PUBLISH)
  kDeliverAck,  // subscribing client -> broker (its PUBACK)
};

struct Packet {
  PacketKind kind;
  std::string_view client_id;  // the client at the other end from the broker
  const std::string& topic;
  const Envelope& envelope;
  Qos qos;
  bool redelivered;  // a retransmission (DUP flag)
};

// What the network does to one packet.
struct PacketFate {
  bool lost = false;                // never arrives
  std::int64_t extra_delay_us = 0;  // on top of the base latency (also reorders)
  bool duplicated = false;          // arrives twice (kPublish and kDeliver only)
};

// Decides each packet's fate and whether a client can reach the broker. The simulator's
// fault injector implements it; without one the network is perfect.
class NetworkModel {
 public:
  virtual ~NetworkModel() = default;
  virtual PacketFate fate(const Packet& packet) = 0;
  // False while the client is cut off from the broker (a partition) or the broker is down.
  virtual bool reachable(std::string_view client_id) = 0;
  // True when the client fails this QoS 1 publish at once, without sending it (a fault).
  virtual bool refuse_publish(const Packet& packet) { return false; }
};

struct MemoryBrokerOptions {
  // One-way network latency between any client and the broker, in microseconds.
  std::int64_t latency_us = 200;
  // QoS 1: an unacknowledged PUBLISH is sent again after this long, in microseconds.
  std::int64_t retry_interval_us = 5'000'000;
  // A handler that throws (core/bus.h).
  HandlerRetry handler_retry = {};
  // How long the broker keeps the session of a client that went away (its subscriptions and
  // its queued QoS 1 messages), as an MQTT 5 session expiry: 0 keeps it for ever. Once it
  // expires, what was queued and what comes for it until it subscribes again is lost
  // (TransportObserver::on_lost_to_expiry), and it connects to a clean session.
  std::int64_t session_expiry_us = 0;
  // Tunables (the simulator draws them per seed): topics whose subscribers are remembered,
  // and at most how many retransmission sweeps run per retry interval.
  std::size_t route_cache_topics = 1024;
  std::int64_t sweeps_per_interval = 8;
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
  // A delivery whose handlers kept failing was dead-lettered by the client (and acknowledged).
  virtual void on_gave_up(std::string_view client_id, const std::string& topic,
                          const Envelope& envelope, std::string_view reason) {}
  // A QoS 1 message for a client whose session expired while it was away: dropped (queued
  // when it expired, or published since, until it makes that subscription again).
  virtual void on_lost_to_expiry(std::string_view client_id, const std::string& topic,
                                 const Envelope& envelope) {}
  // The publisher was told kFailed: refused at once, or in flight when its client lost the
  // broker.
  virtual void on_publish_failed(std::string_view client_id, const std::string& topic,
                                 const Envelope& envelope) {}
};

struct MemoryBrokerStats {
  std::uint64_t published = 0;         // publish() calls accepted
  std::uint64_t delivered = 0;         // deliveries dispatched to handlers (duplicates included)
  std::uint64_t redelivered = 0;       // ... of which retransmissions or duplicates (DUP set)
  std::uint64_t acknowledged = 0;      // deliveries whose handlers all returned
  std::uint64_t confirmed = 0;         // publishes the publisher saw confirmed
  std::uint64_t handler_failures = 0;  // handlers that threw
  std::uint64_t handler_retries = 0;   // deliveries dispatched again after a handler threw
  std::uint64_t gave_up = 0;           // deliveries dead-lettered after max_attempts failures
  std::uint64_t packets_lost = 0;      // packets the network model lost or could not carry
  std::uint64_t retransmissions = 0;   // QoS 1 PUBLISH packets sent again (either direction)
  std::uint64_t redelivered_after_loss = 0;  // deliveries that arrived only by retransmission
  std::uint64_t qos0_dropped = 0;            // QoS 0 messages lost on the way or for absent clients
  std::uint64_t publishes_failed = 0;        // QoS 1 publishes whose publisher was told kFailed
};

class MemoryClient;

class MemoryBroker {
 public:
  // `clock`, `observer` and `network` (both may be null) must outlive the broker.
  MemoryBroker(Clock& clock, MemoryBrokerOptions options, TransportObserver* observer = nullptr,
               NetworkModel* network = nullptr);
  MemoryBroker(const MemoryBroker&) = delete;
  MemoryBroker& operator=(const MemoryBroker&) = delete;
  ~MemoryBroker();

  // Connects a client under `client_id`, resuming the session of that id if there is one
  // (its queued QoS 1 messages are retransmitted at once). A client id is connected at most
  // once at a time. The client must be destroyed before the broker.
  std::unique_ptr<MemoryClient> connect(const std::string& client_id);

  const MemoryBrokerStats& stats() const { return stats_; }
  const MemoryBrokerOptions& options() const { return options_; }
  // QoS 1 messages queued or in flight towards subscribers (0 once the system is quiet).
  std::size_t pending_deliveries() const { return deliveries_.size(); }

 private:
  friend class MemoryClient;
  // Which sessions' filters match one topic: computed once per topic and kept until a
  // subscription changes anywhere (filters_generation_), so routing a message matches no
  // filter. Kept for at most options_.route_cache_topics topics; messages on any other topic
  // are matched against every filter as they come.
  struct Route {
    std::vector<std::uint32_t> sessions;  // in session order
    std::uint64_t generation = 0;         // filters_generation_ when `sessions` was computed
  };
  using RouteEntry = std::pair<const std::string, Route>;  // an entry of routes_
  // A published message, shared by every packet that carries it. Counted by MessageRef without
  // atomics: a broker and everything it sends live on the one thread that runs its Clock.
  // Once no packet carries it, it waits in its broker's spare list for the next publish.
  struct Message;
  using Spares = std::vector<std::unique_ptr<Message>>;
  struct Message {
    const std::string& topic() const { return routed != nullptr ? routed->first : own_topic; }
    RouteEntry* routed = nullptr;  // routes_'s entry for the topic, or null
    std::string own_topic;         // the topic when it has no entry
    Envelope envelope;
    Qos qos = Qos::kAtLeastOnce;
    std::uint32_t refs = 0;
    Spares* spares = nullptr;  // where it goes once unused
  };
  class MessageRef {
   public:
    MessageRef() = default;
    explicit MessageRef(Message* message) : message_(message) { ++message_->refs; }
    MessageRef(const MessageRef& other) : message_(other.message_) {
      if (message_ != nullptr) ++message_->refs;
    }
    MessageRef(MessageRef&& other) noexcept : message_(other.message_) { other.message_ = nullptr; }
    MessageRef& operator=(const MessageRef& other) {
      if (other.message_ != nullptr) ++other.message_->refs;
      release();
      message_ = other.message_;
      return *this;
    }
    MessageRef& operator=(MessageRef&& other) noexcept {
      if (this != &other) {
        release();
        message_ = std::exchange(other.message_, nullptr);
      }
      return *this;
    }
    ~MessageRef() { release(); }
    const Message* operator->() const { return message_; }
    const Message& operator*() const { return *message_; }

   private:
    void release() noexcept {
      if (message_ != nullptr && --message_->refs == 0) recycle(message_);
    }
    // Keeps an unused message in its spare list.
    static void recycle(Message* message) noexcept;
    Message* message_ = nullptr;
  };
  // A packet on the wire. Timers capture only (broker, slot) so the Clock stores them without
  // an allocation.
  struct InFlight {
    PacketKind kind = PacketKind::kPublish;
    MessageRef message;
    std::uint32_t session = 0;
    std::uint64_t connection = 0;  // kDeliver: the connection it was sent to
    std::uint64_t id = 0;          // outgoing id (kPublish, kPuback) or delivery id
    bool redelivered = false;
  };
  struct Session {
    std::string client_id;
    MemoryClient* client = nullptr;    // null while no connection is up
    std::uint64_t connection = 0;      // id of the current (or last) connection
    std::vector<std::string> filters;  // persistent subscriptions, in subscription order
    // A delivery whose handler threw, waiting for its next attempt (retry_timer), and what
    // arrived for the connection meanwhile, in order.
    std::optional<InFlight> in_hand;
    int failed_attempts = 0;
    int lasting_failures = 0;  // ... of which not transient (they count towards giving up)
    TimerId retry_timer = 0;
    std::deque<InFlight> held;
    TimerId expiry_timer = 0;  // while away: when its session expires
    bool expired = false;      // away longer than the expiry: what comes for it is lost
    // After it connected again to a clean session: the subscriptions its expired session had
    // that it has not made again. What comes for them is lost to the expiry too (a client
    // that connects and dies before it subscribes, say a service whose database cannot be
    // opened, would otherwise lose it without a trace).
    std::vector<std::string> lost_filters;
  };
  struct Outgoing {
    MessageRef message;
    std::uint32_t session;
    std::uint64_t connection;
    PublishCallback on_done;
    std::int64_t last_sent_us;
  };
  struct PendingDelivery {
    MessageRef message;
    std::uint32_t session;
    std::int64_t last_sent_us;
    bool arrived = false;  // reached the client at least once
    bool cut_off = false;  // last lost to a partition (a coverage mark when it goes again)
  };

  void publish(std::uint32_t session, std::uint64_t connection, const std::string& topic,
               Envelope&& envelope, Qos qos, PublishCallback&& on_done);
  // Coverage: a QoS 1 delivery lost to a partition (`lost`), or sent again once reachable.
  void note_cut_off(PacketKind kind, Qos qos, std::uint64_t id, bool lost);
  // Puts one packet on the wire; the network model decides whether and when it arrives.
  void send(PacketKind kind, const MessageRef& message, std::uint32_t session,
            std::uint64_t connection, std::uint64_t id, bool redelivered);
  void arrive(std::uint32_t slot);
  // Acts on a packet that reached its destination.
  void take(const InFlight& packet);
  void on_publish_arrived(const InFlight& packet);
  void on_puback_arrived(const InFlight& packet);
  void on_deliver_arrived(const InFlight& packet);
  void on_deliver_ack_arrived(const InFlight& packet);
  // Dispatches a delivery to its client's handlers (attempt `failed_before` + 1) and
  // acknowledges it, or holds it for a retry (see HandlerRetry), or dead-letters it.
  void handle_delivery(const InFlight& packet, int failed_before);
  void retry_delivery(std::uint32_t session);
  // Goes on with what arrived for the session while a delivery was in hand.
  void release_held(std::uint32_t session);
  void route(const MessageRef& message);
  // The entry of `topic` in routes_, made when missing and there is room (and the topic is
  // valid); null otherwise.
  RouteEntry* route_of(const std::string& topic);
  // The sessions whose filters match `topic`, in session order.
  std::vector<std::uint32_t> sessions_wanting(const std::string& topic) const;
  void send_delivery(std::uint64_t delivery_id, bool redelivered);
  // QoS 1 retransmission: one sweep timer over everything unacknowledged, scheduled only
  // while something is, so a quiet system has no timers left.
  void schedule_sweep();
  void sweep();
  void disconnect(std::uint32_t session, std::uint64_t connection);
  // The session of a client away for session_expiry_us: its queue is dropped (and reported).
  void expire(std::uint32_t session);
  void require_own_thread() const;
  // Tells the publisher of outgoing publish `id` it failed, and forgets it.
  void fail_outgoing(std::uint64_t id);

  // Unused messages, for reuse (as many as were ever in flight at once). Declared first, so
  // destroyed after everything that holds a MessageRef.
  Spares spare_messages_;
  Clock& clock_;
  MemoryBrokerOptions options_;
  TransportObserver* observer_;
  NetworkModel* network_;
  std::vector<std::unique_ptr<Session>> sessions_;  // index = session number, never removed
  std::map<std::string, std::uint32_t> session_by_client_;
  // Looked up by topic only, never iterated: its order cannot leak into a run.
  std::unordered_map<std::string, Route> routes_;
  std::uint64_t filters_generation_ = 1;  // moves on whenever a session's filters change
  // Slabs iterate in slot order, so the sweep retransmits deterministically.
  Slab<Outgoing> outgoing_;           // client-side QoS 1 in flight
  Slab<PendingDelivery> deliveries_;  // broker-side QoS 1 in flight
  std::vector<InFlight> wire_;        // packets in flight, by slot
  std::vector<std::uint32_t> free_slots_;
  TimerId sweep_timer_ = 0;
  std::uint64_t next_connection_ = 1;
  MemoryBrokerStats stats_;
  std::thread::id thread_ = std::this_thread::get_id();  // the one that runs clock_
};

class MemoryClient final : public Bus {
 public:
  ~MemoryClient() override;

  void publish(const std::string& topic, Envelope envelope, Qos qos,
               PublishCallback on_done) override;
  SubscriptionId subscribe(const std::string& filter, MessageHandler handler) override;
  void unsubscribe(SubscriptionId id) override;
  // Called with a message whose handlers kept failing (HandlerRetry); this transport carries
  // envelopes, never undecodable bytes.
  void set_malformed_handler(MalformedHandler handler) override {
    on_malformed_ = std::move(handler);
  }

  const std::string& client_id() const { return client_id_; }

 private:
  friend class MemoryBroker;
  struct Subscription {
    SubscriptionId id;
    std::string filter;
    MessageHandler handler;
    bool active;
  };

  MemoryClient(MemoryBroker& broker, std::uint32_t session, std::uint64_t connection,
               std::string client_id);
  // Runs every matching handler; true when all returned (the delivery may be acknowledged).
  // Otherwise `error` says what the (last) failing handler threw. `route` (may be null) names
  // the topic for the cache of which subscriptions match it.
  bool dispatch(const std::string& topic, const void* route, const Envelope& envelope,
                bool redelivered, std::string& error, bool& transient);
  // The subscriptions (indices into subscriptions_) whose filters match `topic`.
  std::vector<std::uint32_t> matching(const std::string& topic) const;
  // The same, remembered per route (not null) until subscriptions_ changes. Only outside
  // handlers: a dispatch from inside one (dispatch_depth_ > 0) leaves the cache to the outer
  // dispatch.
  const std::vector<std::uint32_t>& cached_matching(const std::string& topic, const void* route);
  // Hands a message whose handlers kept failing to the malformed handler (the service
  // dead-letters it); true when that returned, so the message may be acknowledged.
  bool give_up(const std::string& topic, const Envelope& envelope, const std::string& reason);

  MemoryBroker& broker_;
  std::uint32_t session_;
  std::uint64_t connection_;  // distinguishes this connection from earlier ones of the session
  std::string client_id_;
  std::vector<Subscription> subscriptions_;
  std::vector<Subscription> added_during_dispatch_;
  struct Matches {
    const void* route;
    std::vector<std::uint32_t> subscriptions;
  };
  static constexpr std::size_t kMaxMatches = 32;  // topics remembered at once
  std::vector<Matches> matches_;                  // emptied whenever subscriptions_ changes
  SubscriptionId next_subscription_ = 1;
  int dispatch_depth_ = 0;
  MalformedHandler on_malformed_;
};

}  // namespace eventmart::memory
