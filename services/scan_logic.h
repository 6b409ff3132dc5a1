// Pure decision logic of the two guardians: what a raw device reading means. Every bound is
// checked before the work it bounds, so a hostile reading costs no more than the limits allow.
#pragma once

#include <string_view>
#include <vector>

#include "core/codec.h"
#include "core/events.h"
#include "core/limits.h"

namespace eventmart {

// A loyalty card as the scanner reads it: decimal digits of a customer id 1..kMaxCustomerId
// (surrounding blanks allowed). Anything else is an unreadable card.
Result<CustomerId> parse_card(std::string_view card);

// The bag as the exit gate read it: lines of (sku, units), in scan order; a sku may appear on
// several lines. Lines of the same sku are merged into one line item (first-seen order).
// Skus must be 1..kMaxSku and each line's units >= 1; the merged basket must stay within
// `limits` (lines, units per line, units in all). An empty bag is a valid, empty basket.
Result<CustomerDeparted> departure_from_lines(CustomerId customer,
                                              const std::vector<LineItem>& lines,
                                              const InputLimits& limits = default_limits());

// One line of one unit per sku in `units` (a bag scanned unit by unit).
std::vector<LineItem> lines_of_units(const std::vector<Sku>& units);

}  // namespace eventmart
