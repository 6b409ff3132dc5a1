// The eventmart command line.
#include <iostream>
#include <string>
#include <vector>

#include "apps/sim_command.h"

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
    "\n"
    "Run 'eventmart <command> --help' for the options of a command.\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "sim") return eventmart::apps::run_sim_command(args);
  } catch (const std::exception& e) {
    std::cerr << "eventmart " << command << ": internal error: " << e.what() << "\n";
    return 3;
  }
  std::cerr << "eventmart: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}
