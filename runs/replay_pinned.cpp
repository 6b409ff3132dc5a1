// eventmart-replay: runs the seeds a file pins and compares their trace hashes, to prove a
// run replays on any machine and compiler (make cross-replay builds it for arm64 and at -O0
// and -O3; make test runs it in every build). It needs only the simulator (no MQTT, no
// report), so it builds where the rest cannot.
//
//   eventmart-replay FILE           each line "plain|swarm SEED CUSTOMERS HASH": exit 0 when
//                                   every hash is the pinned one, 1 when one differs
//   eventmart-replay --print FILE   prints FILE's lines with the hashes this build computes
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "core/event_id.h"
#include "runs/seed_runner.h"

namespace {

struct Pin {
  std::string mode;  // plain or swarm
  std::uint64_t seed = 0;
  std::int64_t customers = 0;
  std::string hash;
};

bool parse(const std::string& line, Pin& pin) {
  std::istringstream in(line);
  return static_cast<bool>(in >> pin.mode >> pin.seed >> pin.customers >> pin.hash) &&
         (pin.mode == "plain" || pin.mode == "swarm") && pin.customers >= 0;
}

std::string hash_of(const Pin& pin) {
  eventmart::runs::RunPlan plan;
  plan.base.customers = pin.customers;
  plan.swarm = pin.mode == "swarm";
  const auto result = eventmart::sim::run_simulation(eventmart::runs::options_for(plan, pin.seed));
  return eventmart::to_hex64(result.trace_hash);
}

}  // namespace

int main(int argc, char** argv) {
  const bool print = argc == 3 && std::strcmp(argv[1], "--print") == 0;
  if (argc != 2 && !print) {
    std::fprintf(stderr, "usage: eventmart-replay [--print] FILE\n");
    return 2;
  }
  std::ifstream in(argv[argc - 1]);
  if (!in) {
    std::fprintf(stderr, "eventmart-replay: cannot read '%s'\n", argv[argc - 1]);
    return 2;
  }
  int pins = 0, differ = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      if (print) std::printf("%s\n", line.c_str());
      continue;
    }
    Pin pin;
    if (!parse(line, pin)) {
      std::fprintf(stderr, "eventmart-replay: not a pin: '%s'\n", line.c_str());
      return 2;
    }
    const std::string got = hash_of(pin);
    ++pins;
    if (print) {
      std::printf("%s %llu %lld %s\n", pin.mode.c_str(), static_cast<unsigned long long>(pin.seed),
                  static_cast<long long>(pin.customers), got.c_str());
      continue;
    }
    if (got != pin.hash) {
      ++differ;
      std::printf("DIFFERS %s seed %llu: pinned %s, this build %s\n", pin.mode.c_str(),
                  static_cast<unsigned long long>(pin.seed), pin.hash.c_str(), got.c_str());
    }
  }
  if (!print) std::printf("eventmart-replay: %d of %d pinned runs replay\n", pins - differ, pins);
  return differ == 0 ? 0 : 1;
}
