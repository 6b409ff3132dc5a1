// The Bus on a real MQTT broker, with Eclipse Paho MQTT C++ (async client).
//
// - QoS 1 by default; a persistent session (clean session off, a stable client id per service
//   instance), so the broker keeps this client's subscriptions and queues its messages while
//   it is away.
// - A message is acknowledged when the handler returns, and handlers commit their SQLite
//   transaction inside it, so the broker redelivers anything whose effect is not durable.
//   Handlers run on Paho's callback thread under the service's Strand and never block on the
//   network; publishing from a handler only queues.
// - Every other Paho callback (publish outcomes, connects, subscription acks) may arrive while
//   Paho holds its client lock, and a thread holding the strand may be waiting for that lock
//   inside publish(): those callbacks never take the strand themselves, they are posted to the
//   timer thread, which does.
// - Automatic reconnect; the subscriptions are made again on every connect. A broker that
//   cannot be reached at start is retried with backoff and a clear log line each time.
// - A bounded in-flight window: at most `max_in_flight` publishes are handed to Paho at once;
//   the rest wait in order (the service's outbox is the durable copy).
// - A message that cannot be decoded goes to the malformed handler (the service dead-letters
//   it) and is then acknowledged. A handler that throws (a failing disk) does not lose the
//   message: the transport delivers it again after a backoff, and dead-letters it once it
//   failed max_handler_attempts times.
// - Optionally a status topic: "online" retained once connected and subscribed, "offline"
//   retained as the last-will message and on a clean stop.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/bus.h"
#include "core/log.h"
#include "core/topics.h"
#include "core/wire.h"
#include "transports/mqtt/live_clock.h"

namespace mqtt {
class async_client;
}

namespace eventmart::mqtt {

struct MqttOptions {
  std::string broker = "tcp://127.0.0.1:1883";  // tcp://host:port or ssl://host:port
  std::string client_id;                        // stable per service instance
  std::string username;
  std::string password;
  std::string ca_file;    // TLS: the CA that signed the broker's certificate
  std::string cert_file;  // TLS: this client's certificate (mutual TLS), optional
  std::string key_file;   // TLS: its private key
  bool verify_server = true;
  WireFormat wire = WireFormat::kCapnp;
  // What a received message may hold; a message beyond them goes to the malformed handler
  // (dead-lettered) before it is decoded.
  InputLimits limits = {};
  std::string status_topic;  // empty: no status messages and no last will
  bool clean_session = false;
  // Non-empty: every subscription is made as "$share/{share_group}/{filter}", so replicas
  // with the same group split the messages between them.
  std::string share_group;
  int max_in_flight = 256;
  int keep_alive_s = 20;
  // A handler that throws gets the message again after retry_backoff_ms, doubling up to 30 s;
  // after max_handler_attempts it goes to the malformed handler (the dead-letter topic).
  int retry_backoff_ms = 1000;
  int max_handler_attempts = 8;
  int reconnect_min_s = 1;
  int reconnect_max_s = 30;
};

struct MqttStats {
  std::uint64_t received = 0;          // messages delivered by the broker
  std::uint64_t malformed = 0;         // ... that could not be decoded
  std::uint64_t handler_failures = 0;  // handler threw; the message is delivered again later
  std::uint64_t gave_up = 0;           // ... until max_handler_attempts: then dead-lettered
  std::uint64_t published = 0;         // publishes handed to Paho
  std::uint64_t confirmed = 0;
  std::uint64_t failed = 0;
  std::uint64_t connects = 0;  // successful connections, the first one included
  std::uint64_t connect_failures = 0;
  std::uint64_t subscriptions_acknowledged = 0;  // SUBACKs granting the subscription
  std::size_t in_flight = 0;
  std::size_t backlog = 0;  // waiting for a slot in the in-flight window
};

// Whether the broker keeps a message as the topic's last known value for later subscribers.
enum class Retain : std::uint8_t { kNo, kYes };

// A subscriber to raw bytes (device topics, which carry no envelope).
using BytesHandler =
    std::function<void(const std::string& topic, std::string_view bytes, bool redelivered)>;

class MqttBus final : public Bus {
 public:
  // `clock` must run its timers under `strand`. All references must outlive the bus.
  // Throws std::invalid_argument for a malformed broker URI or client id.
  MqttBus(MqttOptions options, const Topics& topics, LiveClock& clock, Strand& strand,
          Logger& logger, std::string log_source);
  ~MqttBus() override;

  // Connects in the background and returns at once.
  void start();
  // Publishes "offline" to the status topic, disconnects cleanly (waiting at most `timeout`
  // for in-flight messages) and stops retrying. No handler runs after it returns.
  // REQUIRES: the caller does not hold the strand.
  void stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

  void publish(const std::string& topic, Envelope envelope, Qos qos,
               PublishCallback on_done) override;
  // Publishes bytes as they are (a display text, a device reading, a status).
  void publish_bytes(const std::string& topic, std::string bytes, Qos qos, Retain retain,
                     PublishCallback on_done);
  // A filter may be a shared subscription, "$share/{group}/{filter}": the broker hands each
  // message to one member of the group.
  SubscriptionId subscribe(const std::string& filter, MessageHandler handler) override;
  SubscriptionId subscribe_bytes(const std::string& filter, BytesHandler handler);
  void unsubscribe(SubscriptionId id) override;
  void set_malformed_handler(MalformedHandler handler) override;

  bool connected() const;
  // Connected, and every subscription granted since: what this client subscribes to reaches
  // it. The status topic says "online" from then on.
  bool ready() const;
  MqttStats stats() const;

 private:
  class Callbacks;
  struct Subscription {
    SubscriptionId id;
    std::string filter;        // as given to the broker
    std::string match_filter;  // without a "$share/{group}/" prefix
    MessageHandler on_message;
    BytesHandler on_bytes;
  };
  struct Outgoing {
    std::string topic;
    std::string bytes;
    Qos qos;
    Retain retain;
    PublishCallback on_done;
  };

  void connect_now();
  void schedule_reconnect(const std::string& why);
  void on_connected();
  void on_connection_lost(const std::string& cause);
  void on_subscribed();
  void announce_ready();
  void on_message(const std::string& topic, const std::string& bytes, bool redelivered);
  void dispatch(const std::string& topic, const std::string& bytes, bool redelivered, int attempt);
  void send(Outgoing out);
  void on_publish_done(std::uint64_t token_id, PublishOutcome outcome);
  void fail_later(PublishCallback on_done);
  void subscribe_at_broker(const std::string& filter);
  SubscriptionId add_subscription(const std::string& filter, MessageHandler on_message,
                                  BytesHandler on_bytes);
  // Runs `fn` on the timer thread under the strand, unless the bus is destroyed by then.
  void post_alive(std::function<void()> fn);
  // Makes a call into Paho: at once inside a Paho callback, else from the timer thread.
  void run_paho(std::function<void()> op);
  static thread_local bool in_paho_callback_;
  struct PahoOps {
    std::mutex mutex;    // guards queue, flush_posted, closed
    std::mutex running;  // held while queued calls are made
    std::deque<std::function<void()>> queue;
    bool flush_posted = false;
    bool closed = false;
  };
  std::shared_ptr<PahoOps> ops_ = std::make_shared<PahoOps>();
  std::string broker_filter(const std::string& filter) const;

  MqttOptions options_;
  const Topics& topics_;
  LiveClock& clock_;
  Strand& strand_;
  Logger& logger_;
  std::string source_;
  std::unique_ptr<Callbacks> callbacks_;
  std::unique_ptr<::mqtt::async_client> client_;

  // Guarded by strand_.
  std::vector<Subscription> subscriptions_;
  std::map<std::string, int> broker_filters_;  // filter -> subscriptions using it
  SubscriptionId next_subscription_ = 1;
  MalformedHandler on_malformed_;
  std::map<std::uint64_t, PublishCallback> pending_;  // token id -> outcome callback
  std::uint64_t next_token_ = 1;
  std::deque<Outgoing> backlog_;
  MqttStats stats_;
  bool stopping_ = false;
  bool is_connected_ = false;
  bool ready_ = false;
  std::size_t acked_since_connect_ = 0;
  int reconnect_delay_s_ = 0;
  TimerId reconnect_timer_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guarded by strand_
};

}  // namespace eventmart::mqtt
