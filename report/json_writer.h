// The command line's JSON reports, written with nlohmann-json (core/json.h) through a small
// streaming-style builder: begin/end objects and arrays, keys and values in order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace eventmart::report {

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  // Names the next value. REQUIRES: inside an object, its last member named has its value
  // (checked, as is every end_* against what it ends).
  JsonWriter& key(std::string_view name);
  JsonWriter& value(std::string_view text);
  JsonWriter& value(const char* text) { return value(std::string_view(text)); }
  JsonWriter& value(std::int64_t number);
  JsonWriter& value(std::uint64_t number);
  JsonWriter& value(int number) { return value(static_cast<std::int64_t>(number)); }
  JsonWriter& value(bool flag);
  // `number` rounded to `decimals` places (written in the shortest form that reads back).
  JsonWriter& value_fixed(double number, int decimals);

  // The document so far as compact JSON (valid UTF-8 whatever the strings held).
  std::string str() const;

 private:
  void add(json::Document value);
  json::Document root_;
  std::vector<json::Document*> open_;  // the objects and arrays being written, innermost last
  std::string pending_key_;
  bool has_key_ = false;  // key() named the next member of the innermost object
  bool has_root_ = false;
};

}  // namespace eventmart::report
