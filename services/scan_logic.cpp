#include "services/scan_logic.h"

#include <charconv>
#include <map>
#include <string>

#include "core/marks.h"

namespace eventmart {

Result<CustomerId> parse_card(std::string_view card) {
  while (!card.empty() && (card.front() == ' ' || card.front() == '\t')) card.remove_prefix(1);
  while (!card.empty() && (card.back() == ' ' || card.back() == '\t' || card.back() == '\r' ||
                           card.back() == '\n')) {
    card.remove_suffix(1);
  }
  CustomerId id = 0;
  const auto [end, ec] = std::from_chars(card.data(), card.data() + card.size(), id);
  if (card.empty() || card.front() == '-' || card.front() == '+' || ec != std::errc() ||
      end != card.data() + card.size() || id < 1 || id > kMaxCustomerId) {
    return Result<CustomerId>::error("unreadable loyalty card '" + excerpt(card, 40) +
                                     "' (expected a customer number 1.." +
                                     std::to_string(kMaxCustomerId) + ")");
  }
  return Result<CustomerId>::ok(id);
}

Result<CustomerDeparted> departure_from_lines(CustomerId customer,
                                              const std::vector<LineItem>& lines,
                                              const InputLimits& limits) {
  using D = Result<CustomerDeparted>;
  CustomerDeparted departed{customer, {}};
  std::map<Sku, std::size_t> position;  // sku -> index in items
  std::int64_t units = 0;
  for (const LineItem& line : lines) {
    if (line.sku < 1 || line.sku > kMaxSku) {
      return D::error("bag scan has invalid sku " + std::to_string(line.sku));
    }
    if (line.quantity < 1 || line.quantity > limits.max_units_per_line) {
      return D::error("bag scan has " + std::to_string(line.quantity) + " units of sku " +
                      std::to_string(line.sku) + " (1.." +
                      std::to_string(limits.max_units_per_line) + " per line)");
    }
    units += line.quantity;  // each bounded, and we stop at the first excess: no overflow
    if (units > limits.max_basket_units) {
      return D::error("bag scan holds more than " + std::to_string(limits.max_basket_units) +
                      " units (the limit per basket)");
    }
    auto [it, inserted] = position.emplace(line.sku, departed.items.size());
    if (inserted) {
      if (static_cast<std::int64_t>(departed.items.size()) >= limits.max_basket_lines) {
        return D::error("bag scan holds more than " + std::to_string(limits.max_basket_lines) +
                        " different products (the limit per basket)");
      }
      departed.items.push_back(line);
      continue;
    }
    std::int64_t& merged = departed.items[it->second].quantity;
    if (departed.items[it->second].sku != departed.items.back().sku) {
      mark(Mark::kBasketRepeatedSku);  // the same sku again after another one
    }
    merged += line.quantity;
    if (merged > limits.max_units_per_line) {
      return D::error("bag scan holds more than " + std::to_string(limits.max_units_per_line) +
                      " units of sku " + std::to_string(line.sku) + " (the limit per line)");
    }
  }
  return D::ok(std::move(departed));
}

std::vector<LineItem> lines_of_units(const std::vector<Sku>& units) {
  std::vector<LineItem> lines;
  lines.reserve(units.size());
  for (Sku sku : units) lines.push_back(LineItem{sku, 1});
  return lines;
}

}  // namespace eventmart
