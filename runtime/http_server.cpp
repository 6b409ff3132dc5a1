#include "runtime/http_server.h"

#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <charconv>
#include <cstdio>
#include <stdexcept>

#include "core/limits.h"

namespace eventmart::runtime {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

constexpr std::chrono::milliseconds kFirstPause{50};
constexpr std::chrono::milliseconds kLongestPause{1000};
constexpr std::string_view kTooMany =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 21\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many connections\n";

}  // namespace

HttpAcceptor::HttpAcceptor(asio::io_context& io, tcp::acceptor& acceptor, HttpLimits limits,
                           OnConnection on_connection)
    : io_(io),
      acceptor_(acceptor),
      limits_(limits),
      on_connection_(std::move(on_connection)),
      pause_(io) {
  if (limits_.max_connections < 1) throw std::invalid_argument("max_connections must be >= 1");
}

void HttpAcceptor::start() {
  accept();
}

void HttpAcceptor::accept() {
  acceptor_.async_accept([this, state = state_](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors (EMFILE, ENFILE), or out of memory: nothing to do but wait.
      ++state->accept_failures;
      state->backoff =
          state->backoff.count() == 0 ? kFirstPause : std::min(state->backoff * 2, kLongestPause);
      if (state->accept_failures == 1 || state->backoff == kLongestPause) {
        std::fprintf(stderr, "eventmart: cannot accept an HTTP connection (%s); pausing %lld ms\n",
                     ec.message().c_str(), static_cast<long long>(state->backoff.count()));
      }
      pause_.expires_after(state->backoff);
      pause_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) accept();
      });
      return;
    }
    state->backoff = std::chrono::milliseconds(0);
    if (state->open >= limits_.max_connections) {
      ++state->turned_away;
      turn_away(std::move(socket));
    } else {
      ++state->open;
      // The slot frees itself when the connection's last holder lets go.
      ConnectionSlot slot(nullptr, [state](void*) { --state->open; });
      auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
      stream->expires_after(limits_.request_timeout);
      on_connection_(std::move(stream), std::move(slot));
    }
    accept();
  });
}

void HttpAcceptor::turn_away(tcp::socket socket) {
  // Never read: the short answer goes out with what fits in the socket's buffer at once.
  auto s = std::make_shared<tcp::socket>(std::move(socket));
  asio::async_write(*s, asio::buffer(kTooMany.data(), kTooMany.size()),
                    [s](beast::error_code, std::size_t) {
                      beast::error_code ignored;
                      s->shutdown(tcp::socket::shutdown_both, ignored);
                      s->close(ignored);
                    });
}

tcp::endpoint listen_endpoint(const std::string& option, const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == host_port.size()) {
    throw std::invalid_argument(option + " must be HOST:PORT, e.g. 127.0.0.1:9464 (got '" +
                                excerpt(host_port, 60) + "')");
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port_text = host_port.substr(colon + 1);
  int port = -1;
  const auto [end, parsed] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (parsed != std::errc() || end != port_text.data() + port_text.size() || port < 0 ||
      port > 65535) {
    throw std::invalid_argument(option + " port must be 0..65535 (got '" + excerpt(port_text, 20) +
                                "')");
  }
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    throw std::invalid_argument(option + ": '" + excerpt(host, 60) + "' is not an IP address");
  }
  return tcp::endpoint(address, static_cast<std::uint16_t>(port));
}

void open_listener(tcp::acceptor& acceptor, const std::string& option,
                   const std::string& host_port) {
  const tcp::endpoint endpoint = listen_endpoint(option, host_port);
  beast::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + host_port + ": " + ec.message());
}

void stop_serving(asio::io_context& io, tcp::acceptor& acceptor, std::thread& thread) {
  asio::post(io, [&io, &acceptor] {
    beast::error_code ignored;
    acceptor.close(ignored);
    io.stop();
  });
  if (thread.joinable()) thread.join();
}

}  // namespace eventmart::runtime
