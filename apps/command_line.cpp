// The eventmart command line: the commands by name (main.cpp and testbuild_main.cpp call it).
#include <iostream>
#include <string>
#include <vector>

#include "apps/commands.h"

namespace {

constexpr const char* kUsage =
    "eventmart: a supermarket of five services on a message bus, and the harness that proves\n"
    "them right.\n"
    "\n"
    "Usage: eventmart <command> [options]\n"
    "\n"
    "Commands:\n"
    "  sim     run a simulated store day on the deterministic in-memory bus and check the\n"
    "          business invariants\n"
    "  explore search like sim --seeds, forking the simulated world into many futures where\n"
    "          a run does something rare for the first time\n"
    "  merge   fold the --jsonl files of a sim or explore run in shards (--shard K/N) into\n"
    "          one summary\n"
    "  serve   run services of a store on a real MQTT broker\n"
    "  scan    send one scanner reading to a running store, by hand\n"
    "  display serve the entrance display as a web page (welcomes pushed as they come)\n"
    "  load    drive a running store and check every departure is paid exactly once\n"
    "  chaos   seeded faults against real `serve` processes on a real broker, checked by\n"
    "          the same invariants as sim\n"
    "\n"
    "Run 'eventmart <command> --help' for the options of a command, 'eventmart --version'\n"
    "for the release.\n";

}  // namespace

namespace eventmart::apps {

int run_command_line(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::cout << "eventmart " << EVENTMART_VERSION << "\n";
    return 0;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "sim") return eventmart::apps::run_sim_command(args);
    if (command == "explore") return eventmart::apps::run_explore_command(args);
    if (command == "merge") return eventmart::apps::run_merge_command(args);
    if (command == "serve") return eventmart::apps::run_serve_command(args);
    if (command == "scan") return eventmart::apps::run_scan_command(args);
    if (command == "display") return eventmart::apps::run_display_command(args);
    if (command == "load") return eventmart::apps::run_load_command(args);
    if (command == "chaos") return eventmart::apps::run_chaos_command(args);
  } catch (const std::exception& e) {
    std::cerr << "eventmart " << command << ": internal error: " << e.what() << "\n";
    return 3;
  }
  std::cerr << "eventmart: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}

}  // namespace eventmart::apps
