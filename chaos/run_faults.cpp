// A chaos run's faults: each scheduled fault begun and ended, processes watched, everything healed.
#include "chaos/run.h"

namespace eventmart::chaos::detail {

Run::Service& Run::service(const std::string& name) {
  for (Service& s : services_) {
    if (s.name == name) return s;
  }
  throw std::logic_error("no service " + name);
}

void Run::begin_fault(const ScheduledFault& f) {
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

void Run::end_fault(const ScheduledFault& f) {
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

void Run::restart_broker() {
  if (!broker_down_) return;
  broker_->start();  // same port and persistence (another port only if it was taken)
  broker_port_ = broker_->port();
  broker_down_ = false;
}

void Run::check_processes() {
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
  sample_stock();
}

void Run::sample_stock() {
  const auto now = SteadyClock::now();
  if (now - last_stock_sample_ < std::chrono::milliseconds(250)) return;
  last_stock_sample_ = now;
  const auto path =
      out_ / "data" / (std::string(service_name(ServiceKind::kInventoryIntel)) + ".sqlite");
  if (!std::filesystem::exists(path)) return;
  std::vector<sim::StockReading> readings;
  try {
    // A reader beside the service (WAL): the records as they are, never rebuilt.
    Database db(path.string(), Durability::kFull);
    Statement rows = db.prepare("SELECT sku, stock, shortfall FROM products ORDER BY sku");
    while (rows.step()) {
      readings.push_back(sim::StockReading{static_cast<Sku>(rows.column_int64(0)),
                                           rows.column_int64(1), rows.column_int64(2), now_us(),
                                           "sampled"});
    }
  } catch (const std::exception&) {
    return;  // busy, or mid-restart: the next sample
  }
  std::unique_lock lock(record_.mutex);
  auto& into = record_.history.stock_readings;
  into.insert(into.end(), readings.begin(), readings.end());
}

void Run::heal_all() {
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

}  // namespace eventmart::chaos::detail
