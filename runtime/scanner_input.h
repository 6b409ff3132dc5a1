// What a real scanner, or a person at a terminal, sends the guardians. Two forms:
//
// A text line (stdin of `eventmart serve`, or the payload of a device topic):
//   arrival CUSTOMER [scan=ID]
//   departure CUSTOMER SKU:QTY,SKU:QTY,... [scan=ID]     ("departure 8" is an empty bag)
// On a device topic the leading word may be left out: the topic says which scanner it is.
//
// A JSON object on a device topic, as the reference implementation's devices write:
//   {"customer_id": 2, "timestamp": "2026-11-26T03:11:26.745261"}
//   {"customer_id": 8, "product_ids": [59, 52, 68, 68], "timestamp": "..."}
// with an optional "scan_id".
//
// The scan id makes a reading idempotent: a device that resends a reading with the same id
// produces one event. A JSON reading without one is identified by its timestamp and card. A
// reading on a device topic with neither is refused by its guardian (dead-lettered): the
// broker may deliver a message again, and nothing else could tell that from a new reading.
// Lines on stdin are not redelivered, so `serve` numbers them itself.
//
// Parsing is bounded by the InputLimits: a bag is read line by line and refused at the first
// line past a limit, before anything proportional to the rest is built.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/codec.h"
#include "core/events.h"
#include "core/limits.h"

namespace eventmart::runtime {

struct ScanRequest {
  enum class Kind { kArrival, kDeparture };
  Kind kind = Kind::kArrival;
  std::string card;             // as the card reader read it (the guardian validates it)
  std::vector<LineItem> lines;  // departure: (sku, units) as read; a sku may repeat
  std::string scan_id;          // empty: the reading carried none
};

// One line of text. Blank lines and lines starting with '#' are errors the caller skips
// (is_blank_line).
Result<ScanRequest> parse_scan_line(std::string_view line,
                                     const InputLimits& limits = default_limits());
bool is_blank_line(std::string_view line);

// A device topic's payload: text or JSON, for the scanner of `kind`.
Result<ScanRequest> parse_device_message(ScanRequest::Kind kind, std::string_view payload,
                                          const InputLimits& limits = default_limits());

// "59:2,7:1" -> {{59, 2}, {7, 1}}. Skus 1..kMaxSku, quantities 1..max_units_per_line, at most
// max_basket_units units in all.
Result<std::vector<LineItem>> parse_items(std::string_view text,
                                           const InputLimits& limits = default_limits());

// The inverse of parse_scan_line: the line `eventmart scan` sends.
std::string format_scan_line(const ScanRequest& request);

}  // namespace eventmart::runtime
