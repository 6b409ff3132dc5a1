// A slab of values addressed by 64-bit ids that encode (generation << 32 | slot). Erased
// slots are reused; a stale id (its slot reused since) finds nothing. Iteration is in slot
// order, which is a pure function of the sequence of inserts and erases: deterministic.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/assert.h"

namespace eventmart::memory {

template <typename T>
class Slab {
 public:
  std::uint64_t insert(T value) {
    std::uint32_t slot;
    if (free_.empty()) {
      slot = static_cast<std::uint32_t>(entries_.size());
      entries_.push_back(Entry{});
    } else {
      slot = free_.back();
      free_.pop_back();
    }
    Entry& e = entries_[slot];
    EVENTMART_ASSERT(!e.value, slot);  // a free slot holds nothing
    ++e.generation;
    // A generation that wrapped would let an id from 2^32 reuses ago find the new value.
    EVENTMART_ASSERT(e.generation != 0, slot);
    e.value = std::move(value);
    ++size_;
    return (static_cast<std::uint64_t>(e.generation) << 32) | slot;
  }

  T* find(std::uint64_t id) {
    const auto slot = static_cast<std::uint32_t>(id);
    if (slot >= entries_.size()) return nullptr;
    Entry& e = entries_[slot];
    if (!e.value || e.generation != static_cast<std::uint32_t>(id >> 32)) return nullptr;
    return &*e.value;
  }

  void erase(std::uint64_t id) {
    if (find(id) == nullptr) return;
    const auto slot = static_cast<std::uint32_t>(id);
    entries_[slot].value.reset();
    free_.push_back(slot);
    --size_;
  }

  // Calls f(id, value) for every live value, in slot order. f may not insert or erase.
  template <typename F>
  void for_each(F f) {
    const std::size_t size = size_;
    for (std::uint32_t slot = 0; slot < entries_.size(); ++slot) {
      Entry& e = entries_[slot];
      if (e.value) f((static_cast<std::uint64_t>(e.generation) << 32) | slot, *e.value);
      EVENTMART_ASSERT(size_ == size, size_, size);  // f inserted or erased
    }
  }

  // Erases every value for which pred(value) is true.
  template <typename P>
  void erase_if(P pred) {
    for (std::uint32_t slot = 0; slot < entries_.size(); ++slot) {
      Entry& e = entries_[slot];
      if (e.value && pred(*e.value)) {
        e.value.reset();
        free_.push_back(slot);
        --size_;
      }
    }
  }

  std::size_t size() const {
    EVENTMART_ASSERT(size_ + free_.size() == entries_.size(), size_, free_.size(), entries_.size());
    return size_;
  }
  bool empty() const { return size_ == 0; }

 private:
  struct Entry {
    std::uint32_t generation = 0;
    std::optional<T> value;
  };
  std::vector<Entry> entries_;
  std::vector<std::uint32_t> free_;
  std::size_t size_ = 0;
};

}  // namespace eventmart::memory
