// The regression corpus (tests/regressions/*.json): each file a run that once failed, kept
// so that it is checked forever. A file with the real services must now hold every
// invariant; a file with a bug variant must still be caught, violating what it violated when
// it was saved. Every file says what it found. Files are found when the test runs, so a new
// one (scripts/add-regression.sh) is replayed by the next `make test` without a rebuild.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runs/seed_runner.h"
#include "sim/scenario_file.h"

namespace eventmart::runs {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(EVENTMART_SOURCE_DIR) / "tests" / "regressions";

std::vector<std::string> corpus() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(kCorpus)) {
    if (entry.path().extension() == ".json") names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class Regression : public ::testing::TestWithParam<std::string> {};

TEST_P(Regression, Replays) {
  std::ifstream in(kCorpus / GetParam(), std::ios::binary);
  ASSERT_TRUE(in) << GetParam();
  std::ostringstream text;
  text << in.rdbuf();
  const auto file = sim::parse_scenario_file(text.str());
  ASSERT_TRUE(file) << GetParam() << ": " << file.error();
  const sim::ScenarioFile& f = file.value();
  EXPECT_FALSE(f.found.empty()) << GetParam() << " does not say what it found (\"found\")";
  ASSERT_FALSE(sim::validate(f.options)) << GetParam() << ": " << sim::validate(f.options)->problem;

  for (const std::string& name : f.violates) {
    EXPECT_TRUE(properties::is_invariant_name(name))
        << GetParam() << ": violates names no invariant: " << name;
  }
  RunPlan plan;
  plan.base = f.options;
  plan.swarm = f.swarm;
  const SeedOutcome outcome = run_seed(plan, f.options.seed);
  std::vector<std::string> violated;
  for (const auto& inv : outcome.invariants) {
    if (!inv.held()) violated.push_back(inv.name + ": " + inv.examples.front());
  }
  const std::string replay = "eventmart sim --scenario tests/regressions/" + GetParam();
  if (f.options.bug == sim::Bug::kNone) {
    EXPECT_TRUE(outcome.passed()) << f.found << "\nfails again; replay: " << replay << "\n"
                                  << (violated.empty() ? "" : violated.front());
    EXPECT_TRUE(f.violates.empty()) << "the real services are expected to hold every invariant";
  } else {
    EXPECT_FALSE(outcome.passed())
        << "bug " << sim::bug_name(f.options.bug) << " is no longer caught; replay: " << replay;
    for (const std::string& name : f.violates) {
      const bool still =
          std::any_of(outcome.invariants.begin(), outcome.invariants.end(),
                      [&](const auto& inv) { return inv.name == name && !inv.held(); });
      EXPECT_TRUE(still) << name << " is no longer violated; replay: " << replay;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, Regression, ::testing::ValuesIn(corpus()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param.substr(0, info.param.size() - 5);
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

TEST(RegressionCorpus, IsNotEmpty) {
  EXPECT_FALSE(corpus().empty()) << kCorpus;
}

}  // namespace
}  // namespace eventmart::runs
