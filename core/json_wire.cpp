#include "core/json_wire.h"

#include <cstdio>
#include <map>

#include "core/event_id.h"
#include "core/json.h"

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

std::string amount_text(std::int64_t cents) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%02lld", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100));
  return buf;
}

// Field readers: an error names the field and says what it should be.
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
  std::optional<std::int64_t> integer(std::string_view name, std::int64_t min) {
    const json::Value* v = field(name, json::Value::Kind::kNumber, "an integer");
    if (v == nullptr) return std::nullopt;
    auto n = json::as_int64(*v);
    if (!n || *n < min) {
      fail("field \"" + std::string(name) + "\" must be an integer >= " + std::to_string(min) +
           " (got " + v->text + ")");
      return std::nullopt;
    }
    return n;
  }
  std::string text(std::string_view name) {  // optional string field, "" when absent
    const json::Value* v = object.find(name);
    return v != nullptr && v->kind == json::Value::Kind::kString ? v->text : std::string();
  }
  void fail(std::string why) {
    if (error.empty()) error = std::move(why);
  }
};

void begin(std::string& out, const Envelope& e) {
  out = "{\"timestamp\": " + json::quote(format_timestamp(e.occurred_at_us));
}

void common_tail(std::string& out, const Envelope& e) {
  out += ", \"event_id\": " + json::quote(e.event_id);
  out += ", \"caused_by\": " + json::quote(e.caused_by);
  out += ", \"source\": " + json::quote(e.source) + "}";
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
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
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

Decoded<std::string> encode(const Envelope& e) {
  std::string out;
  switch (e.type) {
    case EventType::kCustomerArrival: {
      auto event = decode_customer_arrival(e.payload);
      if (!event) return Decoded<std::string>::error(event.error());
      begin(out, e);
      out += ", \"customer_id\": " + std::to_string(event.value().customer_id);
      break;
    }
    case EventType::kCustomerDeparted: {
      auto event = decode_customer_departed(e.payload);
      if (!event) return Decoded<std::string>::error(event.error());
      begin(out, e);
      out += ", \"customer_id\": " + std::to_string(event.value().customer_id);
      std::string ids, items;
      for (const LineItem& item : event.value().items) {
        for (std::int64_t i = 0; i < item.quantity; ++i) {
          ids += (ids.empty() ? "" : ", ") + std::to_string(item.sku);
        }
        items += std::string(items.empty() ? "" : ", ") + "{\"sku\": " + std::to_string(item.sku) +
                 ", \"quantity\": " + std::to_string(item.quantity) + "}";
      }
      out += ", \"product_ids\": [" + ids + "], \"items\": [" + items + "]";
      break;
    }
    case EventType::kPaymentDue: {
      auto event = decode_payment_due(e.payload);
      if (!event) return Decoded<std::string>::error(event.error());
      const PaymentDue& due = event.value();
      begin(out, e);
      out += ", \"customer_id\": " + std::to_string(due.customer_id);
      out += ", \"amount\": " + amount_text(due.total_cents);
      out += ", \"total_cents\": " + std::to_string(due.total_cents);
      out += ", \"departure_event_id\": " + json::quote(due.departure_event_id);
      std::string unpriced;
      for (Sku sku : due.unpriced_skus)
        unpriced += (unpriced.empty() ? "" : ", ") + std::to_string(sku);
      out += ", \"unpriced_skus\": [" + unpriced + "]";
      break;
    }
    case EventType::kRestockNeeded: {
      auto event = decode_restock_needed(e.payload);
      if (!event) return Decoded<std::string>::error(event.error());
      begin(out, e);
      out += ", \"sku\": " + std::to_string(event.value().sku);
      out += ", \"quantity\": " + std::to_string(event.value().quantity);
      out += ", \"stock_level\": " + std::to_string(event.value().stock_level);
      out += ", \"threshold\": " + std::to_string(event.value().threshold);
      break;
    }
    case EventType::kStockReplenished: {
      auto event = decode_stock_replenished(e.payload);
      if (!event) return Decoded<std::string>::error(event.error());
      begin(out, e);
      out += ", \"sku\": " + std::to_string(event.value().sku);
      out += ", \"quantity\": " + std::to_string(event.value().quantity);
      out += ", \"restock_event_id\": " + json::quote(event.value().restock_event_id);
      break;
    }
    case EventType::kDeadLetter:
    case EventType::kUnknown:
      return Decoded<std::string>::error("JSON wire: cannot encode an event of unknown type");
  }
  common_tail(out, e);
  return Decoded<std::string>::ok(std::move(out));
}

Decoded<Envelope> decode(EventType type, std::string_view topic, std::string_view text) {
  using D = Decoded<Envelope>;
  const std::string what = std::string(event_type_name(type)) + " on '" + std::string(topic) + "'";
  auto doc = json::parse(text);
  if (!doc) return D::error(what + ": " + doc.error());
  if (doc.value().kind != json::Value::Kind::kObject) return D::error(what + ": not a JSON object");
  Reader r{doc.value(), {}};

  Envelope e;
  e.type = type;
  e.event_id = r.text("event_id");
  // A reference message has no id: the same topic and bytes always give the same one.
  if (e.event_id.empty()) e.event_id = derive_event_id(text, "json", topic);
  e.caused_by = r.text("caused_by");
  e.source = r.text("source");
  if (e.source.empty()) e.source = "json-wire";
  if (const json::Value* ts = r.field("timestamp", json::Value::Kind::kString, "a string")) {
    auto at = parse_timestamp(ts->text);
    if (!at) r.fail("field \"timestamp\" is not an ISO-8601 time: \"" + ts->text + "\"");
    e.occurred_at_us = at.value_or(0);
  }

  switch (type) {
    case EventType::kCustomerArrival: {
      auto customer = r.integer("customer_id", 0);
      if (customer) e.payload = encode(CustomerArrival{*customer});
      break;
    }
    case EventType::kCustomerDeparted: {
      auto customer = r.integer("customer_id", 0);
      CustomerDeparted departed{customer.value_or(0), {}};
      std::map<Sku, std::size_t> position;
      const auto add = [&](const json::Value& sku_value, std::int64_t quantity) {
        auto sku = json::as_int64(sku_value);
        if (!sku || *sku < 1) return r.fail("a product id must be an integer >= 1");
        if (quantity < 1) return r.fail("a quantity must be an integer >= 1");
        auto [it, inserted] = position.emplace(*sku, departed.items.size());
        if (inserted) {
          departed.items.push_back(LineItem{*sku, quantity});
        } else {
          departed.items[it->second].quantity += quantity;
        }
      };
      if (const json::Value* items = doc.value().find("items");
          items != nullptr && items->kind == json::Value::Kind::kArray) {
        for (const json::Value& item : items->items) {  // eventmart: exact quantities
          const json::Value* sku = item.find("sku");
          const json::Value* quantity = item.find("quantity");
          auto q = quantity != nullptr ? json::as_int64(*quantity) : std::nullopt;
          if (sku == nullptr || !q) {
            r.fail("each of \"items\" needs an integer \"sku\" and \"quantity\"");
            break;
          }
          add(*sku, *q);
        }
      } else if (const json::Value* ids =
                     r.field("product_ids", json::Value::Kind::kArray, "an array of integers")) {
        for (const json::Value& id : ids->items) add(id, 1);  // reference: one id per unit
      }
      if (customer) e.payload = encode(departed);
      break;
    }
    case EventType::kPaymentDue: {
      auto customer = r.integer("customer_id", 0);
      std::optional<std::int64_t> cents;
      if (const json::Value* exact = doc.value().find("total_cents")) {
        cents = json::as_int64(*exact);
        if (!cents || *cents < 0) r.fail("field \"total_cents\" must be an integer >= 0");
      }
      if (const json::Value* amount =
              r.field("amount", json::Value::Kind::kNumber, "a number (currency units)")) {
        auto from_amount = json::as_cents(*amount);
        if (!from_amount) {
          r.fail("field \"amount\" must be >= 0 with at most two decimals (got " + amount->text +
                 ")");
        } else if (cents && *cents != *from_amount) {
          r.fail("\"amount\" " + amount->text + " and \"total_cents\" " + std::to_string(*cents) +
                 " disagree");
        }
        if (!cents) cents = from_amount;
      }
      PaymentDue due{customer.value_or(0), cents.value_or(0), r.text("departure_event_id"), {}};
      if (const json::Value* unpriced = doc.value().find("unpriced_skus");
          unpriced != nullptr && unpriced->kind == json::Value::Kind::kArray) {
        for (const json::Value& sku : unpriced->items) {
          if (auto n = json::as_int64(sku)) due.unpriced_skus.push_back(*n);
        }
      }
      if (customer) e.payload = encode(due);
      break;
    }
    case EventType::kRestockNeeded: {
      auto sku = r.integer("sku", 1);
      auto quantity = r.integer("quantity", 1);
      const json::Value* level = doc.value().find("stock_level");
      const json::Value* threshold = doc.value().find("threshold");
      if (sku && quantity) {
        e.payload =
            encode(RestockNeeded{*sku, *quantity, level ? json::as_int64(*level).value_or(0) : 0,
                                 threshold ? json::as_int64(*threshold).value_or(0) : 0});
      }
      break;
    }
    case EventType::kStockReplenished: {
      auto sku = r.integer("sku", 1);
      auto quantity = r.integer("quantity", 1);
      if (sku && quantity) {
        e.payload = encode(StockReplenished{*sku, *quantity, r.text("restock_event_id")});
      }
      break;
    }
    case EventType::kDeadLetter:
    case EventType::kUnknown:
      return D::error(what + ": no JSON form for an unknown event type");
  }
  if (!r.error.empty()) return D::error(what + ": " + r.error);
  return D::ok(std::move(e));
}

}  // namespace eventmart::json_wire
