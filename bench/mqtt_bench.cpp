// eventmart over a real broker. Starts its own mosquitto on a free loopback port (the test
// fixture's config: persistence, TCP_NODELAY, a large queue) and measures, in one run:
//
//  1. baseline: raw Paho MQTT C++, one publisher and one subscriber, QoS 1, with the same
//     in-flight window the services use (256): messages/s delivered to the subscriber, the
//     best of three runs.
//  2. pipeline: Inventory Intel and Fastlane Finale as deployed, each an `eventmart serve`
//     process (SQLite files, WAL, each event a committed transaction), driven by the load
//     generator at full speed: departures/s from the departure's publish to its payment-due
//     arriving. Each departure is three deliveries (to Inventory, to Fastlane, the payment-due
//     back to the load generator). Target: pipeline deliveries/s >= 70% of the baseline.
//     Measured for --durability full (the default: an fsync per commit) and normal.
//  3. latency: the pipeline at 1,000 departures/s; departure -> payment-due p50/p99, for
//     each durability. Target: p99 < 5 ms.
//  4. protocol: the `normal` pipeline again with every client on MQTT 3.1.1, against the same
//     on MQTT 5 (the default, measured in 2. and 3.): throughput and p99 at 1,000/s.
//  5. cluster: the `normal` 3.1.1 pipeline on a 3-node RabbitMQ cluster (deploy/rabbitmq/),
//     the services and the load each on another node, against 4.'s on one mosquitto.
//
// Usage: eventmart-mqtt-bench [MESSAGES]   (default 20000)
#include <mqtt/async_client.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>

#include "apps/load.h"
#include "runtime/live_store.h"
#include "runtime/process.h"
#include "testkit/broker_probe.h"
#include "testkit/mosquitto.h"
#include "testkit/rabbit_cluster.h"

namespace {

using Clock = std::chrono::steady_clock;

class QuietLogger final : public eventmart::Logger {
 public:
  void log(eventmart::LogLevel level, std::string_view source, std::string_view message) override {
    if (level == eventmart::LogLevel::kError) {
      std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(source.size()), source.data(),
                   static_cast<int>(message.size()), message.data());
    }
  }
  bool wants(eventmart::LogLevel level) const override {
    return level == eventmart::LogLevel::kError;
  }
};

// Raw Paho: publish `n` QoS 1 messages with at most `window` unacknowledged; messages/s as
// counted by the subscriber.
double raw_paho_baseline(const std::string& uri, int n, int window) {
  mqtt::async_client sub(uri, "bench-raw-sub", mqtt::create_options(MQTTVERSION_3_1_1, window + 64),
                         nullptr);
  mqtt::async_client pub(uri, "bench-raw-pub", mqtt::create_options(MQTTVERSION_3_1_1, window + 64),
                         nullptr);
  std::atomic<int> received{0};
  std::mutex mutex;
  std::condition_variable cv;
  sub.set_message_callback([&](mqtt::const_message_ptr) {
    if (++received == n) cv.notify_all();
  });
  auto opts = mqtt::connect_options_builder().clean_session(true).max_inflight(window).finalize();
  sub.connect(opts)->wait();
  pub.connect(opts)->wait();
  sub.subscribe("bench/raw", 1)->wait();

  struct Listener : mqtt::iaction_listener {
    std::atomic<int> outstanding{0};
    std::mutex* m;
    std::condition_variable* c;
    void on_success(const mqtt::token&) override {
      --outstanding;
      c->notify_all();
    }
    void on_failure(const mqtt::token&) override {
      --outstanding;
      c->notify_all();
    }
  } listener;
  listener.m = &mutex;
  listener.c = &cv;
  const std::string payload(64, 'x');  // about the size of an encoded departure envelope
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return listener.outstanding < window; });
    }
    ++listener.outstanding;
    pub.publish(mqtt::make_message("bench/raw", payload, 1, false), nullptr, listener);
  }
  {
    std::unique_lock lock(mutex);
    cv.wait_for(lock, std::chrono::seconds(60), [&] { return received == n; });
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  pub.disconnect()->wait();
  sub.disconnect()->wait();
  return received / seconds;
}

struct Pipeline {
  const char* durability;
  const char* mqtt_version = "5";
  double payments_per_s = 0;    // the load generator's view: departures paid per second
  double departures_per_s = 0;  // until both consumers are done
  bool all_paid = false;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;    // at 1,000 departures/s
  double gentle_p50_ms = 0, gentle_p99_ms = 0;  // at 250 departures/s
  long long paced_departures = 0;
  bool paced_ok = false;
};

// Where the pipeline runs: the --broker list each client gets ("inventory-intel",
// "fastlane-finale", "load", "status"), and each user's password (empty: no user).
struct Target {
  std::function<std::string(const std::string& who)> brokers;
  std::function<std::string(const std::string& user)> password;
};

Target on_mosquitto(const eventmart::test::Mosquitto& broker) {
  return Target{[uri = broker.uri()](const std::string&) { return uri; },
                [](const std::string&) { return std::string(); }};
}

using Services = std::vector<std::unique_ptr<eventmart::runtime::Process>>;

// Inventory Intel and Fastlane Finale as `eventmart serve` processes on the data folder `dir`,
// once their retained status says they are subscribed.
Services start_services(const Target& target, eventmart::Logger& logger, const std::string& dir,
                        const char* durability, const char* mqtt_version,
                        eventmart::mqtt::MqttVersion version) {
  Services services;
  for (const char* service : {"inventory-intel", "fastlane-finale"}) {
    eventmart::runtime::SpawnOptions spawn;
    spawn.argv = {eventmart::test::ServeProcess::binary(),
                  "serve",
                  "--service",
                  service,
                  "--broker",
                  target.brokers(service),
                  "--data-dir",
                  dir,
                  "--durability",
                  durability,
                  "--mqtt-version",
                  mqtt_version,
                  "--no-stdin",
                  "--log-level",
                  "warning"};
    spawn.log_file = dir + "/" + service + ".log";
    if (const std::string password = target.password(service); !password.empty()) {
      spawn.env = {std::string("EVENTMART_USERNAME=") + service, "EVENTMART_PASSWORD=" + password};
    }
    services.push_back(std::make_unique<eventmart::runtime::Process>(std::move(spawn)));
  }
  eventmart::mqtt::MqttOptions as_operator;
  as_operator.version = version;
  if (const std::string pw = target.password("operator"); !pw.empty()) {
    as_operator.username = "operator";
    as_operator.password = pw;
  }
  eventmart::test::Probe status(target.brokers("status"),
                                std::string("bench-status-") + durability + "-" + mqtt_version,
                                logger, eventmart::Topics(), as_operator);
  status.record("spectrum-grocers/fresh-frontier/status/#");
  status.bus().start();
  eventmart::test::wait_until([&] { return status.count() >= 2; });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return services;
}

// Full speed: departures/s until both consumers are done (Inventory Intel consumes the same
// departures on its own and may still be behind when the last payment arrives).
void measure_full_speed(eventmart::apps::LoadOptions& load, eventmart::Logger& logger,
                        const std::string& dir, int n, Pipeline& result) {
  const auto fast = eventmart::apps::run_load(load, logger);
  const auto paid_at = Clock::now();
  auto inventory_consumed = [&] {
    eventmart::Database db(dir + "/inventory-intel.sqlite");
    eventmart::Statement count = db.prepare("SELECT count(*) FROM inbox");
    count.step();
    return count.column_int64(0);
  };
  eventmart::test::wait_until([&] { return inventory_consumed() >= n; }, std::chrono::seconds(120));
  const double pipeline_s =
      fast.duration_s + std::chrono::duration<double>(Clock::now() - paid_at).count();
  result.payments_per_s = fast.departures_per_s;
  result.departures_per_s = n / pipeline_s;
  result.all_paid = fast.ok();
}

// Latency at 1,000 departures/s, then at 250/s (well inside what one fsync per commit
// sustains on most disks).
void measure_latency(eventmart::apps::LoadOptions& load, eventmart::Logger& logger, int n,
                     Pipeline& result) {
  load.customers = std::max(2000, n / 4);
  load.rate = 1000;
  load.seed += 1;
  const auto paced = eventmart::apps::run_load(load, logger);
  result.p50_ms = paced.latency_p50_ms;
  result.p99_ms = paced.latency_p99_ms;
  result.max_ms = paced.latency_max_ms;
  result.paced_departures = static_cast<long long>(paced.departures_sent);
  result.paced_ok = paced.ok();
  load.customers = 2000;
  load.rate = 250;
  load.seed += 1;
  const auto gentle = eventmart::apps::run_load(load, logger);
  result.gentle_p50_ms = gentle.latency_p50_ms;
  result.gentle_p99_ms = gentle.latency_p99_ms;
  result.paced_ok = result.paced_ok && gentle.ok();
}

// Inventory Intel and Fastlane Finale as `eventmart serve` processes with `--durability`, on a
// fresh data folder: full speed, then 1,000 departures/s.
Pipeline measure_pipeline(const Target& target, eventmart::Logger& logger, int n,
                          const char* durability, const char* mqtt_version = "5") {
  Pipeline result{durability, mqtt_version};
  const auto version = std::string(mqtt_version) == "5" ? eventmart::mqtt::MqttVersion::k5
                                                        : eventmart::mqtt::MqttVersion::k311;
  char dir[] = "/tmp/eventmart-bench-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return result;
  Services services = start_services(target, logger, dir, durability, mqtt_version, version);
  eventmart::apps::LoadOptions load;
  load.connection.broker = target.brokers("load");
  load.connection.version = version;
  if (const std::string pw = target.password("load"); !pw.empty()) {
    load.connection.username = "load";
    load.connection.password = pw;
  }
  load.customers = n;
  load.rate = 0;
  load.send_arrivals = false;
  load.timeout_s = 60;
  load.linger_s = 0;
  // Departure ids of their own per run.
  load.seed = (std::string(durability) == "full" ? 1 : 3) +
              (version == eventmart::mqtt::MqttVersion::k5 ? 0 : 10);
  measure_full_speed(load, logger, dir, n, result);
  measure_latency(load, logger, n, result);
  for (auto& service : services) service->terminate(std::chrono::seconds(10));
  std::filesystem::remove_all(dir);
  return result;
}

// 5. The same pipeline on a 3-node RabbitMQ cluster, the services on different nodes; false when
// it could not run or did not pay every departure once.
bool cluster_section(eventmart::Logger& logger, int n, const Pipeline& v311) {
  std::printf(
      "\n5. cluster: the normal pipeline on a 3-node RabbitMQ 3.10 cluster (quorum queues; "
      "Inventory\n   Intel, Fastlane Finale and the load on different nodes), MQTT 3.1.1, "
      "against one mosquitto\n");
  if (!eventmart::test::RabbitCluster::available()) {
    std::printf("   skipped: rabbitmq-server is not installed (scripts/install-deps.sh)\n");
    return true;
  }
  eventmart::test::RabbitCluster cluster;
  if (!cluster.ok()) {
    std::printf("   FAILED: the cluster did not start\n");
    return false;
  }
  const Target on_cluster{[&cluster](const std::string& who) {
                            if (who == "fastlane-finale") return cluster.brokers({2, 3, 1});
                            if (who == "load") return cluster.brokers({3, 1, 2});
                            return cluster.brokers({1, 2, 3});
                          },
                          [&cluster](const std::string& user) { return cluster.password(user); }};
  const Pipeline rabbit = measure_pipeline(on_cluster, logger, n, "normal", "3.1.1");
  for (const auto& [name, p] : {std::pair{"mosquitto", &v311}, std::pair{"cluster", &rabbit}}) {
    std::printf(
        "   %-9s %6.0f departures/s; at 1,000/s p50 %.3f ms, p99 %.3f ms, max %.3f ms (%s)\n", name,
        p->departures_per_s, p->p50_ms, p->p99_ms, p->max_ms,
        p->all_paid && p->paced_ok ? "all paid once" : "FAILED");
  }
  std::printf(
      "   at 250 departures/s: mosquitto p50 %.3f ms, p99 %.3f ms; cluster p50 %.3f ms, p99 "
      "%.3f ms\n",
      v311.gentle_p50_ms, v311.gentle_p99_ms, rabbit.gentle_p50_ms, rabbit.gentle_p99_ms);
  std::printf("   cluster / mosquitto: throughput %.2f, p99 at 1,000/s %.2f\n",
              rabbit.departures_per_s / v311.departures_per_s, rabbit.p99_ms / v311.p99_ms);
  return rabbit.all_paid && rabbit.paced_ok;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  if (n < 100) {
    std::fprintf(stderr, "usage: eventmart-mqtt-bench [MESSAGES >= 100]\n");
    return 2;
  }
  eventmart::test::Mosquitto broker;
  QuietLogger logger;

  std::printf("eventmart-mqtt-bench: mosquitto on %s, %d messages\n\n", broker.uri().c_str(), n);
  // Best of three: the least disturbed run, which makes the ratio below the harder one.
  double baseline = 0;
  for (int i = 0; i < 3; ++i)
    baseline = std::max(baseline, raw_paho_baseline(broker.uri(), n, 256));
  std::printf("1. baseline: raw Paho QoS 1 publish -> subscribe, window 256 (best of 3)\n");
  std::printf("   %.0f messages/s\n\n", baseline);

  // The pipeline under each durability, `full` (the default) first.
  const Pipeline full = measure_pipeline(on_mosquitto(broker), logger, n, "full");
  const Pipeline normal = measure_pipeline(on_mosquitto(broker), logger, n, "normal");
  const auto report = [&](const Pipeline& p) {
    std::printf(
        "   %-6s payments %6.0f departures/s (%s); both consumers done %6.0f departures/s"
        " = %6.0f deliveries/s, ratio to baseline %.2f\n",
        p.durability, p.payments_per_s, p.all_paid ? "all paid once" : "FAILED", p.departures_per_s,
        3 * p.departures_per_s, 3 * p.departures_per_s / baseline);
  };
  std::printf(
      "2. pipeline: departure -> Inventory Intel + Fastlane Finale (SQLite WAL, a committed\n"
      "   transaction per event) -> payment-due, at full speed, per --durability\n");
  report(full);
  report(normal);
  std::printf("   full / normal throughput: %.2f (target: full's ratio to baseline >= 0.70)\n\n",
              full.departures_per_s / normal.departures_per_s);
  std::printf("3. latency at 1,000 departures/s, departure -> payment-due (target p99 < 5 ms)\n");
  for (const Pipeline* p : {&full, &normal}) {
    std::printf("   %-6s p50 %.3f ms, p99 %.3f ms, max %.3f ms (%lld departures, %s)\n",
                p->durability, p->p50_ms, p->p99_ms, p->max_ms,
                static_cast<long long>(p->paced_departures),
                p->paced_ok ? "all paid once" : "FAILED");
  }
  std::printf("   full / normal p99: %.2f\n", full.p99_ms / normal.p99_ms);
  std::printf(
      "   at 250 departures/s: full p50 %.3f ms, p99 %.3f ms; normal p50 %.3f ms, p99 %.3f "
      "ms; full / normal p99 %.2f\n",
      full.gentle_p50_ms, full.gentle_p99_ms, normal.gentle_p50_ms, normal.gentle_p99_ms,
      full.gentle_p99_ms / normal.gentle_p99_ms);

  const Pipeline v311 = measure_pipeline(on_mosquitto(broker), logger, n, "normal", "3.1.1");
  std::printf(
      "\n4. protocol: the normal pipeline with every client on MQTT 3.1.1 against MQTT 5\n");
  for (const Pipeline* p : {&v311, &normal}) {
    std::printf(
        "   MQTT %-5s %6.0f departures/s; at 1,000/s p50 %.3f ms, p99 %.3f ms, max %.3f ms (%s)\n",
        p->mqtt_version, p->departures_per_s, p->p50_ms, p->p99_ms, p->max_ms,
        p->all_paid && p->paced_ok ? "all paid once" : "FAILED");
  }
  std::printf("   MQTT 5 / 3.1.1: throughput %.2f, p99 at 1,000/s %.2f\n",
              normal.departures_per_s / v311.departures_per_s, normal.p99_ms / v311.p99_ms);
  bool ok = full.all_paid && full.paced_ok && normal.all_paid && normal.paced_ok && v311.all_paid &&
            v311.paced_ok;

  return cluster_section(logger, n, v311) && ok ? 0 : 1;
}
