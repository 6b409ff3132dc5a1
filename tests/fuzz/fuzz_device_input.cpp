// Fuzz target: what the scanners send (runtime/scanner_input.h), text lines and JSON device
// messages. The first byte picks the device: never a crash, and a reading that parses is
// written back as a line that parses to the same reading.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/assert.h"
#include "runtime/scanner_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  using eventmart::runtime::ScanRequest;
  const auto kind = data[0] % 2 == 0 ? ScanRequest::Kind::kArrival : ScanRequest::Kind::kDeparture;
  const std::string_view payload(reinterpret_cast<const char*>(data) + 1, size - 1);
  for (auto reading : {eventmart::runtime::parse_device_message(kind, payload),
                       eventmart::runtime::parse_scan_line(payload)}) {
    if (!reading) continue;
    const auto again =
        eventmart::runtime::parse_scan_line(eventmart::runtime::format_scan_line(reading.value()));
    EVENTMART_ASSERT(again && again.value().card == reading.value().card &&
                         again.value().lines == reading.value().lines &&
                         again.value().scan_id == reading.value().scan_id,
                     eventmart::runtime::format_scan_line(reading.value()));
  }
  return 0;
}
