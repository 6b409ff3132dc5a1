// One `eventmart chaos` run (chaos/chaos.h), internal to chaos/: the Run class and what its
// parts share. The run is split by concern: run.cpp (set-up, the observer, teardown),
// run_workload.cpp (the scanners' readings), run_faults.cpp (faults and healing),
// run_check.cpp (quiescence and the invariants).
#pragma once

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

#include "chaos/chaos.h"
#include "chaos/proxy.h"
#include "core/assert.h"
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

namespace eventmart::chaos::detail {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kGateway = "gateway-guardian";
constexpr std::string_view kGateExit = "gate-exit-guardian";

// The processes a run starts, in pipeline order: the five store services and the desk.
inline std::vector<std::string> service_processes() {
  std::vector<std::string> names;
  for (const ServiceSpec& s : service_specs()) {
    if (s.store_service || s.kind == ServiceKind::kLogisticsDesk) names.emplace_back(s.name);
  }
  return names;
}

inline double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

inline std::string fixed(double value, int decimals) {
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

inline std::string base64_decode(std::string_view text) {
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

  ChaosResult run();

 private:
  // Proof that the caller holds record_.mutex: what touches the record takes it.
  using Held = std::unique_lock<std::mutex>;
  void require_held(const Held& held) const {
    EVENTMART_REQUIRE(held.owns_lock() && held.mutex() == &record_.mutex);
  }

  struct Service {
    std::string name;
    std::unique_ptr<FaultProxy> proxy;
    std::unique_ptr<ChildProcess> process;
    bool down = false;    // killed, waiting for its restart
    bool paused = false;  // SIGSTOP
  };

  void log(const std::string& what) { logger_.log(LogLevel::kInfo, "chaos", what); }

  // The broker, the services behind their proxies, the observer and the scanners.
  void setup();
  void setup_services();  // their proxies and processes, not started
  void setup_clients();   // the observer (subscribed first) and the scanners, connected
  void record_store();    // the store as it opens, in the history

  void wait_for(const std::string& what, std::chrono::seconds limit,
                const std::function<bool()>& done);

  void observed(const Held& held, const std::string& topic, const std::string& what);

  void subscribe_observer();

  void on_dead_letter(const std::string& topic, std::string_view bytes);

  double now_s() const { return seconds_since(workload_start_); }
  std::int64_t now_us() const { return static_cast<std::int64_t>(now_s() * 1e6); }

  // A reading is published until the broker confirms it, as a device would.
  void publish_reading(const std::string& topic, std::string text);

  struct PendingDeparture {
    double at_s;
    std::int64_t visit;
    CustomerId customer;
    bool operator>(const PendingDeparture& o) const { return at_s > o.at_s; }
  };

  void send_arrival(std::int64_t visit, CustomerId customer);

  void send_departure(const PendingDeparture& p);

  void drive();

  Service& service(const std::string& name);

  void begin_fault(const ScheduledFault& f);

  void end_fault(const ScheduledFault& f);

  void restart_broker();

  // A service process that exited on its own is a finding (its log says why); it is started
  // again, as its supervisor would.
  void check_processes();
  // Reads Inventory Intel's records from its database every 250 ms into the history's stock
  // readings: what stock_never_negative checks, as the records really are.
  void sample_stock();

  void heal_all();

  // Quiescent: every departure paid (or dead-lettered), every service online, and nothing
  // on the bus for 3 s. Bounded by settle_s.
  void settle();

  // Inventory Intel's inbox holds every departure, Hello Helper's every arrival.
  bool consumers_caught_up();

  // Every service's outbox empty, read while it runs (WAL: a reader does not block it).
  bool outboxes_empty();

  void teardown();

  void check();

  // The simulator reads Inventory Intel's record after every commit; a live run cannot, so
  // the level (stock - shortfall, what the restock policy watches) after each commit is
  // rebuilt from the order in which the inventory consumed its events (its inbox, by time of
  // consumption): a sale takes its basket, a delivery adds its units, into the history's
  // levels_by_commit, for the crossings only. What stock_never_negative reads are the real
  // records (sampled while running, and at the end). REQUIRES: record_.mutex held (`held`,
  // checked).
  void replay_consumption(const Held& held, Database& db, sim::History& h);

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
  SteadyClock::time_point last_stock_sample_ = {};
  bool settled_ = false;
};

}  // namespace eventmart::chaos::detail
