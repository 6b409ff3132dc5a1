// `eventmart serve`: services of one store on a real MQTT broker until SIGINT or SIGTERM.
#include <signal.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <thread>

#include "apps/cli.h"
#include "apps/commands.h"
#include "runtime/live_store.h"
#include "runtime/metrics.h"
#include "runtime/scanner_input.h"
#include "runtime/systemd_notify.h"
#include "services/registry.h"

namespace po = boost::program_options;

namespace eventmart::apps {

using runtime::all_service_names;
using runtime::HttpLimits;
using runtime::is_blank_line;
using runtime::LiveOptions;
using runtime::LiveStore;
using runtime::MetricsServer;
using runtime::parse_scan_line;
using runtime::ScanRequest;
using runtime::StderrLogger;
using runtime::SystemdNotifier;
namespace {

struct ServeArgs {
  ConnectionArgs conn;
  LimitArgs limits;
  std::vector<std::string> services;
  std::string data_dir = "eventmart-data";
  std::string durability = "full";
  std::string qos = "1";
  std::string instance;
  std::string log_level = "info";
  std::string retention_days = "30";
  std::string adopt_after = "60";
  std::string metrics_listen;  // off when empty
  std::string http_max_connections = std::to_string(HttpLimits{}.max_connections);
  std::string bug;  // test builds only
};

// Set by a test build's main (apps/testbuild_main.cpp); null in the shipped binary.
ServeVariantLookup serve_variants = nullptr;

std::string service_list() {
  std::string names;
  for (const ServiceSpec& s : service_specs()) {
    names += "\n  " + std::string(s.name) + ": " + std::string(s.role);
  }
  return names;
}

po::options_description describe(ServeArgs& a) {
  po::options_description main("Serve");
  main.add_options()("help", "show this help")(
      "service", po::value(&a.services)->value_name("NAME"),
      "a service to run here (repeatable; see the list above)")("all",
                                                                "run the five store "
                                                                "services")(
      "data-dir", po::value(&a.data_dir)->value_name("DIR"),
      "one SQLite file per service, created and seeded on first start (default "
      "./eventmart-data); one process per service and instance may use it at a time")(
      "durability", po::value(&a.durability)->value_name("normal|full"),
      "full (default): a commit survives power loss, one fsync per commit, before the message "
      "is acknowledged; normal: survives a process crash only, and a power loss can take back "
      "commits whose messages were acknowledged")("qos", po::value(&a.qos)->value_name("0|1"),
                                                  "QoS of everything published (default 1)")(
      "instance", po::value(&a.instance)->value_name("NAME"),
      "run as one replica among several: replicas share the data dir's database and split the "
      "messages through an MQTT shared subscription")(
      "adopt-after", po::value(&a.adopt_after)->value_name("SECONDS"),
      "replicas: a sibling offline this long has the messages queued for it drained by a live "
      "replica, and leaves the share group until it starts again; 0: never (default 60)")(
      "no-stdin", "do not read scanner lines from stdin")(
      "start-fresh",
      "a service database that is damaged (emptied to 0 bytes, unreadable, or its write-ahead "
      "log garbled) is moved aside (renamed *.refused-TIME, not deleted) and the service starts "
      "as a new store; without it such a database is refused (exit 3) with the reason")(
      "metrics-listen", po::value(&a.metrics_listen)->value_name("HOST:PORT"),
      "serve /metrics (Prometheus text: events consumed, duplicates, dead letters, handler "
      "failures and latency, publishes, outbox depth, connection), /healthz and /readyz over "
      "HTTP on this address, e.g. 127.0.0.1:9464 (default: off)")(
      "http-max-connections", po::value(&a.http_max_connections)->value_name("N"),
      ("connections the metrics endpoint serves at once, 1..65535; one more is answered 503 "
       "(default " +
       a.http_max_connections + ")")
          .c_str())(
      "inbox-retention-days", po::value(&a.retention_days)->value_name("DAYS"),
      "how long consumed event ids are kept to recognise redeliveries; must exceed the "
      "broker's session expiry (default 30)")(
      "log-level", po::value(&a.log_level)->value_name("info|warning|error"),
      "least severe log lines shown (default info)")(
      "config", po::value<std::string>()->value_name("FILE"),
      "read options from FILE (key = value lines, as on the command line); EVENTMART_* "
      "variables also set options, e.g. EVENTMART_BROKER. The command line wins over the "
      "environment, which wins over the file; --service and --all are one choice")(
      "print-config",
      "print every option's value and where it came from (command line, environment, file or "
      "default), then exit");
  po::options_description desc;
  desc.add(main).add(a.conn.describe()).add(a.limits.describe());
  if (serve_variants != nullptr) {
    po::options_description test("Test build");
    test.add_options()("bug", po::value(&a.bug)->value_name("NAME"),
                       "run a deliberately broken variant of the services (the bug zoo, "
                       "`eventmart sim --bug list`)");
    desc.add(test);
  }
  return desc;
}

std::vector<std::string> chosen_services(const ServeArgs& a, const po::variables_map& vm) {
  std::vector<std::string> services = a.services;
  if (vm.count("all")) {
    if (!services.empty()) throw UsageError{"--all and --service cannot go together"};
    services = all_service_names();
  }
  if (services.empty()) throw UsageError{"name the services to run: --service NAME or --all"};
  for (std::size_t i = 0; i < services.size(); ++i) {
    if (!service_kind(services[i])) {
      throw UsageError{"--service: no service named '" + excerpt(services[i], 40) + "'"};
    }
    if (std::find(services.begin(), services.begin() + static_cast<std::ptrdiff_t>(i),
                  services[i]) != services.begin() + static_cast<std::ptrdiff_t>(i)) {
      throw UsageError{"--service: '" + services[i] + "' is named twice"};
    }
  }
  return services;
}

LiveOptions to_live_options(const ServeArgs& a, const po::variables_map& vm) {
  LiveOptions o;
  o.connection = a.conn.to_options(vm.count("insecure") > 0);
  o.limits = a.limits.to_limits();
  o.chain = a.conn.chain;
  o.store = a.conn.store;
  o.data_dir = a.data_dir;
  o.services = chosen_services(a, vm);
  if (!a.instance.empty() && !is_valid_topic_level(a.instance)) {
    throw UsageError{"--instance '" + excerpt(a.instance, 40) +
                     "' must be one topic level (no '/', '+', '#')"};
  }
  if (Status valid = check_id(a.instance, 64, "--instance"); !a.instance.empty() && !valid) {
    throw UsageError{valid.error()};
  }
  o.instance = a.instance;
  o.start_fresh = vm.count("start-fresh") != 0;
  o.adopt_after_s = parse_in_range("--adopt-after", a.adopt_after, 0, 86'400);
  o.durability = parse_durability("--durability", a.durability);
  o.qos = parse_qos("--qos", a.qos);
  const double days = parse_double("--inbox-retention-days", a.retention_days);
  if (!(days >= 1) || days > 3650) throw UsageError{"--inbox-retention-days must be 1..3650"};
  o.inbox_retention_us = static_cast<std::int64_t>(days * 24 * 3600 * 1e6);
  // The broker may hold a message for a stopped service up to its session expiry; a service
  // refuses an event older than 7/8 of its inbox retention (its id may have been pruned). So
  // what the broker holds must be younger than that, or it would be refused when delivered.
  const std::int64_t expiry_us = std::int64_t{o.connection.session_expiry_s} * 1'000'000;
  if (expiry_us >= max_event_age_us(o.inbox_retention_us)) {
    throw UsageError{"--session-expiry (" + std::to_string(o.connection.session_expiry_s) +
                     " s) must be shorter than 7/8 of --inbox-retention-days (" +
                     std::to_string(max_event_age_us(o.inbox_retention_us) / 1'000'000) +
                     " s): the broker may hold a message for a stopped service that long, and a "
                     "service refuses an event older than that (its id may have been pruned "
                     "from the inbox, so a second delivery could not be told apart)"};
  }
  if (!a.bug.empty() && serve_variants != nullptr) {
    o.variant = serve_variants(a.bug);
    if (o.variant == nullptr) throw UsageError{"--bug '" + excerpt(a.bug, 40) + "' is no bug"};
  }
  return o;
}

// A scanner line is a card and a basket: far below this. A longer one is skipped as it is read,
// never held whole (a 300 MB line used to peak at 1.7 GB).
constexpr std::size_t kMaxScannerLineBytes = 64 * 1024;

// Reads the next line of `in` into `line` (without its newline); false at the end. A line of
// more than `max_bytes` is read to its end but not kept: `too_long` says so.
bool read_bounded_line(std::istream& in, std::string& line, std::size_t max_bytes, bool& too_long) {
  line.clear();
  too_long = false;
  std::streambuf* buf = in.rdbuf();
  bool any = false;
  for (;;) {
    const int c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) return any;
    any = true;
    if (c == '\n') return true;
    if (too_long) continue;
    if (line.size() == max_bytes) {
      too_long = true;
      line.clear();
      line.shrink_to_fit();
      continue;
    }
    line.push_back(static_cast<char>(c));
  }
}

// Scanner lines on stdin, for the guardians running here. The reader blocks in getline, so
// it is detached; `alive` keeps it away from the store once shutdown began. Lines on stdin are
// never delivered twice, so each gets an id from the session and its line number.
void read_scanner_lines(LiveStore& store, Logger& logger,
                        std::shared_ptr<std::pair<std::mutex, bool>> alive) {
  std::thread([alive, &store, &logger] {
    const std::string session = "stdin/" + std::to_string(mqtt::wall_clock_us());
    std::string line;
    std::int64_t number = 0;
    bool too_long = false;
    while (read_bounded_line(std::cin, line, kMaxScannerLineBytes, too_long)) {
      ++number;
      if (too_long) {
        logger.log(LogLevel::kWarning, "stdin",
                   "line " + std::to_string(number) + " ignored: longer than " +
                       std::to_string(kMaxScannerLineBytes) + " bytes (not a scanner reading)");
        continue;
      }
      if (is_blank_line(line)) continue;
      std::lock_guard lock(alive->first);
      if (!alive->second) return;
      auto request = parse_scan_line(line);
      if (!request) {
        logger.log(LogLevel::kWarning, "stdin",
                   "line " + std::to_string(number) + " ignored: " + request.error());
        continue;
      }
      const ScanOutcome outcome =
          store.scan(request.value(), session + "/" + std::to_string(number));
      if (outcome.kind == ScanOutcome::Kind::kRejected) {
        logger.log(LogLevel::kWarning, "stdin",
                   "line " + std::to_string(number) + " rejected: " + outcome.error);
      }
    }
  }).detach();
}

int serve(const LiveOptions& options, LogLevel level, bool read_stdin,
          const std::string& metrics_listen, HttpLimits http) {
  sigset_t signals = block_stop_signals();  // taken by sigwait below

  StderrLogger logger(level);
  std::unique_ptr<LiveStore> store;
  try {
    store = std::make_unique<LiveStore>(options, logger);
  } catch (const std::exception& e) {
    std::cerr << "eventmart serve: cannot start: " << e.what() << "\n";
    return 3;
  }
  std::unique_ptr<MetricsServer> metrics;
  if (!metrics_listen.empty()) {
    try {
      metrics = std::make_unique<MetricsServer>(
          metrics_listen,
          MetricsServer::Handlers{[&store] { return store->metrics(); },
                                  [&store] { return store->readiness(); }},
          http);
    } catch (const std::invalid_argument& e) {  // a malformed address (checked before, too)
      std::cerr << "eventmart serve: " << e.what() << "\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "eventmart serve: cannot start: " << e.what() << "\n";
      return 3;
    }
    logger.log(LogLevel::kInfo, "serve",
               "metrics on http://" + metrics_listen.substr(0, metrics_listen.rfind(':')) + ":" +
                   std::to_string(metrics->port()) + "/metrics (and /healthz, /readyz)");
  }
  std::string names;
  for (const std::string& s : options.services) names += (names.empty() ? "" : ", ") + s;
  logger.log(LogLevel::kInfo, "serve",
             "serving " + names + " of " + options.chain + "/" + options.store + " on " +
                 options.connection.broker + " (wire " +
                 std::string(wire_format_name(options.connection.wire)) + ", data in " +
                 options.data_dir + ")");
  store->start();
  // Under systemd (Type=notify): READY=1, STATUS= and the watchdog.
  auto notifier = std::make_unique<SystemdNotifier>(SystemdNotifier::Probes{
      [&store] { return store->readiness(); }, [&store] { return store->timer_beat_us(); }});

  auto alive = std::make_shared<std::pair<std::mutex, bool>>();
  alive->second = true;
  const bool has_guardian =
      std::any_of(options.services.begin(), options.services.end(),
                  [](const std::string& s) { return spec_of(*service_kind(s)).reads_devices; });
  if (read_stdin && has_guardian) read_scanner_lines(*store, logger, alive);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  logger.log(LogLevel::kInfo, "serve",
             std::string("received ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM") +
                 ": shutting down");
  {
    std::lock_guard lock(alive->first);
    alive->second = false;
  }
  notifier.reset();  // STOPPING=1
  metrics.reset();   // no scrape reads the store from here on
  store->stop();
  store.reset();
  logger.log(LogLevel::kInfo, "serve", "stopped");
  return 0;
}

}  // namespace

void enable_serve_bugs(ServeVariantLookup lookup) {
  serve_variants = lookup;
}

int run_serve_command(const std::vector<std::string>& args) {
  ServeArgs a;
  po::options_description desc = describe(a);
  LiveOptions options;
  bool read_stdin = true;
  LogLevel level = LogLevel::kInfo;
  std::string metrics_listen;
  HttpLimits http;
  const int usage = with_usage_errors("serve", [&] {
    OptionSources sources;
    po::variables_map vm =
        parse_all(args, desc, ParseRules{nullptr, {{"service", "all"}}, &sources});
    if (vm.count("print-config")) {
      print_config(std::cout, desc, vm, sources);
      return 0;
    }
    if (vm.count("help")) {
      std::cout << "Usage: eventmart serve (--service NAME ... | --all) [options]\n\n"
                   "Runs services of one store on a real MQTT broker until SIGINT or SIGTERM.\n"
                   "The services:"
                << service_list()
                << "\n\nGuardians here also read scanner lines from stdin:\n"
                   "  arrival CUSTOMER [scan=ID]\n"
                   "  departure CUSTOMER SKU:QTY,... [scan=ID]\n\n"
                << desc << "\n";
      return 0;
    }
    options = to_live_options(a, vm);
    read_stdin = vm.count("no-stdin") == 0;
    level = parse_log_level(a.log_level);
    metrics_listen = a.metrics_listen;
    if (!metrics_listen.empty()) check_listen_address("--metrics-listen", metrics_listen);
    http.max_connections = parse_max_connections("--http-max-connections", a.http_max_connections);
    return -1;
  });
  if (usage != -1) return usage;
  return serve(options, level, read_stdin, metrics_listen, http);
}

}  // namespace eventmart::apps
