@0xf536dd1e7f861fac;
# The wire contract of eventmart. Money is Int64 cents, quantities are integers.
# Field numbers are forever: add fields at the end, never renumber or reuse.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("eventmart::wire");

struct LineItem {
  sku @0 :Int64;
  quantity @1 :Int64;
}

struct CustomerArrival {
  customerId @0 :Int64;
}

struct CustomerDeparted {
  customerId @0 :Int64;
  items @1 :List(LineItem);
}

struct PaymentDue {
  customerId @0 :Int64;
  totalCents @1 :Int64;
  departureEventId @2 :Text;   # the CustomerDeparted this payment settles
  unpricedSkus @3 :List(Int64); # items in the basket with no price on record
}

struct RestockNeeded {
  sku @0 :Int64;
  quantity @1 :Int64;     # units to deliver
  stockLevel @2 :Int64;   # level that crossed below the threshold
  threshold @3 :Int64;
}

struct StockReplenished {
  sku @0 :Int64;
  quantity @1 :Int64;
  restockEventId @2 :Text; # the RestockNeeded this delivery answers
}

enum EventType {
  unknown @0;
  customerArrival @1;
  customerDeparted @2;
  paymentDue @3;
  restockNeeded @4;
  stockReplenished @5;
}

# How an event travels on a real broker: the envelope around an encoded event.
struct Envelope {
  eventId @0 :Text;
  type @1 :EventType;
  source @2 :Text;
  occurredAtUs @3 :Int64;  # microseconds since the Unix epoch (virtual in simulation)
  causedBy @4 :Text;       # event id this one answers; empty for a root event
  payload @5 :Data;        # the encoded event named by `type`
}
