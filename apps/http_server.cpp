#include "apps/http_server.h"

#include <boost/asio/write.hpp>
#include <cstdio>

#include "apps/cli.h"

namespace eventmart::apps {
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

int parse_max_connections(const std::string& option, const std::string& text) {
  return static_cast<int>(parse_in_range(option, text, 1, 65535));
}

}  // namespace eventmart::apps
