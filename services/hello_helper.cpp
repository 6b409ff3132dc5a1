#include "services/hello_helper.h"

#include "core/event_id.h"
#include "core/wire.h"

namespace eventmart {

std::string welcome_message(const std::optional<std::string>& customer_name, int visit_number) {
  if (!customer_name) return "Welcome to our store! Ask at the desk for a loyalty card.";
  if (visit_number <= 1) return "Welcome, " + *customer_name + "!";
  return "Welcome back, " + *customer_name + "!";
}

CustomerStore::CustomerStore(Database& db) : db_(db) {
  db_.exec_once(
      "CREATE TABLE IF NOT EXISTS customers("
      "  customer_id INTEGER PRIMARY KEY,"
      "  name TEXT NOT NULL,"
      "  visits INTEGER NOT NULL DEFAULT 0,"
      "  last_seen_us INTEGER)");
  insert_ = db_.prepare("INSERT OR IGNORE INTO customers(customer_id, name) VALUES(?, ?)");
  select_name_ = db_.prepare("SELECT name FROM customers WHERE customer_id = ?");
  update_visit_ = db_.prepare(
      "UPDATE customers SET visits = visits + 1, last_seen_us = ? WHERE customer_id = ? "
      "RETURNING visits, name");
  select_visits_ = db_.prepare("SELECT visits FROM customers WHERE customer_id = ?");
}

void CustomerStore::seed(const std::vector<Customer>& customers) {
  Transaction txn(db_);
  for (const Customer& c : customers) insert_.bind(1, c.customer_id).bind(2, c.name).run();
  txn.commit();
}

std::optional<std::string> CustomerStore::name_of(CustomerId id) {
  select_name_.bind(1, id);
  std::optional<std::string> name;
  if (select_name_.step()) name = select_name_.column_text(0);
  select_name_.reset();
  return name;
}

std::optional<CustomerStore::Visit> CustomerStore::record_visit(CustomerId id, std::int64_t at_us) {
  update_visit_.bind(1, at_us).bind(2, id);
  std::optional<Visit> visit;
  if (update_visit_.step()) {
    visit = Visit{update_visit_.column_text(1), static_cast<int>(update_visit_.column_int64(0))};
    while (update_visit_.step()) {
    }  // RETURNING: the row is written when the statement runs to its end
  }
  update_visit_.reset();
  return visit;
}

int CustomerStore::visits_of(CustomerId id) {
  select_visits_.bind(1, id);
  int visits = 0;
  if (select_visits_.step()) visits = static_cast<int>(select_visits_.column_int64(0));
  select_visits_.reset();
  return visits;
}

HelloHelper::HelloHelper(const ServiceContext& context)
    : Service(kHelloHelper, context), store_(context.db) {}

void HelloHelper::start() {
  ctx_.bus.subscribe(ctx_.topics.customer_arrival,
                     [this](const Delivery& delivery) { on_arrival(delivery); });
  relay_.pump();
}

void HelloHelper::on_arrival(const Delivery& delivery) {
  std::optional<CustomerArrival> arrival = receive<CustomerArrival>(delivery);
  if (!arrival) return;
  const CustomerId customer = arrival->customer_id;

  std::optional<std::string> name;
  const std::string& arrival_id = delivery.envelope.event_id;
  const Consumption consumed = consume_once(arrival_id, content_hash(*arrival), [&] {
    name.reset();
    int visit = 0;
    if (auto recorded = store_.record_visit(customer, ctx_.clock.now_us())) {
      name = std::move(recorded->name);
      visit = recorded->number;
    }
    const std::string text = welcome_message(name, visit);
    write_outbox(Channel::kStore, ctx_.topics.display_entrance,
                 Envelope{derive_event_id(arrival_id, name_, "welcome"), EventType::kWelcome, name_,
                          ctx_.clock.now_us(), arrival_id,
                          welcome_document(customer, text, arrival_id, ctx_.clock.now_us())});
    info([&] { return "welcome for customer " + std::to_string(customer) + ": " + text; });
  });
  // Already welcomed (or refused): each arrival is welcomed once.
  if (!consumed.applied()) return settle(delivery, consumed);
  if (!name) {
    ++unknown_customers_;
    mark(Mark::kUnknownCard);
    info([&] { return "unknown card " + std::to_string(customer) + ": generic welcome"; });
  }
}

}  // namespace eventmart
