#include "core/topics.h"

#include <stdexcept>

namespace eventmart {

bool is_valid_topic_level(std::string_view level) {
  return !level.empty() &&
         level.find_first_of(std::string_view("/+#\0", 4)) == std::string_view::npos;
}

Topics::Topics(std::string_view chain_name, std::string_view store_name)
    : chain(chain_name), store(store_name) {
  if (!is_valid_topic_level(chain)) {
    throw std::invalid_argument("chain name '" + chain + "' is not a single topic level");
  }
  if (!is_valid_topic_level(store)) {
    throw std::invalid_argument("store name '" + store + "' is not a single topic level");
  }
  const std::string prefix = chain + "/" + store + "/";
  customer_arrival = prefix + "customer-arrival";
  customer_departure = prefix + "customer-departure";
  payment_due = prefix + "payment-due";
  display_entrance = prefix + "display/entrance";
  entrance_scanner = prefix + "devices/entrance-scanner";
  exit_gate = prefix + "devices/exit-gate";
  restock_needed = "logistics/" + prefix + "restock-needed";
  stock_replenished = "logistics/" + prefix + "stock-replenished";
}

std::string Topics::dead_letter(std::string_view service) const {
  return chain + "/" + store + "/dead-letter/" + std::string(service);
}

std::string Topics::status(std::string_view service, std::string_view instance) const {
  std::string topic = chain + "/" + store + "/status/" + std::string(service);
  if (!instance.empty()) topic += "/" + std::string(instance);
  return topic;
}

}  // namespace eventmart
