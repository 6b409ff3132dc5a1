#include "services/inventory_logic.h"

#include <algorithm>

#include "core/assert.h"

namespace eventmart {

namespace {

// A record as the inventory keeps it: nothing below zero.
void require_whole(const StockRecord& r) {
  EVENTMART_REQUIRE(r.stock >= 0 && r.shortfall >= 0 && r.restock_quantity >= 0, r.stock,
                    r.shortfall, r.restock_quantity);
}

}  // namespace

std::optional<StockDecision> apply_sale(const StockRecord& before, std::int64_t quantity) {
  EVENTMART_REQUIRE(quantity >= 1, quantity);
  require_whole(before);
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
  // A sale takes what is on the shelf and owes the rest: stock never goes below zero.
  EVENTMART_ASSERT(
      after.stock >= 0 && after.stock <= before.stock && after.shortfall >= before.shortfall,
      after.stock, before.stock, after.shortfall, before.shortfall);
  return decision;
}

std::optional<StockDecision> apply_replenishment(const StockRecord& before, std::int64_t quantity) {
  EVENTMART_REQUIRE(quantity >= 1, quantity);
  require_whole(before);
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
  EVENTMART_ASSERT(
      after.shortfall >= 0 && after.shortfall <= before.shortfall && after.stock >= before.stock,
      after.stock, before.stock, after.shortfall, before.shortfall);
  return decision;
}

}  // namespace eventmart
