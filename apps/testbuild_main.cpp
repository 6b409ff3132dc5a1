// `eventmart-testbuild`: the eventmart command line with `serve --bug NAME`, so that `eventmart
// chaos --bug NAME` can run the bug zoo's broken services on a real broker. Built for the
// tests; never installed or shipped (the shipped binary has no --bug on serve).
#include "apps/commands.h"
#include "sim/bugs/bugs.h"

namespace {

const eventmart::ServiceVariant* live_variant(std::string_view name) {
  const auto bug = eventmart::sim::parse_bug(name);
  if (!bug || *bug == eventmart::sim::Bug::kNone) return nullptr;
  return eventmart::sim::live_variant_of(*bug);
}

}  // namespace

int main(int argc, char** argv) {
  eventmart::apps::enable_serve_bugs(&live_variant);
  return eventmart::apps::run_command_line(argc, argv);
}
