#include "runtime/display.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "core/json.h"
#include "core/wire.h"
#include "runtime/http_server.h"
#include "runtime/metrics.h"
#include "transports/mqtt/live_clock.h"

namespace eventmart::runtime {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// The page: one screen, readable across an entrance. States: "welcome", "idle", "offline".
constexpr std::string_view kPage = R"PAGE(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Entrance display</title>
<style>
html, body { margin:0; height:100%; background:#0b1d2a; color:#fff;
  font-family: system-ui, "DejaVu Sans", sans-serif; overflow:hidden; }
main { height:100%; display:flex; flex-direction:column; align-items:center;
  justify-content:center; text-align:center; padding:0 4vw; box-sizing:border-box; }
#welcome { font-size: clamp(48px, 8vw, 220px); font-weight:700; line-height:1.1; }
#idle { font-size: clamp(32px, 5vw, 140px); opacity:.85; }
#clock { font-size: clamp(20px, 2.5vw, 64px); opacity:.6; margin-top:2vh; }
#offline { position:fixed; inset:0; display:none; align-items:center; justify-content:center;
  background:rgba(40,40,40,.92); color:#ffcc80; font-size:clamp(28px, 4vw, 100px);
  text-align:center; padding:4vw; }
body[data-state="offline"] #offline { display:flex; }
body[data-state="welcome"] #idle-box { display:none; }
body:not([data-state="welcome"]) #welcome { display:none; }
</style></head>
<body data-state="offline">
<main><div id="welcome"></div>
  <div id="idle-box"><div id="idle"></div><div id="clock"></div></div></main>
<div id="offline">The display is offline: waiting for the store's system.</div>
<script>
'use strict';
(function () {
  const body = document.body;
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  if (params.has('hold')) {  // tests: the load event waits for the next welcome
    const f = document.createElement('iframe');
    f.hidden = true;
    f.src = '/next?timeout_ms=' + encodeURIComponent(params.get('hold')) +
      (params.get('for') === 'state' ? '&for=state' : '');
    document.documentElement.appendChild(f);
  }
  let state = null, idleTimer = 0, linked = false;
  function render() {
    clearTimeout(idleTimer);
    $('idle').textContent = state && state.title ? 'Welcome to ' + state.title : 'Welcome';
    if (!linked || !state || !state.online) { body.dataset.state = 'offline'; return; }
    const left = state.message ? state.idle_after_ms - state.age_ms : 0;
    if (state.message && left > 0) {
      if ($('welcome').textContent !== state.message || body.dataset.state !== 'welcome') {
        $('welcome').textContent = state.message;
        body.dataset.welcomeAt = String(Date.now());
        body.dataset.arrival = state.arrival_event_id;
      }
      body.dataset.state = 'welcome';
      idleTimer = setTimeout(() => { state.message = ''; render(); }, left);
    } else {
      body.dataset.state = 'idle';
    }
  }
  function tick() {
    $('clock').textContent = new Date().toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
  }
  tick(); setInterval(tick, 10000);
  const events = new EventSource('/events');
  events.onopen = () => { linked = true; render(); };
  events.onerror = () => { linked = false; render(); };
  events.onmessage = (e) => { linked = true; state = JSON.parse(e.data); render(); };
})();
</script></body></html>
)PAGE";

// What may wait for one viewer of /events before it is dropped as too slow.
constexpr std::size_t kMaxViewerQueue = 32;
constexpr std::size_t kMaxViewerQueueBytes = 128 * 1024;
// Arrival ids remembered to recognise a redelivered welcome.
constexpr std::size_t kRememberShown = 4096;

}  // namespace

struct DisplayServer::Impl : std::enable_shared_from_this<DisplayServer::Impl> {
  struct Viewer {
    Viewer(std::shared_ptr<beast::tcp_stream> s, ConnectionSlot c)
        : stream(std::move(s)), slot(std::move(c)) {}
    std::shared_ptr<beast::tcp_stream> stream;
    ConnectionSlot slot;
    std::deque<std::string> queue;
    std::size_t queued_bytes = 0;
    bool writing = false;
    // Closed (an error, or too slow). The stream itself lives as long as the viewer: a write
    // under way still refers to it.
    bool dropped = false;
  };
  struct Waiter {
    std::shared_ptr<beast::tcp_stream> stream;
    ConnectionSlot slot;
    std::shared_ptr<asio::steady_timer> timer;
    unsigned version = 11;
    bool any_state = false;  // answered by any state sent to a page, not only a welcome
  };

  DisplayOptions options;
  HttpLimits limits;
  std::function<bool()> online_probe;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::unique_ptr<HttpAcceptor> accepting;
  asio::steady_timer poll{io};
  asio::steady_timer heartbeat{io};
  std::thread thread;
  // Under the io thread only:
  bool online = false;
  std::string message, arrival_event_id;
  CustomerId customer_id = 0;
  std::chrono::steady_clock::time_point shown_at{};
  // Arrival event ids already shown (a redelivery shows nothing): the last kRememberShown of
  // them, oldest first in shown_order. A redelivery comes within seconds or minutes.
  std::set<std::string> shown;
  std::deque<std::string> shown_order;
  std::atomic<std::uint64_t> viewers_dropped{0};  // too slow to take what was sent to them
  std::atomic<std::uint64_t> arrivals_shown{0};
  std::atomic<std::size_t> arrivals_remembered{0};
  std::vector<std::shared_ptr<Viewer>> viewers;
  std::vector<Waiter> waiters;
  std::atomic<std::size_t> viewer_count{0};

  std::string state_json() const {
    json::Document d = json::Document::object();
    d["online"] = online;
    d["title"] = options.title;
    d["idle_after_ms"] = options.idle_after_ms;
    d["message"] = message;
    d["customer_id"] = customer_id;
    d["arrival_event_id"] = arrival_event_id;
    d["age_ms"] = message.empty() ? 0
                                  : std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - shown_at)
                                        .count();
    return json::dump(d);
  }

  // A viewer that does not take what is sent to it is dropped once kMaxViewerQueue chunks or
  // kMaxViewerQueueBytes wait for it, or one write does not complete within the request
  // timeout: its browser reconnects (the page's EventSource does) and gets the current state.
  // Memory stays bounded by the viewers, not by what they did not read.
  void send(const std::shared_ptr<Viewer>& v, std::string chunk) {
    if (v->dropped) return;
    if (v->queue.size() >= kMaxViewerQueue ||
        v->queued_bytes + chunk.size() > kMaxViewerQueueBytes) {
      ++viewers_dropped;
      return drop(v);
    }
    v->queued_bytes += chunk.size();
    v->queue.push_back(std::move(chunk));
    if (!v->writing) write_next(v);
  }
  void write_next(const std::shared_ptr<Viewer>& v) {
    if (v->queue.empty() || v->dropped) {
      v->writing = false;
      return;
    }
    v->writing = true;
    auto self = shared_from_this();
    v->stream->expires_after(limits.request_timeout);
    asio::async_write(*v->stream, asio::buffer(v->queue.front()),
                      [self, v](beast::error_code ec, std::size_t) {
                        if (v->dropped) return;
                        v->queued_bytes -= v->queue.front().size();
                        v->queue.pop_front();
                        if (ec) return self->drop(v);
                        self->write_next(v);
                      });
  }
  void drop(const std::shared_ptr<Viewer>& v) {
    if (v->dropped) return;
    v->dropped = true;
    beast::error_code ignored;
    v->stream->socket().close(ignored);
    v->queue.clear();
    v->queued_bytes = 0;
    v->slot.reset();  // the connection's place is free at once
    std::erase(viewers, v);
    viewer_count = viewers.size();
  }
  void broadcast() {
    const std::string event = "data: " + state_json() + "\n\n";
    for (const auto& v : std::vector(viewers)) send(v, event);
  }

  void show(const ShownText& t) {
    if (!shown.insert(t.arrival_event_id).second) return;  // shown before
    shown_order.push_back(t.arrival_event_id);
    if (shown_order.size() > kRememberShown) {
      shown.erase(shown_order.front());
      shown_order.pop_front();
    }
    ++arrivals_shown;
    arrivals_remembered = shown.size();
    const auto age = t.at_us > 0
                         ? std::max<std::int64_t>(0, (mqtt::wall_clock_us() - t.at_us) / 1000)
                         : std::int64_t{0};
    message = t.message;
    arrival_event_id = t.arrival_event_id;
    customer_id = t.customer_id;
    shown_at = std::chrono::steady_clock::now() - std::chrono::milliseconds(age);
    broadcast();
    release_waiters(false);
  }

  // Held /next requests: answered 200 ms after the page had what they wait for.
  void release_waiters(bool state_only) {
    std::vector<Waiter> keep;
    for (Waiter& w : waiters) {
      if (state_only && !w.any_state) {
        keep.push_back(w);
        continue;
      }
      w.timer->expires_after(std::chrono::milliseconds(200));
      w.timer->async_wait([self = shared_from_this(), w](beast::error_code) {
        self->answer_next(w, http::status::ok, "sent\n");
      });
    }
    waiters = std::move(keep);
  }

  void poll_online() {
    const bool now = online_probe ? online_probe() : true;
    if (now != online) {
      online = now;
      broadcast();
      release_waiters(true);
    }
    poll.expires_after(std::chrono::milliseconds(500));
    poll.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->poll_online();
    });
  }
  void beat() {
    for (const auto& v : std::vector(viewers)) send(v, ": keep-alive\n\n");
    heartbeat.expires_after(std::chrono::seconds(10));
    heartbeat.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->beat();
    });
  }

  // The acceptor set the request's deadline.
  void serve(std::shared_ptr<beast::tcp_stream> stream, ConnectionSlot slot) {
    auto buffer = std::make_shared<beast::flat_buffer>();
    auto request = std::make_shared<http::request<http::string_body>>();
    http::async_read(*stream, *buffer, *request,
                     [self = shared_from_this(), stream, slot, buffer, request](
                         beast::error_code ec, std::size_t) {
                       if (!ec) self->route(stream, slot, *request);
                     });
  }

  void reply(const std::shared_ptr<beast::tcp_stream>& stream, const ConnectionSlot& slot,
             unsigned version, http::status status, std::string_view type, std::string body) {
    auto response = std::make_shared<http::response<http::string_body>>(status, version);
    response->set(http::field::server, "eventmart-display");
    response->set(http::field::content_type, boost::beast::string_view(type.data(), type.size()));
    response->set(http::field::cache_control, "no-store");
    response->keep_alive(false);
    response->body() = std::move(body);
    response->prepare_payload();
    stream->expires_after(limits.request_timeout);  // to take the answer
    http::async_write(*stream, *response, [stream, slot, response](beast::error_code, std::size_t) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  void answer_next(const Waiter& w, http::status status, std::string body) {
    reply(w.stream, w.slot, w.version, status, "text/plain; charset=utf-8", std::move(body));
  }

  void route(const std::shared_ptr<beast::tcp_stream>& stream, const ConnectionSlot& slot,
             const http::request<http::string_body>& request) {
    const std::string target(request.target());
    const std::string path = target.substr(0, target.find('?'));
    const unsigned version = request.version();
    if (request.method() != http::verb::get) {
      return reply(stream, slot, version, http::status::method_not_allowed, "text/plain",
                   "GET only\n");
    }
    if (path == "/") {
      return reply(stream, slot, version, http::status::ok, "text/html; charset=utf-8",
                   std::string(kPage));
    }
    if (path == "/healthz")
      return reply(stream, slot, version, http::status::ok, "text/plain", "ok\n");
    if (path == "/state") {
      return reply(stream, slot, version, http::status::ok, "application/json", state_json());
    }
    if (path == "/next") {
      std::int64_t timeout_ms = 10'000;
      const auto at = target.find("timeout_ms=");
      if (at != std::string::npos) {
        try {
          timeout_ms = std::clamp<std::int64_t>(std::stoll(target.substr(at + 11)), 0, 60'000);
        } catch (const std::exception&) {
          return reply(stream, slot, version, http::status::bad_request, "text/plain",
                       "timeout_ms must be a number\n");
        }
      }
      stream->expires_never();  // held up to timeout_ms; the answer has its own deadline
      Waiter w{stream, slot, std::make_shared<asio::steady_timer>(io), version,
               target.find("for=state") != std::string::npos};
      w.timer->expires_after(std::chrono::milliseconds(timeout_ms));
      w.timer->async_wait([self = shared_from_this(), w](beast::error_code ec) {
        if (ec) return;  // cancelled: answered by show()
        std::erase_if(self->waiters, [&](const Waiter& x) { return x.timer == w.timer; });
        self->answer_next(w, http::status::no_content, "");
      });
      waiters.push_back(w);
      return;
    }
    if (path == "/events") {
      auto viewer = std::make_shared<Viewer>(stream, slot);
      viewers.push_back(viewer);
      viewer_count = viewers.size();
      send(viewer,
           "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
           "Connection: keep-alive\r\nServer: eventmart-display\r\n\r\nretry: 1000\n\n");
      send(viewer, "data: " + state_json() + "\n\n");
      release_waiters(true);
      return;
    }
    reply(stream, slot, version, http::status::not_found, "text/plain",
          "not found: / (the page), /events, /state, /healthz\n");
  }
};

DisplayServer::DisplayServer(DisplayOptions options, std::function<bool()> online)
    : impl_(std::make_shared<Impl>()) {
  impl_->options = std::move(options);
  impl_->limits = impl_->options.http;
  impl_->online_probe = std::move(online);
  open_listener(impl_->acceptor, "--listen", impl_->options.listen);
  impl_->accepting = std::make_unique<HttpAcceptor>(
      impl_->io, impl_->acceptor, impl_->limits,
      [impl = impl_.get()](std::shared_ptr<beast::tcp_stream> stream, ConnectionSlot slot) {
        impl->serve(std::move(stream), std::move(slot));
      });
  impl_->accepting->start();
  impl_->poll_online();
  impl_->beat();
  impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
}

DisplayServer::~DisplayServer() {
  stop_serving(impl_->io, impl_->acceptor, impl_->thread);
}

std::uint16_t DisplayServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

bool DisplayServer::on_welcome(std::string_view document) {
  auto shown = read_welcome_document(document);
  if (!shown) return false;
  asio::post(impl_->io, [impl = impl_, t = shown.value()] { impl->show(t); });
  return true;
}

std::size_t DisplayServer::viewers() const {
  return impl_->viewer_count;
}

std::uint64_t DisplayServer::viewers_dropped() const {
  return impl_->viewers_dropped;
}

std::uint64_t DisplayServer::arrivals_shown() const {
  return impl_->arrivals_shown;
}

std::size_t DisplayServer::arrivals_remembered() const {
  return impl_->arrivals_remembered;
}

EntranceDisplay::EntranceDisplay(mqtt::MqttOptions connection, const Topics& topics,
                                 DisplayOptions options, Logger& logger) {
  // A clean session: a display away for a while does not replay the welcomes it missed.
  connection.clean_session = true;
  clock_ = std::make_unique<mqtt::LiveClock>(timers_, strand_);
  bus_ = std::make_unique<mqtt::MqttBus>(connection, topics, *clock_, strand_, logger, "display");
  server_ = std::make_unique<DisplayServer>(std::move(options),
                                            [bus = bus_.get()] { return bus->ready(); });
  bus_->subscribe_bytes(topics.display_entrance, [this, &logger](const std::string& topic,
                                                                 std::string_view bytes, bool) {
    if (!server_->on_welcome(bytes)) {
      logger.log(LogLevel::kWarning, "display", "not a welcome on '" + topic + "' (ignored)");
    }
  });
  bus_->start();
}

ServiceReadiness EntranceDisplay::readiness() const {
  return ServiceReadiness{"display", bus_->connected(), bus_->ready(), bus_->refused_now(),
                          bus_->keeps_going(mqtt::wall_clock_us())};
}

EntranceDisplay::~EntranceDisplay() {
  bus_->stop();
  server_.reset();
}

}  // namespace eventmart::runtime
