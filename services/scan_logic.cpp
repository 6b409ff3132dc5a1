#include "services/scan_logic.h"

#include <charconv>
#include <map>
#include <string>

namespace eventmart {

Decoded<CustomerId> parse_card(std::string_view card) {
  while (!card.empty() && (card.front() == ' ' || card.front() == '\t')) card.remove_prefix(1);
  while (!card.empty() && (card.back() == ' ' || card.back() == '\t' || card.back() == '\r' ||
                           card.back() == '\n')) {
    card.remove_suffix(1);
  }
  CustomerId id = 0;
  const auto [end, ec] = std::from_chars(card.data(), card.data() + card.size(), id);
  if (card.empty() || card.front() == '-' || card.front() == '+' || ec != std::errc() ||
      end != card.data() + card.size() || id < 1) {
    return Decoded<CustomerId>::error("unreadable loyalty card '" + std::string(card) +
                                      "' (expected a customer number >= 1)");
  }
  return Decoded<CustomerId>::ok(id);
}

Decoded<CustomerDeparted> departure_from_units(CustomerId customer, const std::vector<Sku>& units) {
  CustomerDeparted departed{customer, {}};
  std::map<Sku, std::size_t> position;  // sku -> index in items
  for (Sku sku : units) {
    if (sku < 1) {
      return Decoded<CustomerDeparted>::error("bag scan has invalid sku " + std::to_string(sku));
    }
    auto [it, inserted] = position.emplace(sku, departed.items.size());
    if (inserted) {
      departed.items.push_back(LineItem{sku, 1});
    } else {
      ++departed.items[it->second].quantity;
    }
  }
  return Decoded<CustomerDeparted>::ok(std::move(departed));
}

}  // namespace eventmart
