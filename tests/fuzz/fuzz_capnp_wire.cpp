// Fuzz target: the Cap'n Proto wire (what every service decodes from MQTT). Any bytes: never a
// crash, and what decodes encodes back to bytes that decode to the same envelope.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/assert.h"
#include "core/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto envelope = eventmart::decode_envelope(bytes);
  if (!envelope) return 0;
  const auto again = eventmart::decode_envelope(eventmart::encode_envelope(envelope.value()));
  EVENTMART_ASSERT(again && again.value() == envelope.value());
  return 0;
}
