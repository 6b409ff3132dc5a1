#include "core/assert.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>

namespace eventmart {
namespace {

std::atomic<AssertionHandler> handler{nullptr};
std::atomic<std::uint64_t> failures{0};
thread_local int throwing_scopes = 0;

}  // namespace

std::string AssertionFailure::describe() const {
  std::string text =
      std::string(kind) + " failed at " + file + ":" + std::to_string(line) + ": " + condition;
  if (!values.empty()) text += " (" + values + ")";
  return text;
}

ThrowOnAssertion::ThrowOnAssertion() {
  ++throwing_scopes;
}

ThrowOnAssertion::~ThrowOnAssertion() {
  --throwing_scopes;
}

AssertionHandler set_assertion_handler(AssertionHandler next) {
  return handler.exchange(next);
}

std::uint64_t failed_assertions() {
  return failures.load();
}

void assertion_failed(const char* kind, const char* condition, const char* file, int line,
                      std::string values) {
  ++failures;
  AssertionFailure failure{kind, condition, file, line, std::move(values)};
  if (throwing_scopes > 0 && std::uncaught_exceptions() == 0) {
    throw AssertionFailed{std::move(failure)};
  }
  if (AssertionHandler h = handler.load()) h(failure);
  std::fprintf(stderr, "eventmart: %s\n", failure.describe().c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace eventmart
