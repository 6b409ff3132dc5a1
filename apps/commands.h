// The commands of the `eventmart` command line, one file each (apps/*_command.cpp). Each takes
// the words after its name and returns the process's exit status.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace eventmart {
class ServiceVariant;
}

namespace eventmart::apps {

// The command line: argv[1] names the command. Returns the exit status.
int run_command_line(int argc, char** argv);

// A simulated store day (or many seeds) on the in-memory bus, then the invariants.
// 0 every invariant held, 1 one was violated, 2 bad usage.
int run_sim_command(const std::vector<std::string>& args);

// Explores from snapshots (runs/explorer.h): the sim options per root seed, and forks at
// splitpoints. 0 no timeline failed, 1 one did, 2 bad usage, 3 a worker could not run.
int run_explore_command(const std::vector<std::string>& args);

// Folds the JSON Lines files of a run in shards (--shard K/N --jsonl FILE) into one summary.
// 0 nothing failed, 1 a seed or timeline failed, 2 bad usage or files that are not one whole
// run (a shard missing, repeated or truncated), 3 a file could not be read.
int run_merge_command(const std::vector<std::string>& args);
// Services of a store on a real MQTT broker until SIGINT or SIGTERM.
// 0 clean shutdown, 2 bad usage, 3 cannot start (a data dir it cannot use, or one in use by
// another process), 75 stopped with a message it could not handle (not acknowledged).
int run_serve_command(const std::vector<std::string>& args);

// Test builds only (apps/testbuild_main.cpp, never the shipped binary): lets `serve --bug NAME`
// run a broken variant of the services; the lookup returns null for an unknown name.
using ServeVariantLookup = const ServiceVariant* (*)(std::string_view name);
void enable_serve_bugs(ServeVariantLookup lookup);

// Chaos on the real stack: a broker, `serve` processes behind fault-injecting proxies, a
// seeded fault schedule, a workload of scanner readings, then the invariants.
// 0 every invariant held in every run, 1 one was violated, 2 bad usage, 3 cannot start.
int run_chaos_command(const std::vector<std::string>& args);

// The entrance display as a web page, fed by the store's display topic, until SIGINT/SIGTERM.
// 0 clean shutdown, 2 bad usage, 3 cannot listen.
int run_display_command(const std::vector<std::string>& args);

// One scanner reading sent by hand to a running store.
// 0 the broker confirmed the reading, 1 it did not (with the reason), 2 bad usage.
int run_scan_command(const std::vector<std::string>& args);

// Drives a running store and checks every departure is paid exactly once.
// 0 every departure paid exactly once with the right total, 1 not, 2 bad usage, 3 the broker
// could not be reached (the reason is in the report).
int run_load_command(const std::vector<std::string>& args);

}  // namespace eventmart::apps
