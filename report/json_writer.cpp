#include "report/json_writer.h"

#include <cmath>
#include <stdexcept>

#include "core/assert.h"

namespace eventmart::report {

void JsonWriter::add(json::Document value) {
  if (open_.empty()) {
    if (has_root_) throw std::logic_error("JsonWriter: a second top-level value");
    root_ = std::move(value);
    has_root_ = true;
    if (root_.is_structured()) open_.push_back(&root_);
    return;
  }
  json::Document& parent = *open_.back();
  json::Document* added = nullptr;
  if (parent.is_array()) {
    parent.push_back(std::move(value));
    added = &parent.back();
  } else {
    EVENTMART_REQUIRE(has_key_, value.dump());  // a member needs its name first
    added = &(parent[pending_key_] = std::move(value));
    pending_key_.clear();
    has_key_ = false;
  }
  if (added->is_structured()) open_.push_back(added);
}

JsonWriter& JsonWriter::begin_object() {
  add(json::Document::object());
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  EVENTMART_REQUIRE(!open_.empty() && open_.back()->is_object() && !has_key_, pending_key_);
  open_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  add(json::Document::array());
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  EVENTMART_REQUIRE(!open_.empty() && open_.back()->is_array());
  open_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  EVENTMART_REQUIRE(!open_.empty() && open_.back()->is_object() && !has_key_, name, pending_key_);
  pending_key_ = std::string(name);
  has_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view text) {
  add(json::Document(std::string(text)));
  return *this;
}

JsonWriter& JsonWriter::value(std::int64_t number) {
  add(json::Document(number));
  return *this;
}

JsonWriter& JsonWriter::value(std::uint64_t number) {
  add(json::Document(number));
  return *this;
}

JsonWriter& JsonWriter::value(bool flag) {
  add(json::Document(flag));
  return *this;
}

JsonWriter& JsonWriter::value_fixed(double number, int decimals) {
  const double scale = std::pow(10.0, decimals);
  add(json::Document(std::round(number * scale) / scale));
  return *this;
}

std::string JsonWriter::str() const {
  return json::dump(root_);
}

}  // namespace eventmart::report
