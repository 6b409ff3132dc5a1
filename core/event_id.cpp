#include "core/event_id.h"

namespace eventmart {
namespace {

std::uint64_t splitmix_finalize(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Eight bytes as a little-endian number, whatever the machine's byte order.
std::uint64_t load_le64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::uint64_t mix_word(std::uint64_t h, std::uint64_t word) {
  h = (h ^ (word * 0x9fb21c651e98df25ULL)) * 0x100000001b3ULL;
  return h ^ (h >> 29);
}

}  // namespace

std::uint64_t stable_hash(std::string_view bytes, std::uint64_t seed) {
  // Word at a time: each 8-byte little-endian word is mixed in; the tail is zero-padded and
  // the length folded in at the end.
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size();
  std::uint64_t h = 0xcbf29ce484222325ULL ^ splitmix_finalize(seed);
  for (; n >= 8; p += 8, n -= 8) h = mix_word(h, load_le64(p));
  if (n > 0) {
    unsigned char tail[8] = {};
    for (std::size_t i = 0; i < n; ++i) tail[i] = p[i];
    h = mix_word(h, load_le64(tail));
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
