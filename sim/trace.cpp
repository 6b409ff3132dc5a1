#include "sim/trace.h"

#include "core/event_id.h"

namespace eventmart::sim {

void Trace::record(TraceKind kind, BusId bus, std::string_view client, std::string_view topic,
                   std::string_view event_id) {
  std::uint64_t h = hash_combine(hash_, static_cast<std::uint64_t>(clock_.now_us()));
  h = hash_combine(h, (static_cast<std::uint64_t>(kind) << 8) | static_cast<std::uint64_t>(bus));
  h = hash_combine(h, stable_hash(client));
  h = hash_combine(h, stable_hash(topic));
  hash_ = hash_combine(h, stable_hash(event_id));
  if (listener_) {
    listener_(TraceEntry{entries_, clock_.now_us(), kind, bus, client, topic, event_id, hash_});
  }
  ++entries_;
}

std::string_view bus_name(BusId bus) {
  return bus == BusId::kLogistics ? "logistics" : "store";
}

std::string_view trace_kind_name(TraceKind kind) {
  switch (kind) {
    case TraceKind::kPublished:
      return "published";
    case TraceKind::kDelivered:
      return "delivered";
    case TraceKind::kAcknowledged:
      return "acknowledged";
    case TraceKind::kConfirmed:
      return "confirmed";
    case TraceKind::kHandlerFailed:
      return "handler-failed";
    case TraceKind::kScan:
      return "scan";
    case TraceKind::kLogisticsDelivery:
      return "logistics-delivery";
    case TraceKind::kDropped:
      return "dropped";
    case TraceKind::kDuplicated:
      return "duplicated";
    case TraceKind::kDelayed:
      return "delayed";
    case TraceKind::kReordered:
      return "reordered";
    case TraceKind::kPartition:
      return "partition";
    case TraceKind::kCrash:
      return "crash";
    case TraceKind::kRestart:
      return "restart";
    case TraceKind::kBrokerRestart:
      return "broker-restart";
    case TraceKind::kPublishRefused:
      return "publish-refused";
    case TraceKind::kPublishFailed:
      return "publish-failed";
    case TraceKind::kPowerLoss:
      return "power-loss";
    case TraceKind::kIoError:
      return "io-error";
    case TraceKind::kDiskFull:
      return "disk-full";
    case TraceKind::kLongOutage:
      return "long-outage";
    case TraceKind::kSplit:
      return "split";
    case TraceKind::kLostToExpiry:
      return "lost-to-expiry";
  }
  return "unknown";
}

}  // namespace eventmart::sim
