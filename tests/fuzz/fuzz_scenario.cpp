// Fuzz target: scenario files (sim --scenario, the regression corpus). Never a crash (a file
// nested thousands of levels deep used to overflow the stack), and a file that reads is
// written back as one that reads to the same text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/assert.h"
#include "sim/scenario_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto file = eventmart::sim::parse_scenario_file(text);
  if (!file) return 0;
  const std::string written = eventmart::sim::to_json(file.value());
  auto again = eventmart::sim::parse_scenario_file(written);
  EVENTMART_ASSERT(again, written, again.error());
  EVENTMART_ASSERT(eventmart::sim::to_json(again.value()) == written, written);
  return 0;
}
