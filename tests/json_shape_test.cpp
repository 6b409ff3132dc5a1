// One JSON shape for one thing: the output of `sim`, `sim --seeds`, `explore`, `chaos` and `load`
// with
// --json, validated against docs/schema/eventmart-output.schema.json. (They used to differ:
// invariants an object in one and a list in another, "faults" and "faults_injected".)
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "runtime/live_store.h"
#include "testkit/broker_probe.h"
#include "tests/json_schema.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

SchemaValidator schema() {
  std::ifstream in(EVENTMART_SOURCE_DIR "/docs/schema/eventmart-output.schema.json");
  return SchemaValidator(nlohmann::json::parse(in));
}

// Runs `eventmart ARGS`; its stdout.
std::string run(const std::string& args) {
  const std::string command = std::string(ServeProcess::binary()) + " " + args + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  ::pclose(pipe);
  return out;
}

void expect_valid(const std::string& output, const std::string& kind) {
  SCOPED_TRACE(kind);
  ASSERT_FALSE(output.empty());
  const auto doc = nlohmann::json::parse(output);
  EXPECT_EQ(doc.value("kind", ""), kind);
  const auto errors = schema().validate(doc);
  for (const std::string& e : errors) ADD_FAILURE() << e;
}

TEST(JsonShape, SimOfEveryKindOfDayHasTheDocumentedShape) {
  expect_valid(run("sim --seed 3 --customers 100 --hours 1 --json"), "sim");
  // Faults, dead letters, a failing bug-zoo day, QoS 0 (a liveness check not applying).
  expect_valid(run("sim --seed 4 --customers 200 --hours 1 --faults swarm --json"), "sim");
  expect_valid(run("sim --seed 1 --customers 200 --hours 1 --bug no-dedup --dup 0.3 --json"),
               "sim");
  expect_valid(run("sim --seed 5 --customers 100 --hours 1 --qos 0 --drop 0.2 --json"), "sim");
  expect_valid(run("sim --seed 6 --customers 100 --hours 1 --io-error 0.05 --json"), "sim");
  expect_valid(run("sim --seeds 1..4 --customers 100 --hours 1 --faults swarm --json"), "seeds");
  expect_valid(run("sim --seeds 1..3 --customers 100 --hours 1 --bug no-dedup --dup 0.3 --json"),
               "seeds");
  expect_valid(run("explore --faults swarm --customers 100 --hours 1 --budget 10 --json"),
               "explore");
  expect_valid(run("explore --faults swarm --customers 100 --hours 2 --budget 20 --jobs 1 "
                   "--bug no-outbox --json"),
               "explore");
}

TEST(JsonShape, LoadAndChaosHaveTheDocumentedShape) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  runtime::LiveOptions o;
  o.connection.broker = broker.uri();
  o.data_dir = data.file("");
  o.services = runtime::all_service_names();
  runtime::LiveStore store(o, logger);
  store.start();
  ASSERT_TRUE(wait_until([&] { return store.all_ready(); }));
  expect_valid(run("load --customers 20 --rate 100 --json --broker " + broker.uri()), "load");
  store.stop();
  // Nothing listening: a report all the same, not connected.
  expect_valid(run("load --customers 1 --json --broker tcp://127.0.0.1:" +
                   std::to_string(free_loopback_port())),
               "load");
  expect_valid(
      run("chaos --seed 2 --duration 3 --rate 20 --settle 20 --json --out " + data.file("chaos")),
      "chaos");
}

TEST(JsonShape, TheValidatorRefusesTheShapesThatDrifted) {
  // chaos used to print its invariants as a list, and its faults as "faults_injected".
  const auto sim = nlohmann::json::parse(run("sim --seed 3 --customers 50 --hours 1 --json"));
  auto list = sim;
  list["invariants"] = nlohmann::json::array({{{"name", "stock_never_negative"}}});
  EXPECT_FALSE(schema().validate(list).empty());
  auto renamed = sim;
  renamed["faults_injected"] = renamed["faults"];
  renamed.erase("faults");
  EXPECT_FALSE(schema().validate(renamed).empty());
  auto unnamed = sim;
  unnamed.erase("kind");
  EXPECT_FALSE(schema().validate(unnamed).empty());
}

}  // namespace
}  // namespace eventmart::test
