// The message bus every service is written against. One transport is real MQTT (Paho), the
// other the deterministic in-memory transport driven by the virtual clock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/envelope.h"

namespace eventmart {

enum class Qos : std::uint8_t {
  kAtMostOnce = 0,   // a lost message is gone
  kAtLeastOnce = 1,  // redelivered until acknowledged: consumers see duplicates
};

// One message as a subscriber receives it.
struct Delivery {
  const std::string& topic;
  const Envelope& envelope;
  bool redelivered = false;  // MQTT DUP flag: the transport delivered this message before
  // The bytes as received, for transports that carry bytes (MQTT); empty in memory.
  std::string_view raw = {};
};

// Told about a message the transport received on a subscribed topic but could not decode
// (not an envelope, a field missing, a type that does not belong on the topic). The transport
// acknowledges the message once the handler returns, so the handler keeps what it needs.
using MalformedHandler = std::function<void(const std::string& topic, std::string_view bytes,
                                            const std::string& reason)>;

// Called once per delivered message. The transport acknowledges the delivery only after the
// handler returns, so a handler must have committed its effects by then. Delivery is
// at-least-once: a handler may see the same event twice, out of order, or late.
using MessageHandler = std::function<void(const Delivery&)>;

enum class PublishOutcome : std::uint8_t {
  kConfirmed,  // the broker took responsibility for the message (QoS 1 PUBACK)
  kFailed,     // not accepted (disconnected, rejected); the caller still owns the message
};

// Called once when the fate of a publish is known. May run much later; never re-entrantly
// from inside publish().
using PublishCallback = std::function<void(PublishOutcome)>;

using SubscriptionId = std::uint64_t;

class Bus {
 public:
  Bus() = default;
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;
  virtual ~Bus() = default;

  // Publishes `envelope` on `topic`. Returns at once; `on_done` (if set) is told the outcome.
  // REQUIRES: is_valid_topic_name(topic). An invalid topic is reported as kFailed.
  virtual void publish(const std::string& topic, Envelope envelope, Qos qos,
                       PublishCallback on_done) = 0;

  // Delivers every message whose topic matches `filter` (MQTT '+'/'#' semantics, see
  // topic_filter.h) to `handler`. A message matching several of this client's filters is
  // delivered once to each matching handler, then acknowledged once.
  // REQUIRES: is_valid_topic_filter(filter); throws std::invalid_argument otherwise.
  virtual SubscriptionId subscribe(const std::string& filter, MessageHandler handler) = 0;

  // Stops deliveries to the subscription. Unknown ids are ignored.
  virtual void unsubscribe(SubscriptionId id) = 0;

  // Where undecodable messages go (an empty handler: logged and dropped by the transport).
  // Transports that never decode bytes (the memory bus) keep it and never call it.
  virtual void set_malformed_handler(MalformedHandler handler) = 0;
};

// Forwards every call to another Bus (LevelDB's EnvWrapper): a decorator derives from it and
// overrides only what it changes, so it cannot forget to pass the rest on.
// REQUIRES: `target` outlives the wrapper.
class BusWrapper : public Bus {
 public:
  explicit BusWrapper(Bus& target) : target_(target) {}
  Bus& target() const { return target_; }

  void publish(const std::string& topic, Envelope envelope, Qos qos,
               PublishCallback on_done) override {
    target_.publish(topic, std::move(envelope), qos, std::move(on_done));
  }
  SubscriptionId subscribe(const std::string& filter, MessageHandler handler) override {
    return target_.subscribe(filter, std::move(handler));
  }
  void unsubscribe(SubscriptionId id) override { target_.unsubscribe(id); }
  void set_malformed_handler(MalformedHandler handler) override {
    target_.set_malformed_handler(std::move(handler));
  }

 private:
  Bus& target_;
};

}  // namespace eventmart
