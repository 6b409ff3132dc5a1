// The commands of the `eventmart` command line, one file each (apps/*_command.cpp). Each takes
// the words after its name and returns the process's exit status.
#pragma once

#include <string>
#include <vector>

namespace eventmart::apps {

// A simulated store day (or many seeds) on the in-memory bus, then the invariants.
// 0 every invariant held, 1 one was violated, 2 bad usage.
int run_sim_command(const std::vector<std::string>& args);

// Services of a store on a real MQTT broker until SIGINT or SIGTERM.
// 0 clean shutdown, 2 bad usage, 3 cannot start (a data dir it cannot use, or one in use by
// another process), 75 stopped with a message it could not handle (not acknowledged).
int run_serve_command(const std::vector<std::string>& args);

// One scanner reading sent by hand to a running store.
// 0 the broker confirmed the reading, 1 it did not (with the reason), 2 bad usage.
int run_scan_command(const std::vector<std::string>& args);

// Drives a running store and checks every departure is paid exactly once.
// 0 every departure paid exactly once with the right total, 1 not, 2 bad usage, 3 the broker
// could not be reached (the reason is in the report).
int run_load_command(const std::vector<std::string>& args);

}  // namespace eventmart::apps
