#include "runtime/metrics.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace eventmart::runtime {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// A label value as the exposition format wants it: backslash, quote and newline escaped.
std::string label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

class Exposition {
 public:
  // Starts a family: its help and type lines.
  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void sample(const std::string& name, const ServiceMetrics& m, const std::string& value,
              const std::string& extra_labels = "") {
    out_ << name << "{service=\"" << label(m.service) << "\",instance=\"" << label(m.instance)
         << "\"" << extra_labels << "} " << value << "\n";
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

namespace {

// A family of one number per service. `get` null: the dead-letter family, two series per
// service by reason, goes here.
struct Family {
  const char* type;
  const char* name;
  const char* help;
  std::int64_t (*get)(const ServiceMetrics&);
};

template <typename T>
std::int64_t n(T value) {
  return static_cast<std::int64_t>(value);
}

// Every family but the histogram, in the order of the exposition: the one list of what
// /metrics exports (docs/deploy.md lists the same names).
const std::vector<Family>& families() {
  using M = const ServiceMetrics&;
  static const std::vector<Family> kFamilies = {
      {"counter", "eventmart_events_consumed_total",
       "Events applied: the inbox row and the state change committed together.",
       [](M m) { return n(m.events.consumed); }},
      {"counter", "eventmart_duplicates_total",
       "Deliveries recognised as already consumed (a redelivery), acknowledged unapplied.",
       [](M m) { return n(m.events.duplicates); }},
      {"counter", "eventmart_dead_letters_total",
       "Messages dead-lettered with their reason: rejected (malformed, unexpected) or given up "
       "after every handler attempt failed.",
       nullptr},
      {"counter", "eventmart_messages_received_total", "Messages the broker delivered.",
       [](M m) { return n(m.bus.received); }},
      {"counter", "eventmart_messages_malformed_total",
       "Delivered messages that could not be decoded.", [](M m) { return n(m.bus.malformed); }},
      {"counter", "eventmart_handler_failures_total",
       "Handler attempts that failed (their transaction rolled back).",
       [](M m) { return n(m.bus.handler_failures); }},
      {"counter", "eventmart_handler_retries_total",
       "Failed handler attempts followed by another attempt (not given up).",
       [](M m) { return n(m.bus.handler_failures - m.bus.gave_up); }},
      {"counter", "eventmart_events_published_total", "Publishes handed to the MQTT client.",
       [](M m) { return n(m.bus.published); }},
      {"counter", "eventmart_publishes_confirmed_total", "Publishes the broker confirmed (QoS 1).",
       [](M m) { return n(m.bus.confirmed); }},
      {"counter", "eventmart_publishes_failed_total",
       "Publishes reported failed; their outbox row stays and is published again.",
       [](M m) { return n(m.bus.failed); }},
      {"counter", "eventmart_publishes_refused_total",
       "Publishes the broker refused (MQTT 5 PUBACK reason code, e.g. an ACL): counted in "
       "failed too.",
       [](M m) { return n(m.bus.refused); }},
      {"counter", "eventmart_subscriptions_refused_total",
       "Subscriptions the broker refused or granted at QoS 0 only: the service stays unready.",
       [](M m) { return n(m.bus.subscriptions_refused); }},
      {"counter", "eventmart_confirmations_withdrawn_total",
       "Confirmations withdrawn because the connection was lost within the hold.",
       [](M m) { return n(m.bus.confirmations_withdrawn); }},
      {"gauge", "eventmart_outbox_depth", "Outbox rows not yet confirmed by the broker.",
       [](M m) { return n(m.outbox); }},
      {"gauge", "eventmart_inbox_rows", "Consumed event ids kept to recognise redeliveries.",
       [](M m) { return n(m.inbox); }},
      {"gauge", "eventmart_in_flight", "Publishes sent and not yet confirmed.",
       [](M m) { return n(m.bus.in_flight); }},
      {"gauge", "eventmart_publish_backlog",
       "Publishes waiting for a connection or a slot in the in-flight window.",
       [](M m) { return n(m.bus.backlog); }},
      {"gauge", "eventmart_connected", "1 while connected to the broker.",
       [](M m) { return n(m.connected ? 1 : 0); }},
      {"gauge", "eventmart_ready", "1 while connected with every subscription granted.",
       [](M m) { return n(m.ready ? 1 : 0); }},
      {"counter", "eventmart_connects_total",
       "Successful connections to the broker, the first included.",
       [](M m) { return n(m.bus.connects); }},
      {"counter", "eventmart_reconnects_total", "Successful connections after the first.",
       [](M m) { return n(m.bus.connects > 0 ? m.bus.connects - 1 : 0); }},
      {"counter", "eventmart_connection_losses_total", "Connections lost.",
       [](M m) { return n(m.bus.connection_losses); }},
      {"counter", "eventmart_connect_failures_total", "Connection attempts that failed.",
       [](M m) { return n(m.bus.connect_failures); }},
  };
  return kFamilies;
}

void handler_seconds(Exposition& e, const std::vector<ServiceMetrics>& services) {
  e.family("eventmart_handler_seconds", "histogram",
           "Wall time of one attempt at handling a message: decoding, the handlers and their "
           "commit.");
  for (const ServiceMetrics& m : services) {
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < m.bus.handler_seconds_counts.size(); ++b) {
      cumulative += m.bus.handler_seconds_counts[b];
      const std::string le = b < mqtt::kHandlerSecondsBuckets.size()
                                 ? number(mqtt::kHandlerSecondsBuckets[b])
                                 : "+Inf";
      e.sample("eventmart_handler_seconds_bucket", m, std::to_string(cumulative),
               ",le=\"" + le + "\"");
    }
    e.sample("eventmart_handler_seconds_sum", m, number(m.bus.handler_seconds_sum));
    e.sample("eventmart_handler_seconds_count", m, std::to_string(cumulative));
  }
}

}  // namespace

std::string prometheus_text(const std::vector<ServiceMetrics>& services) {
  Exposition e;
  for (const Family& f : families()) {
    e.family(f.name, f.type, f.help);
    for (const ServiceMetrics& m : services) {
      if (f.get != nullptr) {
        e.sample(f.name, m, std::to_string(f.get(m)));
        continue;
      }
      e.sample(f.name, m, std::to_string(m.events.rejected), ",reason=\"rejected\"");
      e.sample(f.name, m, std::to_string(m.bus.gave_up), ",reason=\"gave_up\"");
    }
  }
  handler_seconds(e, services);
  return e.str();
}

struct MetricsServer::Impl {
  using Stream = std::shared_ptr<beast::tcp_stream>;
  struct Scrape {
    Stream stream;
    ConnectionSlot slot;
    unsigned version;
    bool head;
    bool readiness;  // a /readyz (answered from the collection) rather than a /metrics
  };

  Handlers handlers;
  HttpLimits limits;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::unique_ptr<HttpAcceptor> accepting;
  std::thread thread;
  // The collection thread: handlers.metrics() may wait for a service's strand.
  asio::io_context collect_io;
  asio::executor_work_guard<asio::io_context::executor_type> collect_work =
      asio::make_work_guard(collect_io);
  std::thread collector;
  // The io thread's only.
  struct Collection {
    std::string text;       // the exposition, or why it failed
    std::string not_ready;  // /readyz's list
    bool ok = true;
  };
  bool collecting = false;
  std::vector<Scrape> in_progress;  // answered by the collection under way
  std::vector<Scrape> queued;       // came since it started: answered by the next

  // One request per connection (Connection: close); the acceptor set its deadline.
  void serve(Stream stream, ConnectionSlot slot) {
    auto buffer = std::make_shared<beast::flat_buffer>();
    auto request = std::make_shared<http::request<http::string_body>>();
    http::async_read(*stream, *buffer, *request,
                     [this, stream, slot, buffer, request](beast::error_code ec, std::size_t) {
                       if (ec) return;
                       route(stream, slot, *request);
                     });
  }

  void answer(const Stream& stream, const ConnectionSlot& slot, unsigned version, bool head,
              http::status status, std::string body,
              std::string_view type = "text/plain; charset=utf-8") {
    auto response = std::make_shared<http::response<http::string_body>>(status, version);
    response->keep_alive(false);
    response->set(http::field::server, "eventmart");
    response->set(http::field::content_type, beast::string_view(type.data(), type.size()));
    if (status == http::status::method_not_allowed) response->set(http::field::allow, "GET, HEAD");
    response->body() = std::move(body);
    if (head) {
      response->content_length(response->body().size());
      response->body().clear();
    } else {
      response->prepare_payload();
    }
    stream->expires_after(limits.request_timeout);  // to take the answer
    http::async_write(*stream, *response, [stream, slot, response](beast::error_code, std::size_t) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  void route(const Stream& stream, const ConnectionSlot& slot,
             const http::request<http::string_body>& request) {
    const unsigned version = request.version();
    const bool head = request.method() == http::verb::head;
    const std::string target(request.target());
    const std::string path = target.substr(0, target.find('?'));
    if (request.method() != http::verb::get && !head) {
      return answer(stream, slot, version, head, http::status::method_not_allowed, "only GET\n");
    }
    if (path == "/healthz") return answer(stream, slot, version, head, http::status::ok, "ok\n");
    if (path == "/readyz" && handlers.readiness) {
      return ready_answer(stream, slot, version, head, unready(handlers.readiness()));
    }
    if (path == "/readyz" || path == "/metrics") {
      return scrape(Scrape{stream, slot, version, head, path == "/readyz"});
    }
    answer(stream, slot, version, head, http::status::not_found,
           "not found: try /metrics, /healthz or /readyz\n");
  }

  static std::string unready(const std::vector<ServiceReadiness>& services) {
    std::string not_ready;
    for (const ServiceReadiness& r : services) {
      if (r.ready) continue;
      const char* why = !r.connected        ? " (not connected)"
                        : r.refused_now > 0 ? " (a subscription was refused)"
                                            : " (subscribing)";
      not_ready += r.service + why + "\n";
    }
    return not_ready;
  }

  void ready_answer(const Stream& stream, const ConnectionSlot& slot, unsigned version, bool head,
                    const std::string& not_ready) {
    if (not_ready.empty()) return answer(stream, slot, version, head, http::status::ok, "ready\n");
    answer(stream, slot, version, head, http::status::service_unavailable,
           "not ready:\n" + not_ready);
  }

  // /metrics (and /readyz without a readiness handler): from a collection that starts after the
  // scrape came, never an older one. One collection runs at a time: scrapes that come while one
  // runs share the next, so however many scrapers ask, a service's strand is taken by one
  // collection at a time.
  void scrape(Scrape s) {
    queued.push_back(std::move(s));
    if (!collecting) collect();
  }

  void collect() {
    collecting = true;
    in_progress = std::exchange(queued, {});
    asio::post(collect_io, [this] {
      Collection c;
      try {
        const std::vector<ServiceMetrics> services = handlers.metrics();
        c.text = prometheus_text(services);
        std::vector<ServiceReadiness> r;
        for (const ServiceMetrics& m : services) {
          r.push_back(ServiceReadiness{m.service, m.connected, m.ready,
                                       m.bus.subscriptions_refused_now, true});
        }
        c.not_ready = unready(r);
      } catch (const std::exception& e) {
        c.ok = false;
        c.text = std::string("metrics failed: ") + e.what() + "\n";
        c.not_ready = std::string("cannot tell: ") + e.what() + "\n";
      }
      asio::post(io, [this, c = std::move(c)] {
        for (const Scrape& w : std::exchange(in_progress, {})) {
          if (w.readiness) {
            ready_answer(w.stream, w.slot, w.version, w.head, c.not_ready);
          } else {
            answer_scrape(w, c);
          }
        }
        collecting = false;
        if (!queued.empty()) collect();
      });
    });
  }

  void answer_scrape(const Scrape& s, const Collection& c) {
    if (!c.ok) {
      return answer(s.stream, s.slot, s.version, s.head, http::status::internal_server_error,
                    c.text);
    }
    answer(s.stream, s.slot, s.version, s.head, http::status::ok, c.text,
           "text/plain; version=0.0.4; charset=utf-8");
  }
};

MetricsServer::MetricsServer(const std::string& host_port, Handlers handlers, HttpLimits limits)
    : impl_(std::make_unique<Impl>()) {
  impl_->handlers = std::move(handlers);
  impl_->limits = limits;
  open_listener(impl_->acceptor, "--metrics-listen", host_port);
  impl_->accepting = std::make_unique<HttpAcceptor>(
      impl_->io, impl_->acceptor, limits,
      [impl = impl_.get()](std::shared_ptr<beast::tcp_stream> stream, ConnectionSlot slot) {
        impl->serve(std::move(stream), std::move(slot));
      });
  impl_->accepting->start();
  impl_->collector = std::thread([impl = impl_.get()] { impl->collect_io.run(); });
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

MetricsServer::~MetricsServer() {
  // The HTTP thread first: nothing posts a collection after it; then the collection thread,
  // after the collection under way (if any) returned.
  stop_serving(impl_->io, impl_->acceptor, impl_->thread);
  impl_->collect_work.reset();
  impl_->collect_io.stop();
  if (impl_->collector.joinable()) impl_->collector.join();
}

std::uint16_t MetricsServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

}  // namespace eventmart::runtime
