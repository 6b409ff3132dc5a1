#include "core/json.h"

#include <charconv>

#include "core/assert.h"

namespace eventmart::json {
namespace {

// Builds a Value from nlohmann's SAX events. Integers arrive as numbers and are kept as their
// decimal text; any other number arrives with its source text, which is kept as written.
class Builder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return add(Value{}); }
  bool boolean(bool v) override {
    Value value;
    value.kind = Value::Kind::kBool;
    value.boolean = v;
    return add(std::move(value));
  }
  bool number_integer(number_integer_t v) override { return number(std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return number(std::to_string(v)); }
  bool number_float(number_float_t, const string_t& text) override { return number(text); }
  bool string(string_t& v) override {
    Value value;
    value.kind = Value::Kind::kString;
    value.text = std::move(v);
    return add(std::move(value));
  }
  bool binary(binary_t&) override { return false; }  // not produced by the JSON parser
  bool start_object(std::size_t) override { return open(Value::Kind::kObject); }
  bool key(string_t& name) override {
    keys_.push_back(std::move(name));
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(Value::Kind::kArray); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    error_ = "JSON: " + std::string(e.what()) + " at byte " + std::to_string(position);
    return false;
  }

  Result<Value> result() {
    if (!error_.empty()) return Result<Value>::error(error_);
    if (!done_) return Result<Value>::error("JSON: empty document");
    return Result<Value>::ok(std::move(root_));
  }

 private:
  bool number(std::string text) {
    Value value;
    value.kind = Value::Kind::kNumber;
    value.text = std::move(text);
    return add(std::move(value));
  }
  bool open(Value::Kind kind) {
    if (static_cast<int>(stack_.size()) >= kMaxDepth) {
      error_ = "JSON: nesting deeper than " + std::to_string(kMaxDepth);
      return false;
    }
    Value value;
    value.kind = kind;
    stack_.push_back(std::move(value));
    return true;
  }
  bool close() {
    Value value = std::move(stack_.back());
    stack_.pop_back();
    return add(std::move(value));
  }
  bool add(Value value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      done_ = true;
      return true;
    }
    Value& parent = stack_.back();
    if (parent.kind == Value::Kind::kObject) {
      parent.keys.push_back(std::move(keys_.back()));
      keys_.pop_back();
    }
    parent.items.push_back(std::move(value));
    return true;
  }

  std::vector<Value> stack_;
  std::vector<std::string> keys_;
  Value root_;
  bool done_ = false;
  std::string error_;
};

}  // namespace

const Value* Value::find(std::string_view key) const {
  if (kind != Kind::kObject) return nullptr;
  const Value* found = nullptr;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == key) found = &items[i];
  }
  return found;
}

Result<Value> parse(std::string_view text) {
  Builder builder;
  const bool ok = nlohmann::json::sax_parse(text.begin(), text.end(), &builder,
                                            nlohmann::json::input_format_t::json, true);
  Result<Value> result = builder.result();
  if (!ok && result) return Result<Value>::error("JSON: malformed document");
  return result;
}

std::optional<std::int64_t> as_int64(const Value& value) {
  if (value.kind != Value::Kind::kNumber) return std::nullopt;
  const std::string& t = value.text;
  std::int64_t out = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  if (ec != std::errc() || end != t.data() + t.size()) return std::nullopt;  // fraction, exponent
  return out;
}

std::optional<std::int64_t> as_cents(const Value& value) {
  if (value.kind != Value::Kind::kNumber) return std::nullopt;
  const std::string& t = value.text;
  if (t.empty() || t.front() == '-' || t.find_first_of("eE") != std::string::npos) {
    return std::nullopt;
  }
  const std::size_t dot = t.find('.');
  const std::string units = t.substr(0, dot);
  std::string fraction = dot == std::string::npos ? "" : t.substr(dot + 1);
  if (fraction.size() > 2) return std::nullopt;
  fraction.resize(2, '0');
  std::int64_t whole = 0;
  const auto [end, ec] = std::from_chars(units.data(), units.data() + units.size(), whole);
  if (ec != std::errc() || end != units.data() + units.size()) return std::nullopt;
  const std::int64_t cents = (fraction[0] - '0') * 10 + (fraction[1] - '0');
  std::int64_t total = 0;
  if (__builtin_mul_overflow(whole, 100, &total) || __builtin_add_overflow(total, cents, &total)) {
    return std::nullopt;
  }
  return total;
}

std::string dump(const Document& doc) {
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {
constexpr std::int64_t kMaxExactCents = 1'000'000'000'000'000;
}  // namespace

Document amount(std::int64_t cents) {
  // The nearest double to cents/100 prints back (shortest round trip) as the same two
  // decimals for every |cents| < 10^15: the decimal has at most 15 significant digits.
  EVENTMART_REQUIRE(cents > -kMaxExactCents && cents < kMaxExactCents, cents);
  return Document(static_cast<double>(cents) / 100.0);
}

}  // namespace eventmart::json
