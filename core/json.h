// A small, strict JSON reader (RFC 8259) for the JSON wire format. Numbers keep their source
// text, so money can be read as exact cents without passing through floating point.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/codec.h"

namespace eventmart::json {

struct Value {
  enum class Kind : std::uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string text;          // kString: the decoded string; kNumber: the number as written
  std::vector<Value> items;  // kArray
  std::vector<std::pair<std::string, Value>> members;  // kObject, in source order

  // The member named `key` of an object (the last one if repeated), or null.
  const Value* find(std::string_view key) const;
};

// Parses a whole document; trailing non-space is an error. Depth is limited to 64.
Decoded<Value> parse(std::string_view text);

// An integer number with no fraction or exponent that fits int64, or nullopt.
std::optional<std::int64_t> as_int64(const Value& value);

// A non-negative decimal amount in currency units with at most two decimals ("53.46",
// "5", "5.5") as integer cents, or nullopt (negative, more decimals, exponent, too large).
std::optional<std::int64_t> as_cents(const Value& value);

// `text` as a JSON string literal (quotes and escapes included).
std::string quote(std::string_view text);

}  // namespace eventmart::json
