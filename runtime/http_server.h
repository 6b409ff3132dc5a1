// What the two HTTP endpoints of eventmart (`serve --metrics-listen`, `display --listen`) share:
// an accept loop that holds out against a hostile or broken client on the same network.
//
// - At most HttpLimits::max_connections connections are open at once. One more is answered
//   "503 too many connections" and closed at once (so a probe learns why), and never read.
// - A request must arrive within request_timeout, and its answer be taken within it too.
// - accept() failing (the process out of file descriptors: EMFILE) is retried after a pause
//   that doubles from 50 ms to 1 s, not at once: a failing accept returns immediately, and
//   retrying it at once spins a core until a descriptor comes free.
//
// Everything runs on the io_context's one thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace eventmart::runtime {

struct HttpLimits {
  // Connections open at once (streams and held requests included); 1..65535.
  int max_connections = 64;
  // To send a whole request, and to take a whole answer (or one chunk of a stream).
  std::chrono::milliseconds request_timeout{10'000};
};

// The slot a connection holds among HttpLimits::max_connections: freed when the last copy
// is destroyed (keep it with whatever keeps the connection open).
using ConnectionSlot = std::shared_ptr<void>;

class HttpAcceptor {
 public:
  using OnConnection =
      std::function<void(std::shared_ptr<boost::beast::tcp_stream>, ConnectionSlot)>;

  // `acceptor` is open and listening. `on_connection` runs for each accepted connection
  // within the limit, on the io thread, with request_timeout already set on the stream.
  HttpAcceptor(boost::asio::io_context& io, boost::asio::ip::tcp::acceptor& acceptor,
               HttpLimits limits, OnConnection on_connection);

  // Accepts until the acceptor is closed. Call once, before the io thread runs.
  void start();

  int open_connections() const { return state_->open; }
  // Connections turned away at the limit, and accept() failures, since the start.
  std::uint64_t turned_away() const { return state_->turned_away; }
  std::uint64_t accept_failures() const { return state_->accept_failures; }

 private:
  struct State {
    int open = 0;
    std::uint64_t turned_away = 0;
    std::uint64_t accept_failures = 0;
    std::chrono::milliseconds backoff{0};
  };
  void accept();
  void turn_away(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor& acceptor_;
  HttpLimits limits_;
  OnConnection on_connection_;
  boost::asio::steady_timer pause_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// `host_port` as an endpoint to listen on: an IP address and a port ("127.0.0.1:9464",
// "[::1]:9464", port 0..65535). Throws std::invalid_argument naming `option` otherwise.
boost::asio::ip::tcp::endpoint listen_endpoint(const std::string& option,
                                               const std::string& host_port);
// Opens `acceptor` listening on `host_port` (as listen_endpoint reads it). Throws
// std::invalid_argument for a malformed address (naming `option`), std::runtime_error when it
// cannot listen.
void open_listener(boost::asio::ip::tcp::acceptor& acceptor, const std::string& option,
                   const std::string& host_port);
// Ends a server: closes `acceptor` on `io`'s thread, stops `io` and joins `thread`.
void stop_serving(boost::asio::io_context& io, boost::asio::ip::tcp::acceptor& acceptor,
                  std::thread& thread);

}  // namespace eventmart::runtime
