#include "apps/live_commands.h"

#include <signal.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "apps/live_store.h"
#include "apps/load.h"
#include "apps/options.h"
#include "apps/scanner_input.h"

namespace po = boost::program_options;

namespace eventmart::apps {
namespace {

// What every command that connects to a broker takes.
struct ConnectionArgs {
  std::string broker = "tcp://127.0.0.1:1883";
  std::string chain = std::string(kDefaultChain);
  std::string store = std::string(kDefaultStore);
  std::string wire = "capnp";
  std::string username;
  std::string password;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string max_in_flight = "256";

  po::options_description describe() {
    po::options_description d("Broker");
    d.add_options()("broker", po::value(&broker)->value_name("URI"),
                    "the MQTT broker: tcp://HOST:PORT, or ssl://HOST:PORT for TLS "
                    "(default tcp://127.0.0.1:1883)")(
        "chain", po::value(&chain)->value_name("NAME"),
        "the chain's topic level (default spectrum-grocers)")(
        "store", po::value(&store)->value_name("NAME"),
        "the store's topic level (default fresh-frontier)")(
        "wire", po::value(&wire)->value_name("capnp|json"),
        "message format: capnp (default) or json, compatible with the reference "
        "implementation")("username", po::value(&username)->value_name("USER"), "broker user name")(
        "password", po::value(&password)->value_name("PASSWORD"),
        "broker password (better: EVENTMART_PASSWORD or a config file)")(
        "ca-file", po::value(&ca_file)->value_name("FILE"),
        "TLS: the CA certificate the broker's certificate must chain to")(
        "cert-file", po::value(&cert_file)->value_name("FILE"),
        "TLS: this client's certificate, for brokers that require one")(
        "key-file", po::value(&key_file)->value_name("FILE"), "TLS: the client's private key")(
        "insecure", "TLS: do not verify the broker's certificate (testing only)")(
        "max-in-flight", po::value(&max_in_flight)->value_name("N"),
        "publishes awaiting the broker's acknowledgement at once, per client (default 256)");
    return d;
  }

  mqtt::MqttOptions to_options(const po::variables_map& vm) const {
    mqtt::MqttOptions o;
    if (broker.rfind("tcp://", 0) != 0 && broker.rfind("ssl://", 0) != 0 &&
        broker.rfind("mqtt://", 0) != 0 && broker.rfind("mqtts://", 0) != 0) {
      throw UsageError{"--broker must start with tcp:// or ssl:// (got '" + broker + "')"};
    }
    o.broker = broker;
    auto format = parse_wire_format(wire);
    if (!format) throw UsageError{"--wire must be 'capnp' or 'json' (got '" + wire + "')"};
    o.wire = *format;
    o.username = username;
    o.password = password;
    if (!password.empty() && username.empty()) throw UsageError{"--password needs --username"};
    o.ca_file = ca_file;
    o.cert_file = cert_file;
    o.key_file = key_file;
    o.verify_server = vm.count("insecure") == 0;
    for (const std::string* f : {&ca_file, &cert_file, &key_file}) {
      if (!f->empty() && !std::ifstream(*f)) throw UsageError{"cannot read '" + *f + "'"};
    }
    const std::int64_t window = parse_int64("--max-in-flight", max_in_flight);
    if (window < 1 || window > 65535) throw UsageError{"--max-in-flight must be 1..65535"};
    o.max_in_flight = static_cast<int>(window);
    if (!is_valid_topic_level(chain)) throw UsageError{"--chain must be one topic level"};
    if (!is_valid_topic_level(store)) throw UsageError{"--store must be one topic level"};
    return o;
  }
};

// EVENTMART_DATA_DIR -> "data-dir" when that is an option of `desc`, else ignored.
std::function<std::string(std::string)> env_mapper(const po::options_description& desc) {
  return [&desc](std::string name) -> std::string {
    static constexpr std::string_view kPrefix = "EVENTMART_";
    if (name.rfind(kPrefix, 0) != 0) return "";
    std::string option;
    for (char c : name.substr(kPrefix.size())) {
      option += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (option == "config") return option;
    return desc.find_nothrow(option, false) != nullptr ? option : "";
  };
}

// Command line first, then EVENTMART_* variables, then the --config file: the first wins.
po::variables_map parse_all(const std::vector<std::string>& args, po::options_description& desc,
                            const po::positional_options_description* positional = nullptr) {
  po::variables_map vm;
  const int style = po::command_line_style::unix_style ^ po::command_line_style::allow_short;
  auto parser = po::command_line_parser(args).options(desc).style(style);
  if (positional != nullptr) parser.positional(*positional);
  po::store(parser.run(), vm);
  po::store(po::parse_environment(desc, env_mapper(desc)), vm);
  if (vm.count("config")) {
    const std::string file = vm["config"].as<std::string>();
    std::ifstream in(file);
    if (!in) throw UsageError{"--config: cannot read '" + file + "'"};
    po::store(po::parse_config_file(in, desc), vm);
  }
  po::notify(vm);
  return vm;
}

template <typename Fn>
int with_usage_errors(const char* command, Fn&& fn) {
  try {
    return fn();
  } catch (const po::error& e) {
    std::cerr << "eventmart " << command << ": " << e.what() << "\nTry 'eventmart " << command
              << " --help'.\n";
  } catch (const UsageError& e) {
    std::cerr << "eventmart " << command << ": " << e.message << "\nTry 'eventmart " << command
              << " --help'.\n";
  } catch (const std::invalid_argument& e) {
    std::cerr << "eventmart " << command << ": " << e.what() << "\nTry 'eventmart " << command
              << " --help'.\n";
  }
  return 2;
}

LogLevel parse_log_level(const std::string& text) {
  if (text == "info") return LogLevel::kInfo;
  if (text == "warning") return LogLevel::kWarning;
  if (text == "error") return LogLevel::kError;
  throw UsageError{"--log-level must be info, warning or error (got '" + text + "')"};
}

}  // namespace

int run_serve_command(const std::vector<std::string>& args) {
  ConnectionArgs conn;
  std::vector<std::string> services;
  std::string data_dir = "eventmart-data";
  std::string durability = "normal";
  std::string qos = "1";
  std::string instance;
  std::string log_level = "info";
  std::string retention_days = "30";
  po::options_description main_desc("Serve");
  main_desc.add_options()("help", "show this help")(
      "service", po::value(&services)->composing()->value_name("NAME"),
      "a service to run here (repeatable): gateway-guardian, hello-helper, gate-exit-guardian, "
      "inventory-intel, fastlane-finale; or logistics-desk, a stand-in for the logistics "
      "department that delivers every restock at once")("all", "run all five services")(
      "data-dir", po::value(&data_dir)->value_name("DIR"),
      "one SQLite file per service, created and seeded on first start (default "
      "./eventmart-data)")("durability", po::value(&durability)->value_name("normal|full"),
                           "normal: survives a process crash; full: also power loss, one fsync "
                           "per commit (default normal)")(
      "qos", po::value(&qos)->value_name("0|1"), "QoS of everything published (default 1)")(
      "instance", po::value(&instance)->value_name("NAME"),
      "run as one replica among several: replicas share the data dir's database and split the "
      "messages through an MQTT shared subscription")("no-stdin",
                                                      "do not read scanner lines from stdin")(
      "inbox-retention-days", po::value(&retention_days)->value_name("DAYS"),
      "how long consumed event ids are kept to recognise redeliveries; must exceed the "
      "broker's session expiry (default 30)")(
      "log-level", po::value(&log_level)->value_name("info|warning|error"),
      "least severe log lines shown (default info)")(
      "config", po::value<std::string>()->value_name("FILE"),
      "read options from FILE (key = value lines, as on the command line); EVENTMART_* "
      "variables also set options, e.g. EVENTMART_BROKER");
  po::options_description desc;
  desc.add(main_desc).add(conn.describe());

  LiveOptions options;
  bool read_stdin = true;
  LogLevel level = LogLevel::kInfo;
  const int usage = with_usage_errors("serve", [&] {
    po::variables_map vm = parse_all(args, desc);
    if (vm.count("help")) {
      std::cout << "Usage: eventmart serve (--service NAME ... | --all) [options]\n\n"
                   "Runs services of one store on a real MQTT broker until SIGINT or SIGTERM.\n"
                   "Guardians here also read scanner lines from stdin:\n"
                   "  arrival CUSTOMER [scan=ID]\n"
                   "  departure CUSTOMER SKU:QTY,... [scan=ID]\n\n"
                << desc << "\n";
      return 0;
    }
    if (vm.count("all")) {
      if (!services.empty()) throw UsageError{"--all and --service cannot go together"};
      services = all_service_names();
    }
    if (services.empty()) throw UsageError{"name the services to run: --service NAME or --all"};
    for (const std::string& s : services) {
      if (!service_kind(s)) throw UsageError{"--service: no service named '" + s + "'"};
    }
    options.connection = conn.to_options(vm);
    options.chain = conn.chain;
    options.store = conn.store;
    options.data_dir = data_dir;
    options.services = services;
    options.instance = instance;
    if (durability == "normal") {
      options.durability = Durability::kNormal;
    } else if (durability == "full") {
      options.durability = Durability::kFull;
    } else {
      throw UsageError{"--durability must be 'normal' or 'full' (got '" + durability + "')"};
    }
    if (qos == "0") {
      options.qos = Qos::kAtMostOnce;
    } else if (qos != "1") {
      throw UsageError{"--qos must be 0 or 1 (got '" + qos + "')"};
    }
    read_stdin = vm.count("no-stdin") == 0;
    const double days = parse_double("--inbox-retention-days", retention_days);
    if (!(days >= 1) || days > 3650) throw UsageError{"--inbox-retention-days must be 1..3650"};
    options.inbox_retention_us = static_cast<std::int64_t>(days * 24 * 3600 * 1e6);
    level = parse_log_level(log_level);
    return -1;
  });
  if (usage != -1) return usage;

  // Signals are taken by sigwait below: blocked here, before any thread exists, so every
  // thread inherits the mask and none of them is interrupted by one.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  StderrLogger logger(level);
  std::unique_ptr<LiveStore> store;
  try {
    store = std::make_unique<LiveStore>(options, logger);
  } catch (const std::exception& e) {
    std::cerr << "eventmart serve: cannot start: " << e.what() << "\n";
    return 3;
  }
  std::string names;
  for (const std::string& s : options.services) names += (names.empty() ? "" : ", ") + s;
  logger.log(LogLevel::kInfo, "serve",
             "serving " + names + " of " + options.chain + "/" + options.store + " on " +
                 options.connection.broker + " (wire " +
                 std::string(wire_format_name(options.connection.wire)) + ", data in " +
                 options.data_dir + ")");
  store->start();

  // Scanner lines on stdin, for the guardians running here. The reader blocks in getline, so
  // it is detached; `alive` keeps it away from the store once shutdown began.
  auto alive = std::make_shared<std::pair<std::mutex, bool>>();
  alive->second = true;
  const bool has_guardian = std::any_of(
      options.services.begin(), options.services.end(),
      [](const std::string& s) { return s == kGatewayGuardian || s == kGateExitGuardian; });
  if (read_stdin && has_guardian) {
    LiveStore* raw = store.get();
    std::thread([alive, raw, &logger] {
      const std::string session = "stdin/" + std::to_string(mqtt::wall_clock_us());
      std::string line;
      std::int64_t number = 0;
      while (std::getline(std::cin, line)) {
        ++number;
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
            raw->scan(request.value(), session + "/" + std::to_string(number));
        if (outcome.kind == ScanOutcome::Kind::kRejected) {
          logger.log(LogLevel::kWarning, "stdin",
                     "line " + std::to_string(number) + " rejected: " + outcome.error);
        }
      }
    }).detach();
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  logger.log(LogLevel::kInfo, "serve",
             std::string("received ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM") +
                 ": shutting down");
  {
    std::lock_guard lock(alive->first);
    alive->second = false;
  }
  store->stop();
  store.reset();
  logger.log(LogLevel::kInfo, "serve", "stopped");
  return 0;
}

int run_scan_command(const std::vector<std::string>& args) {
  ConnectionArgs conn;
  std::string kind;
  std::string customer;
  std::string items;
  std::string scan_id;
  std::string timeout = "10";
  po::options_description main_desc("Scan");
  main_desc.add_options()("help", "show this help")(
      "kind", po::value(&kind)->value_name("arrival|departure"), "the reading (positional)")(
      "customer", po::value(&customer)->value_name("ID"), "the loyalty card read")(
      "items", po::value(&items)->value_name("SKU:QTY,..."),
      "departure: what is in the bag (none: an empty bag)")(
      "scan-id", po::value(&scan_id)->value_name("ID"),
      "the reading's id; sending the same id again is one reading (default: a new id)")(
      "timeout", po::value(&timeout)->value_name("SECONDS"),
      "how long to wait for the broker (default 10)")(
      "config", po::value<std::string>()->value_name("FILE"), "read options from FILE");
  po::options_description desc;
  desc.add(main_desc).add(conn.describe());
  po::positional_options_description positional;
  positional.add("kind", 1);

  ScanRequest request;
  mqtt::MqttOptions connection;
  double timeout_s = 10;
  const int usage = with_usage_errors("scan", [&] {
    po::variables_map vm = parse_all(args, desc, &positional);
    if (vm.count("help")) {
      std::cout << "Usage: eventmart scan arrival --customer ID [options]\n"
                   "       eventmart scan departure --customer ID --items SKU:QTY,... "
                   "[options]\n\n"
                   "Sends one reading to a running store's scanner topic "
                   "({chain}/{store}/devices/entrance-scanner or .../exit-gate), where its\n"
                   "guardian turns it into an event, exactly as a real scanner would.\n\n"
                << desc << "\n";
      return 0;
    }
    if (kind == "arrival") {
      request.kind = ScanRequest::Kind::kArrival;
      if (!items.empty()) throw UsageError{"--items goes with a departure, not an arrival"};
    } else if (kind == "departure") {
      request.kind = ScanRequest::Kind::kDeparture;
      if (!items.empty()) {
        auto lines = parse_items(items);
        if (!lines) throw UsageError{"--items: " + lines.error()};
        request.lines = lines.value();
      }
    } else {
      throw UsageError{kind.empty() ? "say what was scanned: 'arrival' or 'departure'"
                                    : "unknown reading '" + kind + "': 'arrival' or 'departure'"};
    }
    if (customer.empty()) throw UsageError{"--customer is required"};
    request.card = customer;
    if (scan_id.find_first_of(" \t\n") != std::string::npos) {
      throw UsageError{"--scan-id must not contain blanks"};
    }
    request.scan_id = scan_id.empty() ? "manual/" + std::to_string(mqtt::wall_clock_us()) + "-" +
                                            std::to_string(::getpid())
                                      : scan_id;
    timeout_s = parse_double("--timeout", timeout);
    if (!(timeout_s > 0)) throw UsageError{"--timeout must be more than 0"};
    connection = conn.to_options(vm);
    return -1;
  });
  if (usage != -1) return usage;

  StderrLogger logger(LogLevel::kWarning);
  const Topics topics(conn.chain, conn.store);
  connection.client_id = "eventmart-scan-" + std::to_string(::getpid()) + "-" +
                         std::to_string(mqtt::wall_clock_us() % 1000000);
  connection.clean_session = true;
  connection.reconnect_max_s = 2;
  mqtt::TimerThread timers;
  mqtt::Strand strand;
  mqtt::LiveClock clock(timers, strand);
  mqtt::MqttBus bus(connection, topics, clock, strand, logger, "scan");
  std::mutex mutex;
  std::condition_variable done;
  std::optional<PublishOutcome> outcome;
  const std::string topic =
      request.kind == ScanRequest::Kind::kArrival ? topics.entrance_scanner : topics.exit_gate;
  const std::string line = format_scan_line(request);
  bus.start();
  bus.publish_bytes(topic, line, Qos::kAtLeastOnce, mqtt::Retain::kNo, [&](PublishOutcome o) {
    std::lock_guard lock(mutex);
    outcome = o;
    done.notify_all();
  });
  bool confirmed = false;
  {
    std::unique_lock lock(mutex);
    done.wait_for(lock, std::chrono::duration<double>(timeout_s),
                  [&] { return outcome.has_value(); });
    confirmed = outcome == PublishOutcome::kConfirmed;
  }
  bus.stop();
  if (!confirmed) {
    std::cerr << "eventmart scan: the broker at " << connection.broker
              << " did not confirm the reading within " << timeout_s << " s\n";
    return 1;
  }
  std::cout << "sent '" << line << "' to " << topic << "\n";
  return 0;
}

int run_load_command(const std::vector<std::string>& args) {
  ConnectionArgs conn;
  std::string customers = "100";
  std::string rate = "200";
  std::string seed = "1";
  std::string timeout = "30";
  po::options_description main_desc("Load");
  main_desc.add_options()("help", "show this help")(
      "customers", po::value(&customers)->value_name("N"), "customers to send (default 100)")(
      "rate", po::value(&rate)->value_name("R"),
      "customers per second; 0 sends as fast as the broker takes them (default 200)")(
      "seed", po::value(&seed)->value_name("N"), "the workload's seed (default 1)")(
      "timeout", po::value(&timeout)->value_name("SECONDS"),
      "how long to wait for missing payments after the last departure (default 30)")(
      "json", "print the report as one JSON object")(
      "config", po::value<std::string>()->value_name("FILE"), "read options from FILE");
  po::options_description desc;
  desc.add(main_desc).add(conn.describe());

  LoadOptions options;
  bool json = false;
  const int usage = with_usage_errors("load", [&] {
    po::variables_map vm = parse_all(args, desc);
    if (vm.count("help")) {
      std::cout << "Usage: eventmart load [options]\n\n"
                   "Drives a running store with the simulator's workload: an arrival and a\n"
                   "departure per customer, baskets from the default store's shelves. Then\n"
                   "reports whether every departure was paid exactly once with the right\n"
                   "total, and the latency from departure to payment-due.\n\n"
                << desc << "\n";
      return 0;
    }
    options.connection = conn.to_options(vm);
    options.chain = conn.chain;
    options.store = conn.store;
    options.customers = parse_int64("--customers", customers);
    if (options.customers < 1 || options.customers > 10'000'000) {
      throw UsageError{"--customers must be 1..10000000"};
    }
    options.rate = parse_double("--rate", rate);
    if (options.rate < 0) throw UsageError{"--rate must be >= 0"};
    options.seed = parse_uint64("--seed", seed);
    options.timeout_s = parse_double("--timeout", timeout);
    if (!(options.timeout_s > 0)) throw UsageError{"--timeout must be more than 0"};
    json = vm.count("json") > 0;
    return -1;
  });
  if (usage != -1) return usage;

  StderrLogger logger(LogLevel::kWarning);
  const LoadReport report = run_load(options, logger);
  std::cout << (json ? report.to_json() + "\n" : report.to_text());
  if (!report.connected) return 3;
  return report.ok() ? 0 : 1;
}

}  // namespace eventmart::apps
