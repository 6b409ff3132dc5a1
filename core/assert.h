// Always-on checks (kj's KJ_ASSERT and KJ_REQUIRE, TigerBeetle's assert): what the code
// assumes, checked in every build. NDEBUG does not turn them off; they cost a comparison.
//
//   EVENTMART_ASSERT(confirmed_through_ <= last_handed_seq_, confirmed_through_, last_handed_seq_);
//   EVENTMART_REQUIRE(lo <= hi, lo, hi);  // a precondition the caller must keep
//
// A failed check reports the condition, its file and line, and the values named after it
// ("confirmed_through_ = 7, last_handed_seq_ = 5"), then calls the process's assertion
// handler. The default handler prints it on stderr and aborts: a process whose assumptions do
// not hold stops (in production, systemd starts it again; the inbox and outbox make that safe).
// The simulator installs a handler that records the failure and ends the seed's run as a
// failing seed with its replay command, and the swarm goes on (runs/seed_runner.h).
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

namespace eventmart {

struct AssertionFailure {
  const char* kind;       // "assertion" or "precondition"
  const char* condition;  // as written
  const char* file;
  int line;
  std::string values;            // "name = value, ..." of the values given
  std::string describe() const;  // "assertion failed at file:line: condition (values)"
};

// Called for every failed check. Must not return (throw, or end the process); if it returns,
// the process aborts.
using AssertionHandler = void (*)(const AssertionFailure& failure);

// Installs `handler` for the whole process (null: the default, print and abort); returns the
// previous one.
AssertionHandler set_assertion_handler(AssertionHandler handler);

// How many checks failed in this process (each reported to the handler).
std::uint64_t failed_assertions();

// What a failed check throws while a ThrowOnAssertion is open on the thread. Not a
// std::exception on purpose: code that catches std::exception to survive bad input (a
// handler's failure, a refused event) does not swallow it, so it ends the whole run.
struct AssertionFailed {
  AssertionFailure failure;
};

// While one is open on this thread, a failed check throws AssertionFailed instead of calling
// the handler: the simulator ends the seed's run there and reports it as a failing seed, and
// the other seeds (other threads) go on. A check that fails while an exception is already
// unwinding (in a destructor) still goes to the handler: a second exception would terminate.
class ThrowOnAssertion {
 public:
  ThrowOnAssertion();
  ~ThrowOnAssertion();
  ThrowOnAssertion(const ThrowOnAssertion&) = delete;
  ThrowOnAssertion& operator=(const ThrowOnAssertion&) = delete;
};

[[noreturn]] void assertion_failed(const char* kind, const char* condition, const char* file,
                                   int line, std::string values);

namespace detail {

inline void name_values(std::ostringstream&, std::string_view) {}

// "a, b" and a, b -> "a = 1, b = 2" (names split at top-level commas).
template <typename T, typename... Rest>
void name_values(std::ostringstream& out, std::string_view names, const T& value,
                 const Rest&... rest) {
  int depth = 0;
  std::size_t end = 0;
  for (; end < names.size(); ++end) {
    const char c = names[end];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (c == ',' && depth == 0) break;
  }
  std::string_view name = names.substr(0, end);
  while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
  if (out.tellp() > 0) out << ", ";
  out << name << " = " << value;
  if constexpr (sizeof...(rest) > 0) {
    name_values(out, end < names.size() ? names.substr(end + 1) : std::string_view(), rest...);
  }
}

template <typename... Values>
std::string values_text(std::string_view names, const Values&... values) {
  std::ostringstream out;
  if constexpr (sizeof...(values) > 0) name_values(out, names, values...);
  return out.str();
}

}  // namespace detail
}  // namespace eventmart

#define EVENTMART_CHECK_IMPL(kind, cond, ...)                                         \
  do {                                                                                \
    if (!(cond)) [[unlikely]] {                                                       \
      ::eventmart::assertion_failed(                                                  \
          kind, #cond, __FILE__, __LINE__,                                            \
          ::eventmart::detail::values_text(#__VA_ARGS__ __VA_OPT__(, ) __VA_ARGS__)); \
    }                                                                                 \
  } while (false)

#ifndef EVENTMART_NO_ASSERTIONS
// What this code assumes of its own state.
#define EVENTMART_ASSERT(cond, ...) EVENTMART_CHECK_IMPL("assertion", cond, __VA_ARGS__)
// What a function's caller must make true (a "REQUIRES:" of its contract).
#define EVENTMART_REQUIRE(cond, ...) EVENTMART_CHECK_IMPL("precondition", cond, __VA_ARGS__)
#else  // only to measure their cost (-DEVENTMART_ASSERTIONS=OFF): nothing is evaluated, but
       // what the checks name still counts as used (no unused-variable errors)
#define EVENTMART_ASSERT(cond, ...)                  \
  do {                                               \
    if (false) {                                     \
      static_cast<void>(cond);                       \
      ::eventmart::detail::unevaluated(__VA_ARGS__); \
    }                                                \
  } while (false)
#define EVENTMART_REQUIRE(cond, ...) EVENTMART_ASSERT(cond, __VA_ARGS__)
namespace eventmart::detail {
template <typename... Values>
constexpr void unevaluated(const Values&...) {}
}  // namespace eventmart::detail
#endif
