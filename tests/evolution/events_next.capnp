@0xd64d707c83c1c2dc;
# A later release's wire contract, for tests/evolution_test.cpp: core/events.capnp with fields
# added at the end of every struct, as events.capnp says a release may. Never shipped.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("eventmart::wire_next");

struct LineItem {
  sku @0 :Int64;
  quantity @1 :Int64;
  discountCents @2 :Int64;        # added
}

struct CustomerArrival {
  customerId @0 :Int64;
  entrance @1 :Text;              # added
}

struct CustomerDeparted {
  customerId @0 :Int64;
  items @1 :List(LineItem);
  checkoutLane @2 :Int32;         # added
  receiptNote @3 :Text;           # added
}

struct PaymentDue {
  customerId @0 :Int64;
  totalCents @1 :Int64;
  departureEventId @2 :Text;
  unpricedSkus @3 :List(Int64);
  loyaltyPoints @4 :Int64;        # added
  currency @5 :Text;              # added
}

struct RestockNeeded {
  sku @0 :Int64;
  quantity @1 :Int64;
  stockLevel @2 :Int64;
  threshold @3 :Int64;
  supplier @4 :Text;              # added
}

struct StockReplenished {
  sku @0 :Int64;
  quantity @1 :Int64;
  restockEventId @2 :Text;
  batch @3 :Text;                 # added
}

enum EventType {
  unknown @0;
  customerArrival @1;
  customerDeparted @2;
  paymentDue @3;
  restockNeeded @4;
  stockReplenished @5;
}

struct Envelope {
  eventId @0 :Text;
  type @1 :EventType;
  source @2 :Text;
  occurredAtUs @3 :Int64;
  causedBy @4 :Text;
  payload @5 :Data;
  traceParent @6 :Text;           # added
  schemaRelease @7 :UInt16;       # added
}
