#include "services/catalog.h"

#include <charconv>
#include <set>
#include <stdexcept>

namespace eventmart {
namespace detail {
extern const char kDefaultCatalogCsv[];
extern const char kDefaultCustomersCsv[];
}  // namespace detail

namespace {

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = line.find(sep, start);
    fields.push_back(line.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return fields;
    start = end + 1;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool parse_int(std::string_view text, std::int64_t& out) {
  text = trim(text);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

// Calls `row(line_number, fields)` for each data line after checking the header.
template <typename Row>
std::string for_each_row(std::string_view text, std::string_view header, std::size_t columns,
                         Row row) {
  std::size_t line_number = 0;
  bool saw_header = false;
  for (std::string_view line : split(text, '\n')) {
    ++line_number;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (!saw_header) {
      if (line != header) {
        return "line " + std::to_string(line_number) + ": expected header '" + std::string(header) +
               "'";
      }
      saw_header = true;
      continue;
    }
    auto fields = split(line, ',');
    if (fields.size() != columns) {
      return "line " + std::to_string(line_number) + ": expected " + std::to_string(columns) +
             " fields, found " + std::to_string(fields.size());
    }
    std::string error = row(line_number, fields);
    if (!error.empty()) return "line " + std::to_string(line_number) + ": " + error;
  }
  if (!saw_header) return "missing header '" + std::string(header) + "'";
  return {};
}

}  // namespace

Status validate_product(const Product& p) {
  const std::string id = "sku " + std::to_string(p.sku);
  if (p.sku < 1 || p.sku > kMaxSku)
    return Status::error(id + ": sku must be 1.." + std::to_string(kMaxSku));
  if (p.name.empty()) return Status::error(id + ": name is empty");
  if (!is_valid_utf8(p.name)) return Status::error(id + ": name is not valid UTF-8");
  if (p.price_cents < 0 || p.price_cents > kMaxPriceCents) {
    return Status::error(id + ": price_cents must be 0.." + std::to_string(kMaxPriceCents));
  }
  if (p.stock < 0) return Status::error(id + ": stock must be >= 0");
  if (p.restock_threshold < 0) return Status::error(id + ": restock_threshold must be >= 0");
  if (p.stock > kMaxDeliveryUnits * 1000) return Status::error(id + ": stock is implausibly large");
  if (p.restock_quantity > kMaxDeliveryUnits) {
    return Status::error(id + ": restock_quantity must be at most " +
                         std::to_string(kMaxDeliveryUnits));
  }
  if (p.restock_quantity <= p.restock_threshold) {
    return Status::error(id + ": restock_quantity (" + std::to_string(p.restock_quantity) +
                         ") must exceed restock_threshold (" + std::to_string(p.restock_threshold) +
                         ")");
  }
  return Status::ok();
}

Result<std::vector<Product>> parse_catalog_csv(std::string_view text) {
  std::vector<Product> products;
  std::set<Sku> skus;
  const std::string error =
      for_each_row(text, "sku,name,price_cents,stock,restock_threshold,restock_quantity", 6,
                   [&](std::size_t, const std::vector<std::string_view>& f) -> std::string {
                     Product p;
                     p.name = std::string(trim(f[1]));
                     if (!parse_int(f[0], p.sku))
                       return "sku '" + std::string(f[0]) + "' is not an integer";
                     if (!parse_int(f[2], p.price_cents))
                       return "price_cents is not an integer (cents)";
                     if (!parse_int(f[3], p.stock)) return "stock is not an integer";
                     if (!parse_int(f[4], p.restock_threshold))
                       return "restock_threshold is not an integer";
                     if (!parse_int(f[5], p.restock_quantity))
                       return "restock_quantity is not an integer";
                     if (Status valid = validate_product(p); !valid) return valid.error();
                     if (!skus.insert(p.sku).second)
                       return "sku " + std::to_string(p.sku) + " listed twice";
                     products.push_back(std::move(p));
                     return {};
                   });
  if (!error.empty()) return Result<std::vector<Product>>::error("catalog: " + error);
  return Result<std::vector<Product>>::ok(std::move(products));
}

Result<std::vector<Customer>> parse_customers_csv(std::string_view text) {
  std::vector<Customer> customers;
  std::set<CustomerId> ids;
  const std::string error = for_each_row(
      text, "customer_id,name", 2,
      [&](std::size_t, const std::vector<std::string_view>& f) -> std::string {
        Customer c;
        if (!parse_int(f[0], c.customer_id) || c.customer_id < 1 ||
            c.customer_id > kMaxCustomerId) {
          return "customer_id '" + std::string(f[0]) + "' is not a positive integer";
        }
        c.name = std::string(trim(f[1]));
        if (c.name.empty()) return "customer " + std::to_string(c.customer_id) + " has no name";
        if (!is_valid_utf8(c.name)) {
          return "customer " + std::to_string(c.customer_id) + "'s name is not valid UTF-8";
        }
        if (!ids.insert(c.customer_id).second) {
          return "customer " + std::to_string(c.customer_id) + " listed twice";
        }
        customers.push_back(std::move(c));
        return {};
      });
  if (!error.empty()) return Result<std::vector<Customer>>::error("customers: " + error);
  return Result<std::vector<Customer>>::ok(std::move(customers));
}

const StoreData& default_store() {
  static const StoreData data = [] {
    auto products = parse_catalog_csv(detail::kDefaultCatalogCsv);
    auto customers = parse_customers_csv(detail::kDefaultCustomersCsv);
    // The embedded data is checked by the unit tests; failing here means a broken build.
    if (!products) throw std::logic_error("embedded " + products.error());
    if (!customers) throw std::logic_error("embedded " + customers.error());
    return StoreData{std::move(products.value()), std::move(customers.value())};
  }();
  return data;
}

}  // namespace eventmart
