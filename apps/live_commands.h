// The commands that talk to a real MQTT broker:
//   eventmart serve  run services of a store
//   eventmart scan   send one reading to a running store's scanner topic, by hand
//   eventmart load   drive a running store and check every departure is paid once
#pragma once

#include <string>
#include <vector>

namespace eventmart::apps {

// 0 clean shutdown (SIGINT/SIGTERM), 2 bad usage, 3 cannot start (a data dir it cannot use).
int run_serve_command(const std::vector<std::string>& args);
// 0 the broker confirmed the reading, 1 it did not (unreachable, timeout), 2 bad usage.
int run_scan_command(const std::vector<std::string>& args);
// 0 every departure paid exactly once with the right total, 1 not, 2 bad usage, 3 the broker
// was not reachable.
int run_load_command(const std::vector<std::string>& args);

}  // namespace eventmart::apps
