#include "core/event_id.h"

namespace eventmart {
namespace {

std::uint64_t splitmix_finalize(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::uint64_t stable_hash(std::string_view bytes, std::uint64_t seed) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ splitmix_finalize(seed);
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return splitmix_finalize(h ^ bytes.size());
}

std::uint64_t hash_combine(std::uint64_t state, std::uint64_t value) {
  return splitmix_finalize(state ^ (value + 0x9e3779b97f4a7c15ULL + (state << 6) + (state >> 2)));
}

std::string to_hex64(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kDigits[value & 0xf];
    value >>= 4;
  }
  return out;
}

std::string derive_event_id(std::string_view cause_event_id, std::string_view service,
                            std::string_view discriminator) {
  std::uint64_t h = stable_hash(cause_event_id);
  h = hash_combine(h, stable_hash(service));
  h = hash_combine(h, stable_hash(discriminator));
  std::string id;
  id.reserve(service.size() + 17);
  id.append(service);
  id.push_back('-');
  id.append(to_hex64(h));
  return id;
}

}  // namespace eventmart
