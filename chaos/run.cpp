// A chaos run from start to end: set-up (broker, proxies, services, clients), the observer that
// records the history, and teardown.
#include "chaos/run.h"

namespace eventmart::chaos::detail {

ChaosResult Run::run() {
  const auto started = SteadyClock::now();
  try {
    setup();
    drive();
    heal_all();
    settle();
  } catch (const std::exception& e) {
    result_.error = e.what();
  }
  teardown();
  if (result_.error.empty() && stop_) {
    result_.error = "interrupted before the run ended: no verdict";
  }
  if (result_.error.empty()) check();
  result_.wall_s = seconds_since(started);
  result_.interrupted = stop_.load();
  return std::move(result_);
}

void Run::setup() {
  out_ = fs::path(options_.out_dir);
  fs::create_directories(out_ / "logs");
  fs::remove_all(out_ / "data");
  fs::create_directories(out_ / "data");
  record_.observed.open(out_ / "observed.jsonl");
  sent_.open(out_ / "sent.jsonl");

  result_.schedule = plan_faults(options_);
  {
    std::ofstream schedule(out_ / "schedule.txt");
    for (const ScheduledFault& f : result_.schedule) schedule << f.describe() << "\n";
  }

  runtime::Mosquitto::Options broker_options;
  broker_options.extra_config = {"autosave_on_changes true", "autosave_interval 1",
                                 "persistent_client_expiration 14d"};
  broker_ = std::make_unique<runtime::Mosquitto>(broker_options);
  broker_port_ = broker_->port();
  log("mosquitto on 127.0.0.1:" + std::to_string(broker_port_.load()));

  io_thread_ = std::thread([this] { io_.run(); });
  setup_services();
  setup_clients();
  for (Service& s : services_) s.process->start();
  wait_for("every service to say online", std::chrono::seconds(30), [&] {
    std::unique_lock lock(record_.mutex);
    return std::all_of(services_.begin(), services_.end(),
                       [&](const Service& s) { return record_.online[s.name]; });
  });
  record_store();
}

void Run::setup_services() {
  const auto upstream = [this] { return broker_port_.load(); };
  std::uint64_t n = 0;
  for (const std::string& name : service_processes()) {
    Service s;
    s.name = name;
    s.proxy =
        std::make_unique<FaultProxy>(io_, upstream, Rng(options_.seed).derive(name).next() + n++);
    std::vector<std::string> argv = {
        options_.binary, "serve",
        "--service",     name,
        "--broker",      "tcp://127.0.0.1:" + std::to_string(s.proxy->port()),
        "--data-dir",    (out_ / "data").string(),
        "--no-stdin",    "--durability",
        "full"};
    if (!options_.bug.empty()) {
      argv.push_back("--bug");
      argv.push_back(options_.bug);
    }
    s.process =
        std::make_unique<ChildProcess>(name, argv, (out_ / "logs" / (name + ".log")).string());
    services_.push_back(std::move(s));
  }
  clients_proxy_ = std::make_unique<FaultProxy>(io_, upstream, 0);
}

void Run::setup_clients() {
  // The observer first: it must hold its subscriptions before anything is published.
  clock_ = std::make_unique<mqtt::LiveClock>(timers_, strand_);
  mqtt::MqttOptions observer;
  observer.broker = "tcp://127.0.0.1:" + std::to_string(clients_proxy_->port());
  observer.client_id = "eventmart-chaos-observer";
  observer.clean_session = false;
  observer_ = std::make_unique<mqtt::MqttBus>(observer, topics_, *clock_, strand_, logger_,
                                              "chaos-observer");
  subscribe_observer();
  observer_->start();
  mqtt::MqttOptions scanner = observer;
  scanner.client_id = "eventmart-chaos-scanners";
  scanner_ = std::make_unique<mqtt::MqttBus>(scanner, topics_, *clock_, strand_, logger_,
                                             "chaos-scanners");
  scanner_->start();
  wait_for("the observer and the scanners to connect", std::chrono::seconds(20),
           [&] { return observer_->ready() && scanner_->ready(); });
}

void Run::record_store() {
  std::unique_lock lock(record_.mutex);
  sim::History& h = record_.history;
  for (const Product& p : default_store().products) {
    h.price_cents[p.sku] = p.price_cents;
    h.restock_threshold[p.sku] = p.restock_threshold;
    record_.shelves[p.sku] = p.stock;
    h.stock_readings.push_back(sim::StockReading{p.sku, p.stock, 0, 0, {}});
  }
  for (const Customer& c : default_store().customers) names_[c.customer_id] = c.name;
}

void Run::wait_for(const std::string& what, std::chrono::seconds limit,
                   const std::function<bool()>& done) {
  const auto deadline = SteadyClock::now() + limit;
  while (!done()) {
    if (stop_) throw std::runtime_error("interrupted while waiting for " + what);
    if (SteadyClock::now() > deadline) {
      throw std::runtime_error("timed out waiting for " + what + " (logs in " +
                               (out_ / "logs").string() + ")");
    }
    check_processes();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void Run::observed(const Held& held, const std::string& topic, const std::string& what) {
  require_held(held);
  record_.last_message = SteadyClock::now();
  record_.observed << R"({"t":)" << fixed(now_s(), 3) << R"(,"topic":")" << topic << R"(",)" << what
                   << "}\n";
}

void Run::subscribe_observer() {
  observer_->subscribe(topics_.payment_due, [this](const Delivery& d) {
    auto due = decode_payment_due(d.envelope.payload);
    std::unique_lock lock(record_.mutex);
    ++record_.payments;
    if (!due) return;
    record_.history.payments.push_back(
        sim::ObservedPayment{d.envelope.event_id, due.value().departure_event_id,
                             due.value().customer_id, due.value().total_cents, now_us()});
    record_.payment_for.insert(due.value().departure_event_id);
    observed(lock, topics_.payment_due,
             R"("event":")" + d.envelope.event_id + R"(","departure":")" +
                 due.value().departure_event_id + R"(","cents":)" +
                 std::to_string(due.value().total_cents));
  });
  observer_->subscribe(topics_.restock_needed, [this](const Delivery& d) {
    auto order = decode_restock_needed(d.envelope.payload);
    std::unique_lock lock(record_.mutex);
    ++record_.restocks;
    if (!order) return;
    record_.history.restocks.push_back(sim::ObservedRestock{d.envelope.event_id, order.value().sku,
                                                            now_us(), order.value().stock_level});
    observed(
        lock, topics_.restock_needed,
        R"("event":")" + d.envelope.event_id + R"(","sku":)" + std::to_string(order.value().sku));
  });
  observer_->subscribe(topics_.stock_replenished, [this](const Delivery& d) {
    auto delivery = decode_stock_replenished(d.envelope.payload);
    std::unique_lock lock(record_.mutex);
    if (!delivery) return;
    observed(lock, topics_.stock_replenished,
             R"("event":")" + d.envelope.event_id + R"(","sku":)" +
                 std::to_string(delivery.value().sku));
    record_.replenishments[d.envelope.event_id] =
        LineItem{delivery.value().sku, delivery.value().quantity};
    // The truck unloads once: a copy of the message is not a second delivery.
    if (!record_.delivered.insert(d.envelope.event_id).second) return;
    ++record_.deliveries;
    record_.shelves[delivery.value().sku] += delivery.value().quantity;
    record_.history.restock_deliveries.push_back(
        sim::RestockDelivery{delivery.value().restock_event_id, delivery.value().sku, now_us()});
  });
  observer_->subscribe_bytes(
      topics_.display_entrance, [this](const std::string& topic, std::string_view bytes, bool) {
        auto welcome = read_welcome_document(bytes);
        std::unique_lock lock(record_.mutex);
        if (!welcome) return;
        observed(lock, topic, R"("arrival":")" + welcome.value().arrival_event_id + R"(")");
        // The display shows each welcome once: the retained copy comes again on every
        // resubscription. A different text for the same arrival is a second welcome.
        if (!record_.welcomed.emplace(welcome.value().arrival_event_id, welcome.value().message)
                 .second) {
          return;
        }
        record_.history.welcomes.push_back(sim::ShownWelcome{welcome.value().arrival_event_id,
                                                             welcome.value().customer_id,
                                                             welcome.value().message, now_us()});
      });
  observer_->subscribe_bytes(topics_.status("+"),
                             [this](const std::string& topic, std::string_view bytes, bool) {
                               const std::string service = topic.substr(topic.rfind('/') + 1);
                               std::unique_lock lock(record_.mutex);
                               record_.online[service] = bytes == "online";
                             });
  observer_->subscribe_bytes(topics_.dead_letter("+"),
                             [this](const std::string& topic, std::string_view bytes, bool) {
                               on_dead_letter(topic, bytes);
                             });
}

void Run::on_dead_letter(const std::string& topic, std::string_view bytes) {
  auto doc = json::parse(bytes);
  std::unique_lock lock(record_.mutex);
  observed(lock, topic, R"("dead_letter":true)");
  if (!record_.dead_seen.insert(topic + "\n" + std::string(bytes)).second) return;
  sim::DeadLetter dead;
  dead.service = topic.substr(topic.rfind('/') + 1);
  dead.at_us = now_us();
  if (!doc) {
    dead.reason = "unreadable dead letter: " + doc.error();
    record_.history.dead_letters.push_back(std::move(dead));
    return;
  }
  const json::Value& v = doc.value();
  const json::Value* reason = v.find("reason");
  const json::Value* on = v.find("topic");
  const json::Value* payload = v.find("payload_base64");
  if (reason != nullptr) dead.reason = reason->text;
  if (on != nullptr && payload != nullptr) {
    const std::string original = base64_decode(payload->text);
    auto envelope = decode_wire(WireFormat::kCapnp, topics_, on->text, original);
    if (envelope) {
      dead.event_id = envelope.value().event_id;
      dead.type = envelope.value().type;
      if (dead.type == EventType::kCustomerDeparted) {
        if (auto departed = decode_customer_departed(envelope.value().payload)) {
          dead.items = departed.value().items;
        }
      } else if (dead.type == EventType::kStockReplenished) {
        if (auto r = decode_stock_replenished(envelope.value().payload)) {
          dead.items.push_back(LineItem{r.value().sku, r.value().quantity});
        }
      }
    }
  }
  record_.history.dead_letters.push_back(std::move(dead));
}

void Run::teardown() {
  for (Service& s : services_) {
    if (s.process) s.process->terminate(std::chrono::seconds(10));
  }
  if (observer_) observer_->stop();
  if (scanner_) scanner_->stop();
  timers_.stop();
  for (Service& s : services_) {
    if (s.proxy) {
      const FaultProxy::Stats st = s.proxy->stats();
      result_.proxy_connections += st.connections;
      s.proxy->close();
    }
  }
  if (clients_proxy_) clients_proxy_->close();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  if (broker_) {
    broker_->stop();
    std::ofstream(out_ / "logs" / "mosquitto.log") << broker_->log();
  }
}

}  // namespace eventmart::chaos::detail
