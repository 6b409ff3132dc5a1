// The run's trace: every publish, delivery, acknowledgement and confirmation on both buses,
// and every scan and logistics delivery in the world, folded into one running 64-bit hash
// together with its virtual time. Same seed and code, same hash, on every machine.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/clock.h"

namespace eventmart::sim {

enum class TraceKind : std::uint8_t {
  kPublished = 1,
  kDelivered,
  kAcknowledged,
  kConfirmed,
  kHandlerFailed,
  kScan,
  kLogisticsDelivery,
};

class Trace {
 public:
  explicit Trace(const Clock& clock) : clock_(clock) {}

  // Folds one entry. `bus` tells the store bus (0) from the logistics bus (1).
  void record(TraceKind kind, std::uint8_t bus, std::string_view client, std::string_view topic,
              std::string_view event_id);

  std::uint64_t hash() const { return hash_; }
  std::uint64_t entries() const { return entries_; }

 private:
  const Clock& clock_;
  std::uint64_t hash_ = 0x6576656e746d6172ULL;  // "eventmar"
  std::uint64_t entries_ = 0;
};

}  // namespace eventmart::sim
