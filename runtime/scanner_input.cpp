#include "runtime/scanner_input.h"

#include <charconv>

#include "core/json.h"
#include "core/json_wire.h"

namespace eventmart::runtime {
namespace {

using D = Result<ScanRequest>;

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool parse_positive(std::string_view text, std::int64_t max, std::int64_t& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && out >= 1 && out <= max;
}

// The words after the kind: CUSTOMER [ITEMS] [scan=ID].
D parse_words(ScanRequest::Kind kind, std::vector<std::string_view> w, const InputLimits& limits) {
  ScanRequest request;
  request.kind = kind;
  if (!w.empty() && w.back().rfind("scan=", 0) == 0) {
    request.scan_id = std::string(w.back().substr(5));
    if (request.scan_id.empty()) return D::error("empty scan id in 'scan='");
    if (Status valid = check_id(request.scan_id, limits.max_id_bytes, "scan id"); !valid) {
      return D::error(valid.error());
    }
    w.pop_back();
  }
  const char* usage = kind == ScanRequest::Kind::kArrival
                          ? "expected 'arrival CUSTOMER [scan=ID]'"
                          : "expected 'departure CUSTOMER SKU:QTY,... [scan=ID]'";
  if (w.empty()) return D::error(std::string("no customer: ") + usage);
  request.card = std::string(w[0]);
  if (kind == ScanRequest::Kind::kArrival) {
    if (w.size() != 1) return D::error(std::string("too many words: ") + usage);
    return D::ok(std::move(request));
  }
  if (w.size() > 2) return D::error(std::string("too many words: ") + usage);
  if (w.size() == 2) {
    auto lines = parse_items(w[1], limits);
    if (!lines) return D::error(lines.error());
    request.lines = std::move(lines.value());
  }
  return D::ok(std::move(request));
}

D parse_json_reading(ScanRequest::Kind kind, std::string_view payload, const InputLimits& limits) {
  auto doc = json::parse(payload);
  if (!doc) return D::error("not JSON: " + doc.error());
  const json::Value& v = doc.value();
  if (v.kind != json::Value::Kind::kObject) return D::error("JSON reading is not an object");
  ScanRequest request;
  request.kind = kind;
  const json::Value* customer = v.find("customer_id");
  if (customer == nullptr) return D::error("JSON reading has no \"customer_id\"");
  if (customer->kind == json::Value::Kind::kNumber ||
      customer->kind == json::Value::Kind::kString) {
    // As a line's CUSTOMER word: printable, no blanks (the guardian judges the rest).
    if (Status valid = check_id(customer->text, limits.max_id_bytes, "\"customer_id\""); !valid) {
      return D::error(valid.error());
    }
    request.card = customer->text;
  } else {
    return D::error("\"customer_id\" is neither a number nor a string");
  }
  if (kind == ScanRequest::Kind::kDeparture) {
    const json::Value* ids = v.find("product_ids");
    if (ids == nullptr || ids->kind != json::Value::Kind::kArray) {
      return D::error("JSON bag reading has no \"product_ids\" array");
    }
    if (static_cast<std::int64_t>(ids->items.size()) > limits.max_basket_units) {
      return D::error("\"product_ids\" lists more than " + std::to_string(limits.max_basket_units) +
                      " units (the limit per basket)");
    }
    for (const json::Value& id : ids->items) {
      const auto sku = json::as_int64(id);
      if (!sku || *sku < 1 || *sku > kMaxSku) {
        return D::error("\"product_ids\" holds a value that is not a sku");
      }
      request.lines.push_back(LineItem{*sku, 1});
    }
  }
  if (const json::Value* scan = v.find("scan_id"); scan != nullptr) {
    if (scan->kind != json::Value::Kind::kString || scan->text.empty()) {
      return D::error("\"scan_id\" is not a non-empty string");
    }
    // The same ids as a text line's scan=ID (printable, no blanks): a reading of either form
    // is written as a line that reads back the same (`eventmart scan`, the fuzzer's check).
    if (Status valid = check_id(scan->text, limits.max_id_bytes, "\"scan_id\""); !valid) {
      return D::error(valid.error());
    }
    request.scan_id = scan->text;
  } else if (const json::Value* ts = v.find("timestamp"); ts != nullptr) {
    const auto at = ts->kind == json::Value::Kind::kString ? json_wire::parse_timestamp(ts->text)
                                                           : std::nullopt;
    if (!at) {
      return D::error("\"timestamp\" is not an ISO-8601 time of a real day: " +
                      excerpt(ts->text, 40));
    }
    // The reading's identity: the moment and the card (the guardian checks the card).
    request.scan_id = "ts/" + std::to_string(*at) + "/" + excerpt(request.card, 24);
  }
  return D::ok(std::move(request));
}

}  // namespace

bool is_blank_line(std::string_view line) {
  const auto w = words(line);
  return w.empty() || w[0].front() == '#';
}

Result<std::vector<LineItem>> parse_items(std::string_view text, const InputLimits& limits) {
  using V = Result<std::vector<LineItem>>;
  std::vector<LineItem> lines;
  std::int64_t units = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view item = text.substr(pos, comma - pos);
    const std::size_t colon = item.find(':');
    std::int64_t sku = 0;
    std::int64_t qty = 1;
    const std::string_view sku_text = item.substr(0, colon);
    if (!parse_positive(sku_text, kMaxSku, sku)) {
      return V::error("item '" + excerpt(item, 40) + "': the sku is not a number 1.." +
                      std::to_string(kMaxSku));
    }
    if (colon != std::string_view::npos &&
        !parse_positive(item.substr(colon + 1), limits.max_units_per_line, qty)) {
      return V::error("item '" + excerpt(item, 40) + "': the quantity is not 1.." +
                      std::to_string(limits.max_units_per_line));
    }
    units += qty;  // each bounded, and we stop at the first excess
    if (units > limits.max_basket_units) {
      return V::error("more than " + std::to_string(limits.max_basket_units) +
                      " units in one bag (the limit per basket)");
    }
    lines.push_back(LineItem{sku, qty});
    pos = comma + 1;
  }
  return V::ok(std::move(lines));
}

Result<ScanRequest> parse_scan_line(std::string_view line, const InputLimits& limits) {
  auto w = words(line);
  if (w.empty()) return D::error("empty line");
  ScanRequest::Kind kind;
  if (w[0] == "arrival") {
    kind = ScanRequest::Kind::kArrival;
  } else if (w[0] == "departure") {
    kind = ScanRequest::Kind::kDeparture;
  } else {
    return D::error("unknown reading '" + excerpt(w[0], 40) +
                    "': lines start with 'arrival' or 'departure'");
  }
  w.erase(w.begin());
  return parse_words(kind, std::move(w), limits);
}

Result<ScanRequest> parse_device_message(ScanRequest::Kind kind, std::string_view payload,
                                         const InputLimits& limits) {
  if (payload.size() > limits.max_payload_bytes) {
    return D::error("a reading of " + std::to_string(payload.size()) +
                    " bytes is over the limit of " + std::to_string(limits.max_payload_bytes));
  }
  std::size_t first = 0;
  while (first < payload.size() && (payload[first] == ' ' || payload[first] == '\t' ||
                                    payload[first] == '\n' || payload[first] == '\r')) {
    ++first;
  }
  if (first < payload.size() && payload[first] == '{') {
    return parse_json_reading(kind, payload, limits);
  }
  std::string_view line = payload;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.find('\n') != std::string_view::npos) return D::error("more than one line");
  auto w = words(line);
  if (!w.empty() && (w[0] == "arrival" || w[0] == "departure")) {
    auto request = parse_scan_line(line, limits);
    if (request && request.value().kind != kind) {
      return D::error("a " + std::string(w[0]) + " reading on the wrong scanner's topic");
    }
    return request;
  }
  return parse_words(kind, std::move(w), limits);
}

std::string format_scan_line(const ScanRequest& request) {
  std::string line = request.kind == ScanRequest::Kind::kArrival ? "arrival " : "departure ";
  line += request.card;
  if (request.kind == ScanRequest::Kind::kDeparture && !request.lines.empty()) {
    line += ' ';
    for (std::size_t i = 0; i < request.lines.size(); ++i) {
      if (i > 0) line += ',';
      line +=
          std::to_string(request.lines[i].sku) + ":" + std::to_string(request.lines[i].quantity);
    }
  }
  if (!request.scan_id.empty()) line += " scan=" + request.scan_id;
  return line;
}

}  // namespace eventmart::runtime
