#include "core/events.h"

namespace eventmart {

std::string_view event_type_name(EventType type) {
  switch (type) {
    case EventType::kCustomerArrival:
      return "customer-arrival";
    case EventType::kCustomerDeparted:
      return "customer-departed";
    case EventType::kPaymentDue:
      return "payment-due";
    case EventType::kRestockNeeded:
      return "restock-needed";
    case EventType::kStockReplenished:
      return "stock-replenished";
    case EventType::kDeadLetter:
      return "dead-letter";
    case EventType::kWelcome:
      return "welcome";
    case EventType::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace eventmart
