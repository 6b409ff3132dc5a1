#include "sim/faults.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>

#include "core/assert.h"
#include "core/marks.h"
#include "services/registry.h"
#include "sim/recipe.h"

namespace eventmart::sim {
namespace {

constexpr std::int64_t kMinuteUs = 60'000'000;
constexpr std::int64_t kSecondUs = 1'000'000;
constexpr std::int64_t kHourUs = 60 * kMinuteUs;

std::string_view packet_name(memory::PacketKind kind) {
  switch (kind) {
    case memory::PacketKind::kPublish:
      return "publish";
    case memory::PacketKind::kPuback:
      return "puback";
    case memory::PacketKind::kDeliver:
      return "deliver";
    case memory::PacketKind::kDeliverAck:
      return "deliver-ack";
  }
  return "packet";
}

}  // namespace

namespace {

// The swarm's strongest per-minute faults (a storm's are kStormFactor times these).
struct PerMinute {
  double partition_per_minute, crash_per_minute, broker_restart_per_minute, power_loss_per_minute,
      disk_full_per_minute;
};
constexpr PerMinute kSwarmMax{0.02, 0.02, 0.01, 0.02, 0.01};

// Whether a mix has its per-minute ticks. Long outages are drawn at the ticks but do not start
// them: a mix whose only per-minute fault is a long outage has none (as it always had; counting
// them would move the trace of every such swarm seed).
bool ticks(const FaultOptions& f) {
  return f.partition_per_minute > 0 || f.crash_per_minute > 0 || f.broker_restart_per_minute > 0 ||
         f.power_loss_per_minute > 0 || f.disk_full_per_minute > 0;
}

}  // namespace

FaultOptions draw_swarm_faults(Rng rng, Durability durability) {
  FaultOptions f;
  f.qos = rng.chance(0.75) ? Qos::kAtLeastOnce : Qos::kAtMostOnce;
  const auto maybe = [&rng](double max) { return rng.chance(0.5) ? rng.unit() * max : 0.0; };
  f.drop_probability = maybe(0.3);
  f.duplicate_probability = maybe(0.3);
  f.reorder_probability = maybe(0.3);
  f.delay_mean_us = rng.chance(0.5) ? rng.uniform(1, 50'000) : 0;
  f.partition_per_minute = maybe(kSwarmMax.partition_per_minute);
  f.crash_per_minute = maybe(kSwarmMax.crash_per_minute);
  f.broker_restart_per_minute = maybe(kSwarmMax.broker_restart_per_minute);
  f.publish_failure_probability = maybe(0.05);
  // Storage (drawn last: the draws above stay what they were for every seed).
  const double power_loss = maybe(kSwarmMax.power_loss_per_minute);
  if (durability == Durability::kFull) f.power_loss_per_minute = power_loss;
  // Per VFS call, skewed low, up to 6%: at about 3% and more a handler now and then fails
  // all 8 attempts (a dead letter); much more and the services cannot keep up with the day.
  const auto cube = [](double u) { return u * u * u; };  // no pow: libm differs by machine
  f.io_error_probability = rng.chance(0.5) ? cube(rng.unit()) * 0.06 : 0.0;
  f.disk_full_per_minute = maybe(kSwarmMax.disk_full_per_minute);
  // Long outages last of all (every draw above stays what it was for every seed); rare, as
  // each one keeps a run going for days of virtual time.
  f.long_outage_per_hour = rng.chance(0.25) ? rng.unit() * 0.05 : 0.0;
  return f;
}

std::string_view option_name(SimOption option) {
  for (const FaultKnob& knob : fault_knobs()) {
    if (knob.option == option) return knob.name;
  }
  switch (option) {
    case SimOption::kCustomers:
      return "customers";
    case SimOption::kProducts:
      return "products";
    case SimOption::kOpenDuration:
      return "opening hours";
    case SimOption::kLatency:
      return "latency";
    case SimOption::kChain:
      return "chain";
    case SimOption::kStore:
      return "store";
    case SimOption::kScenario:
      return "scenario";
    case SimOption::kWorkloadShape:
      return "workload shape";
    case SimOption::kKnobs:
      return "knob";
    case SimOption::kRecipe:
      return "recipe";
    default:
      break;
  }
  return "option";
}

const std::vector<FaultKnob>& fault_knobs() {
  using F = FaultOptions&;
  using C = const FaultOptions&;
  constexpr std::string_view kProbability = "must be a probability in [0, 1]";
  static const std::vector<FaultKnob> kKnobs = {
      {SimOption::kDropProbability, "drop probability", "drop", "drop", "P",
       "probability that a packet (PUBLISH or PUBACK, either direction) is lost; at QoS 1 it is "
       "retransmitted after 5 s",
       6, 1, kProbability, [](C f) { return f.drop_probability; },
       [](F f, double v) { f.drop_probability = v; }},
      {SimOption::kDuplicateProbability, "duplicate probability", "dup", "dup", "P",
       "probability that a PUBLISH arrives twice (the copy with the DUP flag)", 6, 1, kProbability,
       [](C f) { return f.duplicate_probability; },
       [](F f, double v) { f.duplicate_probability = v; }},
      {SimOption::kReorderProbability, "reorder probability", "reorder", "reorder", "P",
       "probability that a packet is held back 1..50 ms, so later ones overtake it", 6, 1,
       kProbability, [](C f) { return f.reorder_probability; },
       [](F f, double v) { f.reorder_probability = v; }},
      {SimOption::kDelayMean, "mean extra delay", "delay_ms", "delay-ms", "MEAN",
       "extra exponential delay per packet with this mean, in milliseconds (0..60000)", 3, 60'000,
       "must be between 0 and 60 s",
       [](C f) { return static_cast<double>(f.delay_mean_us) / 1000; },
       [](F f, double v) { f.delay_mean_us = std::llround(v * 1000); }},
      {SimOption::kPartitionPerMinute, "partition probability", "partition", "partition", "P",
       "probability per service per virtual minute of being cut off from the broker for 1 s..5 "
       "min",
       6, 1, kProbability, [](C f) { return f.partition_per_minute; },
       [](F f, double v) { f.partition_per_minute = v; }},
      {SimOption::kCrashPerMinute, "crash probability", "crash", "crash", "P",
       "probability per service per virtual minute that its process dies (between events, or "
       "inside its next transaction before or after the commit); it restarts on its database "
       "after 1..60 s",
       6, 1, kProbability, [](C f) { return f.crash_per_minute; },
       [](F f, double v) { f.crash_per_minute = v; }},
      {SimOption::kBrokerRestartPerMinute, "broker restart probability", "broker_restart",
       "broker-restart", "P",
       "probability per virtual minute that the store's broker restarts (down 1..30 s; sessions "
       "and queued QoS 1 messages persist)",
       6, 1, kProbability, [](C f) { return f.broker_restart_per_minute; },
       [](F f, double v) { f.broker_restart_per_minute = v; }},
      {SimOption::kPublishFailureProbability, "publish failure probability", "publish_fail",
       "publish-fail", "P",
       "probability that a client fails a QoS 1 publish at once, as a real client does when its "
       "connection drops (the outbox relay sends it again)",
       6, 1, kProbability, [](C f) { return f.publish_failure_probability; },
       [](F f, double v) { f.publish_failure_probability = v; }},
      {SimOption::kPowerLossPerMinute, "power loss probability", "power_loss", "power-loss", "P",
       "probability per service per virtual minute that its machine loses power: the process "
       "dies and its database keeps only what it had synced (back after 1..60 s)",
       6, 1, kProbability, [](C f) { return f.power_loss_per_minute; },
       [](F f, double v) { f.power_loss_per_minute = v; }},
      {SimOption::kIoErrorProbability, "I/O error probability", "io_error", "io-error", "P",
       "probability that a read, write or sync on a service's database files fails with an I/O "
       "error (the transaction rolls back; the message is retried, dead-lettered after 8 failed "
       "attempts)",
       6, 1, kProbability, [](C f) { return f.io_error_probability; },
       [](F f, double v) { f.io_error_probability = v; }},
      {SimOption::kDiskFullPerMinute, "disk full probability", "disk_full", "disk-full", "P",
       "probability per service per virtual minute that its disk fills up for 1 s..10 min: every "
       "write that needs new space fails with SQLITE_FULL",
       6, 1, kProbability, [](C f) { return f.disk_full_per_minute; },
       [](F f, double v) { f.disk_full_per_minute = v; }},
      {SimOption::kLongOutagePerHour, "long outage probability", "long_outage", "long-outage", "P",
       "probability per consuming service (hello-helper, inventory-intel, fastlane-finale) per "
       "virtual hour that its machine is down for 1 h..3 days while the broker queues for it (or "
       "drops its session once it expires)",
       6, 1, kProbability, [](C f) { return f.long_outage_per_hour; },
       [](F f, double v) { f.long_outage_per_hour = v; }},
  };
  return kKnobs;
}

OptionCheck validate(const FaultOptions& f) {
  for (const FaultKnob& knob : fault_knobs()) {
    const double v = knob.get(f);
    if (!(v >= 0 && v <= knob.max)) return OptionError{knob.option, std::string(knob.range)};
  }
  if (f.io_error_probability >= 1) {
    return OptionError{SimOption::kIoErrorProbability,
                       "of 1 fails every read and write: no database could open"};
  }
  if (f.drop_probability >= 1) {
    return OptionError{SimOption::kDropProbability,
                       "of 1 loses every packet: nothing could arrive"};
  }
  return std::nullopt;
}

FaultInjector::FaultInjector(const FaultOptions& options, Rng rng, Clock& clock, Trace& trace,
                             Host& host, std::vector<std::string> services,
                             const Scenario* scenario)
    : options_(options),
      rng_(rng),
      storage_rng_(rng.derive("storage")),
      clock_(clock),
      trace_(trace),
      host_(host),
      store_network_(*this, BusId::kStore),
      logistics_network_(*this, BusId::kLogistics),
      scenario_(scenario) {
  for (auto& name : services) services_.emplace(std::move(name), ServiceState{});
  if (scenario_ != nullptr) {
    for (const PacketFault& f : scenario_->packet_faults) {
      scheduled_packets_.emplace(std::tuple(f.bus, f.client, f.leg, f.nth), f);
    }
  }
}

void FaultInjector::start() {
  chaos_ = true;
  if (scenario_ != nullptr) {
    for (const ScheduledCrash& crash : scenario_->crashes) {
      clock_.call_after(crash.at_us, [this, crash] { scheduled_crash(crash); });
    }
    return;
  }
  if (ticks(options_)) ticker_ = clock_.call_after(kMinuteUs, [this] { tick(); });
}

namespace {

// The services that consume events from other services (a long outage queues for them); the
// guardians answer devices at once, and a day without them is a closed store.
bool consumes_events(std::string_view service) {
  const auto kind = service_kind(service);
  return kind && spec_of(*kind).consumes_store_bus;
}

}  // namespace

std::string_view outage_kind_name(Outage::Kind kind) {
  switch (kind) {
    case Outage::Kind::kCrash:
      return "crash";
    case Outage::Kind::kPowerLoss:
      return "power-loss";
    case Outage::Kind::kPartition:
      return "partition";
    case Outage::Kind::kDiskFull:
      return "disk-full";
    case Outage::Kind::kBrokerDown:
      return "broker-down";
    case Outage::Kind::kLongOutage:
      return "long-outage";
  }
  return "outage";
}

void FaultInjector::began(Outage::Kind kind, const std::string& who, std::int64_t until_us,
                          std::string_view detail) {
  outages_.push_back(Outage{kind, who, clock_.now_us(), until_us, std::string(detail)});
}

void FaultInjector::storm(Rng rng, std::int64_t duration_us, Durability durability, bool storage) {
  // A scenario's faults are its schedule; a storm comes only after chaos began (a split).
  EVENTMART_ASSERT(scenario_ == nullptr && chaos_ && duration_us > 0, duration_us);
  if (storm_end_ != 0) {
    clock_.cancel(storm_end_);
  } else {
    own_ = options_;
  }
  // Packet faults: a swarm mix (each kind on or off). Process faults: every one on, at up to
  // kStormFactor times the swarm's strongest; power loss only where the swarm could draw it.
  const FaultOptions mix = draw_swarm_faults(rng.derive("mix"), durability);
  Rng strength = rng.derive("strength");
  FaultOptions f = own_;
  const auto up = [](double& rate, double storm) { rate = std::max(rate, storm); };
  up(f.drop_probability, mix.drop_probability);
  up(f.duplicate_probability, mix.duplicate_probability);
  up(f.reorder_probability, mix.reorder_probability);
  f.delay_mean_us = std::max(f.delay_mean_us, mix.delay_mean_us);
  up(f.publish_failure_probability, mix.publish_failure_probability);
  const auto storm_rate = [&](double swarm_max) {
    return strength.unit() * kStormFactor * swarm_max;
  };
  up(f.partition_per_minute, storm_rate(kSwarmMax.partition_per_minute));
  up(f.crash_per_minute, storm_rate(kSwarmMax.crash_per_minute));
  up(f.broker_restart_per_minute, storm_rate(kSwarmMax.broker_restart_per_minute));
  const double power_loss = storm_rate(kSwarmMax.power_loss_per_minute);
  const double disk_full = storm_rate(kSwarmMax.disk_full_per_minute);
  if (storage) {
    if (durability == Durability::kFull) up(f.power_loss_per_minute, power_loss);
    up(f.disk_full_per_minute, disk_full);
  }
  EVENTMART_ASSERT(!validate(f).has_value());  // every storm rate is within its knob's range
  options_ = f;
  // The per-minute ticker runs only when the run's own mix has a per-minute fault.
  if (ticker_ == 0) ticker_ = clock_.call_after(kMinuteUs, [this] { tick(); });
  storm_end_ = clock_.call_after(duration_us, [this] {
    storm_end_ = 0;
    end_storm();
  });
}

void FaultInjector::end_storm() {
  options_ = own_;
  // The ticker the storm started, when the run's own mix has none.
  if (!ticks(own_) && ticker_ != 0) {
    clock_.cancel(ticker_);
    ticker_ = 0;
  }
  trace_.record(TraceKind::kSplit, BusId::kStore, "explorer", "", "storm-over");
}

void FaultInjector::heal() {
  if (storm_end_ != 0) {
    clock_.cancel(storm_end_);
    storm_end_ = 0;
    options_ = own_;
  }
  chaos_ = false;
  // Partitions, broker downtime and full disks end now; crashed services come back on their own.
  const std::int64_t now = clock_.now_us();
  for (Outage& o : outages_) {
    const bool process = o.kind == Outage::Kind::kCrash || o.kind == Outage::Kind::kPowerLoss ||
                         o.kind == Outage::Kind::kLongOutage;
    if (!process && o.until_us > now) {
      o.until_us = now;
    }
  }
  if (ticker_ != 0) clock_.cancel(ticker_);
  ticker_ = 0;
  broker_down_until_us_ = 0;
  for (auto& [name, state] : services_) {
    state.partitioned_until_us = 0;
    state.disk_full_until_us = 0;
    state.armed = false;  // a crash armed but not reached does not happen
  }
}

memory::PacketFate FaultInjector::scheduled_fate(const memory::Packet& packet, BusId bus) {
  memory::PacketFate fate;
  if (packet.redelivered) return fate;  // only first transmissions are counted and named
  const memory::PacketKind leg = packet.kind;
  std::uint64_t& seen = packets_seen_[LinkLeg(bus, std::string(packet.client_id), leg)];
  auto it = scheduled_packets_.find(std::tuple(bus, std::string(packet.client_id), leg, seen++));
  if (it == scheduled_packets_.end()) return fate;
  const auto note = [&](TraceKind kind) {
    trace_.record(kind, bus, packet.client_id, packet_name(packet.kind), packet.envelope.event_id);
  };
  switch (it->second.kind) {
    case PacketFault::Kind::kDrop:
      ++counts_.dropped;
      note(TraceKind::kDropped);
      fate.lost = true;
      break;
    case PacketFault::Kind::kDuplicate:
      if (packet.kind == memory::PacketKind::kPublish ||
          packet.kind == memory::PacketKind::kDeliver) {
        ++counts_.duplicated;
        note(TraceKind::kDuplicated);
        fate.duplicated = true;
      }
      break;
    case PacketFault::Kind::kDelay:
      ++counts_.delayed;
      note(TraceKind::kDelayed);
      fate.extra_delay_us = it->second.delay_us;
      break;
  }
  return fate;
}

void FaultInjector::scheduled_crash(const ScheduledCrash& crash) {
  if (!chaos_) return;
  auto it = services_.find(crash.service);
  if (it == services_.end() || it->second.down || it->second.armed) return;
  switch (crash.when) {
    case ScheduledCrash::When::kNow:
      crash_now(it->first, it->second, "between-events");
      return;
    case ScheduledCrash::When::kBeforeCommit:
      it->second.armed = true;
      it->second.armed_site = CrashSite::kBeforeCommit;
      return;
    case ScheduledCrash::When::kAfterCommit:
      it->second.armed = true;
      it->second.armed_site = CrashSite::kAfterCommit;
      return;
  }
}

memory::PacketFate FaultInjector::fate(const memory::Packet& packet, BusId bus) {
  memory::PacketFate fate;
  if (!chaos_) return fate;
  if (scenario_ != nullptr) return scheduled_fate(packet, bus);
  if (!options_.any()) return fate;
  const auto note = [&](TraceKind kind) {
    trace_.record(kind, bus, packet.client_id, packet_name(packet.kind), packet.envelope.event_id);
  };
  if (options_.drop_probability > 0 && rng_.chance(options_.drop_probability)) {
    ++counts_.dropped;
    note(TraceKind::kDropped);
    fate.lost = true;
    return fate;
  }
  const bool carries_message =
      packet.kind == memory::PacketKind::kPublish || packet.kind == memory::PacketKind::kDeliver;
  if (carries_message && options_.duplicate_probability > 0 &&
      rng_.chance(options_.duplicate_probability)) {
    ++counts_.duplicated;
    note(TraceKind::kDuplicated);
    fate.duplicated = true;
  }
  if (options_.delay_mean_us > 0) {
    fate.extra_delay_us = rng_.exponential_us(options_.delay_mean_us);
    if (fate.extra_delay_us > 0) {
      ++counts_.delayed;
      note(TraceKind::kDelayed);
    }
  }
  if (options_.reorder_probability > 0 && rng_.chance(options_.reorder_probability)) {
    fate.extra_delay_us += rng_.uniform(1'000, 50'000);
    ++counts_.reordered;
    note(TraceKind::kReordered);
  }
  return fate;
}

bool FaultInjector::refuse_publish(const memory::Packet& packet, BusId bus) {
  if (!chaos_ || scenario_ != nullptr || options_.publish_failure_probability <= 0) return false;
  if (!rng_.chance(options_.publish_failure_probability)) return false;
  ++counts_.publishes_refused;
  trace_.record(TraceKind::kPublishRefused, bus, packet.client_id, packet.topic,
                packet.envelope.event_id);
  return true;
}

bool FaultInjector::reachable(std::string_view client_id, BusId bus) {
  const std::int64_t now = clock_.now_us();
  if (bus == BusId::kStore && now < broker_down_until_us_) return false;
  auto it = services_.find(client_id);
  return it == services_.end() || now >= it->second.partitioned_until_us;
}

void FaultInjector::tick() {
  ticker_ = 0;
  if (!chaos_) return;
  const std::int64_t now = clock_.now_us();
  if (options_.broker_restart_per_minute > 0 && now >= broker_down_until_us_ &&
      rng_.chance(options_.broker_restart_per_minute)) {
    broker_down_until_us_ = now + rng_.uniform(kSecondUs, options_.broker_down_max_us);
    ++counts_.broker_restarts;
    began(Outage::Kind::kBrokerDown, "broker", broker_down_until_us_);
    trace_.record(TraceKind::kBrokerRestart, BusId::kStore, "broker", "", "");
  }
  for (auto& [name, state] : services_) {
    if (options_.partition_per_minute > 0 && now >= state.partitioned_until_us &&
        rng_.chance(options_.partition_per_minute)) {
      state.partitioned_until_us = now + rng_.uniform(kSecondUs, options_.partition_max_us);
      ++counts_.partitions;
      began(Outage::Kind::kPartition, name, state.partitioned_until_us);
      trace_.record(TraceKind::kPartition, BusId::kStore, name, "", "");
    }
    if (options_.crash_per_minute > 0 && !state.down && !state.armed &&
        rng_.chance(options_.crash_per_minute)) {
      crash(name, state);
    }
    if (options_.power_loss_per_minute > 0 && !state.down && !state.armed &&
        rng_.chance(options_.power_loss_per_minute)) {
      lose_power(name, state);
    }
    if (options_.long_outage_per_hour > 0 && !state.down && !state.armed && consumes_events(name) &&
        rng_.chance(options_.long_outage_per_hour / 60)) {
      long_outage(name, state);
    }
    if (options_.disk_full_per_minute > 0 && now >= state.disk_full_until_us &&
        storage_rng_.chance(options_.disk_full_per_minute)) {
      state.disk_full_until_us = now + storage_rng_.uniform(kSecondUs, options_.disk_full_max_us);
      ++counts_.disk_full_windows;
      began(Outage::Kind::kDiskFull, name, state.disk_full_until_us);
      trace_.record(TraceKind::kDiskFull, BusId::kStore, name, "", "");
    }
  }
  ticker_ = clock_.call_after(kMinuteUs, [this] { tick(); });
}

void FaultInjector::crash(const std::string& service, ServiceState& state) {
  // Where the process dies: between events, or inside the next transaction it runs.
  switch (static_cast<CrashWhen>(rng_.uniform(0, 2))) {
    case CrashWhen::kNow:
      crash_now(service, state, "between-events");
      return;
    case CrashWhen::kBeforeCommit:
      state.armed = true;
      state.armed_site = CrashSite::kBeforeCommit;
      return;
    case CrashWhen::kAfterCommit:
      state.armed = true;
      state.armed_site = CrashSite::kAfterCommit;
      return;
  }
}

void FaultInjector::crash_now(const std::string& service, ServiceState& state,
                              std::string_view where) {
  state.down = true;
  state.armed = false;
  state.crashed_where = where;
  ++counts_.crashes;
  began(Outage::Kind::kCrash, service, -1, where);
  trace_.record(TraceKind::kCrash, BusId::kStore, service, where, "");
  const std::int64_t down_us = rng_.uniform(kSecondUs, options_.restart_max_us);
  // Torn down from a timer: the crash may be reported from inside the service's own stack.
  clock_.call_after(0, [this, service, down_us] { host_.crash_service(service, down_us); });
}

void FaultInjector::long_outage(const std::string& service, ServiceState& state) {
  state.down = true;
  state.armed = false;
  state.crashed_where = "long-outage";
  ++counts_.long_outages;
  // Heavy-tailed, as real outages are: most last a few hours, a few a weekend (u^3 skews low;
  // no pow, whose result differs by machine). About 40% end within 6 h, inside the day.
  const double u = rng_.unit();
  const auto down_us = kHourUs + static_cast<std::int64_t>(
                                     u * u * u * static_cast<double>(kLongOutageMaxUs - kHourUs));
  began(Outage::Kind::kLongOutage, service, -1);
  trace_.record(TraceKind::kLongOutage, BusId::kStore, service, "", "");
  clock_.call_after(0, [this, service, down_us] { host_.crash_service(service, down_us); });
}

void FaultInjector::lose_power(const std::string& service, ServiceState& state) {
  state.down = true;
  state.armed = false;
  state.crashed_where = "power-loss";
  ++counts_.power_losses;
  began(Outage::Kind::kPowerLoss, service, -1);
  trace_.record(TraceKind::kPowerLoss, BusId::kStore, service, "", "");
  const std::int64_t down_us = rng_.uniform(kSecondUs, options_.restart_max_us);
  clock_.call_after(0, [this, service, down_us] { host_.lose_power(service, down_us); });
}

int FaultInjector::on_call(std::string_view database, DiskOp op, bool grows) {
  if (!chaos_ || storage_suspended_) return SQLITE_OK;
  auto it = services_.find(database);
  if (it == services_.end()) return SQLITE_OK;
  if (op == DiskOp::kWrite && grows && clock_.now_us() < it->second.disk_full_until_us) {
    ++counts_.disk_full_refusals;
    return SQLITE_FULL;
  }
  if (options_.io_error_probability <= 0 || !storage_rng_.chance(options_.io_error_probability)) {
    return SQLITE_OK;
  }
  ++counts_.io_errors;
  const std::string_view what = op == DiskOp::kRead    ? "read"
                                : op == DiskOp::kWrite ? "write"
                                                       : "sync";
  trace_.record(TraceKind::kIoError, BusId::kStore, database, what, "");
  return op == DiskOp::kRead    ? SQLITE_IOERR_READ
         : op == DiskOp::kWrite ? SQLITE_IOERR_WRITE
                                : SQLITE_IOERR_FSYNC;
}

void FaultInjector::reached(std::string_view service, CrashSite site) {
  auto it = services_.find(service);
  if (it == services_.end()) return;
  ServiceState& state = it->second;
  if (state.down) throw SimulatedCrash();  // already dead, waiting to be torn down
  if (!state.armed || state.armed_site != site) return;
  ++(site == CrashSite::kBeforeCommit ? counts_.crashes_before_commit
                                      : counts_.crashes_after_commit);
  crash_now(it->first, state, site == CrashSite::kBeforeCommit ? "before-commit" : "after-commit");
  throw SimulatedCrash();
}

void FaultInjector::restarted(const std::string& service) {
  auto it = services_.find(service);
  if (it == services_.end()) return;
  it->second.down = false;
  for (auto o = outages_.rbegin(); o != outages_.rend(); ++o) {
    if (o->who == service && o->until_us < 0 &&
        (o->kind == Outage::Kind::kCrash || o->kind == Outage::Kind::kPowerLoss ||
         o->kind == Outage::Kind::kLongOutage)) {
      o->until_us = clock_.now_us();
      break;
    }
  }
  if (it->second.crashed_where == "before-commit") mark(Mark::kCrashBeforeCommitRecovered);
  if (it->second.crashed_where == "after-commit") mark(Mark::kCrashAfterCommitRecovered);
  trace_.record(TraceKind::kRestart, BusId::kStore, service, "", "");
}

bool FaultInjector::is_down(std::string_view service) const {
  auto it = services_.find(service);
  return it != services_.end() && it->second.down;
}

}  // namespace eventmart::sim
