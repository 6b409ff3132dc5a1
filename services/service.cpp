#include "services/service.h"

namespace eventmart {

Service::Service(std::string_view name, const ServiceContext& context)
    : name_(name),
      ctx_(context),
      journal_(context.db),
      relay_(journal_, context.clock, context.bus, context.logistics_bus, context.qos) {}

void Service::reject(const Delivery& delivery, std::string_view why) {
  ++stats_.rejected;
  ctx_.logger.log(LogLevel::kWarning, name_,
                  "rejected event '" + delivery.envelope.event_id + "' on '" + delivery.topic +
                      "': " + std::string(why));
}

bool Service::expect_type(const Delivery& delivery, EventType expected) {
  if (delivery.envelope.type == expected) return true;
  reject(delivery, "expected a " + std::string(event_type_name(expected)) + " event, got " +
                       std::string(event_type_name(delivery.envelope.type)));
  return false;
}

}  // namespace eventmart
