// JSON, read and written with nlohmann-json (Debian's nlohmann-json3-dev).
//
// Reading: parse() runs nlohmann's strict parser (RFC 8259, UTF-8 validated) through a SAX
// handler into a Value whose numbers keep their text, so money is read as exact cents and
// never passes through floating point; nesting deeper than 64 is refused.
// Writing: build a Document (members keep their insertion order) and dump() it; text that is
// not valid UTF-8 is written with U+FFFD in place of the bad bytes, so the output is always
// valid JSON whatever came in.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
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
  std::string text;               // kString: the decoded string; kNumber: the number's text
  std::vector<Value> items;       // kArray; kObject: the members' values, in source order
  std::vector<std::string> keys;  // kObject: the members' names, one per entry of `items`

  // The member named `key` of an object (the last one if repeated), or null.
  const Value* find(std::string_view key) const;
};

inline constexpr int kMaxDepth = 64;

// Parses a whole document; trailing non-space is an error. Errors say what and at which byte.
Result<Value> parse(std::string_view text);

// An integer number with no fraction or exponent that fits int64, or nullopt.
std::optional<std::int64_t> as_int64(const Value& value);

// A non-negative decimal amount in currency units with at most two decimals ("53.46",
// "5", "5.5") as integer cents, or nullopt (negative, more decimals, exponent, too large).
std::optional<std::int64_t> as_cents(const Value& value);

// A document to write; objects keep the order in which members were added.
using Document = nlohmann::ordered_json;

// `doc` as compact JSON text, valid UTF-8 whatever its strings hold.
std::string dump(const Document& doc);

// `cents` as a JSON number of currency units with exactly its value ("53.46", "5.5", "0.0").
// REQUIRES: |cents| < 10^15 (every double up to there holds two decimals exactly enough to
// print back the same digits); checked.
Document amount(std::int64_t cents);

}  // namespace eventmart::json
