// The message bus every service is written against. One transport is real MQTT (Paho), the
// other the deterministic in-memory transport driven by the virtual clock.
#pragma once

#include <cstdint>
#include <exception>
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

// Implemented by an exception that can say its failure is the environment's and passes (a
// full disk, a locked database), not the message's: the transport then retries it without
// limit and never dead-letters the message for it.
class FailureKind {
 public:
  virtual ~FailureKind() = default;
  virtual bool transient() const = 0;
};

// True when `e` says it is transient (see FailureKind).
inline bool is_transient(const std::exception& e) {
  const auto* kind = dynamic_cast<const FailureKind*>(&e);
  return kind != nullptr && kind->transient();
}

// What a transport does when a handler throws (its transaction rolled back: an I/O error, a
// full disk, a locked database). The message stays unacknowledged and is handled again after
// min_delay_us, doubling up to max_delay_us; in the meantime the client takes nothing else
// (Paho's receive thread is blocked; the memory transport holds what arrives). After
// max_attempts failures the message goes to the malformed handler, which dead-letters it
// durably, and only then is it acknowledged; if the dead letter cannot be written either, it
// is tried again. A transient failure (is_transient: a full disk) never counts towards
// max_attempts: the message is fine, and it waits, unacknowledged, until the disk has room.
// A crash at any point of this leaves the message unacknowledged, so the broker delivers it
// again. Both transports use this policy (one definition, here).
struct HandlerRetry {
  std::int64_t min_delay_us = 100'000;
  std::int64_t max_delay_us = 5'000'000;
  int max_attempts = 8;

  // The wait after the `failed`-th failed attempt (1, 2, ...).
  std::int64_t delay_after(int failed) const {
    const int shift = failed <= 1 ? 0 : (failed - 1 < 20 ? failed - 1 : 20);
    const std::int64_t delay = min_delay_us << shift;
    return delay < max_delay_us ? delay : max_delay_us;
  }
  // The dead letter's reason after `attempts` failures.
  static std::string give_up_reason(int attempts, std::string_view last_error) {
    return "handling failed " + std::to_string(attempts) +
           " times; last: " + std::string(last_error);
  }
};

class Bus {
 public:
  Bus() = default;
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;
  virtual ~Bus() = default;

  // Publishes `envelope` on `topic`. Returns at once; `on_done` (if set) is told the outcome.
  // A topic that is not a valid topic name (is_valid_topic_name) is reported as kFailed.
  virtual void publish(const std::string& topic, Envelope envelope, Qos qos,
                       PublishCallback on_done) = 0;

  // Delivers every message whose topic matches `filter` (MQTT '+'/'#' semantics, see
  // topic_filter.h) to `handler`. A message matching several of this client's filters is
  // delivered once to each matching handler, then acknowledged once.
  // Throws std::invalid_argument when !is_valid_topic_filter(filter).
  virtual SubscriptionId subscribe(const std::string& filter, MessageHandler handler) = 0;

  // Stops deliveries to the subscription. Unknown ids are ignored.
  virtual void unsubscribe(SubscriptionId id) = 0;

  // Where undecodable messages go (an empty handler: logged and dropped by the transport).
  // Transports that never decode bytes (the memory bus) keep it and never call it.
  virtual void set_malformed_handler(MalformedHandler handler) = 0;
};

// Forwards every call to another Bus (LevelDB's EnvWrapper): a decorator derives from it and
// overrides only what it changes, so it cannot forget to pass the rest on.
// It holds a reference: the target outlives the wrapper (every owner in the tree builds the
// wrapper after its target and destroys it first).
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
