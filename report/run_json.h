// The pieces every JSON report of a run shares (docs/schema/eventmart-output.schema.json): one
// shape for one thing, whether `sim`, `chaos` or a summary writes it.
//
// Every report is one object whose "kind" says what it is ("sim", "seeds", "chaos", "load") and
// whose "passed" says whether it held; times in seconds are "*_seconds"; "faults" counts each
// fault kind that happened; "invariants" maps each invariant's name to its verdict.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "properties/invariants.h"
#include "report/json_writer.h"
#include "sim/history.h"

namespace eventmart::report {

// "invariants": {name: {"held", "violations", "dead_lettered", "checked", "examples"}}.
void write_invariants(JsonWriter& j, const std::vector<properties::InvariantResult>& invariants);

// "dead_letters": [{"service", "event_id", "type", "reason", "applied_later"}].
void write_dead_letters(JsonWriter& j, const std::vector<sim::DeadLetter>& dead_letters);

// "faults": {kind: count}, the kinds that happened.
void write_fault_counts(JsonWriter& j, const std::map<std::string, std::int64_t>& counts);

}  // namespace eventmart::report
