// Event identity. A root event (a scan) gets its id from the device reading; an event caused
// by another gets an id derived from the cause's id and the emitting service, so a duplicated
// cause yields the same derived id and every consumer downstream deduplicates it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace eventmart {

// 64-bit word-at-a-time hash with a SplitMix64 finaliser, reading bytes as little-endian
// words. Stable across machines and builds: used for
// derived ids and the simulation trace hash, so it must never change.
std::uint64_t stable_hash(std::string_view bytes, std::uint64_t seed = 0);

// Mixes `value` into `state`; order-sensitive. Stable across machines and builds.
std::uint64_t hash_combine(std::uint64_t state, std::uint64_t value);

// "<service>-<16 hex digits>" from (cause id, service, discriminator). The discriminator
// separates several events one cause yields in one service (e.g. "restock/42" per sku).
std::string derive_event_id(std::string_view cause_event_id, std::string_view service,
                            std::string_view discriminator = {});

// 16 lower-case hex digits of a 64-bit value.
std::string to_hex64(std::uint64_t value);

}  // namespace eventmart
