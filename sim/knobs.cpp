#include "sim/knobs.h"

#include <algorithm>

#include "services/service.h"

namespace eventmart::sim {

InputLimits Knobs::limits() const {
  InputLimits l;
  l.max_payload_bytes = static_cast<std::size_t>(max_payload_bytes);
  l.max_basket_lines = max_basket_lines;
  l.max_units_per_line = max_units_per_line;
  l.max_basket_units = max_basket_units;
  l.max_id_bytes = static_cast<std::size_t>(max_id_bytes);
  return l;
}

const std::vector<KnobInfo>& knob_table() {
  constexpr std::int64_t kYearS = 365LL * 24 * 3600;
  static const std::vector<KnobInfo> kTable = {
      {"relay_batch", "outbox rows the relay reads at a time (serve: 256)", 1, 1'000'000,
       &Knobs::relay_batch},
      {"relay_delete_batch", "confirmed outbox rows deleted together (serve: 32)", 1, 1'000'000,
       &Knobs::relay_delete_batch},
      {"prune_every", "events a service consumes between inbox prunes (serve: 1000)", 1, 1'000'000,
       &Knobs::prune_every},
      {"inbox_retention_s", "seconds an inbox keeps event ids, 0 for ever (serve: 30 days)", 0,
       10 * kYearS, &Knobs::inbox_retention_s},
      {"session_expiry_s",
       "seconds the brokers keep the session of a client that went away, 0 for ever (serve: 7 "
       "days)",
       0, 10 * kYearS, &Knobs::session_expiry_s},
      {"route_cache_topics", "topics a broker remembers with their subscribers (1024)", 0,
       1'000'000, &Knobs::route_cache_topics},
      {"sweeps_per_interval", "retransmission sweeps per retry interval at most (8)", 1, 1000,
       &Knobs::sweeps_per_interval},
      {"wire", "how the services' messages travel: 0 as envelopes, 1 Cap'n Proto, 2 JSON", 0, 2,
       &Knobs::wire},
      {"max_payload_bytes", "--max-payload-bytes (65536)", 1, 16 * 1024 * 1024,
       &Knobs::max_payload_bytes},
      {"max_basket_lines", "--max-basket-lines (500)", 1, 100'000, &Knobs::max_basket_lines},
      {"max_units_per_line", "--max-units-per-line (1000)", 1, 1'000'000,
       &Knobs::max_units_per_line},
      {"max_basket_units", "--max-basket-units (10000)", 1, 100'000'000, &Knobs::max_basket_units},
      {"max_id_bytes", "--max-id-bytes (128)", 16, 1024, &Knobs::max_id_bytes},
  };
  return kTable;
}

const KnobInfo* find_knob(std::string_view key) {
  for (const KnobInfo& k : knob_table()) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

namespace {

constexpr std::int64_t kHourS = 3600;

// One of `values`, uniformly.
std::int64_t one_of(Rng& rng, std::initializer_list<std::int64_t> values) {
  const auto i = rng.uniform(0, static_cast<std::int64_t>(values.size()) - 1);
  return *(values.begin() + i);
}

}  // namespace

Knobs draw_knobs(Rng rng, const WorkloadShape& shape) {
  Knobs k;
  const auto maybe = [&rng](std::int64_t& knob, std::initializer_list<std::int64_t> values) {
    if (rng.chance(0.5)) knob = one_of(rng, values);
  };
  maybe(k.relay_batch, {1, 2, 7, 1000});
  maybe(k.relay_delete_batch, {1, 2, 5, 1000});
  maybe(k.prune_every, {3, 10, 100});
  maybe(k.session_expiry_s, {10 * 60, kHourS, 6 * kHourS, 2 * 24 * kHourS});
  // Longer than 8/7 of the session expiry (what serve accepts), or for ever.
  if (rng.chance(0.5)) {
    std::vector<std::int64_t> longer;
    for (std::int64_t r : {kHourS, 6 * kHourS, 24 * kHourS, 8 * 24 * kHourS, 30 * 24 * kHourS}) {
      if (k.session_expiry_s == 0 ||
          k.session_expiry_s * 1'000'000 < max_event_age_us(r * 1'000'000)) {
        longer.push_back(r);
      }
    }
    k.inbox_retention_s = longer[static_cast<std::size_t>(
        rng.uniform(0, static_cast<std::int64_t>(longer.size()) - 1))];
  }
  maybe(k.route_cache_topics, {0, 2, 8});
  maybe(k.sweeps_per_interval, {1, 2, 64});
  if (rng.chance(0.5)) k.wire = rng.chance(0.5) ? 2 : 1;
  // Limits as tight as the day allows: a bag holds at most max_basket_lines lines, one sku
  // may come in several of them (merged into one line of up to lines x units).
  if (rng.chance(0.5)) {
    const std::int64_t lines = std::max(1, shape.max_basket_lines);
    const std::int64_t units = lines * std::max(1, shape.max_units_per_line);
    k.max_basket_lines = lines;
    k.max_units_per_line = units;
    k.max_basket_units = units;
    k.max_id_bytes = 64;
    k.max_payload_bytes = 4096;
  }
  return k;
}

OptionCheck validate(const Knobs& knobs) {
  for (const KnobInfo& k : knob_table()) {
    const std::int64_t v = knobs.*k.field;
    if (v < k.min || v > k.max) {
      return OptionError{SimOption::kKnobs,
                         std::string(k.key) + " must be " + std::to_string(k.min) + ".." +
                             std::to_string(k.max) + " (got " + std::to_string(v) + ")"};
    }
  }
  if (knobs.inbox_retention_s > 0 && knobs.session_expiry_s > 0 &&
      knobs.session_expiry_s * 1'000'000 >= max_event_age_us(knobs.inbox_retention_s * 1'000'000)) {
    return OptionError{SimOption::kKnobs,
                       "session_expiry_s must be shorter than 7/8 of inbox_retention_s (got " +
                           std::to_string(knobs.session_expiry_s) + " and " +
                           std::to_string(knobs.inbox_retention_s) +
                           "): serve refuses it, queued events would be refused as too old"};
  }
  if (Status s = knobs.limits().validate(); !s) {
    return OptionError{SimOption::kKnobs, "limits: " + s.error()};
  }
  return std::nullopt;
}

std::string describe_changed(const Knobs& knobs) {
  const Knobs defaults;
  std::string text;
  for (const KnobInfo& k : knob_table()) {
    if (knobs.*k.field == defaults.*k.field) continue;
    text += (text.empty() ? "" : " ") + std::string(k.key) + "=" + std::to_string(knobs.*k.field);
  }
  return text;
}

}  // namespace eventmart::sim
