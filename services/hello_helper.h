// Hello Helper: on CustomerArrival, looks the customer up in its own database and puts a
// personal welcome on the entrance display's topic ({chain}/{store}/display/entrance). An
// unknown card gets a generic welcome. The welcome is written to the outbox in the arrival's
// transaction, so a crash after the commit cannot lose it; the display shows each arrival's
// welcome once (core/wire.h: welcome_document).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/catalog.h"
#include "services/service.h"

namespace eventmart {

// Pure logic: the text shown for a customer (nullopt name = unknown card).
std::string welcome_message(const std::optional<std::string>& customer_name, int visit_number);

class CustomerStore {
 public:
  // Creates the customers table if missing. `db` must outlive the store.
  explicit CustomerStore(Database& db);
  // Inserts the customers that are not in the table yet.
  void seed(const std::vector<Customer>& customers);
  std::optional<std::string> name_of(CustomerId id);
  // Records one more visit of a known customer (one statement); nullopt for an unknown one.
  struct Visit {
    std::string name;
    int number = 0;  // 1 on the first visit
  };
  std::optional<Visit> record_visit(CustomerId id, std::int64_t at_us);
  int visits_of(CustomerId id);

 private:
  Database& db_;
  Statement insert_;
  Statement select_name_;
  Statement update_visit_;
  Statement select_visits_;
};

class HelloHelper final : public Service {
 public:
  explicit HelloHelper(const ServiceContext& context);
  void start() override;

  CustomerStore& store() { return store_; }
  std::uint64_t unknown_customers() const { return unknown_customers_; }

 private:
  void on_arrival(const Delivery& delivery);

  CustomerStore store_;
  std::uint64_t unknown_customers_ = 0;
};

}  // namespace eventmart
