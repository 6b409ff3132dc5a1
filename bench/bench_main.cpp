// eventmart benchmarks. Every number is printed with a ratio against a baseline measured in
// the same run, so a slower machine moves both. Run with `make bench`.
//
//  1. memory bus: publish -> handler through the in-memory broker at QoS 1 (PUBLISH, PUBACK,
//     delivery, delivery ack: four packets on the virtual clock). Baseline: the scheduler
//     alone running the same four timers per message, the floor any transport on this clock
//     pays. Target: >= 2,000,000 messages/s.
//  2. store day: 10,000 customers, 12 virtual hours, the default catalog, no faults.
//     Baseline: the bare memory bus delivering as many messages as the day did.
//     Targets: < 1 s of wall time, time compression >= 40,000x.
//  3. swarm: 200 seeds of 1,000-customer days, each with its own fault mix, on every core.
//     Baseline: the same 200 seeds without faults. Target: >= 40 seeds/s on 2 cores.
//     And --check-determinism over the same swarm. Target: <= 2.2x the plain swarm.
//     Storage: the seeds without their storage faults on in-memory databases, on the
//     simulated disk (sim/disk.h), and with the same WAL journal on real files in /dev/shm.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "runs/seed_runner.h"
#include "sim/scheduler.h"
#include "sim/world.h"
#include "transports/memory/memory_broker.h"

namespace {

using eventmart::Delivery;
using eventmart::Envelope;
using eventmart::EventType;
using eventmart::Qos;
using eventmart::sim::Scheduler;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best of `repeats` runs: the least disturbed measurement of the same work.
template <typename Run>
double best_seconds(int repeats, Run run) {
  double best = 1e300;
  for (int i = 0; i < repeats; ++i) best = std::min(best, run());
  return best;
}

constexpr std::int64_t kBatch = 1000;  // messages in flight at once

double bus_seconds(std::int64_t messages, std::int64_t& delivered) {
  Scheduler clock(0);
  eventmart::memory::MemoryBroker broker(clock, {200});
  auto publisher = broker.connect("publisher");
  auto subscriber = broker.connect("subscriber");
  delivered = 0;
  subscriber->subscribe("spectrum-grocers/fresh-frontier/+", [&](const Delivery&) { ++delivered; });
  const std::string topic = "spectrum-grocers/fresh-frontier/customer-departure";
  Envelope envelope;
  envelope.type = EventType::kCustomerDeparted;
  envelope.source = "bench";
  envelope.payload = std::string(48, 'x');
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t sent = 0; sent < messages;) {
    for (std::int64_t i = 0; i < kBatch && sent < messages; ++i, ++sent) {
      envelope.event_id = std::to_string(sent);
      publisher->publish(topic, envelope, Qos::kAtLeastOnce, {});
    }
    clock.run_until_idle();
  }
  return seconds_since(start);
}

double scheduler_floor_seconds(std::int64_t messages, std::int64_t& handled) {
  Scheduler clock(0);
  handled = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t sent = 0; sent < messages;) {
    for (std::int64_t i = 0; i < kBatch && sent < messages; ++i, ++sent) {
      clock.call_after(200,
                       [&clock, &handled] { clock.call_after(200, [&handled] { ++handled; }); });
    }
    clock.run_until_idle();
  }
  return seconds_since(start);
}

// 1. The bare memory bus against the scheduler alone.
void bus_section(int repeats) {
  // 1. The bare memory bus.
  const std::int64_t messages = 1'000'000;
  std::int64_t delivered = 0, handled = 0;
  const double bus_s = best_seconds(repeats, [&] { return bus_seconds(messages, delivered); });
  const double floor_s =
      best_seconds(repeats, [&] { return scheduler_floor_seconds(messages, handled); });
  const double bus_rate = static_cast<double>(delivered) / bus_s;
  const double floor_rate = static_cast<double>(handled) / floor_s;
  std::printf("memory bus, publish -> handler, %lld messages\n", static_cast<long long>(messages));
  std::printf("  bus                  %12.0f messages/s  (%.3f s)\n", bus_rate, bus_s);
  std::printf("  baseline: scheduler  %12.0f messages/s  (4 timers per message)\n", floor_rate);
  std::printf("  ratio bus/baseline   %12.2f\n", bus_rate / floor_rate);
  std::printf("  target >= 2,000,000 messages/s: %s\n\n", bus_rate >= 2e6 ? "met" : "MISSED");
}

// 2. A 10,000-customer store day against the bare bus delivering as much.
void day_section(int repeats) {
  // 2. A 10,000-customer store day.
  eventmart::sim::SimOptions day;
  day.seed = 1;
  day.customers = 10'000;
  eventmart::sim::SimResult result;
  const double day_s = best_seconds(repeats, [&] {
    const auto start = std::chrono::steady_clock::now();
    result = eventmart::sim::run_simulation(day);
    return seconds_since(start);
  });
  const double virtual_s = static_cast<double>(result.stats.virtual_us) / 1e6;
  const double day_deliveries = static_cast<double>(result.stats.deliveries);
  std::int64_t same_delivered = 0;
  const double same_bus_s =
      best_seconds(repeats, [&] { return bus_seconds(result.stats.deliveries, same_delivered); });
  std::printf("store day: %lld customers, 12 virtual hours, default catalog, no faults\n",
              static_cast<long long>(result.stats.customers));
  std::printf("  wall time            %12.3f s\n", day_s);
  std::printf("  virtual time         %12.0f s  (to quiescence)\n", virtual_s);
  std::printf("  time compression     %12.0fx\n", virtual_s / day_s);
  std::printf("  customers            %12.0f customers/s\n",
              static_cast<double>(result.stats.customers) / day_s);
  std::printf("  bus deliveries       %12.0f deliveries/s  (%lld deliveries)\n",
              day_deliveries / day_s, static_cast<long long>(result.stats.deliveries));
  std::printf("  baseline: bare bus   %12.0f deliveries/s  (same count, no services)\n",
              static_cast<double>(same_delivered) / same_bus_s);
  std::printf("  ratio day/baseline   %12.3f  (cost of services + SQLite per delivery)\n",
              (day_deliveries / day_s) / (static_cast<double>(same_delivered) / same_bus_s));
  std::printf("  target < 1 s and >= 40,000x: %s\n\n",
              day_s < 1.0 && virtual_s / day_s >= 40'000 ? "met" : "MISSED");
}

struct SwarmTimes {
  std::uint64_t seeds;
  unsigned jobs;
  std::string tmpfs_folder;
  double swarm_s, clean_s, checked_s, memory_s, disk_s, tmpfs_s;
};

// 3. Swarm throughput, the cost of checking determinism, and the storage variants: measured.
SwarmTimes measure_swarm(int repeats) {
  // 3. Swarm throughput and the cost of checking determinism.
  const unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
  const std::string tmpfs_folder =
      (std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm")
                                           : std::filesystem::temp_directory_path()) /
      ("eventmart-bench-" +
       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  const std::uint64_t seeds = 200;
  enum class Storage { kAsDrawn, kNoneInMemory, kNoneOnDisk, kNoneOnTmpfs };
  const auto swarm_seconds = [&](bool swarm, bool check, Storage storage = Storage::kAsDrawn) {
    eventmart::runs::RunPlan plan;
    plan.base.customers = 1000;
    plan.swarm = swarm;
    plan.check_determinism = check;
    if (storage != Storage::kAsDrawn) {
      plan.adjust = [storage, tmpfs_folder](eventmart::sim::SimOptions& o) {
        o.faults.power_loss_per_minute = 0;
        o.faults.io_error_probability = 0;
        o.faults.disk_full_per_minute = 0;
        o.on_disk = storage == Storage::kNoneOnDisk;
        if (storage == Storage::kNoneOnTmpfs) o.native_folder = tmpfs_folder;
      };
    }
    std::uint64_t failing = 0;
    const auto start = std::chrono::steady_clock::now();
    eventmart::runs::run_seeds(plan, 1, seeds, jobs, [&](const eventmart::runs::SeedOutcome& o) {
      if (!o.passed()) ++failing;
    });
    if (failing > 0)
      std::printf("  (%llu failing seeds!)\n", static_cast<unsigned long long>(failing));
    return seconds_since(start);
  };
  const double swarm_s = best_seconds(repeats, [&] { return swarm_seconds(true, false); });
  const double clean_s = best_seconds(repeats, [&] { return swarm_seconds(false, false); });
  const double checked_s = best_seconds(repeats, [&] { return swarm_seconds(true, true); });
  const double memory_s =
      best_seconds(repeats, [&] { return swarm_seconds(true, false, Storage::kNoneInMemory); });
  const double disk_s =
      best_seconds(repeats, [&] { return swarm_seconds(true, false, Storage::kNoneOnDisk); });
  // The same WAL journal on real files in memory (tmpfs), through SQLite's own VFS: what the
  // simulated disk costs against the operating system's, apart from the journal's own work.
  const double tmpfs_s =
      best_seconds(repeats, [&] { return swarm_seconds(true, false, Storage::kNoneOnTmpfs); });
  return SwarmTimes{seeds,     jobs,     tmpfs_folder, swarm_s, clean_s,
                    checked_s, memory_s, disk_s,       tmpfs_s};
}

void swarm_section(int repeats) {
  const SwarmTimes t = measure_swarm(repeats);
  const auto seeds = t.seeds;
  const auto jobs = t.jobs;
  const auto& tmpfs_folder = t.tmpfs_folder;
  const double swarm_s = t.swarm_s, clean_s = t.clean_s, checked_s = t.checked_s,
               memory_s = t.memory_s, disk_s = t.disk_s, tmpfs_s = t.tmpfs_s;
  const double swarm_rate = static_cast<double>(seeds) / swarm_s;
  std::printf("swarm: %llu seeds of 1,000-customer days, %u threads\n",
              static_cast<unsigned long long>(seeds), jobs);
  std::printf("  swarm faults         %12.1f seeds/s\n", swarm_rate);
  std::printf("  baseline: no faults  %12.1f seeds/s\n", static_cast<double>(seeds) / clean_s);
  std::printf("  ratio swarm/baseline %12.2f\n", clean_s / swarm_s);
  std::printf("  target >= 40 seeds/s: %s\n", swarm_rate >= 40 ? "met" : "MISSED");
  std::printf("  --check-determinism  %12.1f seeds/s\n", static_cast<double>(seeds) / checked_s);
  std::printf("  cost vs plain swarm  %12.2fx\n", checked_s / swarm_s);
  std::printf("  target <= 2.2x: %s\n", checked_s / swarm_s <= 2.2 ? "met" : "MISSED");
  std::printf("storage: the same seeds without their storage faults\n");
  std::printf("  in-memory databases  %12.1f seeds/s\n", static_cast<double>(seeds) / memory_s);
  std::printf("  on the simulated disk%12.1f seeds/s\n", static_cast<double>(seeds) / disk_s);
  std::printf("  VFS cost: throughput disk/memory %.2f (target >= 0.90): %s\n", memory_s / disk_s,
              memory_s / disk_s >= 0.90 ? "met" : "MISSED");
  std::printf("  baseline: WAL on tmpfs%12.1f seeds/s  (SQLite's own VFS, files in %s)\n",
              static_cast<double>(seeds) / tmpfs_s, tmpfs_folder.c_str());
  std::printf("  simulated disk against tmpfs: %.2fx faster (the journal's work is the same)\n",
              tmpfs_s / disk_s);
  std::printf("  storage faults in the mix: swarm/memory %.2f\n", memory_s / swarm_s);
  std::filesystem::remove_all(tmpfs_folder);
}

}  // namespace

int main(int argc, char** argv) {
  // eventmart-bench [REPEATS] [SECTION...]: SECTION is bus, day or swarm (default: all three).
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  std::vector<std::string> sections(argv + std::min(argc, 2), argv + argc);
  for (const std::string& s : sections) {
    if (s != "bus" && s != "day" && s != "swarm") {
      std::fprintf(stderr, "eventmart-bench: unknown section '%s' (bus, day, swarm)\n", s.c_str());
      return 2;
    }
  }
  const auto wanted = [&](const char* section) {
    return sections.empty() ||
           std::find(sections.begin(), sections.end(), section) != sections.end();
  };
  std::printf("eventmart-bench (best of %d runs each)\n\n", repeats);
  if (wanted("bus")) bus_section(repeats);
  if (wanted("day")) day_section(repeats);
  if (wanted("swarm")) swarm_section(repeats);
  return 0;
}
