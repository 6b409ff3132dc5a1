// The run's trace: every publish, delivery, acknowledgement and confirmation on both buses,
// and every scan and logistics delivery in the world, folded into one running 64-bit hash
// together with its virtual time. Same seed and code, same hash, on every machine.
#pragma once

#include <cstdint>
#include <functional>
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
  kDropped,
  kDuplicated,
  kDelayed,
  kReordered,
  kPartition,
  kCrash,
  kRestart,
  kBrokerRestart,
  kPublishRefused,  // a fault failed a publish at once
  kPublishFailed,   // a publisher was told its publish failed (refused, or connection lost)
  kPowerLoss,       // a service's machine lost power: unsynced writes gone
  kIoError,         // a VFS call on a service's database failed with an I/O error
  kDiskFull,        // a service's disk filled up (writes that need space fail for a while)
  kLongOutage,      // a service's machine went down for hours to days
  kLostToExpiry,    // a message for a client whose session expired while it was away
  kSplit,  // the explorer reseeded the run here (sim/recipe.h); "event" = the child ("3+": a
           // storm child), or "storm-over" where the storm of a storm child ended
};
// The last kind (reports list every kind up to it): keep it the last one above.
inline constexpr TraceKind kLastTraceKind = TraceKind::kSplit;

// Which of the two buses an entry happened on (a service-level fault: the store's).
enum class BusId : std::uint8_t { kStore = 0, kLogistics = 1 };

// "store" or "logistics", used in trace files.
std::string_view bus_name(BusId bus);

// Stable lower-case name ("delivered", "dropped", ...), used in trace files.
std::string_view trace_kind_name(TraceKind kind);

// One trace entry as a listener sees it. The views are valid during the call only.
struct TraceEntry {
  std::uint64_t index;  // 0-based position in the trace
  std::int64_t at_us;   // virtual time
  TraceKind kind;
  BusId bus;
  std::string_view client;
  std::string_view topic;
  std::string_view event_id;
  std::uint64_t hash_after;  // the running hash once this entry is folded in
};

class Trace {
 public:
  explicit Trace(const Clock& clock) : clock_(clock) {}

  // Folds one entry.
  void record(TraceKind kind, BusId bus, std::string_view client, std::string_view topic,
              std::string_view event_id);

  // Called with every entry (for trace files and determinism checks); empty: no listener.
  void set_listener(std::function<void(const TraceEntry&)> listener) {
    listener_ = std::move(listener);
  }

  std::uint64_t hash() const { return hash_; }
  std::uint64_t entries() const { return entries_; }

 private:
  const Clock& clock_;
  std::uint64_t hash_ = 0x6576656e746d6172ULL;  // "eventmar"
  std::uint64_t entries_ = 0;
  std::function<void(const TraceEntry&)> listener_;
};

}  // namespace eventmart::sim
