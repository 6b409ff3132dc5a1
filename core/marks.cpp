#include "core/marks.h"

namespace eventmart {
namespace detail {
MarkCounts*& current_marks() {
  thread_local MarkCounts* counts = nullptr;
  return counts;
}
}  // namespace detail

const std::array<MarkInfo, kMarkCount>& all_marks() {
  static constexpr std::array<MarkInfo, kMarkCount> kMarks = {{
#define EVENTMART_MARK_INFO(id, name, what) {Mark::id, name, what},
      EVENTMART_MARKS(EVENTMART_MARK_INFO)
#undef EVENTMART_MARK_INFO
  }};
  // The table is in enum order, one row a mark: all_marks()[m] describes m.
  static_assert([] {
    for (std::size_t i = 0; i < kMarkCount; ++i) {
      if (static_cast<std::size_t>(kMarks[i].mark) != i || kMarks[i].name.empty()) return false;
    }
    return true;
  }());
  return kMarks;
}

MarkScope::MarkScope(MarkCounts& counts) : previous_(detail::current_marks()) {
  detail::current_marks() = &counts;
}

MarkScope::~MarkScope() {
  detail::current_marks() = previous_;
}

}  // namespace eventmart
