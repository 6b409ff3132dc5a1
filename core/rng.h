// Seeded randomness for the simulator. One root seed; every random stream (workload, faults,
// latency, ...) is derived from it by name, so adding draws to one stream never shifts another.
// The generator (xoshiro256**) and every distribution here are implemented in this file, not
// taken from <random>, whose distributions differ between standard libraries: same seed, same
// numbers, on every machine. Nor from libm: its log and pow differ between versions and
// architectures. Only IEEE-754's exactly rounded operations (+ - * /, conversions) are used,
// and the build turns off their fusion into multiply-adds (-ffp-contract=off), so every
// machine computes the same bits.
#pragma once

#include <bit>
#include <cstdint>
#include <string_view>

#include "core/assert.h"
#include "core/event_id.h"

namespace eventmart {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : seed_(seed) {
    std::uint64_t x = seed;
    for (auto& word : state_) word = splitmix64(x);
  }

  // An independent stream named `stream`, derived from this stream's seed.
  Rng derive(std::string_view stream) const { return Rng(stable_hash(stream, seed_)); }

  std::uint64_t seed() const { return seed_; }

  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform integer in [lo, hi]. REQUIRES: lo <= hi (checked).
  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    EVENTMART_REQUIRE(lo <= hi, lo, hi);
    const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
    if (span == UINT64_MAX) return static_cast<std::int64_t>(next());
    const std::uint64_t range = span + 1;
    // Rejection sampling: no modulo bias.
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    std::uint64_t draw;
    do {
      draw = next();
    } while (draw >= limit);
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + draw % range);
  }

  // Uniform double in [0, 1), 53 random bits.
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  // True with probability p (p <= 0: never, p >= 1: always).
  bool chance(double p) { return unit() < p; }

  // Exponentially distributed duration with the given mean, in whole microseconds.
  std::int64_t exponential_us(std::int64_t mean_us) {
    return static_cast<std::int64_t>(-exact_ln(1.0 - unit()) * static_cast<double>(mean_us));
  }

  // The natural logarithm of x in (0, 1] (x normal) from exactly rounded operations only: the
  // same bits on every machine and compiler. x = m * 2^e with m in [sqrt(1/2), sqrt(2)), then
  // ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series to s^25 (the next
  // term is below 2^-64 of the result).
  static double exact_ln(double x) {
    EVENTMART_REQUIRE(x > 0 && x <= 1, x);
    const auto bits = std::bit_cast<std::uint64_t>(x);
    int e = static_cast<int>((bits >> 52) & 0x7ff) - 1022;
    EVENTMART_REQUIRE(e > -1021, e);  // normal: what 1 - unit() always is
    double m = std::bit_cast<double>((bits & 0x000f'ffff'ffff'ffffULL) | (1022ULL << 52));
    if (m < 0.70710678118654752440) {  // exact: doubling keeps every bit
      m *= 2;
      e -= 1;
    }
    const double s = (m - 1) / (m + 1);
    const double s2 = s * s;
    double t = 1.0 / 25;
    for (int k = 23; k >= 1; k -= 2) t = t * s2 + 1.0 / k;
    constexpr double kLn2 = 0.69314718055994530942;
    return 2 * s * t + e * kLn2;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::uint64_t seed_;
  std::uint64_t state_[4];
};

}  // namespace eventmart
