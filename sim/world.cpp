#include "sim/world.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "core/assert.h"
#include "core/codec.h"
#include "core/log.h"
#include "core/wire.h"
#include "services/fastlane_finale.h"
#include "services/guardians.h"
#include "services/hello_helper.h"
#include "services/inventory_intel.h"
#include "services/registry.h"
#include "services/scan_logic.h"
#include "sim/disk.h"
#include "sim/knobs.h"
#include "sim/logistics.h"
#include "sim/scheduler.h"
#include "sim/wire_bus.h"
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
      if (Status valid = validate_product(p); !valid) {
        return error(SimOption::kScenario, "has an unsound product: " + valid.error());
      }
    }
  }
  if (Status valid = o.shape.validate(); !valid)
    return error(SimOption::kWorkloadShape, valid.error());
  if (OptionCheck knobs = validate(o.knobs)) return knobs;
  if (auto why = check_splits(o.splits)) return error(SimOption::kRecipe, *why);
  if (o.scenario &&
      std::any_of(o.splits.begin(), o.splits.end(), [](const Splitpoint& s) { return s.storm; })) {
    // A scenario's faults are its schedule: there is no mix for a storm to raise.
    return error(SimOption::kRecipe, "a storm child (CHILD+) cannot split a scripted scenario");
  }
  if (o.brancher != nullptr && !o.native_folder.empty()) {
    // A fork copies the world; a real file open in it would be shared by every copy.
    return error(SimOption::kRecipe, "cannot be explored with the databases on real files");
  }
  return validate(o.faults);
}

SimOptions with_swarm(SimOptions options) {
  // Full (the production default) three times in four.
  options.durability = Rng(options.seed).derive("swarm-durability").chance(0.75)
                           ? Durability::kFull
                           : Durability::kNormal;
  options.faults = draw_swarm_faults(Rng(options.seed).derive("swarm"), options.durability);
  options.shape = draw_swarm_shape(Rng(options.seed).derive("swarm-shape"));
  options.knobs = draw_knobs(Rng(options.seed).derive("swarm-knobs"), options.shape);
  return options;
}

namespace {

constexpr std::int64_t kDeviceRetryUs = 2 * kSecondUs;  // a scanner resends an unanswered scan
constexpr std::int64_t kRescanUs = 3 * kSecondUs;       // a customer scans a misread card again
constexpr std::string_view kMisreadCard = "#misread#";  // what a reader makes of a bad swipe

// One service process: its database (kept across crashes), its connections and the running
// service (gone while the process is down), built by the registry like `serve` builds it.
struct ServiceSlot {
  ServiceKind kind;
  std::string name;
  std::unique_ptr<Database> db;  // on the world's simulated disk; reopened after a power loss
  std::unique_ptr<memory::MemoryClient> bus;
  std::unique_ptr<memory::MemoryClient> logistics_bus;
  // The buses as the service sees them: through the codecs with the `wire` knob.
  std::unique_ptr<Bus> wire_bus;
  std::unique_ptr<Bus> wire_logistics_bus;
  std::optional<BuiltService> built;  // the service and the bus views it sees (a bug may wrap them)
  TimerId retry_start = 0;            // a start that failed: the next try
  Service* service() const { return built ? built->service.get() : nullptr; }
};

class World final : public FaultInjector::Host, public CrashPoints {
 public:
  World(const SimOptions& options, std::function<void(const TraceEntry&)> trace_listener);
  SimResult run();

  // FaultInjector::Host
  void crash_service(const std::string& service, std::int64_t down_us) override;
  void lose_power(const std::string& service, std::int64_t down_us) override;
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
      world_.storage_faults_at_delivery_ = world_.storage_faults();
      world_.delivered(client, envelope);
    }
    void on_acknowledged(std::string_view client, const std::string& topic,
                         const Envelope& envelope) override {
      world_.trace_.record(TraceKind::kAcknowledged, bus_, client, topic, envelope.event_id);
    }
    void on_confirmed(std::string_view client, const std::string& topic,
                      const Envelope& envelope) override {
      world_.trace_.record(TraceKind::kConfirmed, bus_, client, topic, envelope.event_id);
    }
    void on_publish_failed(std::string_view client, const std::string& topic,
                           const Envelope& envelope) override {
      world_.trace_.record(TraceKind::kPublishFailed, bus_, client, topic, envelope.event_id);
    }
    void on_handler_failed(std::string_view client, const std::string& topic,
                           const Envelope& envelope, std::string_view what) override {
      world_.trace_.record(TraceKind::kHandlerFailed, bus_, client, topic, envelope.event_id);
      if (world_.injector_.is_down(client)) return;  // a simulated crash, not a bug
      if (world_.storage_faults() != world_.storage_faults_at_delivery_) {
        ++world_.storage_failures_;  // an injected I/O error or full disk: rolled back, retried
        return;
      }
      ++world_.handler_failures_;
      world_.logger_.log(LogLevel::kError, client,
                         "handler failed on '" + envelope.event_id + "': " + std::string(what));
    }
    void on_gave_up(std::string_view client, const std::string& topic, const Envelope& envelope,
                    std::string_view reason) override {
      world_.history_.dead_letters.push_back(world_.lost_event(client, envelope, reason));
    }
    void on_lost_to_expiry(std::string_view client, const std::string& topic,
                           const Envelope& envelope) override {
      world_.trace_.record(TraceKind::kLostToExpiry, bus_, client, topic, envelope.event_id);
      world_.history_.expected_losses.push_back(
          world_.lost_event(client, envelope, "the session expired while the client was away"));
    }

   private:
    World& world_;
    BusId bus_;
  };

  // A delivery to `client`: which event it handles now (its commit is recorded as consumed),
  // and whether the service must refuse it as older than its inbox can tell.
  void delivered(std::string_view client, const Envelope& envelope) {
    auto kind = service_kind(client);
    if (!kind || !spec_of(*kind).consumes_store_bus) return;
    auto it = handling_.find(client);
    if (it == handling_.end()) it = handling_.emplace(std::string(client), std::string()).first;
    it->second = envelope.event_id;
    const std::int64_t retention_us = options_.knobs.inbox_retention_s * kSecondUs;
    const std::int64_t age = scheduler_.now_us() - envelope.occurred_at_us;
    if (retention_us > 0 && age > max_event_age_us(retention_us) &&
        too_old_.emplace(std::string(client), envelope.event_id).second) {
      history_.expected_losses.push_back(lost_event(
          client, envelope, "older than the inbox can tell a redelivery: refused, not applied"));
    }
  }
  // Whether `s` consumed `id`: its inbox holds it, or (an inbox forgets ids past its retention)
  // the world saw it commit that long ago.
  bool consumed(ServiceSlot& s, const std::string& id);
  // `bus` as a consumer sees it: through the codecs when the `wire` knob is set.
  std::unique_ptr<Bus> through_wire(Bus& bus) const {
    const auto wire = static_cast<SimWire>(options_.knobs.wire);
    if (wire == SimWire::kNone) return std::make_unique<BusWrapper>(bus);
    return std::make_unique<WireBus>(
        bus, wire == SimWire::kJson ? WireFormat::kJson : WireFormat::kCapnp, topics_,
        options_.knobs.limits());
  }

  // An event a service never consumed, with the units it would have moved.
  DeadLetter lost_event(std::string_view client, const Envelope& envelope,
                        std::string_view reason) const {
    DeadLetter lost{std::string(client),
                    envelope.event_id,
                    envelope.type,
                    std::string(reason),
                    scheduler_.now_us(),
                    {},
                    false};
    if (envelope.type == EventType::kCustomerDeparted) {
      if (auto departed = decode_customer_departed(envelope.payload)) {
        lost.items = departed.value().items;
      }
    } else if (envelope.type == EventType::kStockReplenished) {
      if (auto replenished = decode_stock_replenished(envelope.payload)) {
        lost.items.push_back(LineItem{replenished.value().sku, replenished.value().quantity});
      }
    }
    return lost;
  }
  memory::MemoryBrokerOptions broker_options() const {
    memory::MemoryBrokerOptions o;
    o.latency_us = options_.latency_us;
    o.session_expiry_us = options_.knobs.session_expiry_s * kSecondUs;
    o.route_cache_topics = static_cast<std::size_t>(options_.knobs.route_cache_topics);
    o.sweeps_per_interval = options_.knobs.sweeps_per_interval;
    return o;
  }

  // The simulated disk (sim/disk.h) costs about a third of a run's speed, so a run uses it
  // only when a fault needs it: a storage fault (or a bug that only storage faults show).
  bool uses_disk() const {
    return options_.faults.any_storage() || options_.on_disk || !options_.native_folder.empty();
  }
  // Benchmarks: the run's own folder under SimOptions::native_folder, removed when it ends.
  class NativeFolder {
   public:
    explicit NativeFolder(const std::string& parent) {
      if (parent.empty()) return;
      static std::atomic<std::uint64_t> next{1};
      path_ = std::filesystem::path(parent) / ("run-" + std::to_string(next++));
      std::filesystem::remove_all(path_);
      std::filesystem::create_directories(path_);
    }
    ~NativeFolder() {
      std::error_code ignored;
      if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
    }
    NativeFolder(const NativeFolder&) = delete;
    NativeFolder& operator=(const NativeFolder&) = delete;
    const std::filesystem::path& path() const { return path_; }

   private:
    std::filesystem::path path_;
  };
  std::string native_path(const std::string& name) const {
    return (native_.path() / (name + ".db")).string();
  }
  // Storage faults injected so far (a handler failure after one is no bug).
  std::int64_t storage_faults() const {
    return injector_.counts().io_errors + injector_.counts().disk_full_refusals;
  }
  // Reading a service's database for the history (never subject to faults).
  template <typename Read>
  auto observe(Read&& read) {
    injector_.suspend_storage_faults(true);
    struct Resume {
      FaultInjector& injector;
      ~Resume() { injector.suspend_storage_faults(false); }
    } resume{injector_};
    return read();
  }
  void open_database(ServiceSlot& slot);
  // Starts the service's process; false when a storage fault made it fail (it tries again).
  bool start_service(ServiceSlot& slot);
  // The run's result once it is over: statistics, trace hash, warnings, history.
  SimResult result_of_run();
  // Records the product's level; `event_id` is the delivery whose commit touched it (or empty).
  void read_stock(Sku sku, std::string_view event_id = {});
  void read_stock_touched_by(const Envelope& envelope);
  void scan_arrival(const Visit& visit, bool misread);
  void record_arrival(const Visit& visit, const std::string& scan_id, const std::string& event_id);
  void depart(const Visit& visit);
  // Scenario runs: the visitor's wanted basket, as far as the shelves hold it.
  std::vector<Sku> take_wanted(std::size_t visit);
  // Which reading the gate makes of a bag: the customer's own, a misread card, or one under a
  // scan id the gate reused from an earlier bag.
  enum class Reading : std::uint8_t { kOwn, kMisread, kReusedId };
  void scan_departure(const Visit& visit, std::shared_ptr<const std::vector<Sku>> units,
                      std::size_t truth, Reading reading, std::string reused_id);
  std::string reusable_scan_id(const DepartureTruth& truth) const;
  void publish_junk(const Visit& visit);
  void on_payment_seen(const Delivery& delivery);
  void on_welcome_seen(const Delivery& delivery);
  ServiceSlot& slot(std::string_view name);
  // A quiet point (sim/recipe.h): the recipe's next split, or the explorer's question.
  static void after_step_of(void* world) { static_cast<World*>(world)->after_step(); }
  void after_step();
  // Reseeds every stream drawn from while the day runs.
  void split(const Splitpoint& at);

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
  std::map<CustomerId, std::string> loyalty_names_;  // who the loyalty database knows
  std::set<std::int64_t> arrival_recorded_;          // visits whose arrival was accepted
  NativeFolder native_;  // benchmarks: the databases on real files (outlives the slots)
  Disk disk_;  // the services' database files (before the slots: it outlives their databases)
  std::vector<ServiceSlot> slots_;
  std::unique_ptr<memory::MemoryClient> audit_bus_;
  std::unique_ptr<Bus> audit_wire_;  // the `wire` knob: the payment terminal reads bytes too
  std::unique_ptr<memory::MemoryClient> display_bus_;  // the entrance display
  std::unique_ptr<memory::MemoryClient> rogue_bus_;    // a misbehaving device (junk)
  Rng shape_rng_{0};  // the shape's draws in the world (only when the shape asks for them)
  std::set<std::string> welcomes_seen_;  // welcome event ids it showed
  std::unique_ptr<memory::MemoryClient> logistics_bus_;
  std::unique_ptr<Bus> logistics_wire_;  // ... and so does logistics
  std::unique_ptr<LogisticsModel> logistics_;
  std::unique_ptr<Workload> workload_;
  std::vector<Visit> visits_;
  std::vector<std::vector<LineItem>> wanted_;     // scenario runs: what each visitor wants
  const Envelope* inventory_delivery_ = nullptr;  // the delivery Inventory Intel is handling
  // The event each consuming service is handling, and when each commit of one was seen (an
  // inbox prunes what the history still asks about).
  std::map<std::string, std::string, std::less<>> handling_;
  std::map<std::string, std::map<std::string, std::int64_t>, std::less<>> applied_;
  std::set<std::pair<std::string, std::string>> too_old_;  // (client, event id) refused as old
  std::int64_t handler_failures_ = 0;
  std::int64_t storage_failures_ = 0;  // handler failures an injected storage fault caused
  std::int64_t storage_faults_at_delivery_ = 0;  // storage_faults() at the latest delivery
  std::int64_t failed_starts_ = 0;               // service starts a storage fault made fail
  std::int64_t restarts_ = 0;
  std::int64_t arrivals_ = 0;   // entrance scans accepted (first time) by Gateway Guardian
  ServiceStats crashed_stats_;  // duplicates and rejections counted by crashed service objects
  std::uint64_t crashed_unknown_customers_ = 0;
  std::size_t next_split_ = 0;     // the recipe's splits taken so far
  std::uint64_t late_storm_ = 0;   // a storm split taken outside the opening hours, 0: none
  std::uint64_t stream_seed_ = 0;  // what the streams were last drawn from
  std::vector<Splitpoint> taken_;  // every split taken: the timeline's recipe
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
      store_broker_(scheduler_, broker_options(), &store_observer_,
                    &injector_.network(BusId::kStore)),
      logistics_broker_(scheduler_, broker_options(), &logistics_observer_,
                        &injector_.network(BusId::kLogistics)),
      catalog_(options.scenario ? options.scenario->products
                                : make_catalog(options.products, root_.derive("catalog"))),
      native_(options.native_folder) {
  if (options_.scenario) {
    options_.open_duration_us = options_.scenario->open_duration_us();
    options_.faults.qos = options_.scenario->qos;
  }
  trace_.set_listener(std::move(trace_listener));
  history_.at_most_once = options_.faults.qos == Qos::kAtMostOnce;
  if (!options_.scenario) shape_catalog(catalog_, options_.shape, root_.derive("shape-catalog"));
  const std::vector<Sku> unpriced =
      unpriced_skus(catalog_, options_.shape, root_.derive("shape-prices"));
  const std::set<Sku> without_price(unpriced.begin(), unpriced.end());
  for (const Product& p : catalog_) {
    shelves_[p.sku] = p.stock;
    if (!without_price.count(p.sku)) history_.price_cents[p.sku] = p.price_cents;
    history_.restock_threshold[p.sku] = p.restock_threshold;
  }
  store_data_ = StoreData{catalog_, default_store().customers, unpriced};
  shape_rng_ = root_.derive("shape-world");
  for (const Customer& c : default_store().customers) loyalty_names_[c.customer_id] = c.name;
  for (ServiceKind kind : store_service_kinds()) {
    ServiceSlot& slot = slots_.emplace_back();
    slot.kind = kind;
    slot.name = std::string(service_name(kind));
    open_database(slot);
  }

  audit_bus_ = store_broker_.connect("store-audit");
  display_bus_ = store_broker_.connect("entrance-display");
  rogue_bus_ = store_broker_.connect("rogue-device");
  logistics_bus_ = logistics_broker_.connect(std::string(kLogisticsClient));
  audit_wire_ = through_wire(*audit_bus_);
  logistics_wire_ = through_wire(*logistics_bus_);
  logistics_ = std::make_unique<LogisticsModel>(
      LogisticsOptions{}, *logistics_wire_, scheduler_, topics_, options.faults.qos,
      root_.derive("logistics"), shelves_, history_, trace_);
  std::vector<CustomerId> loyalty;
  for (const Customer& c : default_store().customers) loyalty.push_back(c.customer_id);
  std::vector<Sku> skus;
  for (const Product& p : catalog_) skus.push_back(p.sku);
  WorkloadOptions workload;
  workload.customers = options.customers;
  workload.opens_at_us = kStoreOpensAtUs;
  workload.closes_at_us = kStoreOpensAtUs + options_.open_duration_us;
  workload.shape = options_.shape;
  workload_ = std::make_unique<Workload>(workload, root_.derive("workload"), std::move(loyalty),
                                         std::move(skus));
  stream_seed_ = options_.seed;
  if (!options_.splits.empty() || options_.brancher != nullptr) {
    scheduler_.set_after_step(&World::after_step_of, this);
  }
}

void World::after_step() {
  const std::uint64_t step = scheduler_.steps();
  if (next_split_ < options_.splits.size()) {
    // The recipe's own splits first: an explorer only extends a timeline.
    if (options_.splits[next_split_].step == step) {
      split(options_.splits[next_split_++]);
      return;
    }
    if (options_.brancher == nullptr || !options_.brancher->within_recipe()) return;
  }
  // Once faults heal every future is the same: no split after closing.
  if (options_.brancher == nullptr || !injector_.chaos()) return;
  const MarkCounts* marks = detail::current_marks();
  EVENTMART_ASSERT(marks != nullptr);  // run_simulation counts every run's marks
  if (auto at = options_.brancher->at_quiet_point(step, scheduler_.now_us(), *marks)) {
    EVENTMART_ASSERT(at->step == step, at->step, step);
    // A future of its own from here: the recipe's later splits are not this timeline's.
    next_split_ = options_.splits.size();
    split(*at);
  }
}

void World::split(const Splitpoint& at) {
  EVENTMART_ASSERT(taken_.empty() || taken_.back().step < at.step, taken_.size(), at.step);
  stream_seed_ = reseeded(stream_seed_, at);
  const Rng streams(stream_seed_);
  injector_.reseed(streams.derive("faults"));
  workload_->reseed(streams.derive("workload"));
  logistics_->reseed(streams.derive("logistics"));
  shape_rng_ = streams.derive("shape-world");
  if (at.storm && injector_.chaos()) {
    injector_.storm(streams.derive("storm"), kStormUs, options_.durability, uses_disk());
  } else if (at.storm && late_storm_ == 0) {
    late_storm_ = at.step;  // refused when the day is over: the explorer never makes one
  }
  taken_.push_back(at);
  trace_.record(TraceKind::kSplit, BusId::kStore, "explorer", "", child_text(at));
}

bool World::consumed(ServiceSlot& s, const std::string& id) {
  Service* service = s.service();
  if (service != nullptr && observe([&] { return service->journal().in_inbox(id); })) {
    return true;
  }
  const std::int64_t retention_us = options_.knobs.inbox_retention_s * kSecondUs;
  auto applied = applied_.find(s.name);
  if (retention_us == 0 || applied == applied_.end()) return false;
  auto at = applied->second.find(id);
  return at != applied->second.end() && at->second < scheduler_.now_us() - retention_us;
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
  result.options.brancher = nullptr;  // the explorer is gone when the result is read
  result.splits = taken_;
  SimStats& s = result.stats;
  s.customers = static_cast<std::int64_t>(visits_.size());
  s.welcomes_shown = static_cast<std::int64_t>(history_.welcomes.size());
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
  s.storage_failures = storage_failures_;
  s.failed_starts = failed_starts_;
  s.dead_letters = static_cast<std::int64_t>(history_.dead_letters.size());
  s.scheduler_steps = static_cast<std::int64_t>(scheduler_.steps());
  s.virtual_us = scheduler_.now_us() - kStoreOpensAtUs;
  s.trace_entries = static_cast<std::int64_t>(trace_.entries());
  s.redelivered_after_loss =
      static_cast<std::int64_t>(store_broker_.stats().redelivered_after_loss +
                                logistics_broker_.stats().redelivered_after_loss);
  s.crash_recoveries = restarts_;
  s.faults = injector_.counts();
  result.outages = injector_.outages();
  result.trace_hash = trace_.hash();
  for (const auto& entry : logger_.entries()) {
    result.warnings.push_back(entry.source + ": " + entry.message);
  }
  result.history = std::move(history_);
  return result;
}

void World::open_database(ServiceSlot& s) {
  if (!uses_disk()) {
    // No storage fault: a private in-memory database (what survives a process crash is what
    // the connection committed, and the connection outlives the crash).
    s.db = std::make_unique<Database>(":memory:");
    return;
  }
  if (!options_.native_folder.empty()) {
    s.db = std::make_unique<Database>(native_path(s.name), options_.durability);
  } else {
    s.db = std::make_unique<Database>(disk_.path_of(s.name), options_.durability, kSimVfsName);
    disk_.set_faults(&injector_);
  }
  // Checkpoint every 100 WAL pages instead of production's 1000: the same protocol, a tenth of
  // the memory to touch per file (a simulated disk is memory, and a run is short). It also
  // hides something production would meet: reopening a database reads its WAL frame by frame,
  // and under the swarm's heavier I/O error rates (per call) a 1000-frame WAL is almost never
  // read through, so a crashed service fails to start again for the rest of the day (seed 1
  // of the swarm: 43,636 failed starts at 1000 pages, 31 at 100).
  s.db->exec("PRAGMA wal_autocheckpoint=100;");
}

bool World::start_service(ServiceSlot& s) {
  s.retry_start = 0;
  try {
    if (!s.db) open_database(s);  // after a power loss: the file as it was synced
    s.bus = store_broker_.connect(s.name);
    if (spec_of(s.kind).uses_logistics_bus) s.logistics_bus = logistics_broker_.connect(s.name);
    s.wire_bus = through_wire(*s.bus);
    Bus* bus = s.wire_bus.get();
    Bus* logistics_bus = nullptr;
    if (s.logistics_bus) {
      s.wire_logistics_bus = through_wire(*s.logistics_bus);
      logistics_bus = s.wire_logistics_bus.get();
    }
    const Knobs& knobs = options_.knobs;
    ServiceContext context{*bus,    logistics_bus, scheduler_,          *s.db,
                           topics_, logger_,       options_.faults.qos, this};
    context.limits = knobs.limits();
    context.inbox_retention_us = knobs.inbox_retention_s * kSecondUs;
    context.relay_batches = {static_cast<int>(knobs.relay_batch),
                             static_cast<int>(knobs.relay_delete_batch)};
    context.prune_every = static_cast<std::uint64_t>(knobs.prune_every);
    ServiceInputs inputs{context};
    inputs.store_data = &store_data_;
    inputs.variant = variant_of(options_.bug);
    s.built.emplace(build_service(s.kind, inputs));
    s.built->service->start();
    return true;
  } catch (const SqliteError& e) {
    // A storage fault while starting (opening, recovering, seeding): the process exits and
    // its supervisor starts it again kSupervisorRestartUs later.
    ++failed_starts_;
    logger_.log(LogLevel::kInfo, s.name, std::string("start failed: ") + e.what());
    s.built.reset();
    s.wire_bus.reset();
    s.wire_logistics_bus.reset();
    s.bus.reset();
    s.logistics_bus.reset();
    s.retry_start = scheduler_.call_after(kSupervisorRestartUs, [this, &s] { start_service(s); });
    return false;
  }
}

void World::lose_power(const std::string& name, std::int64_t down_us) {
  ServiceSlot& s = slot(name);
  // What the disk holds at the moment the power goes, before the process's last moves (the
  // connection's close would checkpoint and sync): only that survives.
  const std::uint64_t lost_before = disk_.stats().bytes_lost;
  disk_.power_off(name);
  crash_service(name, down_us);
  s.db.reset();
  disk_.power_on(name);
  if (disk_.stats().bytes_lost > lost_before) mark(Mark::kPowerLossLostWrites);
}

void World::crash_service(const std::string& name, std::int64_t down_us) {
  ServiceSlot& s = slot(name);
  // The process is gone: service object, its in-memory state and its connections. Its
  // database stays (uncommitted work was already rolled back).
  if (s.service() != nullptr) {
    const ServiceStats& stats = s.service()->stats();
    crashed_stats_.duplicates += stats.duplicates;
    crashed_stats_.rejected += stats.rejected;
  }
  if (auto* hello = dynamic_cast<HelloHelper*>(s.service())) {
    crashed_unknown_customers_ += hello->unknown_customers();
  }
  s.built.reset();
  s.wire_bus.reset();
  s.wire_logistics_bus.reset();
  s.bus.reset();
  s.logistics_bus.reset();
  if (s.retry_start != 0) scheduler_.cancel(s.retry_start);  // the restart below replaces it
  s.retry_start = 0;
  scheduler_.call_after(down_us, [this, name] {
    start_service(slot(name));  // if it fails, it tries again by itself
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
  if (site == CrashSite::kAfterCommit) {
    if (auto handling = handling_.find(service); handling != handling_.end()) {
      auto applied = applied_.find(service);
      if (applied == applied_.end()) {
        applied =
            applied_.emplace(std::string(service), std::map<std::string, std::int64_t>{}).first;
      }
      applied->second[handling->second] = scheduler_.now_us();
    }
  }
  injector_.reached(service, site);
}

void World::read_stock(Sku sku, std::string_view event_id) {
  auto* inventory = static_cast<InventoryIntel*>(slot(kInventoryIntel).service());
  if (inventory == nullptr) return;
  if (auto record = observe([&] { return inventory->store().find(sku); })) {
    history_.stock_readings.push_back(StockReading{sku, record->stock, record->shortfall,
                                                   scheduler_.now_us(), std::string(event_id)});
  }
}

void World::read_stock_touched_by(const Envelope& envelope) {
  if (envelope.type == EventType::kCustomerDeparted) {
    if (auto departed = decode_customer_departed(envelope.payload)) {
      for (const LineItem& item : departed.value().items) read_stock(item.sku, envelope.event_id);
    }
  } else if (envelope.type == EventType::kStockReplenished) {
    if (auto replenished = decode_stock_replenished(envelope.payload)) {
      read_stock(replenished.value().sku, envelope.event_id);
    }
  }
}

void World::scan_arrival(const Visit& visit, bool misread) {
  // A misread card is a reading of its own (another scan id); the guardian refuses it and the
  // customer holds the card to the reader again.
  const std::string scan_id =
      "entrance-1/" + std::to_string(visit.number) + (misread ? "/misread" : "");
  const std::string card = misread ? std::string(kMisreadCard) : visit.card;
  auto* gateway = static_cast<GatewayGuardian*>(slot(kGatewayGuardian).service());
  trace_.record(TraceKind::kScan, BusId::kStore, kGatewayGuardian, card, scan_id);
  try {
    if (gateway != nullptr && !injector_.is_down(kGatewayGuardian)) {
      // Accepted now, or earlier by a life of the guardian that crashed before answering.
      const ScanOutcome outcome = gateway->scan(CardScan{scan_id, card});
      if (outcome.kind == ScanOutcome::Kind::kRejected) {
        if (misread) {
          scheduler_.call_after(kRescanUs, [this, &visit] { scan_arrival(visit, false); });
        }
        return;
      }
      record_arrival(visit, scan_id, outcome.event_id);
      return;
    }
  } catch (const SimulatedCrash&) {
  } catch (const SqliteError&) {
    // A storage fault: the guardian could not take the reading (rolled back); no answer.
  }
  // No answer from the guardian: the scanner sends the same reading again.
  scheduler_.call_after(kDeviceRetryUs, [this, &visit, misread] { scan_arrival(visit, misread); });
}

void World::record_arrival(const Visit& visit, const std::string& scan_id,
                           const std::string& event_id) {
  if (!arrival_recorded_.insert(visit.number).second) return;
  ++arrivals_;
  auto name = loyalty_names_.find(visit.customer_id);
  history_.arrivals.push_back(ArrivalTruth{
      scan_id, visit.customer_id, name == loyalty_names_.end() ? std::string() : name->second,
      scheduler_.now_us(), event_id});
}

void World::depart(const Visit& visit) {
  const std::string scan_id = "exit-1/" + std::to_string(visit.number);  // the accepted one
  auto units = std::make_shared<const std::vector<Sku>>(
      options_.scenario ? take_wanted(static_cast<std::size_t>(visit.number - 1))
                        : workload_->pick_basket(shelves_));
  // The event id is what the guardian answers the scanner with: filled in by scan_departure.
  DepartureTruth truth{scan_id, visit.customer_id, {}, scheduler_.now_us(), {}};
  std::map<Sku, std::int64_t> carried;
  for (Sku sku : *units) ++carried[sku];
  for (const auto& [sku, quantity] : carried) truth.basket.push_back(LineItem{sku, quantity});
  history_.departures.push_back(std::move(truth));
  const std::size_t index = history_.departures.size() - 1;
  const double reuse = options_.shape.reused_scan_id_probability;
  if (reuse > 0 && shape_rng_.chance(reuse)) {
    if (std::string reused = reusable_scan_id(history_.departures[index]); !reused.empty()) {
      return scan_departure(visit, std::move(units), index, Reading::kReusedId, reused);
    }
  }
  scan_departure(visit, std::move(units), index,
                 visit.misread_at_exit ? Reading::kMisread : Reading::kOwn, "");
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
                           std::size_t truth, Reading reading, std::string reused_id) {
  // A misread card, or a scan id a broken gate reused, is a reading of its own that the
  // guardian refuses (a bad card, a conflict); the customer then scans again, properly.
  std::string scan_id = "exit-1/" + std::to_string(visit.number);
  if (reading == Reading::kMisread) scan_id += "/misread";
  if (reading == Reading::kReusedId) scan_id = reused_id;
  const std::string card = reading == Reading::kMisread ? std::string(kMisreadCard) : visit.card;
  auto* gate = static_cast<GateExitGuardian*>(slot(kGateExitGuardian).service());
  trace_.record(TraceKind::kScan, BusId::kStore, kGateExitGuardian, card, scan_id);
  try {
    if (gate != nullptr && !injector_.is_down(kGateExitGuardian)) {
      const ScanOutcome outcome = gate->scan(BagScan{scan_id, card, lines_of_units(*units)});
      if (outcome.kind == ScanOutcome::Kind::kRejected && reading != Reading::kOwn) {
        scheduler_.call_after(kRescanUs, [this, &visit, units, truth] {
          scan_departure(visit, units, truth, Reading::kOwn, "");
        });
        return;
      }
      history_.departures[truth].event_id = outcome.event_id;  // what the scanner was told
      return;
    }
  } catch (const SimulatedCrash&) {
  } catch (const SqliteError&) {
    // A storage fault: the guardian could not take the reading (rolled back); no answer.
  }
  scheduler_.call_after(kDeviceRetryUs, [this, &visit, units, truth, reading, reused_id] {
    scan_departure(visit, units, truth, reading, reused_id);
  });
}

// A scan id of an earlier bag the gate already had accepted, for other content than `truth`'s;
// "" when there is none.
std::string World::reusable_scan_id(const DepartureTruth& truth) const {
  for (auto it = history_.departures.rbegin(); it != history_.departures.rend(); ++it) {
    if (it->event_id.empty() || &*it == &truth) continue;
    if (it->customer_id != truth.customer_id || it->basket != truth.basket) return it->scan_id;
  }
  return {};
}

void World::publish_junk(const Visit& visit) {
  // A rogue client on the store bus: an event that does not decode, on a topic two services
  // consume. They dead-letter it and go on.
  const std::string id = "junk-" + std::to_string(visit.number);
  rogue_bus_->publish(
      topics_.customer_departure,
      Envelope{id, EventType::kCustomerDeparted, "rogue-device", scheduler_.now_us(), "",
               std::string("\x01\x02"
                           "not capnp")},
      Qos::kAtLeastOnce, {});
  ++history_.junk_published;
}

// The entrance display shows each welcome once, as a display should (a welcome may be
// delivered twice); what it shows, in order, goes into the history.
void World::on_welcome_seen(const Delivery& delivery) {
  if (!welcomes_seen_.insert(delivery.envelope.event_id).second) return;
  auto welcome = read_welcome_document(delivery.envelope.payload);
  if (!welcome) {
    logger_.log(LogLevel::kError, "entrance-display", "unreadable welcome: " + welcome.error());
    return;
  }
  history_.welcomes.push_back(ShownWelcome{welcome.value().arrival_event_id,
                                           welcome.value().customer_id, welcome.value().message,
                                           scheduler_.now_us()});
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
  audit_wire_->subscribe(topics_.payment_due, [this](const Delivery& d) { on_payment_seen(d); });
  display_bus_->subscribe(topics_.display_entrance,
                          [this](const Delivery& d) { on_welcome_seen(d); });
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
      scan_arrival(visit, visit.misread_at_entrance);
      const double junk = options_.shape.junk_probability;
      if (junk > 0 && shape_rng_.chance(junk)) publish_junk(visit);
      scheduler_.call_at(visit.departs_at_us, [this, &visit] { depart(visit); });
    });
  }

  // Phases: chaos while the store is open, heal at closing, then run until quiescent.
  const std::int64_t closes_at = kStoreOpensAtUs + options_.open_duration_us;
  injector_.start();
  scheduler_.call_at(closes_at, [this] { injector_.heal(); });
  try {
    // A machine down for days (long outages) comes back after closing: the day settles after.
    const std::int64_t settle_us =
        options_.settle_limit_us +
        (options_.faults.long_outage_per_hour > 0 ? kLongOutageMaxUs : 0);
    history_.quiescent = scheduler_.drain(closes_at + settle_us);
  } catch (const AssertionFailed& failed) {
    // The run stops where the check failed: what happened up to there, and why it stopped.
    SimResult result = result_of_run();
    result.assertion = failed.failure.describe();
    return result;
  }

  if (next_split_ < options_.splits.size()) {
    throw std::invalid_argument(
        "the recipe's splitpoint at step " + std::to_string(options_.splits[next_split_].step) +
        " is past the end of this day (" + std::to_string(scheduler_.steps()) +
        " steps): it was made with other options");
  }
  if (late_storm_ != 0) {
    throw std::invalid_argument("the recipe's storm child at step " + std::to_string(late_storm_) +
                                " splits outside the opening hours (no faults to raise there): it "
                                "was made with other options");
  }
  auto* inventory = static_cast<InventoryIntel*>(slot(kInventoryIntel).service());
  if (inventory != nullptr) {
    for (auto& [sku, record] : observe([&] { return inventory->store().all(); })) {
      history_.final_stock[sku] = FinalStock{record.stock, record.shortfall};
    }
  }
  if (inventory != nullptr) {
    std::set<std::string> booked;
    for (const DepartureTruth& d : history_.departures) {
      if (!d.event_id.empty() && consumed(slot(kInventoryIntel), d.event_id)) {
        booked.insert(d.event_id);
      }
    }
    history_.inventory_booked = std::move(booked);
  }
  // A dead-lettered event (or one lost as the configuration allows) may still have been
  // applied: by a copy of it that came earlier or later.
  for (auto* losses : {&history_.expected_losses, &history_.dead_letters}) {
    for (DeadLetter& d : *losses) {
      d.applied_later = service_kind(d.service) && consumed(slot(d.service), d.event_id);
    }
  }
  history_.final_shelves = shelves_;

  return result_of_run();
}

}  // namespace

SimResult run_simulation(const SimOptions& options,
                         std::function<void(const TraceEntry&)> trace_listener) {
  if (const OptionCheck error = validate(options)) throw std::invalid_argument(error->describe());
  MarkCounts marks{};
  SimResult result;
  {
    const MarkScope counting(marks);      // the real code's marks, counted for this run
    const ThrowOnAssertion stop_the_run;  // a failed check ends this run, not the process
    try {
      World world(options, std::move(trace_listener));
      result = world.run();
    } catch (const AssertionFailed& failed) {  // while the world was made or looked at
      result = SimResult{};
      result.options = options;
      result.assertion = failed.failure.describe();
    }
  }
  result.marks = marks;
  return result;
}

}  // namespace eventmart::sim
