// The one way eventmart says an operation failed for a reason a caller handles (bad input, a
// business refusal): a Result<T> holds a value or the sentence that says what was wrong, and
// Status (Result<void>) only the latter. Faults (a broken disk, a bug) are exceptions derived from
// std::exception instead.
//
// Both are [[nodiscard]]: a result dropped on the floor is a compile error (-Werror). Access is
// checked: value() of a failed result throws std::logic_error naming the failure, never reads
// past an empty optional (it did, as Result<T>: undefined behaviour).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace eventmart {

template <typename T>
class [[nodiscard]] Result {
 public:
  static Result ok(T value) { return Result(std::move(value), {}); }
  static Result error(std::string why) { return Result(std::nullopt, std::move(why)); }

  explicit operator bool() const { return value_.has_value(); }
  const T& value() const& {
    check();
    return *value_;
  }
  T& value() & {
    check();
    return *value_;
  }
  T&& value() && {
    check();
    return std::move(*value_);
  }
  // Why it failed; "" when it did not.
  const std::string& error() const { return error_; }

 private:
  Result(std::optional<T> value, std::string error)
      : value_(std::move(value)), error_(std::move(error)) {}
  void check() const {
    if (!value_) throw std::logic_error("the value of a failed result: " + error_);
  }
  std::optional<T> value_;
  std::string error_;
};

// Success, or why not: what a validator returns.
class [[nodiscard]] Status {
 public:
  static Status ok() { return Status(true, {}); }
  static Status error(std::string why) { return Status(false, std::move(why)); }
  // An empty `why` is success: the bridge from validators that said "" for fine.
  static Status from(std::string why) { return why.empty() ? ok() : error(std::move(why)); }

  explicit operator bool() const { return ok_; }
  const std::string& error() const { return error_; }

 private:
  Status(bool ok, std::string error) : ok_(ok), error_(std::move(error)) {}
  bool ok_;
  std::string error_;
};

}  // namespace eventmart
