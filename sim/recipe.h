// A timeline of the explorer (runs/explorer.h) as a short printable string: its root seed and
// the splitpoints where its random streams were reseeded. "17" is seed 17 as it always runs;
// "17/48213:3/90211:1" is seed 17 reseeded after scheduler step 48213 as child 3 of that
// splitpoint, and again after step 90211 as child 1. A child written "3+" is a storm child: for
// kStormUs of virtual time after its split it also draws its faults from a storm (below).
// `sim --recipe R` replays it exactly: the same trace hash as the process that ran it.
//
// What a split reseeds: every stream drawn from while the day runs (faults and packet fates,
// storage faults, the baskets and the shape's draws in the workload and the world, logistics'
// delivery times). The visits were planned at opening and stay: a child's future differs in
// what happens to them, not in who comes.
//
// A storm: a fresh swarm mix of faults (sim/faults.h, draw_swarm_faults, from the child's own
// stream) with its per-minute faults (crashes, power losses, partitions, broker restarts, full
// disks) kStormFactor times as likely, in force wherever it is stronger than the run's own for
// kStormUs; then the run's own mix again. Every other child of an explorer's splitpoint (three in
// four at a rare state) is a storm child (runs/explorer.h): a bug that needs a second rare event
// inside a short window after the first is then found in a few children instead of in dozens. A
// storm adds no kind of fault a run could not have at its own rates (power loss and full disks only
// where the run's databases are on the simulated disk, power loss only with full durability, as the
// swarm draws them), so what a storm child finds is a failure the services can meet.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/marks.h"
#include "core/result.h"

namespace eventmart::sim {

struct Splitpoint {
  std::uint64_t step = 0;   // after this many scheduler steps (a quiet point: no handler running)
  std::uint32_t child = 1;  // which child of the splitpoint, 1..kMaxChild
  bool storm = false;       // a storm child ("3+"): faults from a storm for kStormUs
  bool operator==(const Splitpoint&) const = default;
};

inline constexpr std::int64_t kStormUs = 10LL * 60 * 1'000'000;  // ten minutes of virtual time
inline constexpr double kStormFactor = 10;

inline constexpr std::size_t kMaxSplits = 64;          // a deeper timeline cannot be meant
inline constexpr std::uint32_t kMaxChild = 1'000'000;  // children of one splitpoint
inline constexpr std::size_t kMaxRecipeBytes = 2048;

struct Recipe {
  std::uint64_t seed = 1;
  std::vector<Splitpoint> splits;  // by step, strictly increasing
};

std::string to_string(const Recipe& recipe);
// A splitpoint's child as a recipe writes it: "3", or "3+" for a storm child.
std::string child_text(const Splitpoint& split);
// The reason a recipe cannot be meant (a bad number, steps not increasing, too long), or it.
Result<Recipe> parse_recipe(std::string_view text);
// Why these splits cannot be a timeline's (steps 0 or not increasing, a child out of range,
// too many), or nullopt.
std::optional<std::string> check_splits(const std::vector<Splitpoint>& splits);

// The seed the run's streams are drawn from after a split at `split` of a timeline whose
// streams were drawn from `seed` until then: a pure function of both.
std::uint64_t reseeded(std::uint64_t seed, const Splitpoint& split);

// The explorer's hand in a running day. At every quiet point while the store is open (between
// two scheduler steps, faults still on) the world tells it the step and the marks so far; it
// answers with the splitpoint when this process is now a child that must reseed from there
// (it forked), or nullopt to go on as it was.
class Brancher {
 public:
  virtual ~Brancher() = default;
  // The splitpoint this process now takes (its step is `step`), or nullopt.
  virtual std::optional<Splitpoint> at_quiet_point(std::uint64_t step, std::int64_t now_us,
                                                   const MarkCounts& marks) = 0;
  // Whether it is asked before the recipe's own splits are all taken too (the localizer:
  // checkpoints anywhere along a timeline). A child forked there leaves the rest of the recipe
  // behind: its future is its own from that step on. The explorer only extends a timeline.
  virtual bool within_recipe() const { return false; }
};

}  // namespace eventmart::sim
