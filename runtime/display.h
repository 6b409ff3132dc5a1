// `eventmart display --listen HOST:PORT`: the entrance display as a web page. It subscribes to
// the store's display topic ({chain}/{store}/display/entrance, where Hello Helper publishes
// each welcome) and serves a full-screen page that shows the current welcome, pushed to the
// browser by Server-Sent Events as it arrives; an "offline" state when the store's bus is
// away (or the page lost this server); an idle screen once a welcome is older than
// --idle-after. A browser on the entrance screen opens http://HOST:PORT/ in kiosk mode.
//
//   /         the page (inline CSS and JS; fetches only /events)
//   /events   text/event-stream: the state at once, then every change; a comment every 10 s
//   /state    the state as JSON
//   /healthz  200 while the process runs
//
// Connections are capped and timed out (apps/http_server.h); a viewer of /events that does not
// take what is sent to it is dropped (its page reconnects), so memory does not grow with what
// a stalled viewer left unread.
//   /next     held until the next welcome is on the page (+200 ms) or ?timeout_ms= passed
//             (&for=state: until any state was sent to a page);
//             the page in ?hold=MS mode loads it in a hidden frame, so a headless browser's
//             load event waits for a welcome (tests/display_test.cpp)
//
// Each welcome (by arrival event id) is shown once: a redelivery changes nothing. The display
// connects with a clean session: a display that was away does not replay welcomes of customers
// long gone; the retained welcome it finds is shown only if younger than --idle-after.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/log.h"
#include "core/topics.h"
#include "runtime/http_server.h"
#include "runtime/live_store.h"
#include "transports/mqtt/mqtt_bus.h"

namespace eventmart::runtime {

struct DisplayOptions {
  std::string listen = "127.0.0.1:8080";
  std::string title;                    // shown on the idle screen; default "{store}"
  std::int64_t idle_after_ms = 60'000;  // a welcome older than this gives way to the idle screen
  HttpLimits http;                      // connections at once, and how long one may take
};

// The page server, fed by whoever watches the bus.
class DisplayServer {
 public:
  // Listens on options.listen. `online` is polled every 500 ms: the store's bus is there.
  // Throws std::invalid_argument (a malformed address) or std::runtime_error (cannot listen).
  DisplayServer(DisplayOptions options, std::function<bool()> online);
  ~DisplayServer();
  DisplayServer(const DisplayServer&) = delete;
  DisplayServer& operator=(const DisplayServer&) = delete;

  std::uint16_t port() const;
  // A welcome document from the display topic (core/wire.h), from any thread. False (and
  // nothing shown) when it is not one.
  bool on_welcome(std::string_view document);
  // Browsers connected to /events now.
  std::size_t viewers() const;
  // Viewers dropped since the start because they did not take what was sent to them.
  std::uint64_t viewers_dropped() const;
  // Welcomes shown since the start, and arrival ids remembered to recognise a redelivery.
  std::uint64_t arrivals_shown() const;
  std::size_t arrivals_remembered() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The display on the bus: a clean-session MQTT client on the display topic feeding a
// DisplayServer. What `eventmart display` runs.
class EntranceDisplay {
 public:
  EntranceDisplay(mqtt::MqttOptions connection, const Topics& topics, DisplayOptions options,
                  Logger& logger);
  ~EntranceDisplay();
  std::uint16_t port() const { return server_->port(); }
  std::size_t viewers() const { return server_->viewers(); }
  bool online() const { return bus_->ready(); }
  // The display's connection as a readiness probe and systemd see it (apps/systemd_notify.h).
  ServiceReadiness readiness() const;
  std::int64_t timer_beat_us() const { return timers_.last_beat_us(); }

 private:
  mqtt::TimerThread timers_;
  mqtt::Strand strand_;
  std::unique_ptr<mqtt::LiveClock> clock_;
  std::unique_ptr<mqtt::MqttBus> bus_;
  std::unique_ptr<DisplayServer> server_;
};

}  // namespace eventmart::runtime
