#include "runs/localizer.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "core/assert.h"
#include "runs/fork.h"

namespace eventmart::runs {
namespace {

constexpr unsigned kMaxFutures = 1000;
constexpr double kHalf = 0.5;

// One future's verdict, written by the child into the shared mapping.
struct Slot {
  std::uint8_t done;          // 1 once written
  std::uint8_t failed_again;  // it failed one of the run's own failures
};

// Thrown by the parent's brancher once its last checkpoint is measured: the rest of its run
// is not needed (not a std::exception: nothing in the run may catch it as a failure).
struct EnoughOfThisRun {};

// CPU time of every child this process has waited for.
double children_cpu_seconds() {
  rusage r{};
  ::getrusage(RUSAGE_CHILDREN, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A trace entry as the report lists it: time, kind, bus, client, topic, event.
Localization::Entry describe(const sim::TraceEntry& e) {
  std::string line = clock_text(e.at_us) + "  " + std::string(sim::trace_kind_name(e.kind)) + "  " +
                     std::string(sim::bus_name(e.bus)) + "  " + std::string(e.client);
  if (!e.topic.empty()) line += "  " + std::string(e.topic);
  if (!e.event_id.empty()) line += "  " + std::string(e.event_id);
  return Localization::Entry{e.at_us, e.kind, std::move(line)};
}

// The faults drawn at a tick that strike a while later (sim/faults.h).
bool is_drawn_fault(sim::TraceKind kind) {
  switch (kind) {
    case sim::TraceKind::kCrash:
    case sim::TraceKind::kPowerLoss:
    case sim::TraceKind::kPartition:
    case sim::TraceKind::kBrokerRestart:
    case sim::TraceKind::kDiskFull:
    case sim::TraceKind::kLongOutage:
      return true;
    default:
      return false;
  }
}

// Whether k failing of n is clearly below or above `threshold`: a 95% Wilson score interval
// that excludes it.
bool decided(unsigned k, unsigned n, double threshold) {
  if (n == 0) return false;
  const double z = 1.96, p = static_cast<double>(k) / n, nn = n;
  const double centre = (p + z * z / (2 * nn)) / (1 + z * z / nn);
  const double half = z * std::sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / (1 + z * z / nn);
  return centre + half < threshold || centre - half > threshold;
}

// A checkpoint to measure in a pass: the quiet point after `step`, futures with child numbers
// first_child.. up to `up_to` futures in all (stopping early once decided, unless `all`).
struct Target {
  std::uint64_t step;
  std::uint32_t first_child = 1;
  unsigned up_to = 0;
  bool all = false;
  double threshold = 0.5;  // what the futures are counted against (decided once clearly off it)
  Checkpoint measured{};
};

// A quiet point where the world asks the brancher (faults on, no recipe split there).
struct QuietPoint {
  std::uint64_t step;
  std::int64_t at_us;
};

// Notes every quiet point of a run, changing nothing in it.
class QuietPoints final : public sim::Brancher {
 public:
  bool within_recipe() const override { return true; }
  std::optional<sim::Splitpoint> at_quiet_point(std::uint64_t step, std::int64_t now_us,
                                                const MarkCounts&) override {
    points.push_back(QuietPoint{step, now_us});
    return std::nullopt;
  }
  std::vector<QuietPoint> points;
};

// The parent's hand in a pass: forks the futures of each target, waits for them, counts.
class Checkpoints final : public sim::Brancher {
 public:
  Checkpoints(const LocalizeOptions& o, Slot* slots, std::vector<Target>& targets,
              const std::set<int>& fds)
      : o_(o), slots_(slots), targets_(targets), fds_(fds) {}

  bool within_recipe() const override { return true; }
  // After the last target, the parent's run goes on until this says enough (unset: at once).
  void go_on_until(std::function<bool(std::int64_t now_us)> enough) { enough_ = std::move(enough); }
  bool in_child() const { return child_ != 0; }
  std::uint64_t futures_run() const { return futures_run_; }
  int fork_errno() const { return fork_errno_; }
  Slot* slot() const { return slot_; }

  std::optional<sim::Splitpoint> at_quiet_point(std::uint64_t step, std::int64_t now_us,
                                                const MarkCounts&) override {
    if (child_ != 0 || next_ >= targets_.size() || step != targets_[next_].step) {
      return std::nullopt;
    }
    Target& t = targets_[next_];
    t.measured.at_us = now_us;
    t.measured.step = step;
    if (auto child = run_futures(t)) return child;
    ++next_;
    // From the quiet points between steps (never inside a handler, which might catch it).
    if (next_ >= targets_.size() && (!enough_ || enough_(now_us))) throw EnoughOfThisRun{};
    return std::nullopt;
  }

 private:
  // Forks the target's futures, at most `jobs` at a time, batch by batch; returns the
  // splitpoint in a child (a plain one), nullopt in the parent once they are counted.
  std::optional<sim::Splitpoint> run_futures(Target& t) {
    unsigned ran = 0;
    while (ran < t.up_to && fork_errno_ == 0) {
      const unsigned batch = std::min(LocalizeOptions::kBatch, t.up_to - ran);
      std::fill(slots_, slots_ + batch, Slot{0, 0});
      unsigned running = 0, started = 0;
      while (started < batch || running > 0) {
        if (started < batch && running < o_.jobs && fork_errno_ == 0) {
          check_fork_safe(fds_);
          const pid_t parent = ::getpid();
          const pid_t pid = o_.fork_process();
          if (pid == 0) {
            die_with_parent(parent);
            child_ = t.first_child + ran + started;
            slot_ = &slots_[started];
            return sim::Splitpoint{t.step, child_};
          }
          if (pid < 0) {
            fork_errno_ = errno != 0 ? errno : EAGAIN;
            started = batch;  // start no more; wait for those running
            continue;
          }
          ++started;
          ++running;
          continue;
        }
        int status = 0;
        const pid_t done = ::waitpid(-1, &status, 0);
        if (done > 0) {
          --running;
        } else if (errno != EINTR) {
          break;
        }
      }
      if (fork_errno_ != 0) break;
      for (unsigned i = 0; i < batch; ++i) {
        // A future that died without its verdict (killed) is counted as not failing again.
        if (slots_[i].done && slots_[i].failed_again) {
          ++t.measured.failing;
          const std::uint32_t c = t.first_child + ran + i;
          if (t.measured.first_failing_child == 0 || c < t.measured.first_failing_child) {
            t.measured.first_failing_child = c;
          }
        }
      }
      ran += batch;
      futures_run_ += batch;
      t.measured.futures = ran;
      if (!t.all && decided(t.measured.failing, ran, t.threshold)) break;
    }
    return std::nullopt;
  }

 private:
  const LocalizeOptions& o_;
  Slot* slots_;
  std::vector<Target>& targets_;
  const std::set<int>& fds_;
  std::function<bool(std::int64_t)> enough_;
  std::size_t next_ = 0;
  std::uint32_t child_ = 0;
  Slot* slot_ = nullptr;
  std::uint64_t futures_run_ = 0;
  int fork_errno_ = 0;
};

class Localizer {
 public:
  Localizer(const LocalizeOptions& o, Slot* slots) : o_(o), slots_(slots), fds_(open_fds()) {}

  // Measures the targets in one run of the timeline; the parent stops at the last one (the
  // trace it saw up to there went to `listen`). In a child: never returns.
  void pass(std::vector<Target>& targets, const std::function<void(const sim::TraceEntry&)>& listen,
            std::function<bool(std::int64_t)> enough = {}) {
    Checkpoints brancher(o_, slots_, targets, fds_);
    brancher.go_on_until(std::move(enough));
    RunPlan plan = o_.plan;
    plan.check_determinism = false;
    plan.base.brancher = &brancher;
    std::function<void(const sim::TraceEntry&)> listener;
    if (listen) {
      listener = [&](const sim::TraceEntry& e) {
        if (!brancher.in_child()) listen(e);
      };
    }
    std::vector<std::string> failures;
    try {
      // A world that cannot go on is a failing outcome ("could_not_go_on"); options the run
      // cannot take (std::invalid_argument) are the caller's to hear of.
      failures = run_seed(plan, o_.seed, listener).failures();
    } catch (const EnoughOfThisRun&) {
      EVENTMART_ASSERT(!brancher.in_child());
    } catch (...) {
      if (brancher.in_child()) ::_exit(3);  // never back into the parent's code: no verdict
      throw;
    }
    if (brancher.in_child()) {
      Slot* slot = brancher.slot();
      slot->failed_again = std::any_of(failures.begin(), failures.end(), [&](const std::string& f) {
        return std::find(failures_.begin(), failures_.end(), f) != failures_.end();
      });
      slot->done = 1;
      ::_exit(0);  // never the parent's destructors, never its buffers
    }
    futures_run_ += brancher.futures_run();
    if (brancher.fork_errno() != 0) {
      throw std::runtime_error(std::string("a fork failed (") +
                               std::strerror(brancher.fork_errno()) +
                               "): the localization stopped after every future it started ended");
    }
  }

  // The run itself: what it failed, and its quiet points while the store was open.
  std::vector<std::string> run_itself(std::vector<QuietPoint>& points) {
    QuietPoints recorder;
    RunPlan plan = o_.plan;
    plan.check_determinism = false;
    plan.base.brancher = &recorder;
    failures_ = run_seed(plan, o_.seed).failures();
    points = std::move(recorder.points);
    return failures_;
  }

  std::uint64_t futures_run_ = 0;

 private:
  const LocalizeOptions& o_;
  Slot* slots_;
  std::set<int> fds_;
  std::vector<std::string> failures_;  // the run's own: what a future must fail to fail again
};

}  // namespace

std::string clock_text(std::int64_t at_us) {
  const std::int64_t tenths = at_us / 100'000;
  const std::int64_t day_tenths = 864'000;
  const std::int64_t days = tenths / day_tenths - sim::kStoreOpensAtUs / 100'000 / day_tenths;
  const std::int64_t t = tenths % day_tenths;
  char text[48];
  std::snprintf(text, sizeof text, "%s%02lld:%02lld:%02lld.%lld",
                days > 0 ? ("+" + std::to_string(days) + "d ").c_str() : "",
                static_cast<long long>(t / 36'000), static_cast<long long>(t / 600 % 60),
                static_cast<long long>(t / 10 % 60), static_cast<long long>(t % 10));
  return text;
}

Localization localize(const LocalizeOptions& o) {
  if (o.futures < LocalizeOptions::kBatch || o.futures > kMaxFutures ||
      o.futures % LocalizeOptions::kBatch != 0) {
    throw std::invalid_argument("futures must be a multiple of 8, 8..1000");
  }
  if (o.checkpoints < 2 || o.checkpoints > 100)
    throw std::invalid_argument("checkpoints must be 2..100");
  if (o.jobs < 1 || o.jobs > 256) throw std::invalid_argument("jobs must be 1..256");
  if (o.resolution_us < 1) throw std::invalid_argument("the resolution must be positive");
  const sim::SimOptions first = options_for(o.plan, o.seed);
  check_world_forkable(first, "localize");
  const auto start = std::chrono::steady_clock::now();
  const std::uint64_t cpu_start = cpu_ns();
  const double child_cpu_start = children_cpu_seconds();

  void* memory = ::mmap(nullptr, sizeof(Slot) * LocalizeOptions::kBatch, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::runtime_error("localize: mmap failed");
  struct Unmap {
    void* m;
    ~Unmap() { ::munmap(m, sizeof(Slot) * LocalizeOptions::kBatch); }
  } unmap{memory};
  Localizer localizer(o, static_cast<Slot*>(memory));

  Localization result;
  std::vector<QuietPoint> quiet;
  result.failures = localizer.run_itself(quiet);
  if (result.failures.empty()) {
    throw std::invalid_argument("seed " + std::to_string(o.seed) +
                                (o.plan.base.splits.empty() ? "" : " with its recipe's splits") +
                                " holds every invariant: there is no failure to localize");
  }
  if (quiet.empty()) {
    throw std::invalid_argument("the run has no quiet point while the store is open to fork at");
  }
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);

  std::map<std::uint64_t, Checkpoint> by_step;  // every checkpoint measured
  // Measures checkpoints (indices into `quiet`, increasing), each counted against `threshold`.
  const auto measure = [&](std::vector<std::size_t> at, double threshold) {
    std::vector<Target> targets;
    for (std::size_t i : at) {
      Target t{quiet[i].step, 1, o.futures};
      t.threshold = threshold;
      targets.push_back(t);
    }
    localizer.pass(targets, {});
    for (const Target& t : targets) {
      EVENTMART_ASSERT(t.measured.step == t.step, t.measured.step,
                       t.step);  // same run, same points
      by_step[t.step] = t.measured;
    }
  };
  const auto fraction_at = [&](std::size_t i) { return by_step.at(quiet[i].step).fraction(); };
  // The first quiet point at or after `at_us`.
  const auto index_at = [&](std::int64_t at_us) {
    return static_cast<std::size_t>(
        std::lower_bound(quiet.begin(), quiet.end(), at_us,
                         [](const QuietPoint& q, std::int64_t t) { return q.at_us < t; }) -
        quiet.begin());
  };

  // First pass: evenly over the opening hours, from the first quiet point to the last.
  std::vector<std::size_t> first_pass;
  const std::int64_t t0 = quiet.front().at_us, t1 = quiet.back().at_us;
  for (unsigned k = 0; k < o.checkpoints; ++k) {
    const std::size_t i =
        std::min(quiet.size() - 1, index_at(t0 + (t1 - t0) * k / (o.checkpoints - 1)));
    if (first_pass.empty() || i > first_pass.back()) first_pass.push_back(i);
  }
  measure(first_pass, kHalf);

  // From the start: at least half fail from every checkpoint of the first pass (not the first
  // alone: 8 of 16 at opening can be chance, with the jump to come).
  const bool all_high = std::all_of(first_pass.begin(), first_pass.end(),
                                    [&](std::size_t i) { return fraction_at(i) >= kHalf; });
  if (fraction_at(first_pass.back()) < kHalf) {
    result.verdict = Localization::Verdict::kNotBeforeClosing;
  } else if (all_high) {
    result.verdict = Localization::Verdict::kFromTheStart;
  } else {
    // The last jump from under half to at least half, narrowed by bisection over the quiet
    // points between its ends (by time: the middle of the interval, not of the steps).
    std::size_t low = first_pass.front();
    for (std::size_t i : first_pass) {
      if (fraction_at(i) < kHalf) low = i;
    }
    std::size_t high = *std::upper_bound(first_pass.begin(), first_pass.end(), low);
    while (high - low > 1 && quiet[high].at_us - quiet[low].at_us > o.resolution_us) {
      const std::int64_t middle = quiet[low].at_us + (quiet[high].at_us - quiet[low].at_us) / 2;
      const std::size_t mid = std::clamp(index_at(middle), low + 1, high - 1);
      // Halfway between the ends' fractions, not one half: after a first rare event the
      // futures may fail 30% of the time for hours before the second makes it certain, and
      // a point at 56% is then nearer the low end than the jump to 100% (a swarm day with a
      // long outage then a power loss). So the interval found is the steepest step of the
      // last rise across one half; its ends need not lie on both sides of one half.
      const double halfway = (fraction_at(low) + fraction_at(high)) / 2;
      measure({mid}, halfway);
      (fraction_at(mid) >= halfway ? high : low) = mid;
    }
    // The interval's ends with all their futures (their verdicts stand; the counts firm up),
    // and the trace inside it from the run itself.
    std::vector<Target> ends;
    for (const std::size_t i : {low, high}) {
      const Checkpoint& c = by_step.at(quiet[i].step);
      ends.push_back(Target{c.step, c.futures + 1, o.futures - c.futures, true});
    }
    const std::int64_t from = quiet[low].at_us, to = quiet[high].at_us;
    std::uint64_t inside_total = 0;
    bool struck = false;  // the first process or machine fault after the interval was seen
    const auto listen = [&](const sim::TraceEntry& e) {
      if (e.at_us < from || struck) return;
      if (e.at_us > to) {
        // A crash, power loss, partition, restart, full disk or outage is drawn at a tick and
        // strikes later (a crash inside the service's next transaction): one drawn inside the
        // interval shows here.
        if (e.at_us - to <= Localization::kStrikesWithinUs && is_drawn_fault(e.kind)) {
          struck = true;
          result.next_fault = describe(e);
          result.next_fault_after_us = e.at_us - to;
        }
        return;
      }
      ++inside_total;
      if (result.inside.size() >= Localization::kInside) return;
      result.inside.push_back(describe(e));
    };
    localizer.pass(ends, listen, [&](std::int64_t now_us) {
      return struck || now_us - to > Localization::kStrikesWithinUs;
    });
    for (const Target& t : ends) {
      Checkpoint& c = by_step.at(t.step);
      EVENTMART_ASSERT(t.measured.step == c.step, t.measured.step, c.step);
      c.futures += t.measured.futures;
      c.failing += t.measured.failing;
      if (c.first_failing_child == 0) c.first_failing_child = t.measured.first_failing_child;
    }
    result.inside_total = inside_total;
    const Checkpoint& after = by_step.at(quiet[high].step);
    result.failing_future.seed = o.seed;
    for (const sim::Splitpoint& s : o.plan.base.splits) {
      if (s.step < after.step) result.failing_future.splits.push_back(s);
    }
    EVENTMART_ASSERT(after.first_failing_child > 0);  // above halfway from its low end: some failed
    result.failing_future.splits.push_back(sim::Splitpoint{after.step, after.first_failing_child});
    for (const auto& [step, c] : by_step) {
      if (step == quiet[low].step) result.before = result.curve.size();
      if (step == quiet[high].step) result.after = result.curve.size();
      result.curve.push_back(c);
    }
  }
  if (result.curve.empty()) {
    for (const auto& [step, c] : by_step) result.curve.push_back(c);
  }
  result.futures_run = localizer.futures_run_;
  result.cpu_seconds =
      static_cast<double>(cpu_ns() - cpu_start) / 1e9 + (children_cpu_seconds() - child_cpu_start);
  result.wall_seconds = since(start);
  return result;
}

}  // namespace eventmart::runs
