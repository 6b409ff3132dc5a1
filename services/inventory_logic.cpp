#include "services/inventory_logic.h"

#include <algorithm>

namespace eventmart {

std::optional<StockDecision> apply_sale(const StockRecord& before, std::int64_t quantity) {
  StockDecision decision{before, std::nullopt};
  StockRecord& after = decision.after;
  const std::int64_t covered = std::min(after.stock, quantity);
  after.stock -= covered;
  std::int64_t level = 0;
  if (__builtin_add_overflow(after.shortfall, quantity - covered, &after.shortfall) ||
      __builtin_sub_overflow(after.stock, after.shortfall, &level)) {
    return std::nullopt;
  }
  if (after.restock_armed && level < after.restock_threshold) {
    after.restock_armed = false;
    decision.restock = RestockOrder{after.restock_quantity, level};
  }
  return decision;
}

std::optional<StockDecision> apply_replenishment(const StockRecord& before, std::int64_t quantity) {
  StockDecision decision{before, std::nullopt};
  StockRecord& after = decision.after;
  const std::int64_t settled = std::min(after.shortfall, quantity);
  after.shortfall -= settled;
  std::int64_t level = 0;
  if (__builtin_add_overflow(after.stock, quantity - settled, &after.stock) ||
      __builtin_sub_overflow(after.stock, after.shortfall, &level)) {
    return std::nullopt;
  }
  if (level >= after.restock_threshold) after.restock_armed = true;
  return decision;
}

}  // namespace eventmart
