// Shared rig for the model-based tests: one real service on the in-memory bus with a real
// SQLite database, which a command can crash (between events or inside a transaction) and
// restart on the same database, as the simulator does. Not a gtest fixture: rapidcheck
// builds a fresh rig for every generated case.
#pragma once

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/topics.h"
#include "services/service.h"
#include "sim/faults.h"
#include "sim/scheduler.h"
#include "sim/world.h"
#include "transports/memory/memory_broker.h"

namespace eventmart::test {

// How long a rig lets the bus settle after a command before it calls the system stuck.
inline constexpr std::int64_t kSettleLimitUs = 120'000'000;
inline constexpr std::int64_t kRestartAfterUs = 1'000'000;  // a crashed service is back after

class Rig final : public CrashPoints {
 public:
  using Factory = std::function<std::unique_ptr<Service>(const ServiceContext&)>;

  // `name` is the service's client id; `wrap_bus` (may be empty) wraps each bus it sees
  // (the ack-before-commit bug variant).
  Rig(std::string name, Factory factory, bool uses_logistics,
      std::function<std::unique_ptr<Bus>(Bus&)> wrap_bus = {})
      : name_(std::move(name)),
        factory_(std::move(factory)),
        uses_logistics_(uses_logistics),
        wrap_bus_(std::move(wrap_bus)),
        scheduler_(sim::kStoreOpensAtUs),
        store_broker_(scheduler_, {100}),
        logistics_broker_(scheduler_, {100}),
        probe_(store_broker_.connect("probe")),
        logistics_probe_(logistics_broker_.connect("logistics-probe")) {
    probe_->subscribe(topics_.dead_letter(name_),
                      [this](const Delivery& d) { dead_letters_.insert(d.envelope.event_id); });
    connect();
  }

  // Crash points: a command arms one; the next transaction that reaches it dies there.
  void reached(std::string_view, CrashSite site) override {
    if (crashed_) throw sim::SimulatedCrash();  // dead, not yet torn down
    if (armed_ && *armed_ == site) {
      armed_.reset();
      crashed_ = true;
      // The process is gone before anything else happens (the transport would otherwise
      // retry the failed delivery on the dead service): torn down now, and started again a
      // second later, as a supervisor does (what it sent before dying lands first).
      scheduler_.call_after(0, [this] {
        disconnect();
        scheduler_.call_after(kRestartAfterUs, [this] {
          crashed_ = false;
          connect();
        });
      });
      throw sim::SimulatedCrash();
    }
  }
  void arm_crash(CrashSite site) { armed_ = site; }

  template <typename Service>
  Service& service() {
    return static_cast<Service&>(*service_);
  }
  Database& db() { return db_; }
  const Topics& topics() const { return topics_; }
  memory::MemoryClient& probe() { return *probe_; }
  memory::MemoryClient& logistics_probe() { return *logistics_probe_; }

  // Publishes from a probe, remembers the envelope (for delivering it again), and runs the
  // bus until it is quiet. A crash inside the service is followed by a restart, as a
  // supervisor would do. Returns false if the bus did not settle in time.
  bool publish(bool logistics, const std::string& topic, const Envelope& envelope) {
    sent_.push_back(Sent{logistics, topic, envelope});
    return deliver(sent_.back());
  }
  bool deliver_again(std::size_t index) { return deliver(sent_.at(index)); }
  std::size_t sent() const { return sent_.size(); }
  // Distinct dead letters the service published (a sound event is never one).
  std::size_t dead_letters() const { return dead_letters_.size(); }

  // The process dies between events and comes back on its database.
  void restart() {
    disconnect();
    connect();
  }

 private:
  struct Sent {
    bool logistics;
    std::string topic;
    Envelope envelope;
  };

  bool deliver(const Sent& s) {
    (s.logistics ? *logistics_probe_ : *probe_).publish(s.topic, s.envelope, Qos::kAtLeastOnce, {});
    // Run until the delivery was handled; a crash in the handler restarts the service.
    return scheduler_.drain(scheduler_.now_us() + kSettleLimitUs);
  }

  void connect() {
    bus_ = store_broker_.connect(name_);
    if (uses_logistics_) logistics_bus_ = logistics_broker_.connect(name_);
    if (wrap_bus_) {
      bus_view_ = wrap_bus_(*bus_);
      if (logistics_bus_) logistics_bus_view_ = wrap_bus_(*logistics_bus_);
    }
    Bus& bus = bus_view_ ? *bus_view_ : static_cast<Bus&>(*bus_);
    Bus* logistics = logistics_bus_view_ ? logistics_bus_view_.get() : logistics_bus_.get();
    const ServiceContext context{bus,     logistics, scheduler_,        db_,
                                 topics_, logger_,   Qos::kAtLeastOnce, this};
    service_ = factory_(context);
    service_->start();
  }

  void disconnect() {
    service_.reset();
    bus_view_.reset();
    logistics_bus_view_.reset();
    bus_.reset();
    logistics_bus_.reset();
  }

  std::string name_;
  Factory factory_;
  bool uses_logistics_;
  std::function<std::unique_ptr<Bus>(Bus&)> wrap_bus_;
  sim::Scheduler scheduler_;
  Topics topics_;
  RecordingLogger logger_;
  memory::MemoryBroker store_broker_;
  memory::MemoryBroker logistics_broker_;
  std::unique_ptr<memory::MemoryClient> probe_;
  std::unique_ptr<memory::MemoryClient> logistics_probe_;
  Database db_{":memory:"};
  std::unique_ptr<memory::MemoryClient> bus_;
  std::unique_ptr<memory::MemoryClient> logistics_bus_;
  std::unique_ptr<Bus> bus_view_;
  std::unique_ptr<Bus> logistics_bus_view_;
  std::unique_ptr<Service> service_;
  std::optional<CrashSite> armed_;
  bool crashed_ = false;
  std::vector<Sent> sent_;
  std::set<std::string> dead_letters_;
};

// The catalog name of a model's product ("p3").
inline std::string product_name(Sku sku) {
  return "p" + std::to_string(sku);
}

// "Depart [sku 1 x2 sku 3 x1], crashing before the commit": one line of a scenario.
inline void show_departure(std::ostream& os, const std::vector<LineItem>& items,
                           const std::optional<CrashSite>& crash) {
  os << "Depart [";
  for (std::size_t i = 0; i < items.size(); ++i) {
    os << (i ? " " : "") << "sku " << items[i].sku << " x" << items[i].quantity;
  }
  os << "]";
  if (crash) {
    os << ", crashing " << (*crash == CrashSite::kBeforeCommit ? "before" : "after")
       << " the commit";
  }
}

// Runs a generated command sequence; on failure records its length in `*failing_length`
// (the last one recorded is the shrunk counterexample) and logs the scenario readably.
template <typename Commands, typename Model, typename Sut>
void run_commands(const Commands& commands, const Model& model, Sut& sut,
                  std::size_t* failing_length) {
  try {
    rc::state::runAll(commands, model, sut);
  } catch (...) {
    if (failing_length != nullptr) *failing_length = commands.size();
    RC_LOG() << "Scenario (" << commands.size() << " step(s)):\n";
    for (std::size_t i = 0; i < commands.size(); ++i) {
      RC_LOG() << "  " << i + 1 << ". ";
      commands[i]->show(RC_LOG());
      RC_LOG() << "\n";
    }
    throw;
  }
}

// True when any generated command is of type C (for classifying cases).
template <typename C, typename Commands>
bool contains_command(const Commands& commands) {
  for (const auto& c : commands) {
    if (dynamic_cast<const C*>(c.get()) != nullptr) return true;
  }
  return false;
}

// The outcome of running a property a bounded number of times with a fixed seed.
struct BoundedCheck {
  bool failed = false;
  bool gave_up = false;           // generation failed: neither a pass nor a counterexample
  std::size_t shrunk_length = 0;  // commands in the shrunk counterexample
  std::string counterexample;
  std::set<std::string> classes;     // classification tags seen (when it passed)
  bool shrink_budget_spent = false;  // shrinking stopped at the budget, not at a minimum
};

// How many runs shrinking may take after the first failure. rapidcheck shrinks to a local
// minimum however long that takes; a scenario of a hundred events whose faults hit numbered
// packets can take hours to get there. Past the budget every candidate passes, so shrinking
// ends with the smallest failing case found so far.
inline constexpr int kShrinkBudget = 4000;

// Runs `property(&failing_length)` for up to `cases` cases with a fixed seed (so the test
// cannot flake) and reports whether it failed and how small the counterexample shrank.
inline BoundedCheck check_bounded(const std::function<void(std::size_t*)>& property,
                                  int cases = 200, std::uint64_t seed = 20261126) {
  BoundedCheck check;
  rc::detail::TestParams params;
  params.maxSuccess = cases;
  // EVENTMART_BOUNDED_SEED tries the same bounded checks with another seed (robustness runs).
  if (const char* other = std::getenv("EVENTMART_BOUNDED_SEED"))
    params.seed = std::stoull(other);
  else
    params.seed = seed;
  bool failed_once = false;
  int shrink_runs = 0;
  std::string last_failure;
  const auto result = rc::detail::checkTestable(
      [&] {
        if (failed_once && ++shrink_runs > kShrinkBudget) {
          check.shrink_budget_spent = true;
          return;
        }
        try {
          property(&check.shrunk_length);
        } catch (const rc::detail::CaseResult& result) {
          // A failure (RC_FAIL and RC_ASSERT throw one): shrinking starts, or goes on.
          if (result.type == rc::detail::CaseResult::Type::Failure) {
            failed_once = true;
            last_failure = result.description;
          }
          throw;
        }
      },
      rc::detail::TestMetadata{}, params);
  rc::detail::FailureResult failure;
  rc::detail::SuccessResult success;
  rc::detail::GaveUpResult gave_up;
  if (result.match(gave_up)) {
    check.gave_up = true;
    check.counterexample = "gave up: " + gave_up.description;
  } else if (result.match(failure)) {
    check.failed = true;
    std::ostringstream out;
    // Past the shrink budget rapidcheck's final rerun of the counterexample passes: the
    // failure it reports is then the last one seen.
    out << (check.shrink_budget_spent ? last_failure : failure.description) << "\n";
    for (const auto& [name, value] : failure.counterExample) out << value << "\n";
    check.counterexample = out.str();
  } else if (result.match(success)) {
    // rapidcheck keeps a tag as it shows a value: quoted. Stored here without the quotes.
    for (const auto& [tags, count] : success.distribution) {
      for (const std::string& tag : tags) {
        check.classes.insert(tag.size() >= 2 && tag.front() == '"' ? tag.substr(1, tag.size() - 2)
                                                                   : tag);
      }
    }
  }
  return check;
}

// The harness tests' verdict on a broken variant: the property failed (it did not give up)
// within `cases` cases, and the counterexample shrank to at most `bound` steps.
inline void expect_caught(const BoundedCheck& c, std::string_view variant, int cases,
                          std::size_t bound) {
  ASSERT_FALSE(c.gave_up) << c.counterexample;
  ASSERT_TRUE(c.failed) << variant << " survived " << cases << " cases";
  EXPECT_LE(c.shrunk_length, bound)
      << (c.shrink_budget_spent
              ? "shrinking spent its budget of " + std::to_string(kShrinkBudget) + " runs\n"
              : std::string())
      << c.counterexample;
}

// The bound the harness tests hold the shrunk counterexamples to.
inline constexpr std::size_t kMaxShrunkCommands = 4;

}  // namespace eventmart::test
