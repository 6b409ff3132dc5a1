// Results as JSON Lines and their merge (runs/results.h): every field of a seed's record
// survives the file, shards merge to the summary of the whole range whatever their order, and
// what cannot be one whole run is refused with the reason.
#include "runs/results.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace eventmart::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct TempFile {
  std::string path;
  TempFile() {
    char name[] = "/tmp/eventmart-results-XXXXXX";
    const int fd = ::mkstemp(name);
    if (fd >= 0) ::close(fd);
    path = name;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

runs::RunPlan plan() {
  runs::RunPlan p;
  p.swarm = true;
  p.base.customers = 120;
  p.base.bug = sim::Bug::kFloatMoney;
  return p;
}

// The file of shard `shard` of first..last, from records made up here.
std::string shard_file(const std::vector<runs::SeedRecord>& records, std::uint64_t first,
                       std::uint64_t last, runs::Shard shard) {
  TempFile file;
  runs::ResultsWriter w(file.path);
  w.seeds_header(plan(), first, last, shard, 1);
  runs::SummaryBuilder b;
  for (const runs::SeedRecord& r : records) {
    if (!runs::in_shard(first, r.seed, shard) || r.seed > last) continue;
    w.seed(r);
    b.add(r);
  }
  w.seeds_summary(std::move(b).finish(), 1.5);
  EXPECT_EQ(w.finish(), "");
  return slurp(file.path);
}

std::vector<runs::SeedRecord> made_up(std::uint64_t first, std::uint64_t last) {
  std::vector<runs::SeedRecord> out;
  for (std::uint64_t s = first; s <= last; ++s) {
    runs::SeedRecord r;
    r.seed = s;
    if (s % 3 == 0) r.failures = {"payment_matches_prices", "handler_failures"};
    if (s % 7 == 0) r.assertion = "assertion failed: x > 0 (services/fastlane.cpp:12)";
    if (s % 11 == 0) r.determinism_report = "runs diverge at trace entry 5";
    if (s % 13 == 0) r.could_not_go_on = "database disk image is malformed";
    r.qos0 = s % 4 == 0;
    r.lost_departures = r.qos0 ? s % 5 : 0;
    r.dead_letters = s % 6;
    r.trace_hash = 0xfedcba9876543210ULL ^ s;
    r.marks[0] = s;
    r.marks[kMarkCount - 1] = s % 2;
    out.push_back(r);
  }
  return out;
}

void expect_same(const runs::SeedSummary& a, const runs::SeedSummary& b) {
  EXPECT_EQ(a.seeds, b.seeds);
  EXPECT_EQ(a.failing, b.failing);
  EXPECT_EQ(a.qos0_seeds, b.qos0_seeds);
  EXPECT_EQ(a.lost_departures, b.lost_departures);
  EXPECT_EQ(a.dead_letters, b.dead_letters);
  EXPECT_EQ(a.dead_letter_seeds, b.dead_letter_seeds);
  EXPECT_EQ(a.failed_by, b.failed_by);
  EXPECT_EQ(a.mark_hits, b.mark_hits);
  EXPECT_EQ(a.mark_seeds, b.mark_seeds);
  ASSERT_EQ(a.failing_examples.size(), b.failing_examples.size());
  for (std::size_t i = 0; i < a.failing_examples.size(); ++i) {
    const runs::SeedRecord& x = a.failing_examples[i];
    const runs::SeedRecord& y = b.failing_examples[i];
    EXPECT_EQ(x.seed, y.seed);
    EXPECT_EQ(x.failures, y.failures);
    EXPECT_EQ(x.assertion, y.assertion);
    EXPECT_EQ(x.determinism_report, y.determinism_report);
    EXPECT_EQ(x.could_not_go_on, y.could_not_go_on);
    EXPECT_EQ(x.trace_hash, y.trace_hash);
    EXPECT_EQ(x.marks, y.marks);
  }
}

TEST(Results, ShardsMergeToTheSummaryOfTheWholeRangeInAnyOrder) {
  const auto records = made_up(5, 47);
  runs::SummaryBuilder whole;
  for (const auto& r : records) whole.add(r);
  const runs::SeedSummary expected = std::move(whole).finish();
  std::vector<std::pair<std::string, std::string>> files;
  for (std::uint64_t k : {3, 1, 4, 2}) {
    files.emplace_back("shard-" + std::to_string(k), shard_file(records, 5, 47, {k, 4}));
  }
  auto merged = runs::merge_texts(files);
  ASSERT_TRUE(merged) << merged.error();
  const auto& m = std::get<runs::MergedSeeds>(merged.value());
  EXPECT_EQ(m.first, 5u);
  EXPECT_EQ(m.last, 47u);
  EXPECT_EQ(m.shards, 4u);
  EXPECT_EQ(m.plan.base.bug, sim::Bug::kFloatMoney);
  EXPECT_TRUE(m.plan.swarm);
  EXPECT_EQ(m.plan.base.customers, 120);
  expect_same(m.summary, expected);
}

TEST(Results, AShardsSeedsAreEveryNthFromItsOwnFirst) {
  EXPECT_EQ(runs::shard_size(1, 30, {2, 4}), 8u);  // 2, 6, ..., 30
  EXPECT_EQ(runs::shard_size(1, 30, {3, 4}), 7u);  // 3, 7, ..., 27
  EXPECT_EQ(runs::shard_size(1, 3, {4, 4}), 0u);
  EXPECT_EQ(runs::shard_size(0, UINT64_MAX - 1, {1, 1}), UINT64_MAX);
  EXPECT_TRUE(runs::in_shard(1, 6, {2, 4}));
  EXPECT_FALSE(runs::in_shard(1, 7, {2, 4}));
  EXPECT_THROW((void)runs::shard_size(1, 3, {0, 4}), std::invalid_argument);
  EXPECT_THROW((void)runs::shard_size(1, 3, {5, 4}), std::invalid_argument);
  std::uint64_t total = 0;
  for (std::uint64_t k = 1; k <= 7; ++k) total += runs::shard_size(10, 1000, {k, 7});
  EXPECT_EQ(total, 991u) << "the shards together hold every seed once";
}

TEST(Results, WhatIsNotOneWholeRunIsRefusedWithTheReason) {
  const auto records = made_up(1, 20);
  std::vector<std::string> shard;
  for (std::uint64_t k = 1; k <= 3; ++k) shard.push_back(shard_file(records, 1, 20, {k, 3}));
  const auto refused = [](std::vector<std::pair<std::string, std::string>> files,
                          const std::string& why) {
    auto r = runs::merge_texts(files);
    ASSERT_FALSE(r) << "taken; expected: " << why;
    EXPECT_NE(r.error().find(why), std::string::npos) << r.error();
  };
  refused({{"a", shard[0]}, {"b", shard[1]}}, "shard(s) 3 of 3 missing");
  refused({{"a", shard[0]}, {"b", shard[1]}, {"c", shard[2]}, {"d", shard[1]}},
          "shard 2/3 twice: b and d");
  // A seed line moved to another shard's file.
  std::string moved = shard[1];
  const std::size_t at = moved.find("\"seed\":2,");
  ASSERT_NE(at, std::string::npos);
  moved.replace(at, 9, "\"seed\":3,");
  refused({{"a", shard[0]}, {"b", moved}, {"c", shard[2]}}, "seed 3 is not in shard 2/3");
  // A line added after the summary, a line lost, a line cut.
  refused({{"a", shard[0]}, {"b", shard[1] + "{\"kind\":\"seed\"}\n"}, {"c", shard[2]}},
          "a line after the summary");
  std::string lost = shard[2];
  lost.erase(lost.find("{\"kind\":\"seed\""), lost.find('\n', lost.find("{\"kind\":\"seed\"")) -
                                                  lost.find("{\"kind\":\"seed\"") + 1);
  refused({{"a", shard[0]}, {"b", shard[1]}, {"c", lost}}, "c: truncated or padded");
  refused({{"a", shard[0]}, {"b", shard[1]}, {"c", shard[2].substr(0, shard[2].size() / 2)}},
          "c: line");
  refused({{"a", shard[0]}, {"b", shard[1]}, {"c", ""}}, "c: empty");
  // The same split of another range.
  refused({{"a", shard[0]}, {"b", shard[1]}, {"c", shard_file(records, 1, 19, {3, 3})}},
          "different runs");
  refused({}, "no files to merge");
}

// A line edited in the file text: `from` (once) becomes `to`.
std::string edited(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(Results, ALineThatCannotBeTheShardsIsRefused) {
  const auto records = made_up(1, 12);
  const std::string one = shard_file(records, 1, 12, {1, 2});  // seeds 1, 3, ..., 11
  const std::string two = shard_file(records, 1, 12, {2, 2});  // seeds 2, 4, ..., 12
  const auto refused = [&](const std::string& bad, const std::string& why) {
    auto r = runs::merge_texts({{"one", bad}, {"two", two}});
    ASSERT_FALSE(r) << "taken; expected: " << why;
    EXPECT_NE(r.error().find(why), std::string::npos) << r.error();
  };
  // Seed 3 written twice (and seed 5 lost): the count adds up, the seeds do not.
  refused(edited(one, "\"seed\":5,", "\"seed\":3,"), "one: line 4: seed 3 twice");
  // A seed of the shard's stride past the range's end.
  refused(edited(one, "\"seed\":11,", "\"seed\":13,"), "seed 13 is not in shard 1/2");
  // The summary's failing count against its lines.
  refused(edited(one, "\"failing\":2,", "\"failing\":1,"),
          "its summary says 1 failing, its lines 2");
  // A number no uint64 holds is not read as 0.
  refused(edited(one, "\"dead_letters\":1,", "\"dead_letters\":18446744073709551616,"),
          "\"dead_letters\" is not a whole number");
  refused(edited(one, "\"wall_seconds\":1.5", "\"wall_seconds\":1e-400"),
          "\"wall_seconds\" is not a number a double holds");
  // A key twice in a line: which one would count?
  refused(edited(one, "\"qos0\":false,", "\"qos0\":false,\"qos0\":true,"), "\"qos0\" twice");
  auto ok = runs::merge_texts({{"one", one}, {"two", two}});
  ASSERT_TRUE(ok) << ok.error();
}

// Explore shards: made-up summaries, one failing timeline each.
std::string explore_file(runs::Shard shard, std::uint64_t root, std::uint64_t timelines) {
  TempFile file;
  runs::ExploreOptions o;
  o.plan = plan();
  o.budget_timelines = 40;
  o.shard = shard;
  runs::ResultsWriter w(file.path);
  w.explore_header(o);
  runs::ExploreSummary s;
  s.roots = timelines / 2;
  s.timelines = timelines;
  s.failing = 1;
  s.failed_by["payment_equals_basket"] = 1;
  s.mark_timelines[2] = 5;
  s.cpu_seconds = 2.5;
  s.cpu_to_first_failure = 1.25;
  s.failures.push_back(runs::ExploredFailure{
      sim::Recipe{root, {{4000, 3}}}, {"payment_equals_basket"}, "", 0xabc, 1.25});
  w.explore_result(s);
  EXPECT_EQ(w.finish(), "");
  return slurp(file.path);
}

TEST(Results, ExploreShardsMergeAndARootOutsideItsShardIsRefused) {
  const std::string one = explore_file({1, 2}, 3, 20), two = explore_file({2, 2}, 4, 20);
  auto m = runs::merge_texts({{"one", one}, {"two", two}});
  ASSERT_TRUE(m) << m.error();
  const auto& x = std::get<runs::MergedExploration>(m.value());
  EXPECT_EQ(x.summary.timelines, 40u);
  EXPECT_EQ(x.summary.failing, 2u);
  EXPECT_EQ(x.summary.failed_by.at("payment_equals_basket"), 2u);
  EXPECT_EQ(x.summary.mark_timelines[2], 10u);
  ASSERT_EQ(x.summary.failures.size(), 2u);
  EXPECT_EQ(sim::to_string(x.summary.failures[1].recipe), "4/4000:3");
  EXPECT_EQ(x.options.budget_timelines, 40u) << "the whole search's budget";
  const auto bad = runs::merge_texts({{"one", explore_file({1, 2}, 4, 20)}, {"two", two}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("timeline 4/4000:3 has a root outside shard 1/2"), std::string::npos)
      << bad.error();
  const std::string lost = one.substr(0, one.find("{\"kind\":\"failure\"")) +
                           one.substr(one.find("{\"kind\":\"summary\""));
  const auto short_one = runs::merge_texts({{"one", lost}, {"two", two}});
  ASSERT_FALSE(short_one);
  EXPECT_NE(short_one.error().find("its summary says 1 failure lines, it has 0"), std::string::npos)
      << short_one.error();
}

TEST(Results, ATruncatedFileSaysSo) {
  const auto records = made_up(1, 8);
  const std::string whole = shard_file(records, 1, 8, {1, 1});
  const std::string no_summary = whole.substr(0, whole.rfind("{\"kind\":\"summary\""));
  auto r = runs::merge_texts({{"x.jsonl", no_summary}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("x.jsonl: truncated: no summary line after 8 result lines"),
            std::string::npos)
      << r.error();
  auto ok = runs::merge_texts({{"x.jsonl", whole}});
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(std::get<runs::MergedSeeds>(ok.value()).summary.seeds, 8u);
}

}  // namespace
}  // namespace eventmart::test
