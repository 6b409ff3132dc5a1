// Results as JSON Lines, and their merge: a swarm or an exploration spread over machines
// (`--shard K/N`) writes one file per shard, and `eventmart merge` folds the files into the
// summary one machine would have printed (docs/simulation.md, "A search over many machines").
//
// A file is, one JSON object per line:
//   {"kind":"header", "format":"eventmart-results/1", "command":"sim"|"explore", what ran
//    (the options as a scenario file holds them), the seed range, "shard":K, "shards":N, ...}
//   {"kind":"seed", ...}      one per seed run (sim), in the order they finished
//   {"kind":"failure", ...}   one per failing timeline kept (explore)
//   {"kind":"summary", ...}   last: the counts, which the lines above must add up to
// Each line is written whole and flushed, so a shard that dies leaves whole lines and no
// summary: merge refuses such a file (truncated) rather than count part of a shard.
#pragma once

#include <cstdint>
#include <cstdio>
#include <istream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/result.h"
#include "runs/explorer.h"
#include "runs/seed_runner.h"

namespace eventmart::runs {

inline constexpr const char* kResultsFormat = "eventmart-results/1";

// Writes one run's results as JSON Lines to a file ('-': standard output).
class ResultsWriter {
 public:
  // Throws std::runtime_error when the file cannot be opened.
  explicit ResultsWriter(const std::string& path);
  ~ResultsWriter();
  ResultsWriter(const ResultsWriter&) = delete;
  ResultsWriter& operator=(const ResultsWriter&) = delete;

  // `eventmart sim --seeds`: the header, then one line per seed as it finishes, then the
  // summary.
  void seeds_header(const RunPlan& plan, std::uint64_t first, std::uint64_t last, Shard shard,
                    unsigned jobs);
  void seed(const SeedRecord& record);
  void seeds_summary(const SeedSummary& summary, double wall_seconds);

  // `eventmart explore`: the header, then (when it ends) its failing timelines and summary.
  void explore_header(const ExploreOptions& options);
  void explore_result(const ExploreSummary& summary);

  // "" when every line was written, else why not (a full disk, a closed pipe).
  std::string finish();

 private:
  void line(const std::string& text);
  std::FILE* out_ = nullptr;
  bool owned_ = false;
  std::string path_;
  std::string error_;
};

// What merged shard files of `eventmart sim --seeds` came to.
struct MergedSeeds {
  RunPlan plan;
  std::uint64_t first = 0, last = 0;
  std::uint64_t shards = 0;
  unsigned jobs = 0;        // over all shards
  double wall_seconds = 0;  // the longest shard's
  SeedSummary summary;      // as one run of first..last would have given
};

// ... and of `eventmart explore`.
struct MergedExploration {
  ExploreOptions options;  // as given to every shard (the budget: all shards' together)
  std::uint64_t shards = 0;
  ExploreSummary summary;  // totals summed, marks' timelines summed, the longest wall time
};

using Merged = std::variant<MergedSeeds, MergedExploration>;

struct ShardInput {
  std::string name;  // for the errors: the file's path
  std::istream* in;  // read a line at a time (a merge does not hold the files)
};

// Merges shard files. Refused, with the file and the reason: a file that is not this format,
// truncated (no summary line, a last line without its newline, or lines that do not add up to
// its summary), a number out of range, a key twice in a line, shards of different runs or
// splits, a shard missing or given twice, a seed outside its shard or twice.
Result<Merged> merge_results(const std::vector<ShardInput>& inputs);
// The same from texts in memory (name, text).
Result<Merged> merge_texts(const std::vector<std::pair<std::string, std::string>>& texts);

}  // namespace eventmart::runs
