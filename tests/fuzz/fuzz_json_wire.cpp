// Fuzz target: the JSON wire (the reference implementation's messages). The first byte picks
// the topic, the rest is the message: never a crash, and what decodes encodes back to JSON
// that decodes to the same envelope.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/assert.h"
#include "core/topics.h"
#include "core/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static const eventmart::Topics topics;
  const std::string* const kTopics[] = {&topics.customer_arrival, &topics.customer_departure,
                                        &topics.payment_due, &topics.restock_needed,
                                        &topics.stock_replenished};
  const std::string& topic = *kTopics[data[0] % 5];
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  using eventmart::WireFormat;
  auto envelope = eventmart::decode_wire(WireFormat::kJson, topics, topic, text);
  if (!envelope) return 0;
  auto json = eventmart::encode_wire(WireFormat::kJson, envelope.value());
  EVENTMART_ASSERT(json, json.error());
  auto again = eventmart::decode_wire(WireFormat::kJson, topics, topic, json.value());
  EVENTMART_ASSERT(again && again.value() == envelope.value(), json.value());
  return 0;
}
