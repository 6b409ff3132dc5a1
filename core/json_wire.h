// The JSON wire format, compatible with the reference Python implementation of this store,
// so its devices and services can share a broker with eventmart:
//   {chain}/{store}/customer-arrival    {"timestamp": "2026-11-26T03:11:26.745261", "customer_id":
//   2} {chain}/{store}/customer-departure  {"timestamp": "...", "customer_id": 8,
//                                        "product_ids": [59, 52, 47, 11, 68, 68]}  (one id per
//                                        unit)
//   {chain}/{store}/payment-due         {"timestamp": "...", "customer_id": 8, "amount": 53.46}
// eventmart writes those fields plus its own ("event_id", "caused_by", "source", and exact
// values such as "total_cents" and "items" with quantities); readers ignore fields they do not
// know. Amounts are computed from integer cents and read back as exact cents, never through
// floating point. Reference messages carry no event id: one is derived from topic and payload,
// so the same message delivered twice has the same id.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/codec.h"
#include "core/envelope.h"
#include "core/limits.h"

namespace eventmart::json_wire {

// "YYYY-MM-DDTHH:MM:SS.ffffff": UTC without a zone suffix, as the reference writes it.
std::string format_timestamp(std::int64_t us_since_epoch);
// Accepts 0 to 6 fraction digits and an optional "Z" or "+00:00"; nullopt when malformed or
// not a real moment (February 30th, 25:00, a year before 1970).
std::optional<std::int64_t> parse_timestamp(std::string_view text);

// The JSON for `envelope` (its Cap'n Proto payload decoded). Fails on an undecodable payload.
Result<std::string> encode(const Envelope& envelope);

// Reads a message of `type` received on `topic`. Every field is checked (ranges, ids, the
// basket against `limits`, a real timestamp); errors name the field that is missing or wrong.
// A type without a JSON form (unknown, dead letter, welcome) is an error too.
Result<Envelope> decode(EventType type, std::string_view topic, std::string_view json,
                        const InputLimits& limits = default_limits());

}  // namespace eventmart::json_wire
