// The fault plan of a run: what the network, the broker and the services suffer while the
// store is open (the chaos phase). Every decision is drawn from the run's seeded "faults"
// stream, so a failing run replays exactly from its seed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/bus.h"
#include "core/clock.h"
#include "core/rng.h"
#include "services/service.h"
#include "sim/disk.h"
#include "sim/option_error.h"
#include "sim/scenario.h"
#include "sim/trace.h"
#include "transports/memory/memory_broker.h"

namespace eventmart::sim {

// The longest a long outage lasts: a machine down over a weekend.
inline constexpr std::int64_t kLongOutageMaxUs = 3LL * 24 * 3600 * 1'000'000;

struct FaultOptions {
  Qos qos = Qos::kAtLeastOnce;       // QoS of every publish (and so of every delivery)
  double drop_probability = 0;       // per packet (PUBLISH or PUBACK, either direction): lost
  double duplicate_probability = 0;  // per PUBLISH packet: arrives twice, the copy DUP-flagged
  double reorder_probability = 0;    // per packet: held back 1..50 ms, so later ones overtake it
  std::int64_t delay_mean_us = 0;    // per packet: extra exponential delay with this mean
  double partition_per_minute = 0;   // per service per virtual minute: cut off from the broker
  std::int64_t partition_max_us = 5 * 60'000'000LL;  // a partition lasts 1 s up to this
  double crash_per_minute = 0;                   // per service per virtual minute: the process dies
  std::int64_t restart_max_us = 60'000'000;      // a crashed service is back after 1 s up to this
  double broker_restart_per_minute = 0;          // per virtual minute: the store's broker restarts
  std::int64_t broker_down_max_us = 30'000'000;  // the broker is back after 1 s up to this
  double publish_failure_probability = 0;        // per QoS 1 publish: the client fails it at once
  // Per service per virtual minute: the machine loses power; the process dies and every
  // write its database files had not synced is lost (sim/disk.h). Back after 1 s up to
  // restart_max_us.
  double power_loss_per_minute = 0;
  // Per VFS call (read, write, sync) on a service's database files: the call fails with an
  // I/O error (sim/disk.h).
  double io_error_probability = 0;
  // Per service per virtual minute: its disk is full for 1 s up to disk_full_max_us; every
  // write that needs new space fails with SQLITE_FULL.
  double disk_full_per_minute = 0;
  std::int64_t disk_full_max_us = 10 * 60'000'000LL;
  // Per consuming service (Hello Helper, Inventory Intel, Fastlane Finale) per virtual hour:
  // its machine goes down for 1 h up to kLongOutageMaxUs (a weekend), while the broker queues
  // for it or, once its session expires, drops what comes for it.
  double long_outage_per_hour = 0;

  bool any() const {
    return drop_probability > 0 || duplicate_probability > 0 || reorder_probability > 0 ||
           delay_mean_us > 0 || partition_per_minute > 0 || crash_per_minute > 0 ||
           broker_restart_per_minute > 0 || publish_failure_probability > 0 ||
           long_outage_per_hour > 0 || any_storage();
  }
  // Faults that need the simulated disk (sim/disk.h).
  bool any_storage() const {
    return power_loss_per_minute > 0 || io_error_probability > 0 || disk_full_per_minute > 0;
  }
};

// A number of FaultOptions that a person sets: the one list of them. Its row is all it takes to
// add one: the command line (--flag), scenario files and the JSON report (key), the replay
// command, the help and the validation read this table.
struct FaultKnob {
  SimOption option;             // in validation errors
  std::string_view name;        // how errors name it: "drop probability"
  std::string_view key;         // scenario files and --json's fault_options: "io_error"
  std::string_view flag;        // the command line, without "--": "io-error"
  std::string_view value_name;  // in --help: "P"
  std::string_view help;        // one sentence for --help
  int decimals;                 // in --json's fault_options
  double max;                   // valid values are 0..max
  std::string_view range;  // what to say when a value is not: "must be a probability in [0, 1]"
  // The value in its user-facing unit (milliseconds for a delay), and back.
  double (*get)(const FaultOptions&);
  void (*set)(FaultOptions&, double);
};

// Every knob, in the order of --help, scenario files, --json and replay commands.
const std::vector<FaultKnob>& fault_knobs();

// Swarm testing: each seed draws its own mix. Every fault kind is switched on with
// probability 1/2 at a random strength; QoS 1 with probability 3/4. Power loss only where
// `durability` is full (normal is documented to lose acknowledged commits on power loss).
FaultOptions draw_swarm_faults(Rng rng, Durability durability);

// Why `faults` are not usable, or nullopt when they are.
OptionCheck validate(const FaultOptions& faults);

// What actually happened, per kind.
struct FaultCounts {
  std::int64_t dropped = 0;
  std::int64_t duplicated = 0;
  std::int64_t delayed = 0;
  std::int64_t reordered = 0;
  std::int64_t partitions = 0;
  std::int64_t crashes = 0;                // all crashes, any site
  std::int64_t crashes_before_commit = 0;  // ... inside a transaction, before its commit
  std::int64_t crashes_after_commit = 0;   // ... after the commit, before the ack
  std::int64_t broker_restarts = 0;
  std::int64_t publishes_refused = 0;  // failed at once by the fault (publish_failure_probability)
  std::int64_t power_losses = 0;
  std::int64_t io_errors = 0;           // VFS calls failed with an I/O error
  std::int64_t disk_full_windows = 0;   // times a service's disk filled up
  std::int64_t disk_full_refusals = 0;  // writes refused with SQLITE_FULL
  std::int64_t long_outages = 0;        // machines down for hours to days
};

// A stretch of time something was out, for reports: a service down (crash or power loss),
// cut off (partition) or with a full disk, or the broker down. Not part of the trace hash.
struct Outage {
  enum class Kind : std::uint8_t {
    kCrash,
    kPowerLoss,
    kPartition,
    kDiskFull,
    kBrokerDown,
    kLongOutage
  };
  Kind kind = Kind::kCrash;
  std::string who;  // the service's client id, or "broker"
  std::int64_t from_us = 0;
  std::int64_t until_us = -1;  // -1: still out when the run ended
  std::string detail;          // a crash's site
};

// "crash", "power-loss", "partition", "disk-full", "broker-down", "long-outage".
std::string_view outage_kind_name(Outage::Kind kind);

// Thrown at a crash point to stand for the process dying there.
class SimulatedCrash : public std::exception {
 public:
  const char* what() const noexcept override { return "simulated crash"; }
};

// Decides the fate of every packet, and when services crash or lose the broker.
// The world tells it which client ids are services and gets told when to tear one down.
class FaultInjector final : public CrashPoints, public DiskFaults {
 public:
  class Host {
   public:
    virtual ~Host() = default;
    // Tear the service down now (from a timer) and restart it after `down_us`.
    virtual void crash_service(const std::string& service, std::int64_t down_us) = 0;
    // The same, and the service's database keeps only what it had synced.
    virtual void lose_power(const std::string& service, std::int64_t down_us) = 0;
  };

  // With a `scenario` (may be null), faults come from its schedule instead of from `options`
  // and the seeded stream: packet faults by packet number, crashes at their times.
  FaultInjector(const FaultOptions& options, Rng rng, Clock& clock, Trace& trace, Host& host,
                std::vector<std::string> services, const Scenario* scenario = nullptr);

  // Starts the per-minute fault ticker; faults happen until heal().
  void start();
  // Draws from `rng` from now on (an explorer's split, sim/recipe.h).
  void reseed(Rng rng) {
    rng_ = rng;
    storage_rng_ = rng.derive("storage");
  }
  // A storm from now for `duration_us` (sim/recipe.h): a swarm mix drawn from `rng` for
  // `durability`, its per-minute faults kStormFactor times as likely; each rate the stronger of
  // the storm's and the run's own. Power loss and full disks only with `storage` (the databases
  // are on the simulated disk); I/O errors, long outages and the QoS stay the run's. A storm
  // that begins inside another ends the first: the run's own mix returns when the last ends.
  void storm(Rng rng, std::int64_t duration_us, Durability durability, bool storage);
  // Ends the chaos phase: no new faults; partitions and broker downtime end now.
  void heal();
  bool chaos() const { return chaos_; }

  // The NetworkModel of one bus's broker (broker restarts apply to the store's only).
  memory::NetworkModel& network(BusId bus) {
    return bus == BusId::kStore ? store_network_ : logistics_network_;
  }

  // CrashPoints: throws SimulatedCrash when a crash is armed for `service` at `site`, or when
  // the service already crashed and is only waiting to be torn down.
  void reached(std::string_view service, CrashSite site) override;

  // DiskFaults: an I/O error (io_error_probability) or a full disk for this call.
  int on_call(std::string_view database, DiskOp op, bool grows) override;
  // While the world itself reads a service's database (to record the history), nothing fails.
  void suspend_storage_faults(bool suspended) { storage_suspended_ = suspended; }

  // The world tells the injector that a crashed service is running again.
  void restarted(const std::string& service);
  // True between a crash and the restart.
  bool is_down(std::string_view service) const;

  const FaultCounts& counts() const { return counts_; }
  const FaultOptions& options() const { return options_; }
  // Every outage so far, in the order they began.
  const std::vector<Outage>& outages() const { return outages_; }

 private:
  class Network final : public memory::NetworkModel {
   public:
    Network(FaultInjector& injector, BusId bus) : injector_(injector), bus_(bus) {}
    memory::PacketFate fate(const memory::Packet& packet) override {
      return injector_.fate(packet, bus_);
    }
    bool reachable(std::string_view client_id) override {
      return injector_.reachable(client_id, bus_);
    }
    bool refuse_publish(const memory::Packet& packet) override {
      return injector_.refuse_publish(packet, bus_);
    }

   private:
    FaultInjector& injector_;
    BusId bus_;
  };
  enum class CrashWhen : std::uint8_t { kNow, kBeforeCommit, kAfterCommit };
  struct ServiceState {
    std::int64_t partitioned_until_us = 0;
    std::int64_t disk_full_until_us = 0;
    bool down = false;
    bool armed = false;  // a crash waits at `armed_site`
    CrashSite armed_site = CrashSite::kBeforeCommit;
    std::string_view crashed_where;  // where the current crash happened (for its recovery)
  };

  memory::PacketFate fate(const memory::Packet& packet, BusId bus);
  memory::PacketFate scheduled_fate(const memory::Packet& packet, BusId bus);
  void scheduled_crash(const ScheduledCrash& crash);
  bool reachable(std::string_view client_id, BusId bus);
  bool refuse_publish(const memory::Packet& packet, BusId bus);
  void tick();
  void crash(const std::string& service, ServiceState& state);
  void lose_power(const std::string& service, ServiceState& state);
  // `where` goes into the trace: "between-events", "before-commit" or "after-commit".
  void crash_now(const std::string& service, ServiceState& state, std::string_view where);
  // The machine goes down for hours to days (a consuming service only).
  void long_outage(const std::string& service, ServiceState& state);

  void end_storm();

  FaultOptions options_;
  FaultOptions own_;       // the run's own mix while a storm is on
  TimerId storm_end_ = 0;  // the storm's end, 0: none on
  Rng rng_;
  Rng storage_rng_;  // storage faults: a stream of their own, so they shift no other draw
  bool storage_suspended_ = false;
  Clock& clock_;
  Trace& trace_;
  Host& host_;
  std::map<std::string, ServiceState, std::less<>> services_;
  Network store_network_;
  Network logistics_network_;
  bool chaos_ = false;
  std::int64_t broker_down_until_us_ = 0;
  TimerId ticker_ = 0;
  FaultCounts counts_;
  std::vector<Outage> outages_;
  void began(Outage::Kind kind, const std::string& who, std::int64_t until_us,
             std::string_view detail = {});
  const Scenario* scenario_;
  // Scenario packet faults by (bus, client, leg, n-th), and the first transmissions counted so
  // far on each (bus, client, leg) during chaos.
  using LinkLeg = std::tuple<BusId, std::string, memory::PacketKind>;
  std::map<std::tuple<BusId, std::string, memory::PacketKind, std::uint64_t>, PacketFault>
      scheduled_packets_;
  std::map<LinkLeg, std::uint64_t> packets_seen_;
};

}  // namespace eventmart::sim
