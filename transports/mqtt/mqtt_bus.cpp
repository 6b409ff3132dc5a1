// The MQTT transport (mqtt_bus.h): construction, the calls into Paho made from the timer thread,
// and what the bus tells about itself. The rest of the class is in mqtt_*.cpp, a file per concern.
#include "transports/mqtt/mqtt_bus.h"

#include <cstdio>
#include <stdexcept>

#include "transports/mqtt/mqtt_bus_parts.h"

namespace eventmart::mqtt {

MqttBus::MqttBus(MqttOptions options, const Topics& topics, LiveClock& clock, Strand& strand,
                 Logger& logger, std::string log_source)
    : options_(std::move(options)),
      topics_(topics),
      clock_(clock),
      strand_(strand),
      logger_(logger),
      source_(std::move(log_source)),
      link_(std::make_shared<Link>(Link{clock.poster(), alive_, this})) {
  if (options_.client_id.empty()) throw std::invalid_argument("MQTT client id is empty");
  if (options_.max_in_flight < 1) throw std::invalid_argument("max_in_flight must be >= 1");
  if (options_.handler_retry.max_attempts < 1 || options_.handler_retry.min_delay_us < 0) {
    throw std::invalid_argument("handler_retry: max_attempts must be >= 1, delays >= 0");
  }
  brokers_ = broker_uris(options_.broker);
  for (const std::string& uri : brokers_) {
    try {
      // Checks the URI and client id the way every connection's client will be made.
      ::mqtt::async_client probe(uri, options_.client_id,
                                 ::mqtt::create_options(paho_version(options_.version)), nullptr);
    } catch (const ::mqtt::exception& e) {
      throw std::invalid_argument("cannot use broker '" + uri + "': " + e.what());
    }
  }
}

MqttBus::~MqttBus() {
  stop(std::chrono::milliseconds(500));
  {
    std::lock_guard running(ops_->running);  // no queued Paho call is being made, or will be
    std::lock_guard lock(ops_->mutex);
    ops_->closed = true;
    ops_->queue.clear();
  }
  std::lock_guard lock(strand_);
  *alive_ = false;  // tasks posted by Paho's late callbacks find the bus gone
}

void MqttBus::post_alive(std::function<void()> fn) {
  link_->to_bus([fn = std::move(fn)](MqttBus&) { fn(); });
}

// Paho's receive thread holds Paho's (recursive) client lock while it runs a message callback,
// and the callback takes the strand: Paho's lock, then the strand. A thread that holds the
// strand must therefore never wait for Paho's lock. Inside a message callback this thread
// already holds it, so the call is made at once; anywhere else it is queued and made by the
// timer thread without the strand.
thread_local bool MqttBus::in_paho_callback_ = false;

void MqttBus::run_paho(std::function<void()> op) {
  if (in_paho_callback_) return op();
  std::lock_guard lock(ops_->mutex);
  ops_->queue.push_back(std::move(op));
  if (ops_->flush_posted) return;
  ops_->flush_posted = true;
  clock_.post_unlocked([ops = ops_] {
    std::lock_guard running(ops->running);  // the bus's destructor waits for this
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard lock(ops->mutex);
      batch.swap(ops->queue);
      ops->flush_posted = false;
      if (ops->closed) return;
    }
    for (auto& op : batch) {
      // One call that throws must not take the calls queued after it along.
      try {
        op();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "eventmart: a call into the MQTT client failed: %s\n", e.what());
      }
    }
  });
}

std::vector<std::string> broker_uris(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string uri = list.substr(start, end - start);
    const auto first = uri.find_first_not_of(' ');
    const auto last = uri.find_last_not_of(' ');
    out.push_back(first == std::string::npos ? "" : uri.substr(first, last - first + 1));
    start = end + 1;
  }
  return out;
}

std::string_view mqtt_version_name(MqttVersion version) {
  return version == MqttVersion::k5 ? "5" : "3.1.1";
}

std::string MqttBus::broker_in_use() const {
  std::lock_guard lock(strand_);
  return broker();
}

MqttStats MqttBus::stats() const {
  std::lock_guard lock(strand_);
  MqttStats s = stats_;
  s.subscriptions_refused_now = refused_now_;
  s.in_flight = pending_.size();
  s.backlog = backlog_.size();
  return s;
}

ConnectProblem MqttBus::connect_problem() const {
  std::lock_guard lock(strand_);
  return problem_;
}

std::string MqttBus::connect_error() const {
  std::lock_guard lock(strand_);
  return problem_text_;
}

}  // namespace eventmart::mqtt
