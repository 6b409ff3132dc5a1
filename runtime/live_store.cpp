#include "runtime/live_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "core/event_id.h"
#include "core/json.h"
#include "core/json_wire.h"
#include "runtime/store_database.h"
#include "services/catalog.h"
#include "services/registry.h"

namespace eventmart::runtime {

void StderrLogger::log(LogLevel level, std::string_view source, std::string_view message) {
  if (level < min_level_) return;
  const std::int64_t now = mqtt::wall_clock_us();
  const char* tag = level == LogLevel::kInfo      ? "INFO "
                    : level == LogLevel::kWarning ? "WARN "
                                                  : "ERROR";
  std::string line = json_wire::format_timestamp(now) + "Z " + tag + " " + std::string(source) +
                     ": " + std::string(message) + "\n";
  std::lock_guard lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

std::vector<std::string> all_service_names() {
  std::vector<std::string> names;
  for (ServiceKind kind : store_service_kinds()) names.emplace_back(service_name(kind));
  return names;
}

namespace {

// Replicas opening a fresh shared database at the same moment can both need the lock that
// switches it to WAL; SQLite then refuses one at once with "database is locked" instead of
// waiting (the busy handler is not called where waiting could deadlock). Such an open is
// tried again, for up to 10 s, before it is an error.
std::unique_ptr<Database> open_shared_database(const std::string& path,
                                               const StoreIdentity& identity,
                                               const LiveOptions& options, Logger& logger) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    try {
      return open_store_database(path, identity, options.durability,
                                 options.start_fresh ? FreshStart::kMoveAside : FreshStart::kRefuse,
                                 logger);
    } catch (const SqliteError& e) {
      if (!e.locked() || std::chrono::steady_clock::now() >= give_up) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

constexpr std::int64_t kSiblingCheckUs = 2'000'000;  // how often a replica looks at its siblings

std::string client_id_of(const LiveOptions& o, const std::string& service,
                         const std::string& instance) {
  std::string id = "eventmart-" + o.chain + "-" + o.store + "-" + service;
  if (!instance.empty()) id += "-" + instance;
  return id;
}

std::string client_id_of(const LiveOptions& o, const std::string& service) {
  return client_id_of(o, service, o.instance);
}

}  // namespace

// Holds `path` locked (flock) for this process until destroyed; the file says who holds it.
class LiveStore::IdentityLock {
 public:
  IdentityLock(const std::string& path, const std::string& who) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw SqliteError("cannot open '" + path + "': " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char holder[64] = {};
      const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
      ::close(fd_);
      fd_ = -1;
      std::string pid = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : "";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      throw std::runtime_error(
          "another process" + (pid.empty() ? std::string() : " (pid " + pid + ")") + " runs " +
          who + " on this data dir (" + path +
          "): two processes with one identity take the broker session from each other and "
          "lose messages; stop it first, or give this one another --instance");
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
      // The lock holds without the note of who holds it.
    }
  }
  ~IdentityLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  IdentityLock(const IdentityLock&) = delete;
  IdentityLock& operator=(const IdentityLock&) = delete;

 private:
  int fd_ = -1;
};

// What a replica knows of its siblings (the other instances of its service), from their
// retained status topics. Guarded by the replica's strand.
struct SiblingState {
  bool online = false;
  std::int64_t since_us = 0;  // when the status last changed
  bool drained = false;       // its session was drained since it went offline
};

struct LiveStore::Running {
  ServiceKind kind;
  std::string name;
  std::unique_ptr<IdentityLock> lock;  // held while it runs: one process per identity
  mqtt::Strand strand;
  std::unique_ptr<mqtt::LiveClock> clock;
  std::unique_ptr<Database> db;
  std::unique_ptr<mqtt::MqttBus> bus;
  std::optional<BuiltService> built;             // from the registry, as the simulator builds it
  std::map<std::string, SiblingState> siblings;  // replicas only: instance -> state
  Service* service() const { return built ? built->service.get() : nullptr; }

  // metrics() only (under LiveStore::metrics_mutex_): a connection of its own for the counts,
  // never the service's (it would need the strand), and the last inbox count.
  std::unique_ptr<Database> counting;
  std::unique_ptr<Statement> count_outbox;
  std::unique_ptr<Statement> count_inbox;
  std::int64_t inbox_rows = -1;
  std::int64_t inbox_counted_at_us = 0;
};

LiveStore::LiveStore(LiveOptions options, Logger& logger)
    : options_(std::move(options)), logger_(logger), topics_(options_.chain, options_.store) {
  if (options_.services.empty()) throw std::invalid_argument("no service to run");
  if (!options_.instance.empty() && !is_valid_topic_level(options_.instance)) {
    throw std::invalid_argument("instance name '" + options_.instance +
                                "' must be one topic level (no '/', '+', '#')");
  }
  std::filesystem::create_directories(options_.data_dir);
  for (const std::string& name : options_.services) {
    const std::optional<ServiceKind> kind = service_kind(name);
    if (!kind) throw std::invalid_argument("unknown service '" + name + "'");
    for (const auto& r : running_) {
      if (r->name == name) throw std::invalid_argument("service '" + name + "' given twice");
    }
    running_.push_back(start_running(*kind));
  }
}

std::unique_ptr<LiveStore::Running> LiveStore::start_running(ServiceKind kind) {
  auto r = std::make_unique<Running>();
  r->kind = kind;
  r->name = std::string(service_name(kind));
  const std::string identity = r->name + (options_.instance.empty() ? "" : "-" + options_.instance);
  r->lock = std::make_unique<IdentityLock>(
      (std::filesystem::path(options_.data_dir) / (identity + ".lock")).string(),
      r->name + (options_.instance.empty() ? "" : " as instance " + options_.instance));
  r->clock = std::make_unique<mqtt::LiveClock>(timers_, r->strand);
  r->db = open_shared_database(
      (std::filesystem::path(options_.data_dir) / (r->name + ".sqlite")).string(),
      StoreIdentity{options_.chain, options_.store, r->name}, options_, logger_);
  mqtt::MqttOptions connection = options_.connection;
  connection.client_id = client_id_of(options_, r->name);
  connection.status_topic = topics_.status(r->name, options_.instance);
  connection.limits = options_.limits;
  if (!options_.instance.empty()) connection.share_group = "eventmart-" + r->name;
  r->bus =
      std::make_unique<mqtt::MqttBus>(connection, topics_, *r->clock, r->strand, logger_, r->name);
  std::lock_guard lock(r->strand);
  ServiceInputs inputs{ServiceContext{*r->bus, r->bus.get(), *r->clock, *r->db, topics_, logger_}};
  inputs.context.qos = options_.qos;
  inputs.context.instance = options_.instance;
  inputs.context.inbox_retention_us = options_.inbox_retention_us;
  inputs.context.limits = options_.limits;
  inputs.store_data = &default_store();
  inputs.variant = options_.variant;
  r->built.emplace(build_service(kind, inputs));
  return r;
}

LiveStore::~LiveStore() {
  stop();
}

void LiveStore::subscribe_devices(Running& r) {
  const bool entrance = r.kind == ServiceKind::kGatewayGuardian;
  const std::string& topic = entrance ? topics_.entrance_scanner : topics_.exit_gate;
  const auto kind = entrance ? ScanRequest::Kind::kArrival : ScanRequest::Kind::kDeparture;
  Running* rp = &r;
  const InputLimits limits = options_.limits;
  r.bus->subscribe_bytes(
      topic, [this, rp, kind, limits](const std::string& topic, std::string_view bytes, bool) {
        // A reading on a device topic must identify itself (a scan id, or a JSON timestamp): the
        // broker may deliver it again, and nothing else could tell that from a second reading.
        auto request = parse_device_message(kind, bytes, limits);
        if (!request) return rp->service()->dead_letter(topic, bytes, request.error());
        const ScanOutcome outcome = scan(request.value(), "");
        if (outcome.kind == ScanOutcome::Kind::kRejected) {
          rp->service()->file_dead_letter(topic, bytes, outcome.error);  // counted by the guardian
        }
      });
}

void LiveStore::start() {
  if (started_) return;
  started_ = true;
  for (auto& r : running_) {
    {
      std::lock_guard lock(r->strand);
      r->service()->start();
      if (spec_of(r->kind).reads_devices) subscribe_devices(*r);
      if (!options_.instance.empty() && spec_of(r->kind).consumes_store_bus &&
          options_.adopt_after_s > 0) {
        watch_siblings(*r);
      }
    }
    r->bus->start();
  }
}

void LiveStore::watch_siblings(Running& r) {
  Running* rp = &r;
  r.bus->subscribe_bytes(
      topics_.status(r.name, "+"),
      [this, rp](const std::string& topic, std::string_view bytes, bool) {
        const std::string instance = topic.substr(topic.rfind('/') + 1);
        if (instance == options_.instance) return;
        SiblingState& sibling = rp->siblings[instance];
        const bool online = bytes == "online";
        if (online != sibling.online || sibling.since_us == 0) {
          sibling.online = online;
          sibling.since_us = rp->clock->now_us();
          if (online) sibling.drained = false;
        }
      },
      mqtt::MqttBus::Sharing::kAlone);
  check_siblings(r);
}

void LiveStore::check_siblings(Running& r) {
  // The live replica with the lowest instance name drains a sibling that has been offline
  // longer than adopt_after: the share the broker keeps queueing for it is handled now, and
  // it leaves the group until it starts again (then it subscribes, and takes its share).
  bool elected = r.bus->ready();
  for (const auto& [instance, sibling] : r.siblings) {
    if (sibling.online && instance < options_.instance) elected = false;
  }
  const std::int64_t now = r.clock->now_us();
  for (auto& [instance, sibling] : r.siblings) {
    if (!elected || sibling.online || sibling.drained ||
        now - sibling.since_us < options_.adopt_after_s * 1'000'000) {
      continue;
    }
    const std::string id = client_id_of(options_, r.name, instance);
    SiblingState* state = &sibling;
    if (r.bus->drain_session(id, std::chrono::seconds(2),
                             [state](std::uint64_t) { state->drained = true; })) {
      logger_.log(LogLevel::kWarning, r.name,
                  "replica '" + instance + "' has been offline for " +
                      std::to_string((now - sibling.since_us) / 1'000'000) +
                      " s: draining the messages queued for it, and taking it out of the share "
                      "group until it starts again");
      break;  // one at a time
    }
  }
  Running* rp = &r;
  r.clock->call_after(kSiblingCheckUs, [this, rp] { check_siblings(*rp); });
}

void LiveStore::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& r : running_) r->bus->stop();
  timers_.stop();
  for (auto& r : running_) {
    std::lock_guard lock(r->strand);
    r->built.reset();
  }
  running_.clear();
}

ScanOutcome LiveStore::scan(const ScanRequest& request, const std::string& fallback_scan_id) {
  const ServiceKind want = request.kind == ScanRequest::Kind::kArrival
                               ? ServiceKind::kGatewayGuardian
                               : ServiceKind::kGateExitGuardian;
  for (auto& r : running_) {
    if (r->kind != want) continue;
    std::lock_guard lock(r->strand);
    const std::string scan_id = request.scan_id.empty() ? fallback_scan_id : request.scan_id;
    ScanOutcome outcome;
    if (request.kind == ScanRequest::Kind::kArrival) {
      outcome = static_cast<GatewayGuardian&>(*r->service()).scan(CardScan{scan_id, request.card});
    } else {
      outcome = static_cast<GateExitGuardian&>(*r->service())
                    .scan(BagScan{scan_id, request.card, request.lines});
    }
    const char* what = request.kind == ScanRequest::Kind::kArrival ? "arrival" : "departure";
    switch (outcome.kind) {
      case ScanOutcome::Kind::kAccepted:
        logger_.log(LogLevel::kInfo, r->name,
                    std::string(what) + " scan '" + scan_id + "' of card " + request.card +
                        " -> event " + outcome.event_id);
        break;
      case ScanOutcome::Kind::kDuplicate:
        logger_.log(
            LogLevel::kInfo, r->name,
            std::string(what) + " scan '" + scan_id + "' seen before -> event " + outcome.event_id);
        break;
      case ScanOutcome::Kind::kRejected:
        break;  // the guardian logged why
    }
    return outcome;
  }
  ScanOutcome none;
  none.error = "the " + std::string(service_name(want)) + " does not run in this process";
  return none;
}

bool LiveStore::all_ready() const {
  for (const auto& r : running_) {
    if (!r->bus->ready()) return false;
  }
  return true;
}

std::vector<ServiceReadiness> LiveStore::readiness() const {
  std::vector<ServiceReadiness> all;
  const std::int64_t now = mqtt::wall_clock_us();
  for (const auto& r : running_) {
    all.push_back(ServiceReadiness{r->name, r->bus->connected(), r->bus->ready(),
                                   r->bus->refused_now(), r->bus->keeps_going(now)});
  }
  return all;
}

namespace {

// Rows of the service's outbox still owed (its own, `owner`), and of its inbox when due, on the
// snapshot's own connection: a reader in WAL mode waits for no writer and holds none up.
void count_rows(Statement& outbox, Statement& inbox, const std::string& owner, bool count_inbox,
                ServiceMetrics& m, std::int64_t& inbox_rows) {
  outbox.bind(1, owner);
  outbox.step();
  m.outbox = outbox.column_int64(0);
  outbox.reset();
  if (count_inbox) {
    inbox.step();
    inbox_rows = inbox.column_int64(0);
    inbox.reset();
  }
  m.inbox = inbox_rows;
}

}  // namespace

std::vector<ServiceMetrics> LiveStore::metrics() {
  std::lock_guard counting(metrics_mutex_);
  std::vector<ServiceMetrics> all;
  for (auto& r : running_) {
    ServiceMetrics m;
    m.service = r->name;
    m.instance = options_.instance;
    m.bus = r->bus->stats();
    m.connected = r->bus->connected();
    m.ready = r->bus->ready();
    {
      std::lock_guard lock(r->strand);
      if (Service* service = r->service()) m.events = service->stats();
    }
    const std::int64_t now = mqtt::wall_clock_us();
    try {
      if (!r->counting) {
        r->counting = std::make_unique<Database>(r->db->path(), options_.durability);
        r->count_outbox = std::make_unique<Statement>(
            r->counting->prepare("SELECT count(*) FROM outbox WHERE owner = ?"));
        r->count_inbox =
            std::make_unique<Statement>(r->counting->prepare("SELECT count(*) FROM inbox"));
      }
      const bool inbox_due =
          r->inbox_rows < 0 || now - r->inbox_counted_at_us >= kInboxCountEveryUs;
      count_rows(*r->count_outbox, *r->count_inbox, options_.instance, inbox_due, m, r->inbox_rows);
      if (inbox_due) r->inbox_counted_at_us = now;
    } catch (const std::exception&) {
      m.outbox = m.inbox = -1;  // busy or failing just now: the scrape still answers
    }
    all.push_back(std::move(m));
  }
  return all;
}

bool LiveStore::with_service(const std::string& name, const std::function<void(Service&)>& fn) {
  for (auto& r : running_) {
    if (r->name != name) continue;
    std::lock_guard lock(r->strand);
    fn(*r->service());
    return true;
  }
  return false;
}

}  // namespace eventmart::runtime
