// The Bus on a real MQTT broker, with Eclipse Paho MQTT C++ (async client), MQTT 5 by default
// (MqttVersion::k311 for brokers that speak only 3.1.1).
//
// What MQTT 5 adds here. A broker can refuse a publish: a PUBACK reason code of 0x80 or more
// (mosquitto answers 0x87 to a publish its ACL denies) reports the publish kFailed, with the
// reason logged, so the outbox relay keeps the row and sends it again (under 3.1.1 the broker
// acknowledges a refused publish and drops it: a silent loss). A SUBACK that refuses a
// subscription, or grants less than QoS 1, is logged and keeps the bus unready. The session
// expires session_expiry_s after a disconnect instead of never (clean session off) or at once.
// A welcome for the entrance display expires welcome_expiry_s after it was published, retained
// copy included. Each event carries its id as the user property "event-id" (tools and broker
// plugins can trace it without decoding the payload). A DISCONNECT sent by the broker (session
// taken over, shutting down) ends the connection like a lost one, with its reason logged.
//
// Acknowledgement after commit. Paho sends the PUBACK of a QoS 1 message when the message
// callback returns, and reads the next message only then (measured on Debian 12's Paho C
// 1.3.11: no read-ahead). Handlers commit their SQLite transaction inside that callback, so
// the broker keeps, and delivers again, anything whose effect is not durable. A handler that
// throws (a failing disk) is retried inside the callback with backoff, the message still
// unacknowledged; after handler_retry.max_attempts (core/bus.h) it is dead-lettered (durable, in
// the outbox) and only then acknowledged. A process stopped while a message is in that state exits
// without acknowledging it (on_abandon), so the broker delivers it again at the next start.
// Retrying blocks Paho's receive thread, which every client of the process shares: run one service
// per process in production.
//
// A fresh Paho client per connection. Paho's own automatic reconnect (and its buffer of
// publishes made while disconnected) is not used: Paho C 1.3.11 can corrupt the publishes it
// resends after a reconnect (eclipse-paho/paho.mqtt.c#1310; seen here as mosquitto's
// "malformed packet" on every reconnect). Each connection gets a new client; when it ends,
// every publish still in flight on it is reported kFailed (the outbox relay sends it again)
// and the client is destroyed. Publishes made while disconnected wait in order in a backlog.
// The broker session (clean session off, a stable client id) carries the subscriptions and
// the queued messages from one connection to the next; subscriptions are made again on every
// connect anyway (a broker may have lost the session).
//
// Threads. Handlers run on Paho's callback thread under the service's Strand. Every other Paho
// callback (publish outcomes, connects, subscription acks) may arrive while Paho holds its
// client lock, and a thread holding the strand may be waiting for that lock inside publish():
// those callbacks never take the strand themselves, they are posted to the timer thread, which
// does. A thread holding the strand never calls into Paho outside a message callback: calls are
// queued and made from the timer thread without the strand.
//
// A confirmation is held before it is reported. mosquitto acknowledges a publish before its
// persistence file holds it, so a broker killed with -9 forgets what it confirmed in its last
// instant (found by `eventmart chaos`). A QoS 1 publish is reported kConfirmed only once the
// connection it was confirmed on has outlived the confirmation by confirm_after_ms; a
// connection lost before that reports it kFailed, so the outbox relay, whose row is still
// there (durable, unlike any copy in memory), publishes it again. Consumers drop the copies.
//
// Also: a bounded in-flight window (max_in_flight publishes handed to Paho at once); a message
// that cannot be decoded, or is over the InputLimits, goes to the malformed handler (the
// service dead-letters it); errors a person can act on (a refused password, nothing listening,
// a failed TLS handshake, another process taking over the client id); optionally a status
// topic: "online" retained once connected and subscribed, "offline" retained as the last-will
// message and on a clean stop.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/bus.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/topics.h"
#include "core/wire.h"
#include "transports/mqtt/live_clock.h"

namespace eventmart::mqtt {

enum class MqttVersion : std::uint8_t { k5, k311 };

// "5" or "3.1.1".
std::string_view mqtt_version_name(MqttVersion version);

// "tcp://a:1883, tcp://b:1883" -> its URIs, spaces around each trimmed (MqttOptions::broker).
std::vector<std::string> broker_uris(const std::string& list);

struct MqttOptions {
  MqttVersion version = MqttVersion::k5;
  // tcp://host:port or ssl://host:port; or several, comma-separated (the nodes of a cluster):
  // a connection attempt that fails, or the reconnect after a lost connection that fails,
  // goes on to the next one at once; after the last, the backoff, then the first again.
  std::string broker = "tcp://127.0.0.1:1883";
  std::string client_id;  // stable per service instance
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
  // No session kept across connections (MQTT 5: clean start and a session expiry of 0).
  bool clean_session = false;
  // MQTT 5: how long the broker keeps this client's session (its subscriptions and the messages
  // queued for it) after a disconnect. A service away longer loses what was queued for it.
  std::uint32_t session_expiry_s = 7 * 24 * 3600;
  // MQTT 5: how long a welcome for the entrance display lives at the broker (retained or queued).
  std::uint32_t welcome_expiry_s = 60;
  // A subscription the broker refused (or granted at QoS 0) is asked for again this much later.
  std::int64_t resubscribe_after_ms = 10'000;
  // Non-empty: every subscription is made as "$share/{share_group}/{filter}", so replicas
  // with the same group split the messages between them.
  std::string share_group;
  int max_in_flight = 256;
  int keep_alive_s = 20;
  // A handler that throws is called again, the message unacknowledged (core/bus.h); after
  // handler_retry.max_attempts the message is dead-lettered and acknowledged.
  HandlerRetry handler_retry = {};
  // Called on Paho's thread when the bus stops while a message it could not handle is in hand:
  // it must not return (returning would acknowledge the message). Default: std::_Exit(75).
  std::function<void()> on_abandon;
  // How long a confirmed QoS 1 publish is held before it is reported kConfirmed; a connection
  // lost in the meantime reports it kFailed instead (see above). 0: reported at once.
  std::int64_t confirm_after_ms = 2000;
  int reconnect_min_s = 1;
  int reconnect_max_s = 30;
  int connect_timeout_s = 5;
};

// Upper bounds (seconds) of the handler latency histogram's buckets; a last one is +Inf.
inline constexpr std::array<double, 12> kHandlerSecondsBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

struct MqttStats {
  std::uint64_t received = 0;          // messages delivered by the broker
  std::uint64_t malformed = 0;         // ... that could not be decoded
  std::uint64_t handler_failures = 0;  // handler threw; the message is handled again
  std::uint64_t gave_up = 0;           // ... until handler_retry.max_attempts: then dead-lettered
  std::uint64_t published = 0;         // publishes handed to Paho
  std::uint64_t confirmed = 0;
  std::uint64_t failed = 0;
  std::uint64_t refused = 0;   // ... of which the broker refused (MQTT 5 PUBACK reason code)
  std::uint64_t connects = 0;  // successful connections, the first one included
  std::uint64_t connect_failures = 0;
  std::uint64_t connection_losses = 0;
  // Confirmed by the broker, then reported failed: the connection was lost within
  // confirm_after_ms of the confirmation (the broker may have forgotten them).
  std::uint64_t confirmations_withdrawn = 0;
  std::uint64_t subscriptions_acknowledged = 0;  // SUBACKs granting the subscription
  std::uint64_t subscriptions_refused = 0;       // ... refusing it, or granting QoS 0
  // How long handling a message took (each attempt: decoding, the handlers, their commit),
  // wall time: counts per bucket of kHandlerSecondsBuckets (not cumulative; the last one
  // beyond the largest bound), and their sum.
  std::array<std::uint64_t, kHandlerSecondsBuckets.size() + 1> handler_seconds_counts{};
  double handler_seconds_sum = 0;
  std::size_t in_flight = 0;
  std::size_t backlog = 0;
  std::size_t subscriptions_refused_now =
      0;  // filters refused on the current connection  // waiting for a slot in the in-flight
          // window, or a connection
};

// Why the latest connection attempt failed.
enum class ConnectProblem : std::uint8_t {
  kNone,             // connected (or not tried yet)
  kBadCredentials,   // the broker refused the user name or password (CONNACK 4 or 5)
  kRefused,          // another CONNACK refusal (protocol version, client id, server unavailable)
  kUnreachable,      // no TCP connection (refused, timed out, unknown host)
  kHandshakeFailed,  // TCP connected, but no MQTT (or TLS) handshake completed
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
  // for each step) and stops reconnecting. No handler runs after it returns.
  // REQUIRES: the caller does not hold the strand (checked).
  void stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

  void publish(const std::string& topic, Envelope envelope, Qos qos,
               PublishCallback on_done) override;
  // Publishes bytes as they are (a display text, a device reading, a status).
  void publish_bytes(const std::string& topic, std::string bytes, Qos qos, Retain retain,
                     PublishCallback on_done);
  // A filter may be a shared subscription, "$share/{group}/{filter}": the broker hands each
  // message to one member of the group.
  SubscriptionId subscribe(const std::string& filter, MessageHandler handler) override;
  // `alone`: never made a shared subscription, even with a share group (a replica watching
  // its siblings' status topics).
  enum class Sharing : std::uint8_t { kGroup, kAlone };
  SubscriptionId subscribe_bytes(const std::string& filter, BytesHandler handler,
                                 Sharing sharing = Sharing::kGroup);

  // Drains the session of another client id of this service: a replica that died and holds
  // a share of the group's messages the broker keeps queueing for it. Connects under
  // `client_id` (the broker hands over what it queued there), takes every message through
  // this bus's handlers (acknowledged after commit, as always), unsubscribes that session from
  // this bus's shared filters so the broker stops routing a share to it, and disconnects once
  // no message came for `quiet`. If the replica comes back meanwhile, the broker hands the
  // session back to it and the drain ends. `done(messages)` runs under the strand. Returns
  // false (and does nothing) when a drain is already running or the bus is not connected.
  bool drain_session(const std::string& client_id, std::chrono::milliseconds quiet,
                     std::function<void(std::uint64_t drained)> done);
  void unsubscribe(SubscriptionId id) override;
  void set_malformed_handler(MalformedHandler handler) override;

  // These three never wait for the strand (a probe must answer while a handler holds it).
  bool connected() const { return is_connected_; }
  // Connected, and every subscription granted since: what this client subscribes to reaches
  // it. The status topic says "online" from then on.
  bool ready() const { return ready_; }
  // Subscriptions the broker refused (or granted at QoS 0) on the current connection.
  std::size_t refused_now() const { return refused_now_; }
  // Connected, or trying to be: a connection attempt is under way or one is scheduled, and
  // not overdue. False only when reconnecting stopped (the timer thread is stuck or gone):
  // what a watchdog looks at. `now_us` from wall_clock_us().
  bool keeps_going(std::int64_t now_us) const;
  // The broker URI of the current connection (or of the next attempt).
  std::string broker_in_use() const;
  MqttStats stats() const;
  // Why the latest connection attempt failed, and what to do about it ("" and kNone after a
  // success). A diagnosis may follow the failure by a few seconds.
  ConnectProblem connect_problem() const;
  std::string connect_error() const;

 private:
  class Connection;
  struct Link;
  struct Subscription {
    SubscriptionId id;
    Sharing sharing;
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
    std::string event_id;        // MQTT 5: sent as the user property "event-id"
    std::uint32_t expiry_s = 0;  // MQTT 5: message expiry interval; 0: none
  };
  struct Pending {
    std::uint64_t generation;  // the connection it was sent on
    PublishCallback on_done;
    Qos qos = Qos::kAtLeastOnce;
    std::string topic;
  };

  // Connection lifecycle, under the strand unless said otherwise.
  void connect_now();
  void open_connection(std::uint64_t generation, const std::string& uri);  // timer thread
  // The next broker of the list after a failure on this one, at once; false after the last.
  bool fail_over(const std::string& why);
  const std::string& broker() const { return brokers_[broker_index_]; }
  void on_connected(std::uint64_t generation);
  void on_connect_failed(std::uint64_t generation, int return_code);
  void on_connection_lost(std::uint64_t generation, const std::string& cause);
  void retire_connection();  // the current one: its publishes fail, its client is destroyed
  void schedule_reconnect(const std::string& why, bool log_as_error);
  // Every kWatchUs while started: a connection attempt that never reported back, or a lost
  // connection with no reconnect scheduled (a failure on the way that left none), is started
  // again. The last line of defence of "a service never stops reconnecting".
  void watch_connection();
  void attempt_due_at(std::int64_t at_us);  // the next attempt starts or reports by then
  void report_failure(ConnectProblem problem, const std::string& why);
  void diagnose(int return_code);
  // `granted`: the SUBACK's reason code (MQTT 5) or granted QoS (3.1.1) for `filter`.
  void on_subscribed(std::uint64_t generation, const std::string& filter, int granted);
  void on_subscribe_refused(std::uint64_t generation, const std::string& filter, int reason);
  void resubscribe_later(const std::string& filter);
  void mark_refused(const std::string& filter);  // counts it, and the bus is not ready
  void check_ready();                            // announces ready once every filter is granted
  // The broker sent DISCONNECT (MQTT 5): Paho reports no lost connection after it.
  void on_disconnected_by_broker(std::uint64_t generation, int reason);
  void announce_ready();
  void subscribe_at_broker(const std::string& filter);
  SubscriptionId add_subscription(const std::string& filter, MessageHandler on_message,
                                  BytesHandler on_bytes, Sharing sharing);

  struct Drain;
  void open_drain(std::shared_ptr<Drain> drain);  // timer thread, no strand
  void drain_connected(std::shared_ptr<Drain> drain);
  void drain_tick(std::shared_ptr<Drain> drain);
  void finish_drain(std::shared_ptr<Drain> drain, const std::string& why);

  // Deliveries, on Paho's callback thread (takes the strand itself).
  void on_message(const std::string& topic, const std::string& bytes, bool redelivered);
  void dispatch(const std::string& topic, const std::string& bytes, bool redelivered);
  bool dead_letter_after_attempts(const std::string& topic, const std::string& bytes, int attempts,
                                  const std::string& last_error);
  [[noreturn]] void abandon(const std::string& topic);

  // Publishing, under the strand.
  void send(Outgoing out);
  void flush_backlog();
  // `reason`: the MQTT 5 reason code of a refusal (0x80 and above), else 0.
  void on_publish_done(std::uint64_t token_id, PublishOutcome outcome, int reason = 0);
  void enqueue(Outgoing out);
  void fail_later(PublishCallback on_done);
  // Reports the held confirmations that have aged past confirm_after_ms; arms the next timer.
  void release_confirmations();

  // Runs `fn` on the timer thread under the strand, unless the bus is destroyed by then.
  void post_alive(std::function<void()> fn);
  // Makes a call into Paho: at once inside a Paho message callback, else from the timer thread
  // without the strand.
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

  std::vector<std::string> brokers_;  // options_.broker's URIs (set once, in the constructor)
  // Guarded by strand_.
  std::size_t broker_index_ = 0;            // the broker of the current (or next) connection
  std::shared_ptr<Connection> connection_;  // the current one, or null
  std::shared_ptr<Drain> drain_;            // a sibling's session being drained, or null
  std::uint64_t generation_ = 0;            // of the current (or last) connection attempt
  std::vector<Subscription> subscriptions_;
  std::map<std::string, int> broker_filters_;  // filter -> subscriptions using it
  SubscriptionId next_subscription_ = 1;
  MalformedHandler on_malformed_;
  std::map<std::uint64_t, Pending> pending_;  // token id -> what to tell when it completes
  std::uint64_t next_token_ = 1;
  std::deque<Outgoing> backlog_;
  struct Held {
    std::int64_t confirmed_at_us;
    PublishCallback on_done;
  };
  std::deque<Held> held_;  // confirmed, not yet reported (oldest first)
  struct Refusals {
    std::int64_t logged_at_us = 0;
    std::uint64_t unlogged = 0;
  };
  std::map<std::pair<std::string, int>, Refusals> refusals_;  // (topic, reason) -> last report
  TimerId release_timer_ = 0;
  MqttStats stats_;
  bool started_ = false;
  std::atomic<bool> stopping_{false};  // also read by a handler retry waiting on Paho's thread
  // Written under the strand; atomic so that connected(), ready() and refused_now() need none.
  std::atomic<bool> is_connected_{false};
  std::atomic<bool> ready_{false};
  std::atomic<std::size_t> refused_now_{0};  // refused_.size()
  std::set<std::string> granted_;            // broker filters granted on this connection
  std::set<std::string> refused_;            // ... refused (or granted at QoS 0 only)
  int reconnect_delay_s_ = 0;
  TimerId reconnect_timer_ = 0;
  TimerId watch_timer_ = 0;
  // By when the attempt under way (or scheduled) reports back, wall clock; 0 when connected.
  // Read by keeps_going() without the strand.
  std::atomic<std::int64_t> attempt_due_us_{0};
  std::int64_t connected_at_us_ = 0;
  int short_connections_ = 0;  // lost within seconds of opening, in a row
  ConnectProblem problem_ = ConnectProblem::kNone;
  std::string problem_text_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guarded by strand_
  std::shared_ptr<Link> link_;  // what Paho's callbacks hold (after alive_: made from it)

  // What the TLS layer said last (set on Paho's threads).
  std::mutex tls_mutex_;
  std::string tls_error_;

  // Wakes a handler retry waiting on Paho's thread when the bus stops.
  std::mutex retry_mutex_;
  std::condition_variable retry_wakeup_;
};

}  // namespace eventmart::mqtt
