// `eventmart merge`: the JSON Lines files of a swarm or an exploration run in shards
// (`--shard K/N --jsonl FILE`) folded into the summary one machine would have printed.
#include <fstream>
#include <iostream>

#include "apps/cli.h"
#include "apps/commands.h"
#include "report/sim_report.h"
#include "runs/results.h"

namespace po = boost::program_options;

namespace eventmart::apps {
namespace {

constexpr const char* kMergeUsage =
    "Usage: eventmart merge [--json] FILE...\n\n"
    "Folds the results of a run spread over machines (each ran `eventmart sim --seeds A..B\n"
    "--shard K/N --jsonl FILE`, or `eventmart explore ... --shard K/N --jsonl FILE`) into the\n"
    "summary one machine would have printed: totals, failures with their replay commands, the\n"
    "coverage marks. Every shard 1..N must be there once and complete: a missing, repeated or\n"
    "truncated shard, or shards of different runs, are refused with the reason.\n\n"
    "Exit status: 0 every seed or timeline held, 1 one failed, 2 bad usage or files that do\n"
    "not make one whole run, 3 a file could not be read.\n\n"
    "Options";

}  // namespace

int run_merge_command(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  bool json = false;
  po::options_description desc(kMergeUsage);
  desc.add_options()("help", "print this help and exit")(
      "json", "print one JSON object (as sim --json or explore --json) instead of the report");
  po::options_description hidden;
  hidden.add_options()("file", po::value(&paths)->composing());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("file", -1);
  const int usage = with_usage_errors("merge", [&] {
    po::variables_map vm;
    const int style = po::command_line_style::unix_style ^ po::command_line_style::allow_short;
    po::store(po::command_line_parser(args).options(all).style(style).positional(positional).run(),
              vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    json = vm.count("json") > 0;
    if (paths.empty()) throw UsageError{"name the shard files to merge (eventmart merge FILE...)"};
    return -1;
  });
  if (usage != -1) return usage;
  std::vector<std::ifstream> streams;
  streams.reserve(paths.size());
  std::vector<runs::ShardInput> files;
  for (const std::string& path : paths) {
    streams.emplace_back(path, std::ios::binary);
    if (!streams.back()) {
      std::cerr << "eventmart merge: cannot read '" << path << "'\n";
      return 3;
    }
    files.push_back(runs::ShardInput{path, &streams.back()});
  }
  const auto merged = runs::merge_results(files);
  if (!merged) {
    std::cerr << "eventmart merge: " << merged.error() << "\n";
    return 2;
  }
  if (const auto* seeds = std::get_if<runs::MergedSeeds>(&merged.value())) {
    report::SummaryRange range{seeds->first, seeds->last, seeds->jobs, seeds->wall_seconds};
    range.merged_shards = seeds->shards;
    report::print_summary(seeds->plan, seeds->summary, range, json);
    return seeds->summary.failing == 0 ? 0 : 1;
  }
  const auto& exploration = std::get<runs::MergedExploration>(merged.value());
  report::print_exploration(exploration.options, exploration.summary, json, exploration.shards);
  return exploration.summary.failing == 0 ? 0 : 1;
}

}  // namespace eventmart::apps
