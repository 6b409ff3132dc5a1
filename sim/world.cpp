#include "sim/world.h"

#include <memory>
#include <stdexcept>

#include "core/codec.h"
#include "core/log.h"
#include "services/fastlane_finale.h"
#include "services/guardians.h"
#include "services/hello_helper.h"
#include "services/inventory_intel.h"
#include "services/registry.h"
#include "services/scan_logic.h"
#include "sim/logistics.h"
#include "sim/scheduler.h"
#include "transports/memory/memory_broker.h"

namespace eventmart::sim {

OptionCheck validate(const SimOptions& o) {
  const auto error = [](SimOption option, std::string problem) -> OptionCheck {
    return OptionError{option, std::move(problem)};
  };
  if (o.customers < 0 || o.customers > 10'000'000) {
    return error(SimOption::kCustomers,
                 "must be 0..10000000 (got " + std::to_string(o.customers) + ")");
  }
  if (o.products < 1 || o.products > 1'000'000) {
    return error(SimOption::kProducts,
                 "must be 1..1000000 (got " + std::to_string(o.products) + ")");
  }
  if (o.open_duration_us < kMinuteUs || o.open_duration_us > 7 * 24 * kHourUs) {
    return error(SimOption::kOpenDuration, "must be between one minute and 168 hours");
  }
  if (o.latency_us < 0) return error(SimOption::kLatency, "must be >= 0");
  if (!is_valid_topic_level(o.chain)) return error(SimOption::kChain, "must be one topic level");
  if (!is_valid_topic_level(o.store)) return error(SimOption::kStore, "must be one topic level");
  if (o.scenario) {
    if (o.scenario->products.empty()) {
      return error(SimOption::kScenario, "needs at least one product");
    }
    for (const Product& p : o.scenario->products) {
      if (std::string why = validate_product(p); !why.empty()) {
        return error(SimOption::kScenario, "has an unsound product: " + why);
      }
    }
  }
  return validate(o.faults);
}

SimOptions with_swarm_faults(SimOptions options) {
  options.faults = draw_swarm_faults(Rng(options.seed).derive("swarm"));
  return options;
}

namespace {

constexpr std::int64_t kDeviceRetryUs = 2 * kSecondUs;  // a scanner resends an unanswered scan

class CountingDisplay final : public Display {
 public:
  void show(CustomerId, std::string_view) override { ++shown; }
  std::int64_t shown = 0;
};

// One service process: its database (kept across crashes), its connections and the running
// service (gone while the process is down), built by the registry like `serve` builds it.
struct ServiceSlot {
  ServiceKind kind;
  std::string name;
  std::unique_ptr<Database> db = std::make_unique<Database>(":memory:");
  std::unique_ptr<memory::MemoryClient> bus;
  std::unique_ptr<memory::MemoryClient> logistics_bus;
  std::optional<BuiltService> built;  // the service and the bus views it sees (a bug may wrap them)
  Service* service() const { return built ? built->service.get() : nullptr; }
};

class World final : public FaultInjector::Host, public CrashPoints {
 public:
  World(const SimOptions& options, std::function<void(const TraceEntry&)> trace_listener);
  SimResult run();

  // FaultInjector::Host
  void crash_service(const std::string& service, std::int64_t down_us) override;
  // CrashPoints: observes Inventory Intel's commits, then lets the injector crash anything.
  void reached(std::string_view service, CrashSite site) override;

 private:
  class Observer final : public memory::TransportObserver {
   public:
    Observer(World& world, BusId bus) : world_(world), bus_(bus) {}
    void on_published(std::string_view client, const std::string& topic,
                      const Envelope& envelope) override {
      world_.trace_.record(TraceKind::kPublished, bus_, client, topic, envelope.event_id);
    }
    void on_delivered(std::string_view client, const std::string& topic, const Envelope& envelope,
                      bool) override {
      world_.trace_.record(TraceKind::kDelivered, bus_, client, topic, envelope.event_id);
      if (client == kInventoryIntel) world_.inventory_delivery_ = &envelope;
    }
    void on_acknowledged(std::string_view client, const std::string& topic,
                         const Envelope& envelope) override {
      world_.trace_.record(TraceKind::kAcknowledged, bus_, client, topic, envelope.event_id);
    }
    void on_confirmed(std::string_view client, const std::string& topic,
                      const Envelope& envelope) override {
      world_.trace_.record(TraceKind::kConfirmed, bus_, client, topic, envelope.event_id);
    }
    void on_handler_failed(std::string_view client, const std::string& topic,
                           const Envelope& envelope, std::string_view what) override {
      world_.trace_.record(TraceKind::kHandlerFailed, bus_, client, topic, envelope.event_id);
      if (world_.injector_.is_down(client)) return;  // a simulated crash, not a bug
      ++world_.handler_failures_;
      world_.logger_.log(LogLevel::kError, client,
                         "handler failed on '" + envelope.event_id + "': " + std::string(what));
    }

   private:
    World& world_;
    BusId bus_;
  };

  void start_service(ServiceSlot& slot);
  // The run's result once it is over: statistics, trace hash, warnings, history.
  SimResult result_of_run();
  void read_stock(Sku sku);
  void read_stock_touched_by(const Envelope& envelope);
  void scan_arrival(const Visit& visit);
  void depart(const Visit& visit);
  // Scenario runs: the visitor's wanted basket, as far as the shelves hold it.
  std::vector<Sku> take_wanted(std::size_t visit);
  void scan_departure(const Visit& visit, std::shared_ptr<const std::vector<Sku>> units,
                      std::size_t truth);
  void on_payment_seen(const Delivery& delivery);
  ServiceSlot& slot(std::string_view name);

  SimOptions options_;
  Rng root_;
  Scheduler scheduler_;
  Trace trace_;
  Topics topics_;
  RecordingLogger logger_;
  FaultInjector injector_;
  Observer store_observer_;
  Observer logistics_observer_;
  memory::MemoryBroker store_broker_;
  memory::MemoryBroker logistics_broker_;
  std::vector<Product> catalog_;
  StoreData store_data_;  // what the services' databases are seeded with
  Shelves shelves_;
  History history_;
  CountingDisplay display_;
  std::vector<ServiceSlot> slots_;
  std::unique_ptr<memory::MemoryClient> audit_bus_;
  std::unique_ptr<memory::MemoryClient> logistics_bus_;
  std::unique_ptr<LogisticsModel> logistics_;
  std::unique_ptr<Workload> workload_;
  std::vector<Visit> visits_;
  std::vector<std::vector<LineItem>> wanted_;     // scenario runs: what each visitor wants
  const Envelope* inventory_delivery_ = nullptr;  // the delivery Inventory Intel is handling
  std::int64_t handler_failures_ = 0;
  std::int64_t restarts_ = 0;
  std::int64_t arrivals_ = 0;   // entrance scans accepted (first time) by Gateway Guardian
  ServiceStats crashed_stats_;  // duplicates and rejections counted by crashed service objects
  std::uint64_t crashed_unknown_customers_ = 0;
};

std::vector<std::string> service_names() {
  std::vector<std::string> names;
  for (ServiceKind kind : store_service_kinds()) names.emplace_back(service_name(kind));
  return names;
}

World::World(const SimOptions& options, std::function<void(const TraceEntry&)> trace_listener)
    : options_(options),
      root_(options.seed),
      scheduler_(kStoreOpensAtUs),
      trace_(scheduler_),
      topics_(options.chain, options.store),
      injector_(options.faults, root_.derive("faults"), scheduler_, trace_, *this, service_names(),
                options.scenario.get()),
      store_observer_(*this, BusId::kStore),
      logistics_observer_(*this, BusId::kLogistics),
      store_broker_(scheduler_, {options.latency_us}, &store_observer_,
                    &injector_.network(BusId::kStore)),
      logistics_broker_(scheduler_, {options.latency_us}, &logistics_observer_,
                        &injector_.network(BusId::kLogistics)),
      catalog_(options.scenario ? options.scenario->products
                                : make_catalog(options.products, root_.derive("catalog"))) {
  if (options_.scenario) {
    options_.open_duration_us = options_.scenario->open_duration_us();
    options_.faults.qos = options_.scenario->qos;
  }
  trace_.set_listener(std::move(trace_listener));
  history_.at_most_once = options_.faults.qos == Qos::kAtMostOnce;
  for (const Product& p : catalog_) {
    shelves_[p.sku] = p.stock;
    history_.price_cents[p.sku] = p.price_cents;
    history_.restock_threshold[p.sku] = p.restock_threshold;
  }
  store_data_ = StoreData{catalog_, default_store().customers};
  for (ServiceKind kind : store_service_kinds()) {
    ServiceSlot& slot = slots_.emplace_back();
    slot.kind = kind;
    slot.name = std::string(service_name(kind));
  }

  audit_bus_ = store_broker_.connect("store-audit");
  logistics_bus_ = logistics_broker_.connect("logistics");
  logistics_ = std::make_unique<LogisticsModel>(
      LogisticsOptions{}, *logistics_bus_, scheduler_, topics_, options.faults.qos,
      root_.derive("logistics"), shelves_, history_, trace_);
  std::vector<CustomerId> loyalty;
  for (const Customer& c : default_store().customers) loyalty.push_back(c.customer_id);
  std::vector<Sku> skus;
  for (const Product& p : catalog_) skus.push_back(p.sku);
  WorkloadOptions workload;
  workload.customers = options.customers;
  workload.opens_at_us = kStoreOpensAtUs;
  workload.closes_at_us = kStoreOpensAtUs + options_.open_duration_us;
  workload_ = std::make_unique<Workload>(workload, root_.derive("workload"), std::move(loyalty),
                                         std::move(skus));
}

ServiceSlot& World::slot(std::string_view name) {
  for (ServiceSlot& s : slots_) {
    if (s.name == name) return s;
  }
  throw std::logic_error("no service " + std::string(name));
}

SimResult World::result_of_run() {
  SimResult result;
  result.options = options_;
  SimStats& s = result.stats;
  s.customers = static_cast<std::int64_t>(visits_.size());
  s.welcomes_shown = display_.shown;
  ServiceStats totals = crashed_stats_;
  for (const ServiceSlot& slot : slots_) {
    if (slot.service() == nullptr) continue;
    totals.duplicates += slot.service()->stats().duplicates;
    totals.rejected += slot.service()->stats().rejected;
  }
  s.arrivals = arrivals_;
  s.unknown_cards = static_cast<std::int64_t>(crashed_unknown_customers_);
  if (auto* hello = dynamic_cast<HelloHelper*>(slot(kHelloHelper).service())) {
    s.unknown_cards += static_cast<std::int64_t>(hello->unknown_customers());
  }
  s.departures = static_cast<std::int64_t>(history_.departures.size());
  std::map<std::string, std::int64_t> payments;  // distinct by event id
  for (const ObservedPayment& p : history_.payments) payments.emplace(p.event_id, p.total_cents);
  s.payments = static_cast<std::int64_t>(payments.size());
  for (const auto& [id, cents] : payments) s.revenue_cents += cents;
  for (const DepartureTruth& d : history_.departures) {
    for (const LineItem& item : d.basket) s.units_sold += item.quantity;
  }
  s.restocks_requested = static_cast<std::int64_t>(logistics_->requested());
  s.restocks_delivered = static_cast<std::int64_t>(logistics_->delivered());
  s.deliveries = static_cast<std::int64_t>(store_broker_.stats().delivered +
                                           logistics_broker_.stats().delivered);
  s.publishes = static_cast<std::int64_t>(store_broker_.stats().published +
                                          logistics_broker_.stats().published);
  s.duplicates_detected = static_cast<std::int64_t>(totals.duplicates);
  s.rejected_events = static_cast<std::int64_t>(totals.rejected);
  s.handler_failures = handler_failures_;
  s.scheduler_steps = static_cast<std::int64_t>(scheduler_.steps());
  s.virtual_us = scheduler_.now_us() - kStoreOpensAtUs;
  s.trace_entries = static_cast<std::int64_t>(trace_.entries());
  s.redelivered_after_loss =
      static_cast<std::int64_t>(store_broker_.stats().redelivered_after_loss +
                                logistics_broker_.stats().redelivered_after_loss);
  s.crash_recoveries = restarts_;
  s.faults = injector_.counts();
  result.trace_hash = trace_.hash();
  for (const auto& entry : logger_.entries()) {
    result.warnings.push_back(entry.source + ": " + entry.message);
  }
  result.history = std::move(history_);
  return result;
}

void World::start_service(ServiceSlot& s) {
  s.bus = store_broker_.connect(s.name);
  if (spec_of(s.kind).uses_logistics_bus) s.logistics_bus = logistics_broker_.connect(s.name);
  ServiceInputs inputs{ServiceContext{*s.bus, s.logistics_bus.get(), scheduler_, *s.db, topics_,
                                      logger_, options_.faults.qos, this}};
  inputs.store_data = &store_data_;
  inputs.display = &display_;
  inputs.variant = variant_of(options_.bug);
  s.built.emplace(build_service(s.kind, inputs));
  s.built->service->start();
}

void World::crash_service(const std::string& name, std::int64_t down_us) {
  ServiceSlot& s = slot(name);
  // The process is gone: service object, its in-memory state and its connections. Its
  // database stays (uncommitted work was already rolled back).
  const ServiceStats& stats = s.service()->stats();
  crashed_stats_.duplicates += stats.duplicates;
  crashed_stats_.rejected += stats.rejected;
  if (auto* hello = dynamic_cast<HelloHelper*>(s.service())) {
    crashed_unknown_customers_ += hello->unknown_customers();
  }
  s.built.reset();
  s.bus.reset();
  s.logistics_bus.reset();
  scheduler_.call_after(down_us, [this, name] {
    start_service(slot(name));
    ++restarts_;
    injector_.restarted(name);
  });
}

void World::reached(std::string_view service, CrashSite site) {
  // Right after Inventory Intel commits: read what the transaction touched, before any
  // crash can hide it.
  if (site == CrashSite::kAfterCommit && service == kInventoryIntel &&
      inventory_delivery_ != nullptr) {
    read_stock_touched_by(*inventory_delivery_);
  }
  injector_.reached(service, site);
}

void World::read_stock(Sku sku) {
  auto* inventory = static_cast<InventoryIntel*>(slot(kInventoryIntel).service());
  if (inventory == nullptr) return;
  if (auto record = inventory->store().find(sku)) {
    history_.stock_readings.push_back(
        StockReading{sku, record->stock, record->shortfall, scheduler_.now_us()});
  }
}

void World::read_stock_touched_by(const Envelope& envelope) {
  if (envelope.type == EventType::kCustomerDeparted) {
    if (auto departed = decode_customer_departed(envelope.payload)) {
      for (const LineItem& item : departed.value().items) read_stock(item.sku);
    }
  } else if (envelope.type == EventType::kStockReplenished) {
    if (auto replenished = decode_stock_replenished(envelope.payload)) {
      read_stock(replenished.value().sku);
    }
  }
}

void World::scan_arrival(const Visit& visit) {
  const std::string scan_id = "entrance-1/" + std::to_string(visit.number);
  auto* gateway = static_cast<GatewayGuardian*>(slot(kGatewayGuardian).service());
  trace_.record(TraceKind::kScan, BusId::kStore, kGatewayGuardian, visit.card, scan_id);
  try {
    if (gateway != nullptr && !injector_.is_down(kGatewayGuardian)) {
      // Accepted now, or earlier by a life of the guardian that crashed before answering.
      if (gateway->scan(CardScan{scan_id, visit.card}).kind != ScanOutcome::Kind::kRejected) {
        ++arrivals_;
      }
      return;
    }
  } catch (const SimulatedCrash&) {
  }
  // No answer from the guardian: the scanner sends the same reading again.
  scheduler_.call_after(kDeviceRetryUs, [this, &visit] { scan_arrival(visit); });
}

void World::depart(const Visit& visit) {
  const std::string scan_id = "exit-1/" + std::to_string(visit.number);
  auto units = std::make_shared<const std::vector<Sku>>(
      options_.scenario ? take_wanted(static_cast<std::size_t>(visit.number - 1))
                        : workload_->pick_basket(shelves_));
  // The event id is what the guardian answers the scanner with: filled in by scan_departure.
  DepartureTruth truth{scan_id, visit.customer_id, {}, scheduler_.now_us(), {}};
  std::map<Sku, std::int64_t> carried;
  for (Sku sku : *units) ++carried[sku];
  for (const auto& [sku, quantity] : carried) truth.basket.push_back(LineItem{sku, quantity});
  history_.departures.push_back(std::move(truth));
  scan_departure(visit, std::move(units), history_.departures.size() - 1);
}

std::vector<Sku> World::take_wanted(std::size_t visit) {
  std::vector<Sku> units;
  for (const LineItem& item : wanted_.at(visit)) {
    std::int64_t& on_shelf = shelves_[item.sku];
    const std::int64_t taken = std::min(item.quantity, on_shelf);
    on_shelf -= taken;
    units.insert(units.end(), static_cast<std::size_t>(taken), item.sku);
  }
  return units;
}

void World::scan_departure(const Visit& visit, std::shared_ptr<const std::vector<Sku>> units,
                           std::size_t truth) {
  const std::string scan_id = "exit-1/" + std::to_string(visit.number);
  auto* gate = static_cast<GateExitGuardian*>(slot(kGateExitGuardian).service());
  trace_.record(TraceKind::kScan, BusId::kStore, kGateExitGuardian, visit.card, scan_id);
  try {
    if (gate != nullptr && !injector_.is_down(kGateExitGuardian)) {
      const ScanOutcome outcome = gate->scan(BagScan{scan_id, visit.card, lines_of_units(*units)});
      history_.departures[truth].event_id = outcome.event_id;  // what the scanner was told
      return;
    }
  } catch (const SimulatedCrash&) {
  }
  scheduler_.call_after(kDeviceRetryUs,
                        [this, &visit, units, truth] { scan_departure(visit, units, truth); });
}

void World::on_payment_seen(const Delivery& delivery) {
  auto due = decode_payment_due(delivery.envelope.payload);
  if (!due) {
    logger_.log(LogLevel::kError, "store-audit", "undecodable payment: " + due.error());
    return;
  }
  history_.payments.push_back(
      ObservedPayment{delivery.envelope.event_id, due.value().departure_event_id,
                      due.value().customer_id, due.value().total_cents, scheduler_.now_us()});
}

SimResult World::run() {
  for (ServiceSlot& s : slots_) start_service(s);
  logistics_->start();
  audit_bus_->subscribe(topics_.payment_due, [this](const Delivery& d) { on_payment_seen(d); });
  for (const Product& p : catalog_) read_stock(p.sku);

  if (options_.scenario) {
    for (const ScenarioVisit& v : options_.scenario->visits) {
      Visit visit;
      visit.number = static_cast<std::int64_t>(visits_.size()) + 1;
      visit.customer_id = v.customer_id;
      visit.card = std::to_string(v.customer_id);
      visit.arrives_at_us = kStoreOpensAtUs + v.arrives_at_us;
      visit.departs_at_us = visit.arrives_at_us + v.shopping_us;
      visits_.push_back(std::move(visit));
      wanted_.push_back(v.wanted);
    }
  } else {
    visits_ = workload_->plan_visits();
  }
  for (const Visit& visit : visits_) {
    scheduler_.call_at(visit.arrives_at_us, [this, &visit] {
      scan_arrival(visit);
      scheduler_.call_at(visit.departs_at_us, [this, &visit] { depart(visit); });
    });
  }

  // Phases: chaos while the store is open, heal at closing, then run until quiescent.
  const std::int64_t closes_at = kStoreOpensAtUs + options_.open_duration_us;
  injector_.start();
  scheduler_.call_at(closes_at, [this] { injector_.heal(); });
  history_.quiescent = scheduler_.drain(closes_at + options_.settle_limit_us);

  auto* inventory = static_cast<InventoryIntel*>(slot(kInventoryIntel).service());
  if (inventory != nullptr) {
    for (auto& [sku, record] : inventory->store().all()) {
      history_.final_stock[sku] = FinalStock{record.stock, record.shortfall};
    }
  }
  history_.final_shelves = shelves_;

  return result_of_run();
}

}  // namespace

SimResult run_simulation(const SimOptions& options,
                         std::function<void(const TraceEntry&)> trace_listener) {
  if (const OptionCheck error = validate(options)) throw std::invalid_argument(error->describe());
  World world(options, std::move(trace_listener));
  return world.run();
}

}  // namespace eventmart::sim
