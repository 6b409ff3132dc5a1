// The MQTT transport's reason-code tables: what a refusal means, and what to do about it.
#include <cstdio>
#include <map>
#include <string_view>

#include "transports/mqtt/mqtt_bus_parts.h"

namespace eventmart::mqtt {

// The name of an MQTT 5 reason code of 0x80 or more (MQTT 5 section 2.4), with the code.
std::string reason_text(int code) {
  static const std::map<int, std::string_view> kNames = {
      {0x00, "normal disconnection"},
      {0x80, "unspecified error"},
      {0x81, "malformed packet"},
      {0x82, "protocol error"},
      {0x83, "implementation specific error"},
      {0x84, "unsupported protocol version"},
      {0x85, "client identifier not valid"},
      {0x86, "bad user name or password"},
      {0x87, "not authorized"},
      {0x88, "server unavailable"},
      {0x89, "server busy"},
      {0x8A, "banned"},
      {0x8B, "server shutting down"},
      {0x8C, "bad authentication method"},
      {0x8D, "keep alive timeout"},
      {0x8E, "session taken over"},
      {0x8F, "topic filter invalid"},
      {0x90, "topic name invalid"},
      {0x91, "packet identifier in use"},
      {0x93, "receive maximum exceeded"},
      {0x95, "packet too large"},
      {0x96, "message rate too high"},
      {0x97, "quota exceeded"},
      {0x98, "administrative action"},
      {0x99, "payload format invalid"},
      {0x9A, "retain not supported"},
      {0x9B, "QoS not supported"},
      {0x9C, "use another server"},
      {0x9D, "server moved"},
      {0x9E, "shared subscriptions not supported"},
      {0x9F, "connection rate exceeded"},
      {0xA0, "maximum connect time"},
      {0xA1, "subscription identifiers not supported"},
      {0xA2, "wildcard subscriptions not supported"},
  };
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(code) & 0xFFu);
  const auto it = kNames.find(code);
  return it == kNames.end() ? std::string("reason code ") + hex
                            : std::string(it->second) + " (" + hex + ")";
}

// A token's MQTT 5 reason code when it is a refusal (0x80 and above), else 0.
int refusal_of(const ::mqtt::token& tok) {
  const int code = static_cast<int>(tok.get_reason_code());
  return code >= 0x80 && code != ::mqtt::MQTTPP_V3_CODE ? code : 0;
}

// What a CONNACK refusal means, and what to do about it (MQTT 3.1.1 section 3.2.2.3; MQTT 5
// reason codes are 0x80 and above).
std::string connack_text(int code) {
  const std::string check =
      " (check --username and --password, or EVENTMART_PASSWORD, against the broker's password "
      "file";
  switch (code) {
    case 1:
      return "the broker does not accept MQTT 3.1.1";
    case 2:
      return "the broker refused the client id";
    case 3:
      return "the broker says the MQTT service is unavailable";
    case 4:
    case 0x86:
      return "the broker refused the user name or password" + check + ")";
    case 5:
      return "the broker refused this client: not authorised" + check + " and ACL)";
    case 0x87:
      return "the broker refused this client: not authorized" + check + " and ACL)";
    case 0x84:
      return "the broker does not speak MQTT 5: use --mqtt-version 3.1.1";
    default:
      return code >= 0x80
                 ? "the broker refused the connection: " + reason_text(code)
                 : "the broker refused the connection (CONNACK code " + std::to_string(code) + ")";
  }
}

}  // namespace eventmart::mqtt
