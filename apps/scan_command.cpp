// `eventmart scan`: one scanner reading sent by hand to a running store's device topic.
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <optional>

#include "apps/cli.h"
#include "apps/commands.h"
#include "runtime/live_store.h"
#include "runtime/scanner_input.h"
#include "services/scan_logic.h"

namespace po = boost::program_options;

namespace eventmart::apps {

using runtime::format_scan_line;
using runtime::parse_items;
using runtime::ScanRequest;
using runtime::StderrLogger;
namespace {

struct ScanArgs {
  ConnectionArgs conn;
  std::string kind;
  std::string customer;
  std::string items;
  std::string scan_id;
  std::string timeout = "10";
};

po::options_description describe(ScanArgs& a) {
  po::options_description main("Scan");
  main.add_options()("help", "show this help")(
      "kind", po::value(&a.kind)->value_name("arrival|departure"), "the reading (positional)")(
      "customer", po::value(&a.customer)->value_name("ID"), "the loyalty card read")(
      "items", po::value(&a.items)->value_name("SKU:QTY,..."),
      "departure: what is in the bag (none: an empty bag)")(
      "scan-id", po::value(&a.scan_id)->value_name("ID"),
      "the reading's id; sending the same id again is one reading (default: a new id)")(
      "timeout", po::value(&a.timeout)->value_name("SECONDS"),
      "how long to wait for the broker (default 10)")(
      "config", po::value<std::string>()->value_name("FILE"), "read options from FILE");
  po::options_description desc;
  desc.add(main).add(a.conn.describe());
  return desc;
}

ScanRequest to_request(const ScanArgs& a) {
  ScanRequest request;
  if (a.kind == "arrival") {
    request.kind = ScanRequest::Kind::kArrival;
    if (!a.items.empty()) throw UsageError{"--items goes with a departure, not an arrival"};
  } else if (a.kind == "departure") {
    request.kind = ScanRequest::Kind::kDeparture;
    if (!a.items.empty()) {
      auto lines = parse_items(a.items);
      if (!lines) throw UsageError{"--items: " + lines.error()};
      request.lines = lines.value();
    }
  } else {
    throw UsageError{a.kind.empty() ? "say what was scanned: 'arrival' or 'departure'"
                                    : "unknown reading '" + excerpt(a.kind, 40) +
                                          "': 'arrival' or 'departure'"};
  }
  if (a.customer.empty()) throw UsageError{"--customer is required"};
  // The guardian would refuse it: say so here, rather than "sent".
  if (auto card = parse_card(a.customer); !card) throw UsageError{"--customer: " + card.error()};
  request.card = a.customer;
  if (!a.scan_id.empty()) {
    if (Status valid = check_id(a.scan_id, default_limits().max_id_bytes, "--scan-id"); !valid) {
      throw UsageError{valid.error()};
    }
  }
  request.scan_id = a.scan_id.empty() ? "manual/" + std::to_string(mqtt::wall_clock_us()) + "-" +
                                            std::to_string(::getpid())
                                      : a.scan_id;
  return request;
}

// Sends the line; 0 when the broker confirmed it, 1 when not (with the reason on stderr).
int send(const mqtt::MqttOptions& given, const Topics& topics, const ScanRequest& request,
         double timeout_s) {
  StderrLogger logger(LogLevel::kWarning);
  mqtt::MqttOptions connection = given;
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
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  bool gave_up = false;  // a refusal that waiting will not cure
  {
    std::unique_lock lock(mutex);
    while (!outcome && std::chrono::steady_clock::now() < deadline && !gave_up) {
      done.wait_for(lock, std::chrono::milliseconds(100));
      const auto problem = bus.connect_problem();
      gave_up = problem == mqtt::ConnectProblem::kBadCredentials ||
                problem == mqtt::ConnectProblem::kHandshakeFailed;
    }
  }
  const std::string why = bus.connect_error();
  bus.stop();
  if (outcome != PublishOutcome::kConfirmed) {
    std::cerr << "eventmart scan: the broker at " << connection.broker
              << " did not confirm the reading"
              << (gave_up ? "" : " within " + std::to_string(static_cast<int>(timeout_s)) + " s")
              << (why.empty() ? "" : ": " + why) << "\n";
    return 1;
  }
  std::cout << "sent '" << line << "' to " << topic << "\n";
  return 0;
}

}  // namespace

int run_scan_command(const std::vector<std::string>& args) {
  ScanArgs a;
  po::options_description desc = describe(a);
  po::positional_options_description positional;
  positional.add("kind", 1);
  ScanRequest request;
  mqtt::MqttOptions connection;
  double timeout_s = 10;
  const int usage = with_usage_errors("scan", [&] {
    po::variables_map vm = parse_all(args, desc, ParseRules{&positional, {}, nullptr});
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
    request = to_request(a);
    timeout_s = parse_double("--timeout", a.timeout);
    if (!(timeout_s > 0) || timeout_s > 3600) throw UsageError{"--timeout must be 0..3600 s"};
    connection = a.conn.to_options(vm.count("insecure") > 0);
    return -1;
  });
  if (usage != -1) return usage;
  return send(connection, Topics(a.conn.chain, a.conn.store), request, timeout_s);
}

}  // namespace eventmart::apps
