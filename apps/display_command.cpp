// `eventmart display`: the entrance display as a web page (apps/display.h).
#include <signal.h>
#include <unistd.h>

#include <iostream>

#include "apps/cli.h"
#include "apps/commands.h"
#include "runtime/display.h"
#include "runtime/live_store.h"
#include "runtime/metrics.h"
#include "runtime/systemd_notify.h"

namespace po = boost::program_options;

namespace eventmart::apps {

using runtime::DisplayOptions;
using runtime::EntranceDisplay;
using runtime::HttpLimits;
using runtime::ServiceReadiness;
using runtime::StderrLogger;
using runtime::SystemdNotifier;
namespace {

struct DisplayArgs {
  ConnectionArgs conn;
  std::string listen = "127.0.0.1:8080";
  std::string idle_after = "60";
  std::string title;
  std::string log_level = "info";
  std::string http_max_connections = std::to_string(HttpLimits{}.max_connections);
};

po::options_description describe(DisplayArgs& a) {
  po::options_description main("Display");
  main.add_options()("help", "show this help")(
      "listen", po::value(&a.listen)->value_name("HOST:PORT"),
      "where the page is served (default 127.0.0.1:8080; 0.0.0.0:8080 for a screen on "
      "another machine)")("idle-after", po::value(&a.idle_after)->value_name("SECONDS"),
                          "a welcome older than this gives way to the idle screen, 1..86400 "
                          "(default 60)")(
      "title", po::value(&a.title)->value_name("TEXT"),
      "the idle screen's \"Welcome to TEXT\" (default: the store's name)")(
      "http-max-connections", po::value(&a.http_max_connections)->value_name("N"),
      ("connections served at once (pages, their event streams, probes), 1..65535; one more "
       "is answered 503 (default " +
       a.http_max_connections + ")")
          .c_str())("log-level", po::value(&a.log_level)->value_name("info|warning|error"),
                    "least severe log lines shown (default info)")(
      "config", po::value<std::string>()->value_name("FILE"), "read options from FILE");
  po::options_description desc;
  desc.add(main).add(a.conn.describe());
  return desc;
}

}  // namespace

int run_display_command(const std::vector<std::string>& args) {
  DisplayArgs a;
  po::options_description desc = describe(a);
  mqtt::MqttOptions connection;
  DisplayOptions options;
  LogLevel level = LogLevel::kInfo;
  const int usage = with_usage_errors("display", [&] {
    po::variables_map vm = parse_all(args, desc);
    if (vm.count("help")) {
      std::cout << "Usage: eventmart display [--listen HOST:PORT] [options]\n\n"
                   "Serves the entrance display as a full-screen web page: the welcome Hello\n"
                   "Helper publishes on {chain}/{store}/display/entrance, pushed to the page as\n"
                   "it arrives; an offline state when the store's bus is away, an idle screen\n"
                   "after --idle-after. Open http://HOST:PORT/ on the entrance screen.\n\n"
                << desc << "\n";
      return 0;
    }
    connection = a.conn.to_options(vm.count("insecure") > 0);
    options.listen = a.listen;
    check_listen_address("--listen", a.listen);
    options.idle_after_ms = parse_in_range("--idle-after", a.idle_after, 1, 86'400) * 1000;
    options.http.max_connections =
        parse_max_connections("--http-max-connections", a.http_max_connections);
    options.title = a.title.empty()
                        ? (a.conn.store.empty() ? std::string(kDefaultStore) : a.conn.store)
                        : a.title;
    level = parse_log_level(a.log_level);
    return -1;
  });
  if (usage != -1) return usage;

  sigset_t signals = block_stop_signals();  // taken by sigwait below
  StderrLogger logger(level);
  const Topics topics(a.conn.chain, a.conn.store);
  if (connection.client_id.empty()) {
    connection.client_id = "eventmart-display-" + std::to_string(::getpid());
  }
  std::unique_ptr<EntranceDisplay> display;
  try {
    display = std::make_unique<EntranceDisplay>(connection, topics, options, logger);
  } catch (const std::exception& e) {
    std::cerr << "eventmart display: cannot start: " << e.what() << "\n";
    return 3;
  }
  logger.log(LogLevel::kInfo, "display",
             "the entrance display of " + topics.display_entrance + " on http://" +
                 options.listen.substr(0, options.listen.rfind(':')) + ":" +
                 std::to_string(display->port()) + "/");
  auto notifier = std::make_unique<SystemdNotifier>(SystemdNotifier::Probes{
      [&display] { return std::vector<ServiceReadiness>{display->readiness()}; },
      [&display] { return display->timer_beat_us(); }});
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  notifier.reset();
  display.reset();
  return 0;
}

}  // namespace eventmart::apps
