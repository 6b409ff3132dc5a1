// What the parts of the MQTT transport share (transports/mqtt/mqtt_*.cpp): the MqttBus is one
// class; its connection and failover, subscriptions, deliveries, publishes, the drain of a
// sibling's session and the diagnosis of a failed connection each live in a file of their own.
// Internal to transports/mqtt: nothing else includes it.
#pragma once

#include <mqtt/async_client.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/assert.h"
#include "transports/mqtt/mqtt_bus.h"

namespace eventmart::mqtt {

constexpr std::int64_t kShortLivedUs = 10'000'000;  // a connection lost sooner was not healthy
constexpr int kTakeoverSuspicion = 3;               // short-lived connections in a row
constexpr int kProbeTimeoutS = 3;
// How often the reconnect supervisor looks (MqttBus::watch_connection).
constexpr std::int64_t kWatchUs = 5'000'000;
// Refused publishes of one topic (and reason) are logged at most once this often.
constexpr std::int64_t kRefusalLogUs = 10'000'000;
// The generation of a drain's connection: never that of the bus's own.
constexpr std::uint64_t kDrainGeneration = UINT64_MAX;

// "$share/{group}/{filter}" -> "{filter}"; any other filter as is. Throws std::invalid_argument
// for a malformed shared subscription.
std::string match_filter_of(const std::string& filter);
// Paho's number for `version`.
int paho_version(MqttVersion version);
// The name of an MQTT 5 reason code of 0x80 or more (MQTT 5 section 2.4), with the code.
std::string reason_text(int code);
// A token's MQTT 5 reason code when it is a refusal (0x80 and above), else 0.
int refusal_of(const ::mqtt::token& tok);
// What a CONNACK refusal means, and what to do about it.
std::string connack_text(int code);
// What every connection of a bus (and a drain's) sends in its CONNECT, TLS apart. `clean`: no
// session kept.
::mqtt::connect_options_builder connect_builder(const MqttOptions& o, bool clean);
// Sets TCP_NODELAY on the process's TCP sockets (Paho leaves Nagle on).
void disable_nagle_on_tcp_sockets();
struct Endpoint {
  bool tls = false;
  std::string host;
  std::string port;
};
// tcp://host:port, mqtt://, ssl://, mqtts:// (ports default to 1883 and 8883).
Endpoint endpoint_of(const std::string& uri);

// How Paho's threads reach the bus: a task posted to the timer thread runs under the strand,
// and only while the bus is alive. Safe to keep and use after the bus is gone.
struct MqttBus::Link {
  std::function<void(std::function<void()>)> post;  // LiveClock::poster()
  std::shared_ptr<bool> alive;                      // read under the strand
  MqttBus* bus;

  template <typename Fn>
  void to_bus(Fn fn) {
    post([alive = alive, bus = bus, fn = std::move(fn)] {
      if (*alive) fn(*bus);
    });
  }
};

// One Paho client, for one connection: created for a connection attempt, destroyed when the
// connection ends. Its listeners carry the generation, so late callbacks of a retired client
// are recognised and ignored.
class MqttBus::Connection {
 public:
  Connection(std::shared_ptr<Link> link, std::uint64_t generation)
      : generation(generation),
        publish(link),
        connect(link, generation),
        subscribe(link, generation) {}

  struct Publish final : ::mqtt::iaction_listener {
    explicit Publish(std::shared_ptr<Link> l) : link(std::move(l)) {}
    void on_success(const ::mqtt::token& tok) override { done(tok, PublishOutcome::kConfirmed); }
    // A refusal (an MQTT 5 PUBACK reason code of 0x80 or more) arrives here too.
    void on_failure(const ::mqtt::token& tok) override { done(tok, PublishOutcome::kFailed); }
    void done(const ::mqtt::token& tok, PublishOutcome outcome) {
      const auto id = reinterpret_cast<std::uintptr_t>(tok.get_user_context());
      const int reason = outcome == PublishOutcome::kFailed ? refusal_of(tok) : 0;
      link->to_bus(
          [id, outcome, reason](MqttBus& bus) { bus.on_publish_done(id, outcome, reason); });
    }
    std::shared_ptr<Link> link;
  };

  struct Connect final : ::mqtt::iaction_listener {
    Connect(std::shared_ptr<Link> l, std::uint64_t g) : link(std::move(l)), generation(g) {}
    void on_success(const ::mqtt::token&) override {}  // the connected handler does the work
    void on_failure(const ::mqtt::token& tok) override {
      // MQTT 5: a refusing CONNACK's reason code (0x80 and above); 3.1.1: its return code.
      const int refusal = refusal_of(tok);
      const int rc = refusal != 0 ? refusal : tok.get_return_code();
      link->to_bus([g = generation, rc](MqttBus& bus) { bus.on_connect_failed(g, rc); });
    }
    std::shared_ptr<Link> link;
    std::uint64_t generation;
  };

  // One filter per SUBSCRIBE, so the SUBACK holds one reason code.
  struct Subscribe final : ::mqtt::iaction_listener {
    Subscribe(std::shared_ptr<Link> l, std::uint64_t g) : link(std::move(l)), generation(g) {}
    void on_success(const ::mqtt::token& tok) override {
      // MQTT 5: the reason code is the granted QoS. 3.1.1: the response holds it.
      int granted = static_cast<int>(tok.get_reason_code());
      if (tok.get_reason_code() == ::mqtt::ReasonCode::SUCCESS) {
        try {
          const auto codes = tok.get_subscribe_response().get_reason_codes();
          if (!codes.empty()) granted = static_cast<int>(codes.front());
        } catch (const ::mqtt::exception&) {
        }
      }
      link->to_bus([g = generation, filter = filter_of(tok), granted](MqttBus& bus) {
        bus.on_subscribed(g, filter, granted);
      });
    }
    void on_failure(const ::mqtt::token& tok) override {
      // A refusal: an MQTT 5 reason code of 0x80 or more, or 3.1.1's one failure code 0x80.
      // Anything else is Paho giving up on the request (the connection closed): the next
      // connection subscribes again.
      const int refusal = refusal_of(tok);
      const int reason = refusal != 0 ? refusal : tok.get_return_code() == 0x80 ? 0x80 : 0;
      if (reason == 0) return;
      link->to_bus([g = generation, filter = filter_of(tok), reason](MqttBus& bus) {
        bus.on_subscribe_refused(g, filter, reason);
      });
    }
    static std::string filter_of(const ::mqtt::token& tok) {
      const auto topics = tok.get_topics();
      return topics && topics->size() > 0 ? (*topics)[0] : std::string();
    }
    std::shared_ptr<Link> link;
    std::uint64_t generation;
  };

  const std::uint64_t generation;
  Publish publish;
  Connect connect;
  Subscribe subscribe;
  // Declared last: destroyed first, while the listeners it may still call are alive.
  std::unique_ptr<::mqtt::async_client> client;
};

// A sibling's session being drained (drain_session).
struct MqttBus::Drain {
  std::string client_id;
  std::string broker;
  std::chrono::milliseconds quiet;
  std::function<void(std::uint64_t)> done;
  std::shared_ptr<Connection> connection;
  std::atomic<std::uint64_t> drained{0};
  std::atomic<std::int64_t> last_message_us{0};
  bool finished = false;
};
}  // namespace eventmart::mqtt
