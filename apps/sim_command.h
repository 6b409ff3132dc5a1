// `eventmart sim`: one simulated store day on the in-memory bus, then the invariants.
#pragma once

#include <string>
#include <vector>

namespace eventmart::apps {

// Exit status: 0 every invariant held, 1 one was violated, 2 bad usage.
int run_sim_command(const std::vector<std::string>& args);

}  // namespace eventmart::apps
