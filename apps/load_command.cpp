// `eventmart load`: drives a running store and checks every departure is paid exactly once.
#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/load.h"
#include "runtime/live_store.h"

namespace po = boost::program_options;

namespace eventmart::apps {

using runtime::StderrLogger;
namespace {

struct LoadArgs {
  ConnectionArgs conn;
  std::string customers = "100";
  std::string rate = "200";
  std::string seed = "1";
  std::string timeout = "30";
};

po::options_description describe(LoadArgs& a) {
  po::options_description main("Load");
  main.add_options()("help", "show this help")(
      "customers", po::value(&a.customers)->value_name("N"), "customers to send (default 100)")(
      "rate", po::value(&a.rate)->value_name("R"),
      "customers per second; 0 sends as fast as the broker takes them (default 200)")(
      "seed", po::value(&a.seed)->value_name("N"), "the workload's seed (default 1)")(
      "timeout", po::value(&a.timeout)->value_name("SECONDS"),
      "how long to wait for missing payments after the last departure (default 30)")(
      "json", "print the report as one JSON object")(
      "config", po::value<std::string>()->value_name("FILE"), "read options from FILE");
  po::options_description desc;
  desc.add(main).add(a.conn.describe());
  return desc;
}

LoadOptions to_load_options(const LoadArgs& a, const po::variables_map& vm) {
  LoadOptions o;
  o.connection = a.conn.to_options(vm.count("insecure") > 0);
  o.chain = a.conn.chain;
  o.store = a.conn.store;
  o.customers = parse_in_range("--customers", a.customers, 1, 10'000'000);
  o.rate = parse_double("--rate", a.rate);
  if (o.rate < 0 || o.rate > 1e6) throw UsageError{"--rate must be 0..1000000"};
  o.seed = parse_uint64("--seed", a.seed);
  o.timeout_s = parse_double("--timeout", a.timeout);
  if (!(o.timeout_s > 0) || o.timeout_s > 86'400) throw UsageError{"--timeout must be 0..86400 s"};
  return o;
}

}  // namespace

int run_load_command(const std::vector<std::string>& args) {
  LoadArgs a;
  po::options_description desc = describe(a);
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
    options = to_load_options(a, vm);
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
