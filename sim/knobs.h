// Knobs: the real code's tunables that production keeps fixed and the simulator draws per
// swarm seed (FoundationDB's BUGGIFY). A batch of 1 or a route cache of 2 topics opens paths
// the defaults never take within a day: an outbox read across batches, a topic matched
// without the cache, an inbox pruned every few events and a redelivery that meets it, a
// session that expires while its service is down, the JSON wire between the services.
//
// One table (knob_table()) is every knob: the command line (`sim --knob KEY=VALUE`), scenario
// files and the JSON report ("knobs") and the replay command read it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/limits.h"
#include "core/rng.h"
#include "sim/option_error.h"
#include "sim/workload.h"

namespace eventmart::sim {

// How the services' messages travel in the simulator: as envelopes (kNone, the default: the
// memory bus carries them as they are), or encoded to bytes and decoded again on every
// delivery, as the MQTT transport does, in Cap'n Proto or in JSON.
enum class SimWire : std::int64_t { kNone = 0, kCapnp = 1, kJson = 2 };

struct Knobs {
  // The outbox relay (services/outbox_relay.h): rows read at a time, confirmed rows deleted
  // together.
  std::int64_t relay_batch = 256;
  std::int64_t relay_delete_batch = 32;
  // The inbox: events consumed between prunes, and how long ids are kept (0: for ever, as
  // the simulator always did; serve keeps 30 days).
  std::int64_t prune_every = 1000;
  std::int64_t inbox_retention_s = 0;
  // The brokers: how long a session outlives its client (0: for ever), topics remembered with
  // their subscribers, retransmission sweeps per retry interval.
  std::int64_t session_expiry_s = 0;
  std::int64_t route_cache_topics = 1024;
  std::int64_t sweeps_per_interval = 8;
  // The wire between the services (SimWire).
  std::int64_t wire = 0;
  // The operator's limits (serve's --max-*), core/limits.h.
  std::int64_t max_payload_bytes = 64 * 1024;
  std::int64_t max_basket_lines = 500;
  std::int64_t max_units_per_line = 1000;
  std::int64_t max_basket_units = 10'000;
  std::int64_t max_id_bytes = 128;

  InputLimits limits() const;
  friend bool operator==(const Knobs&, const Knobs&) = default;
};

struct KnobInfo {
  std::string_view key;   // command line (--knob KEY=N), scenario files, --json
  std::string_view help;  // one line for --help
  std::int64_t min;
  std::int64_t max;
  std::int64_t Knobs::*field;
};

// Every knob, in the order of reports, scenario files and replay commands.
const std::vector<KnobInfo>& knob_table();
const KnobInfo* find_knob(std::string_view key);

// A swarm seed's knobs: each one its default with probability 1/2, else small or large.
// Limits are drawn only as tight as `shape`'s baskets allow (nothing the day sends is refused
// for them), the inbox retention only longer than 8/7 of the session expiry (serve refuses
// less: see services/service.h, max_event_age_us).
Knobs draw_knobs(Rng rng, const WorkloadShape& shape);

// Why `knobs` cannot be used, or nullopt.
OptionCheck validate(const Knobs& knobs);

// "relay_batch=1 prune_every=3": the knobs that are not their default, in table order ("" for
// none).
std::string describe_changed(const Knobs& knobs);

}  // namespace eventmart::sim
