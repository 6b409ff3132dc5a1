#include "runs/seed_runner.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/event_id.h"

namespace eventmart::runs {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// `text` as one shell word: bare when it is only safe characters, else in single quotes.
std::string shell_quote(const std::string& text) {
  const bool bare = !text.empty() && text.find_first_not_of(
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789_-./=:,+@%") == std::string::npos;
  if (bare) return text;
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string describe(const sim::TraceEntry& e) {
  return "#" + std::to_string(e.index) + " t=" + std::to_string(e.at_us) + "us " +
         std::string(sim::trace_kind_name(e.kind)) + " bus=" + std::string(sim::bus_name(e.bus)) +
         " client=" + std::string(e.client) + " topic=" + std::string(e.topic) +
         " event=" + std::string(e.event_id);
}

// Runs `seed` keeping the running hash after every entry, and the description of entry
// `describe_index` if it is reached.
std::vector<std::uint64_t> hashes_of(const RunPlan& plan, std::uint64_t seed,
                                     std::uint64_t describe_index, std::string* described) {
  std::vector<std::uint64_t> hashes;
  sim::run_simulation(options_for(plan, seed), [&](const sim::TraceEntry& e) {
    hashes.push_back(e.hash_after);
    if (described != nullptr && e.index == describe_index) *described = describe(e);
  });
  return hashes;
}

}  // namespace

bool SeedOutcome::passed() const {
  return failures().empty();
}

std::vector<std::string> SeedOutcome::failures() const {
  std::vector<std::string> names;
  if (!could_not_go_on.empty()) names.push_back("could_not_go_on");
  if (!result.assertion.empty()) names.push_back("assertion");
  for (const auto& inv : invariants) {
    if (!inv.held()) names.push_back(inv.name);
  }
  if (result.stats.handler_failures > 0) names.push_back("handler_failures");
  if (!deterministic) names.push_back("determinism");
  return names;
}

sim::SimOptions options_for(const RunPlan& plan, std::uint64_t seed) {
  sim::SimOptions options = plan.base;
  options.seed = seed;
  sim::SimOptions drawn = plan.swarm ? sim::with_swarm(options) : options;
  if (plan.adjust) plan.adjust(drawn);
  return drawn;
}

SeedOutcome run_seed(const RunPlan& plan, std::uint64_t seed,
                     std::function<void(const sim::TraceEntry&)> trace_listener) {
  SeedOutcome outcome;
  outcome.seed = seed;
  const auto start = std::chrono::steady_clock::now();
  // The world stopped mid-run (std::runtime_error: a database a bug left corrupt that it can no
  // longer read): a failing outcome with the options it ran, not the end of a whole range.
  const auto could_not_go_on = [&](const std::runtime_error& e) {
    outcome.could_not_go_on = e.what();
    outcome.result = sim::SimResult{};
    outcome.result.options = options_for(plan, seed);
    outcome.result.options.brancher = nullptr;
    outcome.wall_seconds = seconds_since(start);
    return outcome;
  };
  if (!plan.check_determinism) {
    try {
      outcome.result = sim::run_simulation(options_for(plan, seed), std::move(trace_listener));
    } catch (const std::runtime_error& e) {
      return could_not_go_on(e);
    }
  } else {
    try {
      // Two runs, each keeping the running hash after every entry; on a mismatch, the first
      // entry where they part is described from a third and fourth run.
      std::vector<std::uint64_t> first, second;
      outcome.result = sim::run_simulation(options_for(plan, seed), [&](const sim::TraceEntry& e) {
        first.push_back(e.hash_after);
        if (trace_listener) trace_listener(e);
      });
      const sim::SimResult again =
          sim::run_simulation(options_for(plan, seed),
                              [&](const sim::TraceEntry& e) { second.push_back(e.hash_after); });
      if (first != second || outcome.result.trace_hash != again.trace_hash) {
        outcome.deterministic = false;
        std::size_t i = 0;
        while (i < first.size() && i < second.size() && first[i] == second[i]) ++i;
        std::string a = "(trace ended)", b = "(trace ended)";
        hashes_of(plan, seed, i, &a);
        hashes_of(plan, seed, i, &b);
        outcome.determinism_report = "runs diverge at trace entry " + std::to_string(i) + " (of " +
                                     std::to_string(first.size()) + " and " +
                                     std::to_string(second.size()) + ")\n    first run:  " + a +
                                     "\n    second run: " + b;
      }
    } catch (const std::runtime_error& e) {
      return could_not_go_on(e);
    }
  }
  outcome.wall_seconds = seconds_since(start);
  // A run a failed check cut short has a history that stops mid-day: the assertion is its
  // verdict, the invariants are not asked about a day that did not end.
  if (outcome.result.assertion.empty()) {
    outcome.invariants = properties::check_all(outcome.result.history);
  }
  return outcome;
}

SeedRecord record_of(const SeedOutcome& o) {
  SeedRecord r;
  r.seed = o.seed;
  r.failures = o.failures();
  r.assertion = o.result.assertion;
  r.determinism_report = o.determinism_report;
  r.could_not_go_on = o.could_not_go_on;
  r.qos0 = o.result.history.at_most_once;
  r.lost_departures = lost_departures(o);
  r.dead_letters = static_cast<std::uint64_t>(o.result.stats.dead_letters);
  r.trace_hash = o.result.trace_hash;
  r.marks = o.result.marks;
  return r;
}

std::uint64_t shard_size(std::uint64_t first, std::uint64_t last, Shard shard) {
  if (shard.index < 1 || shard.index > shard.count) {
    throw std::invalid_argument("a shard must be K/N with 1 <= K <= N");
  }
  if (last < first || last - first < shard.index - 1) return 0;
  return (last - first - (shard.index - 1)) / shard.count + 1;
}

bool in_shard(std::uint64_t first, std::uint64_t seed, Shard shard) {
  return seed >= first && (seed - first) % shard.count == shard.index - 1;
}

void SummaryBuilder::add(SeedRecord r) {
  SeedSummary& s = summary_;
  ++s.seeds;
  s.lost_departures += r.lost_departures;
  s.dead_letters += r.dead_letters;
  s.dead_letter_seeds += r.dead_letters > 0 ? 1 : 0;
  for (std::size_t m = 0; m < kMarkCount; ++m) {
    s.mark_hits[m] += r.marks[m];
    s.mark_seeds[m] += r.marks[m] > 0 ? 1 : 0;
  }
  if (r.qos0) ++s.qos0_seeds;
  if (r.passed()) return;
  ++s.failing;
  for (const std::string& name : r.failures) ++s.failed_by[name];
  const std::uint64_t seed = r.seed;
  kept_.emplace(seed, std::move(r));
  if (kept_.size() > kKeptFailures) kept_.erase(std::prev(kept_.end()));
}

SeedSummary SummaryBuilder::finish() && {
  for (auto& [seed, record] : kept_) summary_.failing_examples.push_back(std::move(record));
  kept_.clear();
  return std::move(summary_);
}

std::uint64_t lost_departures(const SeedOutcome& o) {
  for (const auto& inv : o.invariants) {
    if (inv.name == "departure_paid_once") return inv.lost;
  }
  return 0;
}

namespace {

// The verdict of a run, without what a long swarm cannot keep: its history and warnings.
void keep_verdict_only(SeedOutcome& outcome) {
  sim::History verdict_only;  // the flags the summary reads, nothing else
  verdict_only.quiescent = outcome.result.history.quiescent;
  verdict_only.at_most_once = outcome.result.history.at_most_once;
  outcome.result.history = std::move(verdict_only);
  outcome.result.warnings.clear();
  outcome.result.warnings.shrink_to_fit();
}

}  // namespace

SeedSummary run_seeds(const RunPlan& plan, std::uint64_t first, std::uint64_t last, unsigned jobs,
                      const std::function<void(const SeedOutcome&)>& on_done, Shard shard) {
  if (last < first || last - first >= kMaxSeedsPerRun) {
    throw std::invalid_argument("a seed range must hold 1.." + std::to_string(kMaxSeedsPerRun) +
                                " seeds");
  }
  const std::uint64_t count = shard_size(first, last, shard);
  if (count == 0) {
    throw std::invalid_argument("shard " + std::to_string(shard.index) + "/" +
                                std::to_string(shard.count) + " of seeds " + std::to_string(first) +
                                ".." + std::to_string(last) + " holds no seed");
  }
  const auto seed_at = [&](std::uint64_t i) { return first + (shard.index - 1) + i * shard.count; };
  std::atomic<std::uint64_t> next{0};
  std::mutex mutex;
  std::condition_variable finished_one;
  std::deque<SeedOutcome> finished;  // ready for on_done; drained as they come
  std::string error;

  std::vector<std::thread> workers;
  const unsigned threads =
      static_cast<unsigned>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(jobs, count)));
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (std::uint64_t i = next++; i < count; i = next++) {
        SeedOutcome outcome;
        try {
          outcome = run_seed(plan, seed_at(i));
          keep_verdict_only(outcome);
        } catch (const std::exception& e) {
          std::lock_guard lock(mutex);
          if (error.empty()) error = "seed " + std::to_string(seed_at(i)) + ": " + e.what();
          next = count;  // stop handing out work
        }
        std::lock_guard lock(mutex);
        finished.push_back(std::move(outcome));
        finished_one.notify_one();
      }
    });
  }
  SummaryBuilder summary;
  for (std::uint64_t reported = 0; reported < count;) {
    std::unique_lock lock(mutex);
    finished_one.wait(lock, [&] { return !finished.empty() || !error.empty(); });
    if (!error.empty()) break;
    SeedOutcome outcome = std::move(finished.front());
    finished.pop_front();
    lock.unlock();
    ++reported;
    if (on_done) on_done(outcome);
    summary.add(record_of(outcome));
  }
  for (auto& w : workers) w.join();
  if (!error.empty()) throw std::runtime_error(error);
  return std::move(summary).finish();
}

std::string replay_command(const RunPlan& plan, std::uint64_t seed) {
  return replay_command(plan, seed, plan.base.splits);
}

std::string replay_command(const RunPlan& plan, std::uint64_t seed,
                           const std::vector<sim::Splitpoint>& splits) {
  if (!plan.scenario_file.empty() && splits == plan.base.splits)
    return "eventmart sim --scenario " + shell_quote(plan.scenario_file);
  const sim::SimOptions& o = plan.base;
  const std::string start = splits.empty()
                                ? "--seed " + std::to_string(seed)
                                : "--recipe " + sim::to_string(sim::Recipe{seed, splits});
  std::string cmd = "eventmart sim " + start + " --customers " + std::to_string(o.customers) +
                    " --products " + std::to_string(o.products) + " --hours " +
                    number(static_cast<double>(o.open_duration_us) / sim::kHourUs);
  if (plan.swarm) {
    cmd += " --faults swarm";
  } else {
    const sim::FaultOptions& f = o.faults;
    if (f.qos == Qos::kAtMostOnce) cmd += " --qos 0";
    for (const sim::FaultKnob& knob : sim::fault_knobs()) {
      if (knob.get(f) > 0) cmd += " --" + std::string(knob.flag) + " " + number(knob.get(f));
    }
  }
  // The swarm draws durability from the seed; otherwise say it unless it is the default.
  if (!plan.swarm && o.durability != sim::SimOptions{}.durability) {
    cmd += std::string(" --durability ") + (o.durability == Durability::kFull ? "full" : "normal");
  }
  if (o.bug != sim::Bug::kNone) cmd += " --bug " + std::string(sim::bug_name(o.bug));
  // A swarm seed draws its knobs again; otherwise each one that is not production's.
  if (!plan.swarm) {
    const sim::Knobs defaults;
    for (const sim::KnobInfo& k : sim::knob_table()) {
      if (o.knobs.*k.field != defaults.*k.field) {
        cmd += " --knob " + std::string(k.key) + "=" + std::to_string(o.knobs.*k.field);
      }
    }
  }
  return cmd;
}

}  // namespace eventmart::runs
