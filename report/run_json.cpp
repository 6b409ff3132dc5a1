#include "report/run_json.h"

#include "core/events.h"

namespace eventmart::report {

void write_invariants(JsonWriter& j, const std::vector<properties::InvariantResult>& invariants) {
  j.key("invariants").begin_object();
  for (const auto& inv : invariants) {
    j.key(inv.name).begin_object();
    j.key("held").value(inv.held());
    j.key("violations").value(inv.violations);
    j.key("dead_lettered").value(inv.dead_lettered);
    j.key("checked").value(inv.checked);
    j.key("examples").begin_array();
    for (const auto& e : inv.examples) j.value(e);
    j.end_array();
    j.end_object();
  }
  j.end_object();
}

void write_dead_letters(JsonWriter& j, const std::vector<sim::DeadLetter>& dead_letters) {
  j.key("dead_letters").begin_array();
  for (const sim::DeadLetter& d : dead_letters) {
    j.begin_object();
    j.key("service").value(d.service);
    j.key("event_id").value(d.event_id);
    j.key("type").value(event_type_name(d.type));
    j.key("reason").value(d.reason);
    j.key("applied_later").value(d.applied_later);
    j.end_object();
  }
  j.end_array();
}

void write_fault_counts(JsonWriter& j, const std::map<std::string, std::int64_t>& counts) {
  j.key("faults").begin_object();
  for (const auto& [kind, n] : counts) j.key(kind).value(n);
  j.end_object();
}

}  // namespace eventmart::report
