// A store's services running on a real MQTT broker: what `eventmart serve` runs, and what the
// broker tests and benchmarks start in-process. Each service gets its own Paho client
// (client id "eventmart-{chain}-{store}-{service}[-{instance}]", a persistent session), its
// own SQLite file in the data directory (created and seeded on first start), its own Strand
// and a wall clock. A status topic "{chain}/{store}/status/{service}[/{instance}]" says
// "online" / "offline" (retained; "offline" is also the last will).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/topics.h"
#include "runtime/scanner_input.h"
#include "services/guardians.h"
#include "services/registry.h"
#include "services/service.h"
#include "services/sqlite.h"
#include "transports/mqtt/live_clock.h"
#include "transports/mqtt/mqtt_bus.h"

namespace eventmart::runtime {

// Lines to stderr, "2026-11-26T05:47:40.123456Z INFO  fastlane-finale: ...", from any thread.
class StderrLogger final : public Logger {
 public:
  explicit StderrLogger(LogLevel min_level = LogLevel::kInfo) : min_level_(min_level) {}
  void log(LogLevel level, std::string_view source, std::string_view message) override;
  bool wants(LogLevel level) const override { return level >= min_level_; }

 private:
  LogLevel min_level_;
  std::mutex mutex_;
};

// The five store services, in pipeline order (what --all runs).
std::vector<std::string> all_service_names();

struct LiveOptions {
  mqtt::MqttOptions connection;  // broker, auth, TLS, wire, window (client id set per service)
  std::string chain = std::string(kDefaultChain);
  std::string store = std::string(kDefaultStore);
  std::string data_dir = "eventmart-data";
  Durability durability = Durability::kFull;  // acknowledged work survives power loss
  Qos qos = Qos::kAtLeastOnce;
  // Names a replica. Replicas of a consumer share its database file in `data_dir` (one
  // inbox, so each event is consumed once across them) and an MQTT shared subscription
  // "$share/eventmart-{service}/...", so the broker hands each message to one of them.
  std::string instance;
  std::vector<std::string> services;  // names from the registry (services/registry.h)
  // A test build of `serve` may build a deliberately broken variant (sim/bugs); the shipped
  // binary never sets it.
  const ServiceVariant* variant = nullptr;
  // How long consumed event ids are kept for deduplication (see ServiceContext); longer than
  // the broker keeps a session (deploy/mosquitto.conf: 14 days).
  std::int64_t inbox_retention_us = 30LL * 24 * 3600 * 1'000'000;
  // Replicas: a sibling instance offline longer than this has the messages the broker keeps
  // queueing for it (its share of the group) drained by the live replica with the lowest
  // instance name, and leaves the group until it starts again. 0: never (a dead replica's
  // share then waits for it).
  std::int64_t adopt_after_s = 60;
  // What one message may hold; beyond it, a message is dead-lettered (also applied by the
  // transport: connection.limits).
  InputLimits limits = {};
  // A service database that is damaged (empty, unreadable, its log garbled) is moved aside and
  // the service starts afresh, instead of being refused (apps/store_database.h).
  bool start_fresh = false;
};

// Whether one running service takes its messages, as a readiness probe asks (no lock taken).
struct ServiceReadiness {
  std::string service;
  bool connected = false;
  bool ready = false;           // connected and every subscription granted
  std::size_t refused_now = 0;  // subscriptions refused on the current connection
  bool keeps_going = true;      // connected, or a reconnect under way (MqttBus::keeps_going)
};

// One running service as an operator sees it (`serve --metrics-listen`).
struct ServiceMetrics {
  std::string service;
  std::string instance;
  ServiceStats events;      // consumed, duplicates recognised, rejected (dead-lettered)
  mqtt::MqttStats bus;      // received, published, confirmed, failures, connection, latency
  std::int64_t outbox = 0;  // rows not yet confirmed by the broker
  std::int64_t inbox = 0;   // consumed event ids kept for deduplication
  bool connected = false;
  bool ready = false;  // connected and every subscription granted
};

class LiveStore {
 public:
  // Opens (creating and seeding) the databases and builds the services; connects nothing yet.
  // A database that is damaged, another store's or a newer release's is refused
  // (DataFileError, apps/store_database.h).
  // Each service (and instance) takes a lock file in the data dir first: a second process
  // with the same identity is refused (std::runtime_error naming the holder's pid). Throws
  // std::invalid_argument (a bad name or option) or SqliteError (an unusable data dir).
  LiveStore(LiveOptions options, Logger& logger);
  ~LiveStore();
  LiveStore(const LiveStore&) = delete;
  LiveStore& operator=(const LiveStore&) = delete;

  // Subscribes, publishes what outboxes still hold, and connects in the background.
  void start();
  // Disconnects every client cleanly ("offline"), then closes the services and databases.
  void stop();

  // A reading for the guardian of its kind, run in this process. `fallback_scan_id` is used
  // when the reading carries none (stdin lines, which are never redelivered); empty: none, so
  // the guardian refuses it. Returns the guardian's answer; a reading no guardian here takes
  // is rejected.
  ScanOutcome scan(const ScanRequest& request, const std::string& fallback_scan_id);

  // Every client connected and subscribed (each service said "online").
  bool all_ready() const;
  // Every service here, in the order given, from any thread, without waiting for a service.
  std::vector<ServiceReadiness> readiness() const;
  // When the timer thread (every reconnect and retry runs on it) last beat, wall clock.
  std::int64_t timer_beat_us() const { return timers_.last_beat_us(); }
  // A snapshot of every service here, in the order given. Takes each service's strand in turn,
  // briefly (its counters); the row counts come from a database connection of the snapshot's
  // own, outside the strand (the inbox's at most every kInboxCountEveryUs: counting millions
  // of rows is not free). A service whose database cannot be read just now reports -1 rows.
  // One caller at a time runs it (the others wait).
  std::vector<ServiceMetrics> metrics();
  static constexpr std::int64_t kInboxCountEveryUs = 30'000'000;
  // Runs `fn(service)` under the service's strand; false when it does not run here.
  bool with_service(const std::string& name, const std::function<void(Service&)>& fn);

 private:
  struct Running;
  class IdentityLock;
  std::unique_ptr<Running> start_running(ServiceKind kind);
  void subscribe_devices(Running& r);
  void watch_siblings(Running& r);
  void check_siblings(Running& r);

  LiveOptions options_;
  Logger& logger_;
  Topics topics_;
  mqtt::TimerThread timers_;
  std::vector<std::unique_ptr<Running>> running_;
  std::mutex metrics_mutex_;  // one metrics() at a time: it owns the counting connections
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace eventmart::runtime
