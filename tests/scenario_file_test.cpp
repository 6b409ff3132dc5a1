// Scenario files (sim/scenario_file.h): what is written reads back to the same run, and what
// cannot be meant is refused with the key and the reason.
#include "sim/scenario_file.h"

#include <gtest/gtest.h>

#include <string>

namespace eventmart::sim {
namespace {

std::string error_of(const std::string& text) {
  const auto file = parse_scenario_file(text);
  return file ? std::string() : file.error();
}

const char* kExplicit = R"({"eventmart_scenario": 1, "seed": 3, "bug": "no-dedup", "qos": 1,
  "store": [{"sku": 1, "name": "Tea", "price_cents": 129, "stock": 5, "restock_threshold": 2,
             "restock_quantity": 4}],
  "visits": [{"customer": 3, "arrives_at_us": 0, "shopping_us": 1000,
              "wanted": [{"sku": 1, "quantity": 2}]}],
  "packet_faults": [{"fault": "delay", "bus": "logistics", "leg": "deliver",
                     "client": "logistics", "nth": 2, "delay_us": 5}],
  "crashes": [{"service": "fastlane-finale", "at_us": 7, "when": "after-commit"}]})";

TEST(ScenarioFile, AnExplicitScenarioReadsBackAsWritten) {
  const auto first = parse_scenario_file(kExplicit);
  ASSERT_TRUE(first) << first.error();
  const auto again = parse_scenario_file(to_json(first.value()));
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(to_json(first.value()), to_json(again.value()));
  const Scenario& s = *again.value().options.scenario;
  EXPECT_EQ(again.value().options.seed, 3u);
  EXPECT_EQ(again.value().options.bug, Bug::kNoDedup);
  ASSERT_EQ(s.products.size(), 1u);
  EXPECT_EQ(s.products[0].price_cents, 129);
  ASSERT_EQ(s.visits.size(), 1u);
  EXPECT_EQ(s.visits[0].wanted.at(0).quantity, 2);
  ASSERT_EQ(s.packet_faults.size(), 1u);
  EXPECT_EQ(s.packet_faults[0].bus, BusId::kLogistics);
  EXPECT_EQ(s.packet_faults[0].leg, memory::PacketKind::kDeliver);
  EXPECT_EQ(s.packet_faults[0].delay_us, 5);
  ASSERT_EQ(s.crashes.size(), 1u);
  EXPECT_EQ(s.crashes[0].when, ScheduledCrash::When::kAfterCommit);
}

TEST(ScenarioFile, ASeededRunKeepsEveryFaultOptionExactly) {
  ScenarioFile f;
  f.options.seed = 18'446'744'073'709'551'615ULL;  // the largest seed survives JSON
  f.options.customers = 123;
  f.options.open_duration_us = 90 * 60'000'000LL;
  f.options.faults.drop_probability = 0.1 + 0.2;  // not a short decimal
  f.options.faults.delay_mean_us = 1234;
  f.options.faults.qos = Qos::kAtMostOnce;
  f.options.durability = Durability::kNormal;
  f.found = "a test";
  const auto back = parse_scenario_file(to_json(f));
  ASSERT_TRUE(back) << back.error();
  const SimOptions& o = back.value().options;
  EXPECT_EQ(o.seed, f.options.seed);
  EXPECT_EQ(o.customers, 123);
  EXPECT_EQ(o.open_duration_us, f.options.open_duration_us);
  EXPECT_EQ(o.faults.drop_probability, f.options.faults.drop_probability);
  EXPECT_EQ(o.faults.delay_mean_us, 1234);
  EXPECT_EQ(o.faults.qos, Qos::kAtMostOnce);
  EXPECT_EQ(o.durability, Durability::kNormal);
  EXPECT_EQ(back.value().found, "a test");
}

TEST(ScenarioFile, ASwarmFileNamesNoDurabilityTheSeedDrawsIt) {
  ScenarioFile f;
  f.swarm = true;
  EXPECT_EQ(to_json(f).find("durability"), std::string::npos);
  EXPECT_NE(error_of(R"({"eventmart_scenario":1,"seed":1,"faults":"swarm","durability":"full"})")
                .find("durability"),
            std::string::npos);
}

// A timeline of the explorer is kept as its recipe, beside the seed (sim/recipe.h).
TEST(ScenarioFile, AnExploredTimelineKeepsItsRecipe) {
  const char* text = R"({"eventmart_scenario": 1, "seed": 7, "recipe": "7/120:3/4000:1",
    "bug": "none", "customers": 50, "products": 10, "hours": 1, "faults": "swarm"})";
  const auto file = parse_scenario_file(text);
  ASSERT_TRUE(file) << file.error();
  EXPECT_EQ(file.value().options.splits, (std::vector<Splitpoint>{{120, 3}, {4000, 1}}));
  const auto again = parse_scenario_file(to_json(file.value()));
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(again.value().options.splits, file.value().options.splits);
  EXPECT_NE(to_json(file.value()).find(R"("recipe": "7/120:3/4000:1")"), std::string::npos);

  EXPECT_NE(
      error_of(R"({"eventmart_scenario": 1, "seed": 8, "recipe": "7/120:3", "faults": "swarm"})")
          .find("recipe: its seed is not the file's seed"),
      std::string::npos);
  EXPECT_NE(
      error_of(
          R"({"eventmart_scenario": 1, "seed": 7, "recipe": "7/120:3/100:1", "faults": "swarm"})")
          .find("recipe: recipe '7/120:3/100:1': splitpoint steps must increase"),
      std::string::npos);
  EXPECT_NE(error_of(R"({"eventmart_scenario": 1, "seed": 7, "recipe": 7, "faults": "swarm"})")
                .find("recipe"),
            std::string::npos);
}

TEST(ScenarioFile, WhatCannotBeMeantIsRefusedNamingTheKey) {
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "not valid JSON"},
      {"[1]", "JSON object"},
      {R"({"seed":1,"faults":"none"})", "eventmart_scenario: missing"},
      {R"({"eventmart_scenario":2,"seed":1,"faults":"none"})", "version 2"},
      {R"({"eventmart_scenario":1,"faults":"none"})", "seed: missing"},
      {R"({"eventmart_scenario":1,"seed":1})", "faults: missing"},
      {R"({"eventmart_scenario":1,"seed":-1,"faults":"none"})", "seed: must be an integer"},
      {R"({"eventmart_scenario":1,"seed":1,"faults":"none","customers":"many"})", "customers"},
      {R"({"eventmart_scenario":1,"seed":1,"faults":{"drop":"x"}})", "faults.drop"},
      {R"({"eventmart_scenario":1,"seed":1,"faults":{"meteor":1}})", "faults.meteor"},
      {R"({"eventmart_scenario":1,"seed":1,"faults":"none","bug":"nope"})", "bug"},
      {R"({"eventmart_scenario":1,"seed":1,"faults":"none","typo":1})", "typo: not a key"},
      {R"({"eventmart_scenario":1,"seed":1,"faults":"none","violates":["x"]})", "violates"},
      {R"({"eventmart_scenario":1,"seed":1,"store":[{"sku":1,"price_cents":1,"stock":1,
          "restock_threshold":0,"restock_quantity":1},{"sku":1,"price_cents":1,"stock":1,
          "restock_threshold":0,"restock_quantity":1}],"visits":[]})",
       "in the store twice"},
      {R"({"eventmart_scenario":1,"seed":1,"store":[],"visits":[{"customer":1,
          "arrives_at_us":0,"shopping_us":0,"wanted":[{"sku":77,"quantity":1}]}]})",
       "77 is not in the store"},
      {R"({"eventmart_scenario":1,"seed":1,"store":[],"visits":[],"packet_faults":[{"fault":
          "drop","bus":"store","leg":"deliver","client":"nobody","nth":0}]})",
       "'nobody'"},
      {R"({"eventmart_scenario":1,"seed":1,"store":[],"visits":[],"packet_faults":[{"fault":
          "drop","bus":"store","leg":"deliver","client":"hello-helper","nth":-1}]})",
       "nth"},
      {R"({"eventmart_scenario":1,"seed":1,"store":[],"visits":[],"packet_faults":[{"fault":
          "drop","bus":"store","leg":"deliver","client":"hello-helper","nth":0,"delay_us":5}]})",
       "only a delay fault"},
      {R"({"eventmart_scenario":1,"seed":1,"store":[],"visits":[],"crashes":[{"service":
          "logistics","at_us":0,"when":"now"}]})",
       "not one of the five services"},
      {R"({"eventmart_scenario":1,"seed":1,"store":[],"visits":[{"customer":1,
          "arrives_at_us":0,"shopping_us":0,"wanted":[],"extra":1}]})",
       "visits[0].extra"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string error = error_of(text);
    EXPECT_NE(error.find(expected), std::string::npos)
        << text << "\n  error: '" << error << "'\n  expected it to contain: " << expected;
  }
}

}  // namespace
}  // namespace eventmart::sim
