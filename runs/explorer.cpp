#include "runs/explorer.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <new>
#include <set>
#include <stdexcept>
#include <thread>

#include "core/assert.h"
#include "runs/fork.h"

namespace eventmart::runs {
namespace {

constexpr unsigned kMaxJobs = 256;
constexpr std::int64_t kQuietAfterSplitUs = 60'000'000;  // a minute of virtual time
constexpr unsigned kRareChildren = 2;     // a rare state's children, times `children`
constexpr std::uint64_t kRareOneIn = 32;  // rare: reached while open by under 1 in 32 timelines
constexpr unsigned kMaxDepth = 8;
constexpr std::size_t kPairWords = (kMarkCount * kMarkCount + 63) / 64;

struct FailureSlot {
  char recipe[sim::kMaxRecipeBytes + 1];
  char failures[512];
  char assertion[1024];
  std::uint64_t cpu_ns;
  std::uint64_t trace_hash;
};

// Everything the processes of one exploration share (one anonymous MAP_SHARED mapping).
struct Shared {
  std::atomic<std::uint64_t> next_root{0};
  std::atomic<std::uint64_t> claimed{0};           // timelines given energy
  std::atomic<std::uint64_t> children_claimed{0};  // ... of them children
  std::atomic<std::uint64_t> roots{0};
  std::atomic<std::uint64_t> roots_done{0};  // root timelines that finished (children's energy)
  std::atomic<std::uint64_t> timelines{0};  // finished
  std::atomic<std::uint64_t> failing{0};
  std::atomic<std::uint64_t> splitpoints{0};
  std::atomic<std::uint64_t> discoveries{0};
  std::atomic<std::uint64_t> max_depth{0};
  std::atomic<std::uint64_t> cpu_ns{0};        // of finished timelines
  std::atomic<std::uint64_t> child_cpu_ns{0};  // ... of them children
  std::atomic<std::uint64_t> first_failure_cpu_ns{0};
  std::atomic<bool> stop{false};
  std::atomic<int> fork_errno{0};  // a fork failed: the exploration stopped (its errno)
  std::atomic<std::uint64_t> reached[kMarkCount] = {};     // finished timelines that hit it
  std::atomic<std::uint64_t> seen[kMarkCount] = {};        // hit anywhere yet (splitpoint rule 1)
  std::atomic<std::uint64_t> max_bucket[kMarkCount] = {};  // bit_width of most hits in one
  std::atomic<std::uint64_t> splits_on[kMarkCount] = {};
  std::atomic<std::uint64_t> pairs[kPairWords] = {};
  std::atomic<std::uint64_t> reached_open[kMarkCount] = {};  // timelines, first hit while open
  // CPU time an unfinished ancestor spent before it forked: pending[worker][depth].
  std::atomic<std::uint64_t> pending[kMaxJobs][kMaxDepth + 1] = {};
  std::atomic<std::uint64_t> kept{0};
  FailureSlot slots[ExploreSummary::kKept];
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "atomics shared across processes");

void copy_text(char* to, std::size_t size, const std::string& text) {
  const std::size_t n = std::min(size - 1, text.size());
  std::memcpy(to, text.data(), n);
  to[n] = '\0';
}

// Whether a timeline may start (a root, or a child of a splitpoint), taking its energy.
// Breadth first: each root that finished earns half a child (at the first root every mark is
// new, and its splitpoints would otherwise take the energy of the next hundred roots), a whole
// one for a child at a rare state (what the roots are run to find), and children never take
// more than half of the budget. Finished, not started: the first root's children would run
// before its own verdict, and a bug that the first root finds would cost them on top.
bool claim(Shared& s, const ExploreOptions& o, bool child, bool rare = false) {
  if (s.stop.load()) return false;
  const auto budget_ns = static_cast<std::uint64_t>(o.budget_cpu_seconds * 1e9);
  if (o.budget_cpu_seconds > 0 && s.cpu_ns.load() >= budget_ns) return false;
  if (child) {
    if (o.budget_cpu_seconds > 0 && s.child_cpu_ns.load() >= budget_ns / 2) return false;
    const std::uint64_t before = s.children_claimed.fetch_add(1);
    if ((rare ? before : 2 * before) >= s.roots_done.load() ||
        (o.budget_timelines > 0 && before >= o.budget_timelines / 2)) {
      s.children_claimed.fetch_sub(1);
      return false;
    }
  }
  if (o.budget_timelines > 0 && s.claimed.fetch_add(1) >= o.budget_timelines) {
    s.claimed.fetch_sub(1);
    if (child) s.children_claimed.fetch_sub(1);
    return false;
  }
  return true;
}

// A fork that failed stops the exploration: its errno is what the command reports.
void fork_failed(Shared& s) {
  int none = 0;
  s.fork_errno.compare_exchange_strong(none, errno != 0 ? errno : EAGAIN);
  s.stop.store(true);
}

// One process's timeline: the splitpoint rules, the forks, and the verdict at its end.
class Timeline final : public sim::Brancher {
 public:
  Timeline(Shared& shared, const ExploreOptions& options, unsigned worker, std::uint64_t root,
           const std::set<int>& fds)
      : s_(shared), o_(options), worker_(worker), root_(root), fds_(fds), cpu_start_(cpu_ns()) {}

  std::optional<sim::Splitpoint> at_quiet_point(std::uint64_t step, std::int64_t now_us,
                                                const MarkCounts& marks) override {
    if (marks == last_) return std::nullopt;
    const Found found = news(marks);
    last_ = marks;
    if (found.mark < 0 || depth_ >= o_.max_depth || s_.stop.load()) return std::nullopt;
    // A timeline that has just split must diverge before it splits again: children of a
    // child a step later would be the same futures as more children of the first split.
    if (split_at_us_ >= 0 && now_us - split_at_us_ < kQuietAfterSplitUs) return std::nullopt;
    // Each mark opens at most splits_per_mark splitpoints for news; a rare state is bounded by
    // the energy alone (its futures are what the exploration is for).
    const bool rare = found.rare_mark >= 0;
    if (!rare && s_.splits_on[found.mark].fetch_add(1) >= o_.splits_per_mark) return std::nullopt;
    return branch(step, now_us, rare);
  }

  bool is_child() const { return depth_ > 0; }

  // The timeline ended with an exception instead of a verdict.
  void failed(const std::string& why) {
    spent();
    s_.timelines.fetch_add(1);
    record_failure(sim::Recipe{root_, path_}, {why}, "", 0);
  }

  // The timeline ended (in this process): its verdict into the shared record.
  void finish(const SeedOutcome& outcome) {
    spent();
    for (std::size_t m = 0; m < kMarkCount; ++m) {
      if (outcome.result.marks[m] > 0) s_.reached[m].fetch_add(1);
    }
    s_.timelines.fetch_add(1);
    if (outcome.passed()) return;
    if (!outcome.could_not_go_on.empty()) {
      // The world stopped mid-run (a database a bug left corrupt): its result holds no splits,
      // this process's path is the timeline's recipe.
      record_failure(sim::Recipe{root_, path_}, outcome.failures(),
                     "the run could not go on: " + outcome.could_not_go_on, 0);
      return;
    }
    record_failure(sim::Recipe{root_, outcome.result.splits}, outcome.failures(),
                   outcome.result.assertion, outcome.result.trace_hash);
  }

 private:
  // This process's CPU time into the shared totals (a child's into the children's too).
  void spent() {
    const std::uint64_t cpu = cpu_ns() - cpu_start_;
    s_.cpu_ns.fetch_add(cpu);
    if (is_child()) s_.child_cpu_ns.fetch_add(cpu);
  }

  struct Found {
    int mark = -1;           // what makes this quiet point a splitpoint, or -1
    bool rare_only = false;  // only the rare rule: nothing new to discover, a state to revisit
    int rare_mark = -1;      // a rare mark hit here for the first time in this timeline, or -1
  };
  // Which mark makes this quiet point a splitpoint (the rules in explorer.h).
  Found news(const MarkCounts& marks) {
    Found found;
    for (std::size_t m = 0; m < kMarkCount; ++m) {
      if (marks[m] == last_[m]) continue;
      bool is_new = false;
      if (last_[m] == 0 && s_.seen[m].exchange(1) == 0) is_new = true;
      const std::uint64_t bucket = static_cast<std::uint64_t>(std::bit_width(marks[m]));
      std::uint64_t best = s_.max_bucket[m].load();
      while (bucket > best && !s_.max_bucket[m].compare_exchange_weak(best, bucket)) {
      }
      if (bucket > best) is_new = true;
      if (last_[m] == 0) {
        for (std::size_t n = 0; n < kMarkCount; ++n) {
          if (n == m || marks[n] == 0) continue;
          const std::size_t bit = std::min(m, n) * kMarkCount + std::max(m, n);
          const std::uint64_t mask = std::uint64_t{1} << (bit % 64);
          if ((s_.pairs[bit / 64].fetch_or(mask) & mask) == 0) is_new = true;
        }
      }
      if (is_new) s_.discoveries.fetch_add(1);
      const std::uint64_t done = s_.timelines.load();
      // Rare: reached while the store is open (where futures can differ) by fewer than one
      // timeline in kRareOneIn so far.
      const bool first_here = last_[m] == 0;
      if (first_here) s_.reached_open[m].fetch_add(1);
      const bool rare = first_here && s_.reached_open[m].load() * kRareOneIn < done;
      // Only the mark and its rule: a rare mark found earlier in this loop stays found.
      if (is_new && (found.mark < 0 || found.rare_only)) {
        found.mark = static_cast<int>(m);
        found.rare_only = false;
      }
      if (rare && found.mark < 0) {
        found.mark = static_cast<int>(m);
        found.rare_only = true;
      }
      if (rare && found.rare_mark < 0) found.rare_mark = static_cast<int>(m);
    }
    return found;
  }

  // Forks this timeline's children one after another, each waited for; returns the splitpoint
  // in a child, nullopt in this (the parent) process.
  std::optional<sim::Splitpoint> branch(std::uint64_t step, std::int64_t now_us, bool rare) {
    // A rare state gets kRareChildren times the children: the futures of a state that few
    // timelines reach (under one in kRareOneIn) are where a second rare event finds a bug.
    const unsigned k = std::max(1u, (rare ? kRareChildren * o_.children : o_.children) >> depth_);
    const std::uint64_t found_before = s_.discoveries.load();
    bool forked = false;
    for (std::uint32_t child = 1; child <= k; ++child) {
      // The first half found nothing new: the rest of the energy stays in the pool. Not at a
      // rare state: its futures are what is worth the energy there, new coverage or not.
      if (!rare && child > (k + 1) / 2 && s_.discoveries.load() == found_before) break;
      if (s_.stop.load() || !claim(s_, o_, true, rare)) break;
      if (child == 1) s_.splitpoints.fetch_add(1);
      // Every other child is a storm child (sim/recipe.h): the second rare event a bug needs
      // is then likely inside the window the first one opened, while the plain children keep
      // the run's own mix. At a rare state three in four are: the second event is what its
      // futures are for.
      const bool storm = rare ? child % 4 != 1 : child % 2 == 0;
      const sim::Splitpoint at{step, child, o_.storms && storm};
      check_fork_safe(fds_);
      s_.pending[worker_][depth_].store(cpu_ns() - cpu_start_);
      const pid_t parent = ::getpid();
      const pid_t pid = o_.fork_process();
      forked = forked || pid > 0;
      if (pid == 0) {
        die_with_parent(parent);
        cpu_start_ = cpu_ns();
        split_at_us_ = now_us;
        path_.push_back(at);
        ++depth_;
        std::uint64_t deepest = s_.max_depth.load();
        while (depth_ > deepest && !s_.max_depth.compare_exchange_weak(deepest, depth_)) {
        }
        return at;
      }
      if (pid < 0) {
        fork_failed(s_);
        break;
      }
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!clean) {
        // It never reported: its verdict is how it ended.
        std::vector<sim::Splitpoint> splits = path_;
        splits.push_back(at);
        const std::string how = WIFSIGNALED(status)
                                    ? "crashed (signal " + std::to_string(WTERMSIG(status)) + ")"
                                    : "crashed (exit " + std::to_string(WEXITSTATUS(status)) + ")";
        s_.timelines.fetch_add(1);
        record_failure(sim::Recipe{root_, splits}, {how}, "", 0);
      }
    }
    s_.pending[worker_][depth_].store(0);
    // The parent's own future from here is one more of the same: it too waits a minute.
    if (forked) split_at_us_ = now_us;
    return std::nullopt;
  }

  // A process forks with one thread and only the descriptors its worker started with: the
  // world holds no real file or socket that a copy would share.

  void record_failure(const sim::Recipe& recipe, const std::vector<std::string>& failures,
                      const std::string& assertion, std::uint64_t trace_hash) {
    s_.failing.fetch_add(1);
    std::uint64_t ancestors = 0;  // what the unfinished timelines above this one spent
    for (unsigned d = 0; d < depth_; ++d) ancestors += s_.pending[worker_][d].load();
    std::uint64_t none = 0;  // the first failure's CPU time (never 0: 0 says none yet)
    s_.first_failure_cpu_ns.compare_exchange_strong(
        none, std::max<std::uint64_t>(s_.cpu_ns.load() + ancestors, 1));
    if (o_.stop_at_first_failure) s_.stop.store(true);
    const std::uint64_t slot = s_.kept.fetch_add(1);
    if (slot >= ExploreSummary::kKept) return;
    FailureSlot& f = s_.slots[slot];
    copy_text(f.recipe, sizeof f.recipe, sim::to_string(recipe));
    std::string names;
    for (const std::string& name : failures) names += (names.empty() ? "" : ",") + name;
    copy_text(f.failures, sizeof f.failures, names);
    copy_text(f.assertion, sizeof f.assertion, assertion);
    f.cpu_ns = s_.cpu_ns.load() + ancestors;
    f.trace_hash = trace_hash;
  }

  Shared& s_;
  const ExploreOptions& o_;
  unsigned worker_;
  std::uint64_t root_;
  const std::set<int>& fds_;
  std::uint64_t cpu_start_;
  unsigned depth_ = 0;
  std::int64_t split_at_us_ = -1;  // virtual time of this timeline's latest split, -1: none
  MarkCounts last_{};
  std::vector<sim::Splitpoint> path_;  // this process's splits so far
};

// A worker process: roots one after another until they or the energy run out. Never returns.
[[noreturn]] void worker(Shared& s, const ExploreOptions& o, unsigned index) {
  int code = 0;
  try {
    const std::set<int> fds = open_fds();
    while (!s.stop.load()) {
      // The shard's roots: first_root + (index - 1) + i * count, while within last_root.
      const std::uint64_t i = s.next_root.fetch_add(1);
      const std::uint64_t span = o.last_root - o.first_root;
      if (o.shard.index - 1 > span || i > (span - (o.shard.index - 1)) / o.shard.count) break;
      const std::uint64_t root = o.first_root + (o.shard.index - 1) + i * o.shard.count;
      if (!claim(s, o, false)) break;
      s.roots.fetch_add(1);
      Timeline timeline(s, o, index, root, fds);
      RunPlan plan = o.plan;
      plan.check_determinism = false;
      plan.base.brancher = &timeline;
      try {
        const SeedOutcome outcome = run_seed(plan, root);
        timeline.finish(outcome);
      } catch (const std::exception& e) {
        // What run_seed does not turn into a failing outcome itself (it does for a world that
        // cannot go on): a failing timeline with its recipe; the worker goes on with the next
        // root.
        timeline.failed(std::string("the run stopped: ") + e.what());
      }
      if (timeline.is_child()) ::_exit(0);  // a child's day is over; its parent goes on
      s.roots_done.fetch_add(1);
    }
  } catch (const std::exception& e) {
    const std::string line = std::string("eventmart explore: a worker failed: ") + e.what() + "\n";
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, line.data(), line.size());
    code = 3;
  }
  ::_exit(code);
}

ExploreProgress progress_of(const Shared& s, double wall) {
  std::uint64_t reached = 0;
  for (const auto& r : s.reached) reached += r.load() > 0;
  return ExploreProgress{s.roots.load(),
                         s.timelines.load(),
                         s.failing.load(),
                         reached,
                         static_cast<unsigned>(s.max_depth.load()),
                         wall};
}

// The options one shard runs with: its share of the budget (the first budget % count shards
// one timeline more), the whole budget without shards.
ExploreOptions share_of(const ExploreOptions& given) {
  const Shard shard = given.shard;
  if (shard.index < 1 || shard.index > shard.count) {
    throw std::invalid_argument("a shard must be K/N with 1 <= K <= N");
  }
  ExploreOptions o = given;
  if (shard.count == 1) return o;
  if (o.budget_timelines > 0) {
    o.budget_timelines = given.budget_timelines / shard.count +
                         (shard.index <= given.budget_timelines % shard.count ? 1 : 0);
    if (o.budget_timelines == 0) {
      throw std::invalid_argument("a budget of " + std::to_string(given.budget_timelines) +
                                  " timelines leaves none for shard " +
                                  std::to_string(shard.index) + " of " +
                                  std::to_string(shard.count));
    }
  }
  o.budget_cpu_seconds = given.budget_cpu_seconds / static_cast<double>(shard.count);
  return o;
}

}  // namespace

ExploreSummary explore(const ExploreOptions& given,
                       const std::function<void(const ExploreProgress&)>& progress) {
  const ExploreOptions o = share_of(given);
  if (o.jobs < 1 || o.jobs > kMaxJobs) throw std::invalid_argument("jobs must be 1..256");
  if (o.max_depth > kMaxDepth) throw std::invalid_argument("depth must be 0..8");
  if (o.first_root > o.last_root || o.last_root - o.first_root < o.shard.index - 1) {
    throw std::invalid_argument("no roots to explore");
  }
  if (o.budget_timelines == 0 && o.budget_cpu_seconds <= 0 && o.last_root == UINT64_MAX) {
    throw std::invalid_argument("an exploration needs a budget or a last root");
  }
  if (!o.plan.base.splits.empty()) {
    throw std::invalid_argument("an exploration starts from seeds, not from a recipe");
  }
  check_world_forkable(options_for(o.plan, o.first_root), "explore");
  void* memory =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::runtime_error("explore: mmap failed");
  Shared& s = *new (memory) Shared();
  s.next_root.store(0);  // the index of the shard's next root
  // Nothing buffered may be copied into the workers (they never write to these streams).
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  const auto start = std::chrono::steady_clock::now();
  const auto wall = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::vector<pid_t> workers;
  const pid_t self = ::getpid();
  for (unsigned j = 0; j < o.jobs; ++j) {
    const pid_t pid = o.fork_process();
    if (pid == 0) {
      die_with_parent(self);
      worker(s, o, j);
    }
    if (pid < 0) {
      fork_failed(s);
      break;
    }
    workers.push_back(pid);
  }
  int bad_workers = 0;
  auto last_progress = std::chrono::steady_clock::now();
  while (!workers.empty()) {
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      auto it = std::find(workers.begin(), workers.end(), done);
      if (it != workers.end()) {
        workers.erase(it);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++bad_workers;
      }
      continue;
    }
    if (done < 0 && errno != EINTR) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (progress &&
        std::chrono::steady_clock::now() - last_progress > std::chrono::milliseconds(500)) {
      last_progress = std::chrono::steady_clock::now();
      progress(progress_of(s, wall()));
    }
  }
  ExploreSummary summary;
  summary.roots = s.roots.load();
  summary.timelines = s.timelines.load();
  summary.splitpoints = s.splitpoints.load();
  summary.failing = s.failing.load();
  summary.max_depth = static_cast<unsigned>(s.max_depth.load());
  for (std::size_t m = 0; m < kMarkCount; ++m) summary.mark_timelines[m] = s.reached[m].load();
  summary.cpu_seconds = static_cast<double>(s.cpu_ns.load()) / 1e9;
  summary.wall_seconds = wall();
  if (summary.failing > 0) {
    summary.cpu_to_first_failure = static_cast<double>(s.first_failure_cpu_ns.load()) / 1e9;
  }
  const std::uint64_t kept = std::min<std::uint64_t>(s.kept.load(), ExploreSummary::kKept);
  for (std::uint64_t i = 0; i < kept; ++i) {
    const FailureSlot& f = s.slots[i];
    ExploredFailure failure;
    auto recipe = sim::parse_recipe(f.recipe);
    EVENTMART_ASSERT(static_cast<bool>(recipe), f.recipe);
    failure.recipe = recipe.value();
    std::string names = f.failures;
    for (std::size_t at = 0; at <= names.size();) {
      const std::size_t comma = std::min(names.find(',', at), names.size());
      if (comma > at) failure.failures.push_back(names.substr(at, comma - at));
      at = comma + 1;
    }
    failure.assertion = f.assertion;
    failure.cpu_seconds = static_cast<double>(f.cpu_ns) / 1e9;
    failure.trace_hash = f.trace_hash;
    for (const std::string& name : failure.failures) ++summary.failed_by[name];
    summary.failures.push_back(std::move(failure));
  }
  const int fork_errno = s.fork_errno.load();
  s.~Shared();
  ::munmap(memory, sizeof(Shared));
  if (fork_errno != 0) {
    throw std::runtime_error(std::string("a fork failed (") + std::strerror(fork_errno) +
                             "): the exploration stopped after " +
                             std::to_string(summary.timelines) +
                             " timelines; every process it started has ended");
  }
  if (bad_workers > 0) {
    throw std::runtime_error(std::to_string(bad_workers) +
                             " explorer worker(s) failed (see above)");
  }
  return summary;
}

}  // namespace eventmart::runs
