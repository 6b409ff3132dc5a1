// `eventmart display`: the entrance display as a page, in headless Chromium, fed by the real
// services on a real mosquitto. A scan of customer 3 at the entrance shows "Welcome, Grace
// Hopper!" on the open page within a second; the page goes offline when the broker does.
// Screenshots go to report-screenshots/ in the build folder.
#include "runtime/display.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "runtime/live_store.h"
#include "testkit/broker_probe.h"
#include "testkit/mosquitto.h"
#include "tests/chromium.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

namespace fs = std::filesystem;
const fs::path kOut = fs::path(EVENTMART_BINARY_DIR) / "report-screenshots";

using Page = BrowserRun;

Page chromium(const std::string& url, const fs::path& screenshot = {}) {
  return run_chromium(url, kOut, "1280,720", screenshot);
}

// An attribute of the page's <body> (the CSS mentions the same names: not there).
std::string attribute(const std::string& dom, const std::string& name) {
  const std::string key = name + "=\"";
  const auto body = dom.find("<body");
  if (body == std::string::npos) return {};
  const auto end = dom.find('>', body);
  const auto at = dom.find(key, body);
  if (at == std::string::npos || at > end) return {};
  if (at == std::string::npos) return {};
  return dom.substr(at + key.size(), dom.find('"', at + key.size()) - at - key.size());
}

std::string http_get(std::uint16_t port, const std::string& target) {
  namespace http = boost::beast::http;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  http::request<http::empty_body> request(http::verb::get, target, 11);
  http::write(socket, request);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(socket, buffer, response);
  return response.body();
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(EntranceDisplay, AScanOfCustomer3ShowsTheirWelcomeOnTheOpenPageWithinASecond) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  runtime::LiveOptions o;
  o.connection.broker = broker.uri();
  o.data_dir = data.file("");
  o.services = {"gateway-guardian", "hello-helper"};
  runtime::LiveStore store(o, logger);
  store.start();
  mqtt::MqttOptions connection;
  connection.broker = broker.uri();
  connection.client_id = "display-test";
  runtime::DisplayOptions options;
  options.listen = "127.0.0.1:0";
  options.title = "Fresh Frontier";
  runtime::EntranceDisplay display(connection, Topics(kDefaultChain, kDefaultStore), options, logger);
  ASSERT_TRUE(wait_until([&] { return store.all_ready() && display.online(); }));
  const std::string url = "http://127.0.0.1:" + std::to_string(display.port()) + "/";

  // The page is open (its load event held until a welcome is on it, at most 15 s) ...
  auto open = std::async(std::launch::async, [&] { return chromium(url + "?hold=15000"); });
  ASSERT_TRUE(wait_until([&] { return display.viewers() >= 1; }, std::chrono::seconds(30)))
      << "the page never connected to /events";
  // ... when customer 3 scans their card at the entrance.
  const std::int64_t scanned_at = now_ms();
  runtime::ScanRequest arrival;
  arrival.kind = runtime::ScanRequest::Kind::kArrival;
  arrival.card = "3";
  arrival.scan_id = "display-test/1";
  ASSERT_NE(store.scan(arrival, "").kind, ScanOutcome::Kind::kRejected);
  const Page page = open.get();
  EXPECT_TRUE(page.console.empty()) << page.console.front();
  EXPECT_NE(page.dom.find("Welcome, Grace Hopper!"), std::string::npos) << page.dom;
  EXPECT_EQ(attribute(page.dom, "data-state"), "welcome");
  const std::string shown_at = attribute(page.dom, "data-welcome-at");
  ASSERT_FALSE(shown_at.empty()) << "the page never showed a welcome";
  const std::int64_t latency = std::stoll(shown_at) - scanned_at;
  std::printf("scan to welcome on the page: %lld ms\n", static_cast<long long>(latency));
  EXPECT_LT(latency, 1000) << "the welcome took longer than a second";
  EXPECT_GE(latency, 0);

  // Opened afresh it shows the current welcome (not yet idle); a screenshot for people.
  const fs::path png = kOut / "entrance-display.png";
  fs::remove(png);
  const Page shot = chromium(url + "?hold=10000&for=state", png);
  EXPECT_TRUE(shot.console.empty());
  EXPECT_TRUE(fs::exists(png) && fs::file_size(png) > 5'000);

  // The broker goes away: the state says offline, and so does a page opened now.
  broker.stop();
  ASSERT_TRUE(wait_until(
      [&] {
        return http_get(display.port(), "/state").find("\"online\":false") != std::string::npos;
      },
      std::chrono::seconds(15)));
  const Page offline = chromium(url + "?hold=10000&for=state");
  EXPECT_EQ(attribute(offline.dom, "data-state"), "offline");
  EXPECT_NE(offline.dom.find("offline"), std::string::npos);
  store.stop();
}

TEST(EntranceDisplay, AWelcomeIsShownOnceAndAnOldOneGivesWayToTheIdleScreen) {
  runtime::DisplayOptions options;
  options.listen = "127.0.0.1:0";
  options.idle_after_ms = 60'000;
  runtime::DisplayServer server(options, [] { return true; });
  const auto doc = [](const std::string& id, const std::string& text, std::int64_t at_us) {
    return welcome_document(3, text, id, at_us);
  };
  const std::int64_t now_us = now_ms() * 1000;
  EXPECT_FALSE(server.on_welcome("not a welcome"));
  ASSERT_TRUE(server.on_welcome(doc("a-1", "Welcome, Grace Hopper!", now_us)));
  ASSERT_TRUE(wait_until(
      [&] { return http_get(server.port(), "/state").find("Grace Hopper") != std::string::npos; }));
  // The same arrival again (a redelivery) with other text: nothing changes.
  server.on_welcome(doc("a-1", "something else", now_us));
  ASSERT_TRUE(server.on_welcome(doc("a-2", "Welcome back, Ada Lovelace!", now_us - 3'600'000'000)));
  ASSERT_TRUE(wait_until(
      [&] { return http_get(server.port(), "/state").find("Ada Lovelace") != std::string::npos; }));
  const std::string state = http_get(server.port(), "/state");
  EXPECT_EQ(state.find("something else"), std::string::npos);
  // An hour old: its age says so, and the page (idle after 60 s) shows the idle screen.
  const auto age = state.find("\"age_ms\":");
  ASSERT_NE(age, std::string::npos);
  EXPECT_GE(std::stoll(state.substr(age + 9)), 3'500'000);
  const Page page =
      chromium("http://127.0.0.1:" + std::to_string(server.port()) + "/?hold=10000&for=state");
  EXPECT_TRUE(page.console.empty());
  EXPECT_EQ(attribute(page.dom, "data-state"), "idle") << page.dom;
}

}  // namespace
}  // namespace eventmart::test
