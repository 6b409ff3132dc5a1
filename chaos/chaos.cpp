#include "chaos/chaos.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "chaos/proxy.h"
#include "core/codec.h"
#include "core/event_id.h"
#include "core/json.h"
#include "core/rng.h"
#include "core/topics.h"
#include "core/wire.h"
#include "runtime/mosquitto.h"
#include "runtime/process.h"
#include "services/catalog.h"
#include "services/hello_helper.h"
#include "services/inventory_intel.h"
#include "services/journal.h"
#include "services/registry.h"
#include "services/sqlite.h"
#include "transports/mqtt/live_clock.h"
#include "transports/mqtt/mqtt_bus.h"

namespace eventmart::chaos {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kGateway = "gateway-guardian";
constexpr std::string_view kGateExit = "gate-exit-guardian";

// The processes a run starts, in pipeline order: the five store services and the desk.
std::vector<std::string> service_processes() {
  std::vector<std::string> names;
  for (const ServiceSpec& s : service_specs()) {
    if (s.store_service || s.kind == ServiceKind::kLogisticsDesk) names.emplace_back(s.name);
  }
  return names;
}

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

std::string fixed(double value, int decimals) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(decimals);
  s << value;
  return s.str();
}

// A child process that can be started again (a service killed and restarted): `argv` with
// stdout and stderr appended to `log`, through the one launcher (runtime/process.h).
class ChildProcess {
 public:
  ChildProcess(std::string name, std::vector<std::string> argv, std::string log)
      : name_(std::move(name)) {
    spawn_.argv = std::move(argv);
    spawn_.log_file = std::move(log);
  }

  const std::string& name() const { return name_; }
  bool running() const { return process_ != nullptr && process_->pid() > 0; }

  void start() {
    if (running()) return;
    process_ = std::make_unique<runtime::Process>(spawn_);
  }
  void kill_now() {
    if (process_) process_->kill_now();
  }
  void pause() {
    if (process_) process_->signal(SIGSTOP);
  }
  void resume() {
    if (process_) process_->signal(SIGCONT);
  }
  // SIGTERM, then SIGKILL if it has not exited within `timeout`. Returns its exit status
  // (-1 when it had to be killed or was not running).
  int terminate(std::chrono::milliseconds timeout) {
    return process_ ? process_->terminate(timeout) : -1;
  }
  // True when it exited on its own (reaped here); its status in `status`.
  bool exited(int& status) {
    if (!running()) return false;
    const std::optional<int> ended = process_->wait_for(std::chrono::milliseconds(0));
    if (!ended) return false;
    status = *ended;
    return true;
  }

 private:
  std::string name_;
  runtime::SpawnOptions spawn_;
  std::unique_ptr<runtime::Process> process_;
};

std::string base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const int v = value(c);
    if (v < 0) continue;  // padding
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

// What the observer saw, and the physical store, shared between the main thread and the
// clients' callbacks.
struct Record {
  std::mutex mutex;
  sim::History history;
  std::map<Sku, std::int64_t> shelves;
  std::set<std::string> payment_for;                       // departures with a payment seen
  std::set<std::pair<std::string, std::string>> welcomed;  // (arrival id, text) shown
  std::set<std::string> delivered;     // StockReplenished event ids already put on a shelf
  std::set<std::string> dead_seen;     // dead-letter documents (by service and bytes hash)
  std::map<std::string, bool> online;  // service -> its status says "online"
  std::map<std::string, LineItem> replenishments;  // StockReplenished id -> what it brought
  SteadyClock::time_point last_message = SteadyClock::now();
  std::int64_t payments = 0;
  std::int64_t restocks = 0;
  std::int64_t deliveries = 0;
  std::int64_t resent = 0;
  std::ofstream observed;  // observed.jsonl
};

}  // namespace

std::string_view fault_kind_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kReset:
      return "reset";
    case FaultKind::kBlackhole:
      return "blackhole";
    case FaultKind::kLatency:
      return "latency";
    case FaultKind::kThrottle:
      return "throttle";
    case FaultKind::kKill:
      return "kill";
    case FaultKind::kPause:
      return "pause";
    case FaultKind::kBrokerKill:
      return "broker-kill";
  }
  return "?";
}

std::set<FaultKind> parse_fault_kinds(const std::string& list) {
  static const std::vector<FaultKind> all = {
      FaultKind::kReset, FaultKind::kBlackhole, FaultKind::kLatency,   FaultKind::kThrottle,
      FaultKind::kKill,  FaultKind::kPause,     FaultKind::kBrokerKill};
  std::set<FaultKind> kinds;
  std::stringstream in(list);
  std::string word;
  while (std::getline(in, word, ',')) {
    if (word.empty()) continue;
    if (word == "all") {
      kinds.insert(all.begin(), all.end());
      continue;
    }
    if (word == "none") continue;
    auto it = std::find_if(all.begin(), all.end(),
                           [&](FaultKind k) { return fault_kind_name(k) == word; });
    if (it == all.end()) {
      throw std::invalid_argument("no fault kind '" + word +
                                  "' (reset, blackhole, latency, throttle, kill, pause, "
                                  "broker-kill, all, none)");
    }
    kinds.insert(*it);
  }
  return kinds;
}

std::string ScheduledFault::describe() const {
  std::string line = fixed(at_s, 2) + " s  " + std::string(fault_kind_name(kind));
  if (!target.empty()) line += " " + target;
  switch (kind) {
    case FaultKind::kLatency:
      line += " " + std::to_string(latency_ms) + " ms +- " + std::to_string(jitter_ms) + " ms";
      break;
    case FaultKind::kThrottle:
      line += " " + std::to_string(bytes_per_s) + " bytes/s";
      break;
    default:
      break;
  }
  if (duration_s > 0) line += " for " + fixed(duration_s, 2) + " s";
  return line;
}

std::vector<ScheduledFault> plan_faults(const ChaosOptions& options) {
  std::vector<ScheduledFault> plan;
  std::vector<FaultKind> kinds(options.faults.begin(), options.faults.end());
  if (kinds.empty()) return plan;
  Rng rng = Rng(options.seed).derive("chaos-faults");
  const std::vector<std::string> targets = service_processes();
  std::map<std::string, double> busy_until;  // a target has one fault at a time
  double broker_free_at = 0;
  const auto ms = [&](std::int64_t lo, std::int64_t hi) {
    return static_cast<double>(rng.uniform(lo, hi)) / 1000.0;
  };
  // The first faults come once the store runs; the last ones end before it heals.
  double at = 1.0 + ms(0, 1000);
  const double end = options.duration_s - 1.0;
  const auto gap_ms = static_cast<std::int64_t>(options.mean_gap_s * 2000);
  while (at < end) {
    ScheduledFault f;
    f.at_s = at;
    f.kind = kinds[static_cast<std::size_t>(
        rng.uniform(0, static_cast<std::int64_t>(kinds.size()) - 1))];
    switch (f.kind) {
      case FaultKind::kReset:
        f.duration_s = 0;
        break;
      case FaultKind::kBlackhole:
        f.duration_s = ms(500, 12'000);
        break;
      case FaultKind::kLatency:
        f.duration_s = ms(1000, 10'000);
        f.latency_ms = rng.uniform(10, 400);
        f.jitter_ms = rng.uniform(0, f.latency_ms / 2);
        break;
      case FaultKind::kThrottle:
        f.duration_s = ms(1000, 10'000);
        f.bytes_per_s = rng.uniform(2'000, 50'000);
        break;
      case FaultKind::kKill:
        f.duration_s = ms(200, 5000);  // down this long, then restarted
        break;
      case FaultKind::kPause:
        f.duration_s = ms(500, 10'000);
        break;
      case FaultKind::kBrokerKill:
        f.duration_s = ms(200, 4000);
        break;
    }
    f.duration_s = std::min(f.duration_s, std::max(0.0, end - at));
    bool placed = false;
    if (f.kind == FaultKind::kBrokerKill) {
      if (at >= broker_free_at) {
        broker_free_at = at + f.duration_s + 20.0;
        placed = true;
      }
    } else {
      const std::string& target = targets[static_cast<std::size_t>(
          rng.uniform(0, static_cast<std::int64_t>(targets.size()) - 1))];
      if (at >= busy_until[target]) {
        f.target = target;
        busy_until[target] = at + f.duration_s + 0.5;
        placed = true;
      }
    }
    if (placed) plan.push_back(f);
    at += ms(100, gap_ms);
  }
  return plan;
}

bool ChaosResult::passed() const {
  if (!error.empty()) return false;
  return std::all_of(invariants.begin(), invariants.end(),
                     [](const properties::InvariantResult& r) { return r.held(); });
}

std::string ChaosResult::to_text() const {
  std::ostringstream out;
  if (!error.empty()) {
    out << "  could not run: " << error << "\n";
    return out.str();
  }
  out << "  schedule (" << schedule.size() << " faults):\n";
  for (const ScheduledFault& f : schedule) out << "    " << f.describe() << "\n";
  out << "  faults injected:";
  if (faults_injected.empty()) out << " none";
  for (const auto& [kind, n] : faults_injected) out << " " << kind << " " << n;
  out << "\n  sent: " << arrivals_sent << " arrivals, " << departures_sent << " departures ("
      << readings_resent << " readings sent again)\n"
      << "  seen: " << payments_seen << " payment messages for " << history.departures.size()
      << " departures, " << restocks_seen << " restock orders, " << deliveries_seen
      << " deliveries, " << history.dead_letters.size() << " dead letters\n"
      << "  proxied connections: " << proxy_connections << "\n"
      << "  healed, then " << (history.quiescent ? "quiescent after " : "NOT quiescent within ")
      << fixed(settle_s, 1) << " s; the run took " << fixed(wall_s, 1) << " s"
      << (interrupted ? " (interrupted)" : "") << "\n";
  for (const properties::InvariantResult& r : invariants) {
    out << "  " << (r.held() ? "ok  " : "FAIL") << " " << r.name;
    if (!r.checked) out << " (not checked)";
    if (r.violations > 0) out << ": " << r.violations << " violation(s)";
    if (r.dead_lettered > 0) out << " (" << r.dead_lettered << " dead-lettered)";
    out << "\n";
    for (const std::string& e : r.examples) out << "         " << e << "\n";
  }
  return out.str();
}

std::string ChaosResult::to_json() const {
  json::Document doc = json::Document::object();
  doc["passed"] = passed();
  if (!error.empty()) doc["error"] = error;
  doc["interrupted"] = interrupted;
  json::Document faults = json::Document::object();
  for (const auto& [kind, n] : faults_injected) faults[kind] = n;
  doc["faults_injected"] = faults;
  json::Document schedule_doc = json::Document::array();
  for (const ScheduledFault& f : schedule) schedule_doc.push_back(f.describe());
  doc["schedule"] = schedule_doc;
  doc["arrivals_sent"] = arrivals_sent;
  doc["departures_sent"] = departures_sent;
  doc["readings_resent"] = readings_resent;
  doc["payments_seen"] = payments_seen;
  doc["restocks_seen"] = restocks_seen;
  doc["deliveries_seen"] = deliveries_seen;
  doc["dead_letters"] = history.dead_letters.size();
  doc["proxy_connections"] = proxy_connections;
  doc["quiescent"] = history.quiescent;
  doc["settle_s"] = settle_s;
  doc["wall_s"] = wall_s;
  json::Document inv = json::Document::array();
  for (const properties::InvariantResult& r : invariants) {
    json::Document i = json::Document::object();
    i["name"] = r.name;
    i["held"] = r.held();
    i["checked"] = r.checked;
    i["violations"] = r.violations;
    i["dead_lettered"] = r.dead_lettered;
    i["examples"] = r.examples;
    inv.push_back(i);
  }
  doc["invariants"] = inv;
  return json::dump(doc);
}

namespace {

// One run, start to end. Members are destroyed in reverse: clients, then processes, then
// proxies and the broker.
class Run {
 public:
  Run(const ChaosOptions& options, Logger& logger, const std::atomic<bool>& stop)
      : options_(options),
        logger_(logger),
        stop_(stop),
        topics_(),
        rng_(Rng(options.seed).derive("chaos-workload")) {}

  ChaosResult run() {
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

 private:
  struct Service {
    std::string name;
    std::unique_ptr<FaultProxy> proxy;
    std::unique_ptr<ChildProcess> process;
    bool down = false;    // killed, waiting for its restart
    bool paused = false;  // SIGSTOP
  };

  void log(const std::string& what) { logger_.log(LogLevel::kInfo, "chaos", what); }

  void setup() {
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

    for (Service& s : services_) s.process->start();
    wait_for("every service to say online", std::chrono::seconds(30), [&] {
      std::lock_guard lock(record_.mutex);
      return std::all_of(services_.begin(), services_.end(),
                         [&](const Service& s) { return record_.online[s.name]; });
    });

    std::lock_guard lock(record_.mutex);
    sim::History& h = record_.history;
    for (const Product& p : default_store().products) {
      h.price_cents[p.sku] = p.price_cents;
      h.restock_threshold[p.sku] = p.restock_threshold;
      record_.shelves[p.sku] = p.stock;
      h.stock_readings.push_back(sim::StockReading{p.sku, p.stock, 0, 0, {}});
    }
    h.generic_welcome = welcome_message(std::nullopt, 0);
    for (const Customer& c : default_store().customers) names_[c.customer_id] = c.name;
  }

  void wait_for(const std::string& what, std::chrono::seconds limit,
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

  void observed(const std::string& topic, const std::string& what) {
    // REQUIRES: record_.mutex held.
    record_.last_message = SteadyClock::now();
    record_.observed << R"({"t":)" << fixed(now_s(), 3) << R"(,"topic":")" << topic << R"(",)"
                     << what << "}\n";
  }

  void subscribe_observer() {
    observer_->subscribe(topics_.payment_due, [this](const Delivery& d) {
      auto due = decode_payment_due(d.envelope.payload);
      std::lock_guard lock(record_.mutex);
      ++record_.payments;
      if (!due) return;
      record_.history.payments.push_back(
          sim::ObservedPayment{d.envelope.event_id, due.value().departure_event_id,
                               due.value().customer_id, due.value().total_cents, now_us()});
      record_.payment_for.insert(due.value().departure_event_id);
      observed(topics_.payment_due, R"("event":")" + d.envelope.event_id + R"(","departure":")" +
                                        due.value().departure_event_id + R"(","cents":)" +
                                        std::to_string(due.value().total_cents));
    });
    observer_->subscribe(topics_.restock_needed, [this](const Delivery& d) {
      auto order = decode_restock_needed(d.envelope.payload);
      std::lock_guard lock(record_.mutex);
      ++record_.restocks;
      if (!order) return;
      record_.history.restocks.push_back(
          sim::ObservedRestock{d.envelope.event_id, order.value().sku, now_us()});
      observed(topics_.restock_needed, R"("event":")" + d.envelope.event_id + R"(","sku":)" +
                                           std::to_string(order.value().sku));
    });
    observer_->subscribe(topics_.stock_replenished, [this](const Delivery& d) {
      auto delivery = decode_stock_replenished(d.envelope.payload);
      std::lock_guard lock(record_.mutex);
      if (!delivery) return;
      observed(topics_.stock_replenished, R"("event":")" + d.envelope.event_id + R"(","sku":)" +
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
          std::lock_guard lock(record_.mutex);
          if (!welcome) return;
          observed(topic, R"("arrival":")" + welcome.value().arrival_event_id + R"(")");
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
                                 std::lock_guard lock(record_.mutex);
                                 record_.online[service] = bytes == "online";
                               });
    observer_->subscribe_bytes(topics_.dead_letter("+"),
                               [this](const std::string& topic, std::string_view bytes, bool) {
                                 on_dead_letter(topic, bytes);
                               });
  }

  void on_dead_letter(const std::string& topic, std::string_view bytes) {
    auto doc = json::parse(bytes);
    std::lock_guard lock(record_.mutex);
    observed(topic, R"("dead_letter":true)");
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

  double now_s() const { return seconds_since(workload_start_); }
  std::int64_t now_us() const { return static_cast<std::int64_t>(now_s() * 1e6); }

  // A reading is published until the broker confirms it, as a device would.
  void publish_reading(const std::string& topic, std::string text) {
    scanner_->publish_bytes(topic, text, Qos::kAtLeastOnce, mqtt::Retain::kNo,
                            [this, topic, text](PublishOutcome outcome) {
                              if (outcome != PublishOutcome::kFailed) return;
                              {
                                std::lock_guard lock(record_.mutex);
                                ++record_.resent;
                              }
                              publish_reading(topic, text);
                            });
  }

  struct PendingDeparture {
    double at_s;
    std::int64_t visit;
    CustomerId customer;
    bool operator>(const PendingDeparture& o) const { return at_s > o.at_s; }
  };

  void send_arrival(std::int64_t visit, CustomerId customer) {
    const std::string scan_id =
        "entrance-1/r" + std::to_string(options_.seed) + "-" + std::to_string(visit);
    {
      std::lock_guard lock(record_.mutex);
      record_.history.arrivals.push_back(sim::ArrivalTruth{
          scan_id, customer, names_.count(customer) ? names_.at(customer) : std::string(), now_us(),
          derive_event_id(scan_id, kGateway)});
    }
    sent_ << R"({"t":)" << fixed(now_s(), 3) << R"(,"reading":"arrival","scan_id":")" << scan_id
          << R"(","customer":)" << customer << "}\n";
    ++result_.arrivals_sent;
    publish_reading(topics_.entrance_scanner,
                    "arrival " + std::to_string(customer) + " scan=" + scan_id);
  }

  void send_departure(const PendingDeparture& p) {
    const std::string scan_id =
        "exit-1/r" + std::to_string(options_.seed) + "-" + std::to_string(p.visit);
    std::vector<LineItem> basket;
    {
      // What the customer takes off the shelves: 1 to 4 products, 1 to 3 units each, as far
      // as the shelves hold them.
      std::lock_guard lock(record_.mutex);
      std::vector<Sku> stocked;
      for (const auto& [sku, units] : record_.shelves) {
        if (units > 0) stocked.push_back(sku);
      }
      const std::int64_t wanted = rng_.uniform(1, 4);
      for (std::int64_t i = 0; i < wanted && !stocked.empty(); ++i) {
        const auto at = static_cast<std::size_t>(
            rng_.uniform(0, static_cast<std::int64_t>(stocked.size()) - 1));
        const Sku sku = stocked[at];
        stocked.erase(stocked.begin() + static_cast<std::ptrdiff_t>(at));
        const std::int64_t units = std::min(rng_.uniform(1, 3), record_.shelves[sku]);
        record_.shelves[sku] -= units;
        basket.push_back(LineItem{sku, units});
      }
      std::sort(basket.begin(), basket.end(),
                [](const LineItem& a, const LineItem& b) { return a.sku < b.sku; });
      record_.history.departures.push_back(sim::DepartureTruth{
          scan_id, p.customer, basket, now_us(), derive_event_id(scan_id, kGateExit)});
    }
    std::string items;
    for (const LineItem& item : basket) {
      items += (items.empty() ? "" : ",") + std::to_string(item.sku) + ":" +
               std::to_string(item.quantity);
    }
    sent_ << R"({"t":)" << fixed(now_s(), 3) << R"(,"reading":"departure","scan_id":")" << scan_id
          << R"(","customer":)" << p.customer << R"(,"items":")" << items << "\"}\n";
    ++result_.departures_sent;
    publish_reading(topics_.exit_gate,
                    "departure " + std::to_string(p.customer) + " " + items + " scan=" + scan_id);
  }

  void drive() {
    // The run's clock (now_s) started with the run; the schedule counts from here.
    const double origin = now_s();
    log("workload: " + fixed(options_.rate, 0) + " departures/s for " +
        fixed(options_.duration_s, 0) + " s, " + std::to_string(result_.schedule.size()) +
        " faults scheduled");
    const auto visits = static_cast<std::int64_t>(options_.duration_s * options_.rate);
    const std::vector<Customer>& customers = default_store().customers;
    std::priority_queue<PendingDeparture, std::vector<PendingDeparture>, std::greater<>> departures;
    std::size_t next_fault = 0;
    struct Ending {
      double at_s;
      std::size_t fault;
    };
    std::vector<Ending> endings;
    std::int64_t visit = 0;
    while (!stop_) {
      const double t = now_s() - origin;
      while (next_fault < result_.schedule.size() && result_.schedule[next_fault].at_s <= t) {
        const ScheduledFault& f = result_.schedule[next_fault];
        begin_fault(f);
        if (f.duration_s > 0) endings.push_back(Ending{f.at_s + f.duration_s, next_fault});
        ++next_fault;
      }
      for (auto it = endings.begin(); it != endings.end();) {
        if (it->at_s <= t) {
          end_fault(result_.schedule[it->fault]);
          it = endings.erase(it);
        } else {
          ++it;
        }
      }
      while (visit < visits && static_cast<double>(visit) / options_.rate <= t) {
        ++visit;
        const Customer& c = customers[static_cast<std::size_t>(
            rng_.uniform(0, static_cast<std::int64_t>(customers.size()) - 1))];
        send_arrival(visit, c.customer_id);
        departures.push(PendingDeparture{t + static_cast<double>(rng_.uniform(200, 3000)) / 1000.0,
                                         visit, c.customer_id});
      }
      while (!departures.empty() && departures.top().at_s <= t) {
        send_departure(departures.top());
        departures.pop();
      }
      if (visit >= visits && departures.empty() && t >= options_.duration_s) break;
      check_processes();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (const Ending& e : endings) end_fault(result_.schedule[e.fault]);
  }

  Service& service(const std::string& name) {
    for (Service& s : services_) {
      if (s.name == name) return s;
    }
    throw std::logic_error("no service " + name);
  }

  void begin_fault(const ScheduledFault& f) {
    log("fault: " + f.describe());
    ++result_.faults_injected[std::string(fault_kind_name(f.kind))];
    if (f.kind == FaultKind::kBrokerKill) {
      broker_->kill_now();
      broker_down_ = true;
      return;
    }
    Service& s = service(f.target);
    switch (f.kind) {
      case FaultKind::kReset:
        s.proxy->reset_connections();
        break;
      case FaultKind::kBlackhole:
        s.proxy->set_blackhole(true);
        break;
      case FaultKind::kLatency:
        s.proxy->set_latency(f.latency_ms * 1000, f.jitter_ms * 1000);
        break;
      case FaultKind::kThrottle:
        s.proxy->set_bandwidth(f.bytes_per_s);
        break;
      case FaultKind::kKill:
        s.process->kill_now();
        s.down = true;
        break;
      case FaultKind::kPause:
        s.process->pause();
        s.paused = true;
        break;
      case FaultKind::kBrokerKill:
        break;
    }
  }

  void end_fault(const ScheduledFault& f) {
    if (f.kind == FaultKind::kBrokerKill) {
      restart_broker();
      return;
    }
    Service& s = service(f.target);
    switch (f.kind) {
      case FaultKind::kReset:
        break;
      case FaultKind::kBlackhole:
        s.proxy->set_blackhole(false);
        break;
      case FaultKind::kLatency:
        s.proxy->set_latency(0, 0);
        break;
      case FaultKind::kThrottle:
        s.proxy->set_bandwidth(0);
        break;
      case FaultKind::kKill:
        s.process->start();
        s.down = false;
        break;
      case FaultKind::kPause:
        s.process->resume();
        s.paused = false;
        break;
      case FaultKind::kBrokerKill:
        break;
    }
  }

  void restart_broker() {
    if (!broker_down_) return;
    broker_->start();  // same port and persistence (another port only if it was taken)
    broker_port_ = broker_->port();
    broker_down_ = false;
  }

  // A service process that exited on its own is a finding (its log says why); it is started
  // again, as its supervisor would.
  void check_processes() {
    for (Service& s : services_) {
      int status = 0;
      if (!s.down && s.process->exited(status)) {
        logger_.log(
            LogLevel::kError, "chaos",
            s.name + " exited on its own (status " + std::to_string(status) + "); restarting it");
        ++result_.faults_injected["exited-by-itself"];
        s.process->start();
      }
    }
  }

  void heal_all() {
    for (Service& s : services_) {
      s.proxy->heal();
      if (s.paused) s.process->resume();
      s.paused = false;
      if (s.down) s.process->start();
      s.down = false;
    }
    restart_broker();
    healed_at_ = SteadyClock::now();
    log("healed at " + fixed(now_s(), 1) + " s of the run; waiting for quiescence");
  }

  // Quiescent: every departure paid (or dead-lettered), every service online, and nothing
  // on the bus for 3 s. Bounded by settle_s.
  void settle() {
    const auto deadline = healed_at_ + std::chrono::duration<double>(options_.settle_s);
    while (SteadyClock::now() < deadline && !stop_) {
      check_processes();
      {
        std::lock_guard lock(record_.mutex);
        const sim::History& h = record_.history;
        std::set<std::string> dead;
        for (const sim::DeadLetter& d : h.dead_letters) dead.insert(d.event_id);
        const bool paid = std::all_of(
            h.departures.begin(), h.departures.end(), [&](const sim::DepartureTruth& d) {
              return record_.payment_for.count(d.event_id) || dead.count(d.event_id);
            });
        const bool online = std::all_of(services_.begin(), services_.end(),
                                        [&](const Service& s) { return record_.online[s.name]; });
        const bool quiet = SteadyClock::now() - record_.last_message > std::chrono::seconds(3);
        if (!(paid && online && quiet)) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
      }
      // A relay may be waiting to publish again (its backoff outlasts a quiet spell), and a
      // consumer may still be working through what the broker queued for it while it was
      // away (a sale publishes nothing): only empty outboxes and inboxes holding every
      // departure and arrival end the wait.
      if (outboxes_empty() && consumers_caught_up()) {
        settled_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    result_.settle_s = seconds_since(healed_at_);
  }

  // Inventory Intel's inbox holds every departure, Hello Helper's every arrival.
  bool consumers_caught_up() {
    std::vector<std::string> departures, arrivals;
    {
      std::lock_guard lock(record_.mutex);
      for (const sim::DepartureTruth& d : record_.history.departures)
        departures.push_back(d.event_id);
      for (const sim::ArrivalTruth& a : record_.history.arrivals) arrivals.push_back(a.event_id);
    }
    const auto holds_all = [&](ServiceKind kind, const std::vector<std::string>& ids) {
      Database db((out_ / "data" / (std::string(service_name(kind)) + ".sqlite")).string(),
                  Durability::kFull);
      std::set<std::string> inbox;
      Statement rows = db.prepare("SELECT event_id FROM inbox");
      while (rows.step()) inbox.insert(rows.column_text(0));
      return std::all_of(ids.begin(), ids.end(),
                         [&](const std::string& id) { return inbox.count(id) > 0; });
    };
    try {
      return holds_all(ServiceKind::kInventoryIntel, departures) &&
             holds_all(ServiceKind::kHelloHelper, arrivals);
    } catch (const std::exception&) {
      return false;  // busy: ask again
    }
  }

  // Every service's outbox empty, read while it runs (WAL: a reader does not block it).
  bool outboxes_empty() {
    try {
      for (const Service& s : services_) {
        Database db((out_ / "data" / (s.name + ".sqlite")).string(), Durability::kFull);
        Statement count = db.prepare("SELECT count(*) FROM outbox");
        if (count.step() && count.column_int64(0) > 0) return false;
      }
      return true;
    } catch (const std::exception&) {
      return false;  // busy: ask again
    }
  }

  void teardown() {
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

  void check() {
    std::lock_guard lock(record_.mutex);
    sim::History& h = record_.history;
    h.final_shelves = record_.shelves;
    bool outboxes_empty = true;
    try {
      for (const Service& s : services_) {
        Database db((out_ / "data" / (s.name + ".sqlite")).string(), Durability::kFull);
        Journal journal(db);
        if (journal.outbox_size() > 0) {
          outboxes_empty = false;
          logger_.log(
              LogLevel::kWarning, "chaos",
              s.name + " still owes " + std::to_string(journal.outbox_size()) + " publishes");
        }
        for (sim::DeadLetter& d : h.dead_letters) {
          if (d.service == s.name && !d.event_id.empty()) {
            d.applied_later = d.applied_later || journal.in_inbox(d.event_id);
          }
        }
        if (s.name == std::string(service_name(ServiceKind::kInventoryIntel))) {
          replay_consumption(db, h);
          InventoryStore store(db);
          for (const auto& [sku, record] : store.all()) {
            h.final_stock[sku] = sim::FinalStock{record.stock, record.shortfall};
            h.stock_readings.push_back(
                sim::StockReading{sku, record.stock, record.shortfall, now_us(), {}});
          }
          std::set<std::string> booked;
          for (const sim::DepartureTruth& d : h.departures) {
            if (journal.in_inbox(d.event_id)) booked.insert(d.event_id);
          }
          h.inventory_booked = std::move(booked);
        }
      }
    } catch (const std::exception& e) {
      result_.error = std::string("cannot read the services' databases: ") + e.what();
      return;
    }
    h.quiescent = settled_ && outboxes_empty;
    result_.history = h;
    result_.invariants = properties::check_all(h);
    result_.payments_seen = record_.payments;
    result_.restocks_seen = record_.restocks;
    result_.deliveries_seen = record_.deliveries;
    result_.readings_resent = record_.resent;
  }

  // The simulator reads Inventory Intel's record after every commit; a live run cannot, so
  // the level (stock - shortfall, what the restock policy watches) after each commit is
  // rebuilt from the order in which the inventory consumed its events (its inbox, by time of
  // consumption): a sale takes its basket, a delivery adds its units. The restock check then
  // sees every crossing, as in the simulator. REQUIRES: record_.mutex held.
  void replay_consumption(Database& db, sim::History& h) {
    std::map<std::string, const sim::DepartureTruth*> departures;
    for (const sim::DepartureTruth& d : h.departures) departures[d.event_id] = &d;
    std::map<Sku, std::int64_t> level;
    for (const Product& p : default_store().products) level[p.sku] = p.stock;
    const auto reading = [&](Sku sku, std::int64_t at_us, const std::string& event_id) {
      const std::int64_t l = level[sku];
      h.stock_readings.push_back(sim::StockReading{sku, std::max<std::int64_t>(l, 0),
                                                   std::max<std::int64_t>(-l, 0), at_us, event_id});
    };
    Statement rows =
        db.prepare("SELECT event_id, received_at_us FROM inbox ORDER BY received_at_us, event_id");
    const std::int64_t start_us = mqtt::wall_clock_us() - now_us();
    while (rows.step()) {
      const std::string id = rows.column_text(0);
      const std::int64_t at_us = rows.column_int64(1) - start_us;
      if (auto d = departures.find(id); d != departures.end()) {
        for (const LineItem& item : d->second->basket) {
          level[item.sku] -= item.quantity;
          reading(item.sku, at_us, id);
        }
      } else if (auto r = record_.replenishments.find(id); r != record_.replenishments.end()) {
        level[r->second.sku] += r->second.quantity;
        reading(r->second.sku, at_us, id);
      }
    }
  }

  const ChaosOptions& options_;
  Logger& logger_;
  const std::atomic<bool>& stop_;
  Topics topics_;
  Rng rng_;
  ChaosResult result_;
  fs::path out_;
  std::ofstream sent_;
  Record record_;
  std::map<CustomerId, std::string> names_;
  std::unique_ptr<runtime::Mosquitto> broker_;
  std::atomic<int> broker_port_{0};
  bool broker_down_ = false;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::thread io_thread_;
  std::vector<Service> services_;
  std::unique_ptr<FaultProxy> clients_proxy_;
  mqtt::TimerThread timers_;
  mqtt::Strand strand_;
  std::unique_ptr<mqtt::LiveClock> clock_;
  std::unique_ptr<mqtt::MqttBus> observer_;
  std::unique_ptr<mqtt::MqttBus> scanner_;
  // Set once, before any thread reads it: the origin of every time in the history.
  const SteadyClock::time_point workload_start_ = SteadyClock::now();
  SteadyClock::time_point healed_at_ = SteadyClock::now();
  bool settled_ = false;
};

}  // namespace

ChaosResult run_chaos(const ChaosOptions& options, Logger& logger, const std::atomic<bool>& stop) {
  Run run(options, logger, stop);
  return run.run();
}

}  // namespace eventmart::chaos
