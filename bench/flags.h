// The benchmarks' command lines: `--name N` numbers with a fallback, nothing more.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace eventmart::bench {

// The value after `name` on the command line, or `fallback` when it is not there.
inline std::uint64_t flag(int argc, char** argv, const char* name, std::uint64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::strtoull(argv[i + 1], nullptr, 10);
  }
  return fallback;
}

}  // namespace eventmart::bench
