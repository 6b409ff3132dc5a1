// The MQTT transport's deliveries: a message handled inside Paho's callback (acknowledged only
// after its commit), a failing handler retried and, after its last attempt, dead-lettered.
#include <chrono>
#include <cstdlib>
#include <optional>

#include "core/topic_filter.h"
#include "transports/mqtt/mqtt_bus_parts.h"

namespace eventmart::mqtt {

void MqttBus::set_malformed_handler(MalformedHandler handler) {
  std::lock_guard lock(strand_);
  on_malformed_ = std::move(handler);
}

void MqttBus::on_message(const std::string& topic, const std::string& bytes, bool redelivered) {
  // Runs until the message is handled (or dead-lettered): only then may Paho acknowledge it.
  int lasting_failures = 0;  // failures that are not transient count towards giving up
  for (int attempt = 0;; ++attempt) {
    std::string error;
    bool transient = false;
    {
      std::lock_guard lock(strand_);
      if (attempt == 0) ++stats_.received;
      const auto started = std::chrono::steady_clock::now();
      // Times the attempt however it ends (under the strand: stats_ is guarded by it).
      struct Timer {
        MqttStats& stats;
        std::chrono::steady_clock::time_point started;
        ~Timer() {
          const double s =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
          std::size_t b = 0;
          while (b < kHandlerSecondsBuckets.size() && s > kHandlerSecondsBuckets[b]) ++b;
          ++stats.handler_seconds_counts[b];
          stats.handler_seconds_sum += s;
        }
      } timer{stats_, started};
      try {
        dispatch(topic, bytes, redelivered || attempt > 0);
        return;
      } catch (const std::exception& e) {
        error = e.what();
        transient = is_transient(e);
        if (!transient) ++lasting_failures;
      } catch (...) {
        error = "an unknown exception";
        ++lasting_failures;
      }
      // The handler's transaction rolled back. The message stays unacknowledged until it is
      // handled: a crash from here on means the broker delivers it again.
      ++stats_.handler_failures;
      const int attempts = attempt + 1;
      if (!transient && lasting_failures >= options_.handler_retry.max_attempts &&
          dead_letter_after_attempts(topic, bytes, attempts, error)) {
        return;
      }
    }
    const std::int64_t delay_ms = options_.handler_retry.delay_after(attempt + 1) / 1000;
    {
      std::lock_guard lock(strand_);
      logger_.log(LogLevel::kError, source_,
                  "handling a message on '" + topic + "' failed: " + error + "; trying again in " +
                      std::to_string(delay_ms) + " ms (it stays unacknowledged until handled)");
    }
    std::unique_lock wait(retry_mutex_);
    retry_wakeup_.wait_for(wait, std::chrono::milliseconds(delay_ms),
                           [this] { return stopping_.load(); });
    if (stopping_) abandon(topic);
  }
}

bool MqttBus::dead_letter_after_attempts(const std::string& topic, const std::string& bytes,
                                         int attempts, const std::string& last_error) {
  if (!on_malformed_) return false;
  try {
    // A message that keeps failing (a poison message, or a fault that outlasts the backoff)
    // is dead-lettered: durable and visible. Then, and only then, it is acknowledged.
    on_malformed_(topic, bytes, HandlerRetry::give_up_reason(attempts, last_error));
    ++stats_.gave_up;
    return true;
  } catch (const std::exception& e) {
    logger_.log(LogLevel::kError, source_,
                std::string("cannot dead-letter it either: ") + e.what() +
                    "; it stays unacknowledged and is tried again");
    return false;
  }
}

void MqttBus::abandon(const std::string& topic) {
  {
    std::lock_guard lock(strand_);
    logger_.log(LogLevel::kError, source_,
                "stopping with a message from '" + topic +
                    "' that could not be handled: it is not acknowledged, and the broker "
                    "delivers it again at the next start");
  }
  if (options_.on_abandon) options_.on_abandon();
  std::_Exit(75);  // EX_TEMPFAIL; returning would acknowledge the message
}

void MqttBus::dispatch(const std::string& topic, const std::string& bytes, bool redelivered) {
  // Copied first: a handler may subscribe or unsubscribe.
  std::vector<Subscription> matching;
  for (const Subscription& s : subscriptions_) {
    if (topic_matches(s.match_filter, topic)) matching.push_back(s);
  }
  bool decoded_once = false;
  std::optional<Result<Envelope>> envelope;
  for (const Subscription& s : matching) {
    if (s.on_bytes) {
      s.on_bytes(topic, bytes, redelivered);
      continue;
    }
    if (!decoded_once) {
      decoded_once = true;
      envelope.emplace(decode_wire(options_.wire, topics_, topic, bytes, options_.limits));
      if (!*envelope) {
        ++stats_.malformed;
        if (on_malformed_) {
          on_malformed_(topic, bytes, envelope->error());
        } else {
          logger_.log(LogLevel::kWarning, source_,
                      "malformed message on '" + topic + "': " + envelope->error());
        }
      }
    }
    if (!*envelope) continue;
    s.on_message(Delivery{topic, envelope->value(), redelivered, bytes});
  }
}

}  // namespace eventmart::mqtt
