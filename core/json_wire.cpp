#include "core/json_wire.h"

#include <cstdio>
#include <map>

#include "core/event_id.h"
#include "core/json.h"
#include "core/limits.h"

namespace eventmart::json_wire {
namespace {

constexpr std::int64_t kUsPerDay = 86'400'000'000LL;

// Days since 1970-01-01 of a civil date, and back (proleptic Gregorian; H. Hinnant).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

bool leap_year(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(std::int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap_year(y) ? 29 : kDays[m - 1];
}

// Field readers: an error names the field and says what it should be; the first one wins.
struct Reader {
  const json::Value& object;
  std::string error;

  const json::Value* field(std::string_view name, json::Value::Kind kind, std::string_view what) {
    const json::Value* v = object.find(name);
    if (v == nullptr) {
      fail("missing field \"" + std::string(name) + "\"");
      return nullptr;
    }
    if (v->kind != kind) {
      fail("field \"" + std::string(name) + "\" must be " + std::string(what));
      return nullptr;
    }
    return v;
  }
  std::optional<std::int64_t> integer(std::string_view name, std::int64_t min, std::int64_t max) {
    const json::Value* v = field(name, json::Value::Kind::kNumber, "an integer");
    if (v == nullptr) return std::nullopt;
    return in_range(name, *v, min, max);
  }
  std::optional<std::int64_t> in_range(std::string_view name, const json::Value& v,
                                       std::int64_t min, std::int64_t max) {
    auto n = json::as_int64(v);
    if (!n || *n < min || *n > max) {
      fail("field \"" + std::string(name) + "\" must be an integer " + std::to_string(min) + ".." +
           std::to_string(max) + " (got " + excerpt(v.text, 40) + ")");
      return std::nullopt;
    }
    return n;
  }
  // An optional integer field: nullopt when absent; an error when present and not one.
  std::optional<std::int64_t> optional_integer(std::string_view name) {
    const json::Value* v = object.find(name);
    if (v == nullptr) return std::nullopt;
    if (v->kind != json::Value::Kind::kNumber) {
      fail("field \"" + std::string(name) + "\" must be an integer");
      return std::nullopt;
    }
    return in_range(name, *v, INT64_MIN, INT64_MAX);
  }
  // An optional string field, "" when absent; an error when present and not a string.
  std::string text(std::string_view name) {
    const json::Value* v = object.find(name);
    if (v == nullptr) return {};
    if (v->kind != json::Value::Kind::kString) {
      fail("field \"" + std::string(name) + "\" must be a string");
      return {};
    }
    return v->text;
  }
  // An optional id field: "" when absent or empty, else it must be a valid id.
  std::string id(std::string_view name, std::size_t max_bytes) {
    std::string value = text(name);
    if (!value.empty()) {
      if (Status s = check_id(value, max_bytes, "field \"" + std::string(name) + "\""); !s) {
        fail(s.error());
      }
    }
    return value;
  }
  void fail(std::string why) {
    if (error.empty()) error = std::move(why);
  }
};

// The fields every message eventmart writes starts with.
json::Document begin(const Envelope& e) {
  json::Document doc = json::Document::object();
  doc["timestamp"] = format_timestamp(e.occurred_at_us);
  return doc;
}

// ... and ends with.
void end(json::Document& doc, const Envelope& e) {
  doc["event_id"] = e.event_id;
  doc["caused_by"] = e.caused_by;
  doc["source"] = e.source;
}

}  // namespace

std::string format_timestamp(std::int64_t us) {
  std::int64_t days = us / kUsPerDay;
  std::int64_t rest = us % kUsPerDay;
  if (rest < 0) {
    rest += kUsPerDay;
    --days;
  }
  std::int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  const std::int64_t seconds = rest / 1'000'000;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lld",
                static_cast<long long>(y), m, d, static_cast<long long>(seconds / 3600),
                static_cast<long long>(seconds / 60 % 60), static_cast<long long>(seconds % 60),
                static_cast<long long>(rest % 1'000'000));
  return buf;
}

std::optional<std::int64_t> parse_timestamp(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z|+00:00]
  const auto digits = [&](std::size_t at, std::size_t n, int& out) {
    if (at + n > t.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      out = out * 10 + (t[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, s;
  if (t.size() < 19 || !digits(0, 4, y) || t[4] != '-' || !digits(5, 2, mo) || t[7] != '-' ||
      !digits(8, 2, d) || (t[10] != 'T' && t[10] != ' ') || !digits(11, 2, h) || t[13] != ':' ||
      !digits(14, 2, mi) || t[16] != ':' || !digits(17, 2, s)) {
    return std::nullopt;
  }
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
      d > static_cast<int>(days_in_month(y, static_cast<unsigned>(mo))) || h > 23 || mi > 59 ||
      s > 59) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  std::int64_t micros = 0;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
      if (++n > 6) return std::nullopt;
      micros = micros * 10 + (t[pos++] - '0');
    }
    if (n == 0) return std::nullopt;
    for (; n < 6; ++n) micros *= 10;
  }
  const std::string_view zone = t.substr(pos);
  if (!zone.empty() && zone != "Z" && zone != "+00:00") return std::nullopt;
  return days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * kUsPerDay +
         (static_cast<std::int64_t>(h) * 3600 + mi * 60 + s) * 1'000'000 + micros;
}

Result<std::string> encode(const Envelope& e) {
  json::Document doc;
  switch (e.type) {
    case EventType::kCustomerArrival: {
      auto event = decode_customer_arrival(e.payload);
      if (!event) return Result<std::string>::error(event.error());
      doc = begin(e);
      doc["customer_id"] = event.value().customer_id;
      break;
    }
    case EventType::kCustomerDeparted: {
      auto event = decode_customer_departed(e.payload);
      if (!event) return Result<std::string>::error(event.error());
      doc = begin(e);
      doc["customer_id"] = event.value().customer_id;
      json::Document ids = json::Document::array();
      json::Document items = json::Document::array();
      for (const LineItem& item : event.value().items) {
        for (std::int64_t i = 0; i < item.quantity; ++i) ids.push_back(item.sku);
        items.push_back(json::Document{{"sku", item.sku}, {"quantity", item.quantity}});
      }
      doc["product_ids"] = std::move(ids);
      doc["items"] = std::move(items);
      break;
    }
    case EventType::kPaymentDue: {
      auto event = decode_payment_due(e.payload);
      if (!event) return Result<std::string>::error(event.error());
      const PaymentDue& due = event.value();
      doc = begin(e);
      doc["customer_id"] = due.customer_id;
      doc["amount"] = json::amount(due.total_cents);
      doc["total_cents"] = due.total_cents;
      doc["departure_event_id"] = due.departure_event_id;
      doc["unpriced_skus"] = due.unpriced_skus;
      break;
    }
    case EventType::kRestockNeeded: {
      auto event = decode_restock_needed(e.payload);
      if (!event) return Result<std::string>::error(event.error());
      doc = begin(e);
      doc["sku"] = event.value().sku;
      doc["quantity"] = event.value().quantity;
      doc["stock_level"] = event.value().stock_level;
      doc["threshold"] = event.value().threshold;
      break;
    }
    case EventType::kStockReplenished: {
      auto event = decode_stock_replenished(e.payload);
      if (!event) return Result<std::string>::error(event.error());
      doc = begin(e);
      doc["sku"] = event.value().sku;
      doc["quantity"] = event.value().quantity;
      doc["restock_event_id"] = event.value().restock_event_id;
      break;
    }
    case EventType::kDeadLetter:
    case EventType::kWelcome:
    case EventType::kUnknown:
      return Result<std::string>::error("JSON wire: cannot encode an event of unknown type");
  }
  end(doc, e);
  return Result<std::string>::ok(json::dump(doc));
}

namespace {

// The basket of a departure: "items" (eventmart's exact lines) if present, else
// "product_ids" (the reference: one id per unit). Lines of the same sku are merged. Every
// limit is checked before the work it bounds.
CustomerDeparted read_basket(Reader& r, const json::Value& doc, CustomerId customer,
                             const InputLimits& limits) {
  CustomerDeparted departed{customer, {}};
  std::map<Sku, std::size_t> position;
  std::int64_t units = 0;
  const auto add = [&](const json::Value& sku_value, std::int64_t quantity) {
    auto sku = r.in_range("product id", sku_value, 1, kMaxSku);
    if (!sku) return false;
    if (quantity < 1 || quantity > limits.max_units_per_line) {
      r.fail("a quantity must be an integer 1.." + std::to_string(limits.max_units_per_line));
      return false;
    }
    units += quantity;  // both bounded: no overflow
    if (units > limits.max_basket_units) {
      r.fail("more than " + std::to_string(limits.max_basket_units) +
             " units in one basket (the limit)");
      return false;
    }
    auto [it, inserted] = position.emplace(*sku, departed.items.size());
    if (inserted) {
      if (static_cast<std::int64_t>(departed.items.size()) >= limits.max_basket_lines) {
        r.fail("more than " + std::to_string(limits.max_basket_lines) +
               " lines in one basket (the limit)");
        return false;
      }
      departed.items.push_back(LineItem{*sku, quantity});
      return true;
    }
    std::int64_t& merged = departed.items[it->second].quantity;
    merged += quantity;
    if (merged > limits.max_units_per_line) {
      r.fail("sku " + std::to_string(*sku) + " adds up to more than " +
             std::to_string(limits.max_units_per_line) + " units (the limit per line)");
      return false;
    }
    return true;
  };
  if (const json::Value* items = doc.find("items"); items != nullptr) {
    if (items->kind != json::Value::Kind::kArray) {
      r.fail("field \"items\" must be an array");
      return departed;
    }
    if (static_cast<std::int64_t>(items->items.size()) > limits.max_basket_units) {
      r.fail("\"items\" has more entries than a basket may hold units");
      return departed;
    }
    for (const json::Value& item : items->items) {  // eventmart: exact quantities
      const json::Value* sku = item.find("sku");
      const json::Value* quantity = item.find("quantity");
      auto q = quantity != nullptr ? json::as_int64(*quantity) : std::nullopt;
      if (item.kind != json::Value::Kind::kObject || sku == nullptr || !q) {
        r.fail("each of \"items\" needs an integer \"sku\" and \"quantity\"");
        return departed;
      }
      if (!add(*sku, *q)) return departed;
    }
  } else if (const json::Value* ids =
                 r.field("product_ids", json::Value::Kind::kArray, "an array of integers")) {
    if (static_cast<std::int64_t>(ids->items.size()) > limits.max_basket_units) {
      r.fail("more than " + std::to_string(limits.max_basket_units) +
             " units in one basket (the limit)");
      return departed;
    }
    for (const json::Value& id : ids->items) {  // reference: one id per unit
      if (!add(id, 1)) return departed;
    }
  }
  return departed;
}

}  // namespace

namespace {

// The envelope's own fields (event id, cause, source, time) into `e`.
void read_header(Reader& r, std::string_view topic, std::string_view text,
                 const InputLimits& limits, Envelope& e) {
  e.event_id = r.id("event_id", limits.max_id_bytes);
  // A reference message has no id: the same topic and bytes always give the same one.
  if (e.event_id.empty()) e.event_id = derive_event_id(text, "json", topic);
  e.caused_by = r.id("caused_by", limits.max_id_bytes);
  e.source = r.id("source", limits.max_id_bytes);
  if (e.source.empty()) e.source = "json-wire";
  if (const json::Value* ts = r.field("timestamp", json::Value::Kind::kString, "a string")) {
    auto at = parse_timestamp(ts->text);
    if (!at) {
      r.fail("field \"timestamp\" is not an ISO-8601 time of a real day: \"" +
             excerpt(ts->text, 40) + "\"");
    }
    e.occurred_at_us = at.value_or(0);
  }
}

// A payment's total: exact cents, or the reference implementation's amount, or both agreeing.
std::optional<std::int64_t> read_total(Reader& r, const json::Value& doc) {
  std::optional<std::int64_t> cents;
  if (const json::Value* exact = doc.find("total_cents")) {
    cents = json::as_int64(*exact);
    if (!cents || *cents < 0) r.fail("field \"total_cents\" must be an integer >= 0");
  }
  if (const json::Value* amount =
          r.field("amount", json::Value::Kind::kNumber, "a number (currency units)")) {
    auto from_amount = json::as_cents(*amount);
    if (!from_amount) {
      r.fail("field \"amount\" must be >= 0 with at most two decimals (got " +
             excerpt(amount->text, 40) + ")");
    } else if (cents && *cents != *from_amount) {
      r.fail("\"amount\" " + excerpt(amount->text, 40) + " and \"total_cents\" " +
             std::to_string(*cents) + " disagree");
    }
    if (!cents) cents = from_amount;
  }
  return cents;
}

// The PaymentDue's payload; empty when its customer is missing (r says why).
std::string payment_due_payload(Reader& r, const json::Value& doc, const InputLimits& limits) {
  auto customer = r.integer("customer_id", 1, kMaxCustomerId);
  const std::optional<std::int64_t> cents = read_total(r, doc);
  PaymentDue due{
      customer.value_or(1), cents.value_or(0), r.id("departure_event_id", limits.max_id_bytes), {}};
  if (const json::Value* unpriced = doc.find("unpriced_skus"); unpriced != nullptr) {
    if (unpriced->kind != json::Value::Kind::kArray ||
        static_cast<std::int64_t>(unpriced->items.size()) > limits.max_basket_lines) {
      r.fail("field \"unpriced_skus\" must be an array of at most " +
             std::to_string(limits.max_basket_lines) + " skus");
    } else {
      for (const json::Value& sku : unpriced->items) {
        if (auto n = r.in_range("unpriced_skus", sku, 1, kMaxSku)) due.unpriced_skus.push_back(*n);
      }
    }
  }
  return customer ? encode(due) : std::string();
}

// The event's payload in Cap'n Proto from its JSON fields; empty when a field it needs is
// missing or wrong (r says why).
std::string payload_of(EventType type, Reader& r, const json::Value& doc,
                       const InputLimits& limits) {
  switch (type) {
    case EventType::kCustomerArrival: {
      auto customer = r.integer("customer_id", 1, kMaxCustomerId);
      return customer ? encode(CustomerArrival{*customer}) : std::string();
    }
    case EventType::kCustomerDeparted: {
      auto customer = r.integer("customer_id", 1, kMaxCustomerId);
      CustomerDeparted departed = read_basket(r, doc, customer.value_or(1), limits);
      return customer ? encode(departed) : std::string();
    }
    case EventType::kPaymentDue:
      return payment_due_payload(r, doc, limits);
    case EventType::kRestockNeeded: {
      auto sku = r.integer("sku", 1, kMaxSku);
      auto quantity = r.integer("quantity", 1, kMaxDeliveryUnits);
      auto level = r.optional_integer("stock_level");
      auto threshold = r.optional_integer("threshold");
      if (!sku || !quantity) return {};
      return encode(RestockNeeded{*sku, *quantity, level.value_or(0), threshold.value_or(0)});
    }
    case EventType::kStockReplenished: {
      auto sku = r.integer("sku", 1, kMaxSku);
      auto quantity = r.integer("quantity", 1, kMaxDeliveryUnits);
      std::string restock = r.id("restock_event_id", limits.max_id_bytes);
      return sku && quantity ? encode(StockReplenished{*sku, *quantity, restock}) : std::string();
    }
    case EventType::kDeadLetter:
    case EventType::kWelcome:
    case EventType::kUnknown:
      break;
  }
  return {};
}

}  // namespace

Result<Envelope> decode(EventType type, std::string_view topic, std::string_view text,
                        const InputLimits& limits) {
  using D = Result<Envelope>;
  const std::string what = std::string(event_type_name(type)) + " on '" + std::string(topic) + "'";
  auto doc = json::parse(text);
  if (!doc) return D::error(what + ": " + doc.error());
  if (doc.value().kind != json::Value::Kind::kObject) return D::error(what + ": not a JSON object");
  if (type == EventType::kDeadLetter || type == EventType::kWelcome ||
      type == EventType::kUnknown) {
    return D::error(what + ": no JSON form for an unknown event type");
  }
  Reader r{doc.value(), {}};
  Envelope e;
  e.type = type;
  read_header(r, topic, text, limits, e);
  e.payload = payload_of(type, r, doc.value(), limits);
  if (!r.error.empty()) return D::error(what + ": " + r.error);
  if (Status s = check_envelope_fields(e, limits); !s) return D::error(what + ": " + s.error());
  return D::ok(std::move(e));
}

}  // namespace eventmart::json_wire
