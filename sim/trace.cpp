#include "sim/trace.h"

#include "core/event_id.h"

namespace eventmart::sim {

void Trace::record(TraceKind kind, std::uint8_t bus, std::string_view client,
                   std::string_view topic, std::string_view event_id) {
  std::uint64_t h = hash_combine(hash_, static_cast<std::uint64_t>(clock_.now_us()));
  h = hash_combine(h, (static_cast<std::uint64_t>(kind) << 8) | bus);
  h = hash_combine(h, stable_hash(client));
  h = hash_combine(h, stable_hash(topic));
  hash_ = hash_combine(h, stable_hash(event_id));
  ++entries_;
}

}  // namespace eventmart::sim
