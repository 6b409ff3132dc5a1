// A stand-in for the logistics department on a live broker, so that a store run with `serve`
// gets its restocks delivered: every RestockNeeded is answered with a StockReplenished of the
// quantity asked for, at once. It is a Service like the store's own: the request is consumed
// once (inbox) and the delivery goes out through the outbox, so a crash loses nothing and a
// redelivered request is not delivered twice. Not one of the five store services: `serve
// --service logistics-desk` runs it, `--all` does not.
#pragma once

#include <string_view>

#include "core/codec.h"
#include "services/service.h"

namespace eventmart {

inline constexpr std::string_view kLogisticsDesk = "logistics-desk";

class LogisticsDesk final : public Service {
 public:
  // Throws std::invalid_argument when context.logistics_bus is not set.
  explicit LogisticsDesk(const ServiceContext& context);
  void start() override;

 private:
  void on_restock(const Delivery& delivery);
};

}  // namespace eventmart
