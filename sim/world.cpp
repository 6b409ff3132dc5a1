#include "sim/world.h"

#include <memory>
#include <stdexcept>

#include "core/codec.h"
#include "core/log.h"
#include "services/fastlane_finale.h"
#include "services/guardians.h"
#include "services/hello_helper.h"
#include "services/inventory_intel.h"
#include "sim/logistics.h"
#include "sim/scheduler.h"
#include "sim/trace.h"
#include "transports/memory/memory_broker.h"

namespace eventmart::sim {

std::string validate(const SimOptions& o) {
  if (o.customers < 0) return "--customers must be >= 0 (got " + std::to_string(o.customers) + ")";
  if (o.customers > 10'000'000) return "--customers must be <= 10000000";
  if (o.products < 1) return "--products must be >= 1 (got " + std::to_string(o.products) + ")";
  if (o.products > 1'000'000) return "--products must be <= 1000000";
  if (o.open_duration_us < kMinuteUs || o.open_duration_us > 7 * 24 * kHourUs) {
    return "--hours must be between 1/60 and 168";
  }
  if (o.latency_us < 0) return "latency must be >= 0";
  if (!is_valid_topic_level(o.chain)) return "chain name must be one topic level";
  if (!is_valid_topic_level(o.store)) return "store name must be one topic level";
  return {};
}

namespace {

constexpr std::uint8_t kStoreBus = 0;
constexpr std::uint8_t kLogisticsBus = 1;

class CountingDisplay final : public Display {
 public:
  void show(CustomerId, std::string_view) override { ++shown; }
  std::int64_t shown = 0;
};

class World {
 public:
  explicit World(const SimOptions& options);
  SimResult run();

 private:
  // Folds each broker's steps into the trace and, right after Inventory Intel acknowledged a
  // delivery (its transaction committed), reads the products it touched.
  class Observer final : public memory::TransportObserver {
   public:
    Observer(World& world, std::uint8_t bus) : world_(world), bus_(bus) {}
    void on_published(std::string_view client, const std::string& topic,
                      const Envelope& envelope) override {
      world_.trace_.record(TraceKind::kPublished, bus_, client, topic, envelope.event_id);
    }
    void on_delivered(std::string_view client, const std::string& topic, const Envelope& envelope,
                      bool) override {
      world_.trace_.record(TraceKind::kDelivered, bus_, client, topic, envelope.event_id);
    }
    void on_acknowledged(std::string_view client, const std::string& topic,
                         const Envelope& envelope) override {
      world_.trace_.record(TraceKind::kAcknowledged, bus_, client, topic, envelope.event_id);
      if (client == kInventoryIntel) world_.after_inventory_commit(envelope);
    }
    void on_confirmed(std::string_view client, const std::string& topic,
                      const Envelope& envelope) override {
      world_.trace_.record(TraceKind::kConfirmed, bus_, client, topic, envelope.event_id);
    }
    void on_handler_failed(std::string_view client, const std::string& topic,
                           const Envelope& envelope, std::string_view what) override {
      world_.trace_.record(TraceKind::kHandlerFailed, bus_, client, topic, envelope.event_id);
      world_.logger_.log(LogLevel::kError, client,
                         "handler failed on '" + envelope.event_id + "': " + std::string(what));
    }

   private:
    World& world_;
    std::uint8_t bus_;
  };

  ServiceContext context(memory::MemoryClient& bus, Database& db,
                         memory::MemoryClient* logistics = nullptr) {
    return ServiceContext{bus, logistics, scheduler_, db, topics_, logger_};
  }
  void after_inventory_commit(const Envelope& envelope);
  void read_stock(Sku sku);
  void arrive(const Visit& visit);
  void depart(const Visit& visit);
  void on_departure_seen(const Delivery& delivery);
  void on_payment_seen(const Delivery& delivery);

  SimOptions options_;
  Rng root_;
  Scheduler scheduler_;
  Trace trace_;
  Topics topics_;
  RecordingLogger logger_;
  Observer store_observer_;
  Observer logistics_observer_;
  memory::MemoryBroker store_broker_;
  memory::MemoryBroker logistics_broker_;
  std::vector<Product> catalog_;
  Shelves shelves_;
  History history_;
  CountingDisplay display_;

  Database gateway_db_{":memory:"};
  Database hello_db_{":memory:"};
  Database exit_db_{":memory:"};
  Database inventory_db_{":memory:"};
  Database fastlane_db_{":memory:"};

  std::unique_ptr<memory::MemoryClient> gateway_bus_;
  std::unique_ptr<memory::MemoryClient> hello_bus_;
  std::unique_ptr<memory::MemoryClient> exit_bus_;
  std::unique_ptr<memory::MemoryClient> inventory_bus_;
  std::unique_ptr<memory::MemoryClient> inventory_logistics_bus_;
  std::unique_ptr<memory::MemoryClient> fastlane_bus_;
  std::unique_ptr<memory::MemoryClient> audit_bus_;
  std::unique_ptr<memory::MemoryClient> logistics_bus_;

  std::unique_ptr<GatewayGuardian> gateway_;
  std::unique_ptr<HelloHelper> hello_;
  std::unique_ptr<GateExitGuardian> exit_;
  std::unique_ptr<InventoryIntel> inventory_;
  std::unique_ptr<FastlaneFinale> fastlane_;
  std::unique_ptr<LogisticsModel> logistics_;
  std::unique_ptr<Workload> workload_;
  std::vector<Visit> visits_;
};

World::World(const SimOptions& options)
    : options_(options),
      root_(options.seed),
      scheduler_(kStoreOpensAtUs),
      trace_(scheduler_),
      topics_(options.chain, options.store),
      store_observer_(*this, kStoreBus),
      logistics_observer_(*this, kLogisticsBus),
      store_broker_(scheduler_, {options.latency_us}, &store_observer_),
      logistics_broker_(scheduler_, {options.latency_us}, &logistics_observer_),
      catalog_(make_catalog(options.products, root_.derive("catalog"))) {
  for (const Product& p : catalog_) {
    shelves_[p.sku] = p.stock;
    history_.price_cents[p.sku] = p.price_cents;
    history_.restock_threshold[p.sku] = p.restock_threshold;
  }

  gateway_bus_ = store_broker_.connect(std::string(kGatewayGuardian));
  hello_bus_ = store_broker_.connect(std::string(kHelloHelper));
  exit_bus_ = store_broker_.connect(std::string(kGateExitGuardian));
  inventory_bus_ = store_broker_.connect(std::string(kInventoryIntel));
  fastlane_bus_ = store_broker_.connect(std::string(kFastlaneFinale));
  audit_bus_ = store_broker_.connect("store-audit");
  inventory_logistics_bus_ = logistics_broker_.connect(std::string(kInventoryIntel));
  logistics_bus_ = logistics_broker_.connect("logistics");

  gateway_ = std::make_unique<GatewayGuardian>(context(*gateway_bus_, gateway_db_));
  hello_ = std::make_unique<HelloHelper>(context(*hello_bus_, hello_db_), display_);
  exit_ = std::make_unique<GateExitGuardian>(context(*exit_bus_, exit_db_));
  inventory_ = std::make_unique<InventoryIntel>(
      context(*inventory_bus_, inventory_db_, inventory_logistics_bus_.get()));
  fastlane_ = std::make_unique<FastlaneFinale>(context(*fastlane_bus_, fastlane_db_));
  logistics_ =
      std::make_unique<LogisticsModel>(LogisticsOptions{}, *logistics_bus_, scheduler_, topics_,
                                       root_.derive("logistics"), shelves_, history_, trace_);

  std::vector<CustomerId> loyalty;
  for (const Customer& c : default_store().customers) loyalty.push_back(c.customer_id);
  std::vector<Sku> skus;
  for (const Product& p : catalog_) skus.push_back(p.sku);
  WorkloadOptions workload;
  workload.customers = options.customers;
  workload.opens_at_us = kStoreOpensAtUs;
  workload.closes_at_us = kStoreOpensAtUs + options.open_duration_us;
  workload_ = std::make_unique<Workload>(workload, root_.derive("workload"), std::move(loyalty),
                                         std::move(skus));
}

void World::read_stock(Sku sku) {
  if (auto record = inventory_->store().find(sku)) {
    history_.stock_readings.push_back(
        StockReading{sku, record->stock, record->shortfall, scheduler_.now_us()});
  }
}

void World::after_inventory_commit(const Envelope& envelope) {
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

void World::arrive(const Visit& visit) {
  const std::string scan_id = "entrance-1/" + std::to_string(visit.number);
  trace_.record(TraceKind::kScan, kStoreBus, kGatewayGuardian, visit.card, scan_id);
  gateway_->scan(CardScan{scan_id, visit.card});
  scheduler_.call_at(visit.departs_at_us, [this, &visit] { depart(visit); });
}

void World::depart(const Visit& visit) {
  const std::string scan_id = "exit-1/" + std::to_string(visit.number);
  std::vector<Sku> units = workload_->pick_basket(shelves_);
  DepartureTruth truth{scan_id, visit.customer_id, {}, scheduler_.now_us()};
  std::map<Sku, std::int64_t> carried;
  for (Sku sku : units) ++carried[sku];
  for (const auto& [sku, quantity] : carried) truth.basket.push_back(LineItem{sku, quantity});
  history_.departures.push_back(std::move(truth));
  trace_.record(TraceKind::kScan, kStoreBus, kGateExitGuardian, visit.card, scan_id);
  exit_->scan(BagScan{scan_id, visit.card, std::move(units)});
}

void World::on_departure_seen(const Delivery& delivery) {
  history_.departure_events.push_back(
      ObservedDeparture{delivery.envelope.event_id, delivery.envelope.caused_by});
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
  inventory_->store().seed(catalog_);
  fastlane_->store().seed(catalog_);
  hello_->store().seed(default_store().customers);

  gateway_->start();
  hello_->start();
  exit_->start();
  inventory_->start();
  fastlane_->start();
  logistics_->start();
  audit_bus_->subscribe(topics_.customer_departure,
                        [this](const Delivery& d) { on_departure_seen(d); });
  audit_bus_->subscribe(topics_.payment_due, [this](const Delivery& d) { on_payment_seen(d); });
  for (const Product& p : catalog_) read_stock(p.sku);

  visits_ = workload_->plan_visits();
  for (const Visit& visit : visits_) {
    scheduler_.call_at(visit.arrives_at_us, [this, &visit] { arrive(visit); });
  }

  const std::int64_t deadline =
      kStoreOpensAtUs + options_.open_duration_us + options_.settle_limit_us;
  history_.quiescent = scheduler_.drain(deadline);

  for (auto& [sku, record] : inventory_->store().all()) {
    history_.final_stock[sku] = FinalStock{record.stock, record.shortfall};
  }
  history_.final_shelves = shelves_;

  SimResult result;
  result.options = options_;
  SimStats& s = result.stats;
  s.customers = static_cast<std::int64_t>(visits_.size());
  s.arrivals = static_cast<std::int64_t>(gateway_->stats().consumed);
  s.welcomes_shown = display_.shown;
  s.unknown_cards = static_cast<std::int64_t>(hello_->unknown_customers());
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
  for (const Service* service : std::initializer_list<const Service*>{
           gateway_.get(), hello_.get(), exit_.get(), inventory_.get(), fastlane_.get()}) {
    s.duplicates_detected += static_cast<std::int64_t>(service->stats().duplicates);
    s.rejected_events += static_cast<std::int64_t>(service->stats().rejected);
  }
  s.handler_failures = static_cast<std::int64_t>(store_broker_.stats().handler_failures +
                                                 logistics_broker_.stats().handler_failures);
  s.scheduler_steps = static_cast<std::int64_t>(scheduler_.steps());
  s.virtual_us = scheduler_.now_us() - kStoreOpensAtUs;
  s.trace_entries = static_cast<std::int64_t>(trace_.entries());
  result.trace_hash = trace_.hash();
  for (const auto& entry : logger_.entries()) {
    result.warnings.push_back(entry.source + ": " + entry.message);
  }
  result.history = std::move(history_);
  return result;
}

}  // namespace

SimResult run_simulation(const SimOptions& options) {
  if (std::string error = validate(options); !error.empty()) throw std::invalid_argument(error);
  World world(options);
  return world.run();
}

}  // namespace eventmart::sim
