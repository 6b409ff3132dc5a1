// What the store accepts from the outside world, and the checks every input passes before any
// work (or allocation) proportional to it. Anything outside these bounds is refused with a
// reason (services dead-letter it); nothing is clamped or wrapped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/events.h"
#include "core/result.h"

namespace eventmart {

// Ids: JSON consumers (JavaScript among them) read numbers up to 2^53 - 1 exactly.
inline constexpr CustomerId kMaxCustomerId = 9'007'199'254'740'991;
// The reference implementation's devices send product ids that fit 32 bits.
inline constexpr Sku kMaxSku = 2'147'483'647;
// Units in one restock order or delivery; the catalog's restock quantities stay below it.
inline constexpr std::int64_t kMaxDeliveryUnits = 1'000'000;
// Occurred-at times: from the Unix epoch up to the end of year 9999 (what ISO-8601 can write).
inline constexpr std::int64_t kMaxTimestampUs = 253'402'300'799'999'999;

// Bounds on one message, set per process (serve's --max-* flags). The defaults fit any real
// basket by orders of magnitude and keep a hostile message's cost small.
struct InputLimits {
  std::size_t max_payload_bytes = 64 * 1024;  // a message's bytes as received
  std::int64_t max_basket_lines = 500;        // distinct skus (lines) in one departure
  std::int64_t max_units_per_line = 1000;     // units of one sku in one departure
  std::int64_t max_basket_units = 10'000;     // units in one departure
  std::size_t max_id_bytes = 128;             // event ids, scan ids, sources

  // Whether these limits can be used, and why not: each is at least 1 and at most a
  // ceiling that keeps every sum of them far from overflowing 64 bits.
  Status validate() const;
};

// The limits every process starts with unless told otherwise.
const InputLimits& default_limits();

// An id (event id, scan id, source): 1..max_bytes bytes of printable ASCII without blanks
// (0x21..0x7e). Says why not when it is not; `what` names it in the message.
Status check_id(std::string_view id, std::size_t max_bytes, std::string_view what);

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) without NUL.
bool is_valid_utf8(std::string_view text);

// At most `max_bytes` of `text` for a message a person reads: cut at a character boundary,
// invalid bytes shown as '?', and "... (N bytes)" appended when cut.
std::string excerpt(std::string_view text, std::size_t max_bytes = 80);

}  // namespace eventmart
