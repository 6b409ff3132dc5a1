// A timeline of the explorer (runs/explorer.h) as a short printable string: its root seed and
// the splitpoints where its random streams were reseeded. "17" is seed 17 as it always runs;
// "17/48213:3/90211:1" is seed 17 reseeded after scheduler step 48213 as child 3 of that
// splitpoint, and again after step 90211 as child 1. `sim --recipe R` replays it exactly: the
// same trace hash as the process that ran it.
//
// What a split reseeds: every stream drawn from while the day runs (faults and packet fates,
// storage faults, the baskets and the shape's draws in the workload and the world, logistics'
// delivery times). The visits were planned at opening and stay: a child's future differs in
// what happens to them, not in who comes.
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
  bool operator==(const Splitpoint&) const = default;
};

inline constexpr std::size_t kMaxSplits = 64;          // a deeper timeline cannot be meant
inline constexpr std::uint32_t kMaxChild = 1'000'000;  // children of one splitpoint
inline constexpr std::size_t kMaxRecipeBytes = 2048;

struct Recipe {
  std::uint64_t seed = 1;
  std::vector<Splitpoint> splits;  // by step, strictly increasing
};

std::string to_string(const Recipe& recipe);
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
// answers with a child number when this process is now a child that must reseed from there
// (it forked), or nullopt to go on as it was.
class Brancher {
 public:
  virtual ~Brancher() = default;
  virtual std::optional<std::uint32_t> at_quiet_point(std::uint64_t step, std::int64_t now_us,
                                                      const MarkCounts& marks) = 0;
  // Whether it is asked before the recipe's own splits are all taken too (the localizer:
  // checkpoints anywhere along a timeline). A child forked there leaves the rest of the recipe
  // behind: its future is its own from that step on. The explorer only extends a timeline.
  virtual bool within_recipe() const { return false; }
};

}  // namespace eventmart::sim
