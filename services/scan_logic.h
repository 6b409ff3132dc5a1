// Pure decision logic of the two guardians: what a raw device reading means.
#pragma once

#include <string_view>
#include <vector>

#include "core/codec.h"
#include "core/events.h"

namespace eventmart {

// A loyalty card as the scanner reads it: decimal digits of a customer id >= 1 (surrounding
// blanks allowed). Anything else is an unreadable card.
Decoded<CustomerId> parse_card(std::string_view card);

// The bag as the exit gate scans it: one sku per unit, in scan order. Units of the same sku
// are merged into one line item (first-seen order). Skus must be >= 1; an empty bag is a
// valid, empty basket.
Decoded<CustomerDeparted> departure_from_units(CustomerId customer, const std::vector<Sku>& units);

}  // namespace eventmart
