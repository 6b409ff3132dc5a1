#include "core/limits.h"

namespace eventmart {
namespace {

// Length of the valid UTF-8 sequence starting at s[i] (NUL excluded), or 0 if there is none.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c == 0) return 0;
  if (c < 0x80) return 1;
  std::size_t extra = 0;
  std::uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    extra = 1;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    extra = 2;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    extra = 3;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + extra >= s.size()) return 0;
  for (std::size_t k = 1; k <= extra; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return extra + 1;
}

}  // namespace

Status InputLimits::validate() const {
  if (max_payload_bytes < 64 || max_payload_bytes > 16 * 1024 * 1024) {
    return Status::error("the payload limit must be 64 bytes..16 MiB");
  }
  if (max_basket_lines < 1 || max_basket_lines > 100'000) {
    return Status::error("the basket line limit must be 1..100000");
  }
  if (max_units_per_line < 1 || max_units_per_line > 1'000'000) {
    return Status::error("the units-per-line limit must be 1..1000000");
  }
  if (max_basket_units < 1 || max_basket_units > 1'000'000) {
    return Status::error("the basket unit limit must be 1..1000000");
  }
  if (max_id_bytes < 16 || max_id_bytes > 1024)
    return Status::error("the id length limit must be 16..1024");
  return Status::ok();
}

const InputLimits& default_limits() {
  static const InputLimits limits;
  return limits;
}

Status check_id(std::string_view id, std::size_t max_bytes, std::string_view what) {
  if (id.empty()) return Status::error(std::string(what) + " is empty");
  if (id.size() > max_bytes) {
    return Status::error(std::string(what) + " of " + std::to_string(id.size()) +
                         " bytes is longer than " + std::to_string(max_bytes));
  }
  for (std::size_t i = 0; i < id.size(); ++i) {
    const auto c = static_cast<unsigned char>(id[i]);
    if (c < 0x21 || c > 0x7e) {
      return Status::error(std::string(what) + " '" + excerpt(id, 40) + "' has byte 0x" +
                           "0123456789abcdef"[c >> 4] + "0123456789abcdef"[c & 15] + " at " +
                           std::to_string(i) + " (printable ASCII without blanks only)");
    }
  }
  return Status::ok();
}

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string excerpt(std::string_view text, std::size_t max_bytes) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t n = utf8_sequence(text, i);
    const std::size_t width = n == 0 ? 1 : n;
    if (out.size() + width > max_bytes) break;
    const auto c = static_cast<unsigned char>(text[i]);
    if (n == 0 || c < 0x20 || c == 0x7f) {
      out += '?';
    } else {
      out.append(text.substr(i, n));
    }
    i += width;
  }
  if (i < text.size()) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

}  // namespace eventmart
