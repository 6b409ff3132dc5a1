// The wire between the services, in the simulator (the `wire` knob): every delivery is encoded
// to bytes in Cap'n Proto or JSON and decoded again with the receiving service's limits before
// its handler sees it, as the MQTT transport does, so a swarm seed runs the real codecs. What
// does not decode goes to the service's malformed handler (it dead-letters the bytes).
#pragma once

#include <string>
#include <utility>

#include "core/bus.h"
#include "core/codec.h"
#include "core/limits.h"
#include "core/topics.h"
#include "core/wire.h"

namespace eventmart::sim {

class WireBus final : public BusWrapper {
 public:
  // `topics` must outlive the bus.
  WireBus(Bus& target, WireFormat format, const Topics& topics, InputLimits limits)
      : BusWrapper(target), format_(format), topics_(topics), limits_(limits) {}

  SubscriptionId subscribe(const std::string& filter, MessageHandler handler) override {
    return BusWrapper::subscribe(filter, [this, handler = std::move(handler)](const Delivery& d) {
      // What a sender puts on the wire; an envelope the format cannot write (a rogue client's
      // undecodable payload) goes as its Cap'n Proto bytes, which the format then refuses.
      Result<std::string> encoded = encode_wire(format_, d.envelope);
      const std::string bytes = encoded ? std::move(encoded.value()) : encode_envelope(d.envelope);
      Result<Envelope> decoded = decode_wire(format_, topics_, d.topic, bytes, limits_);
      if (!decoded) {
        if (malformed_) malformed_(d.topic, bytes, decoded.error());
        return;
      }
      handler(Delivery{d.topic, decoded.value(), d.redelivered, bytes});
    });
  }
  void set_malformed_handler(MalformedHandler handler) override {
    malformed_ = handler;
    BusWrapper::set_malformed_handler(std::move(handler));
  }

 private:
  WireFormat format_;
  const Topics& topics_;
  InputLimits limits_;
  MalformedHandler malformed_;
};

}  // namespace eventmart::sim
