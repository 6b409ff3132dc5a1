// The part of JSON Schema (draft 2020-12) that docs/schema/ uses, to validate the commands'
// output in the tests: $ref to #/$defs, type, const, enum, required, properties,
// additionalProperties, items, minimum, oneOf. Unknown keywords are an error, so a schema
// cannot say more than is checked.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace eventmart::test {

class SchemaValidator {
 public:
  explicit SchemaValidator(nlohmann::json schema) : root_(std::move(schema)) {}

  // What is wrong with `doc` against the schema, one line each ("" for the path of the root).
  std::vector<std::string> validate(const nlohmann::json& doc) const {
    std::vector<std::string> errors;
    check(root_, doc, "$", errors);
    return errors;
  }

 private:
  const nlohmann::json& resolve(const nlohmann::json& schema) const {
    if (!schema.contains("$ref")) return schema;
    const std::string ref = schema["$ref"];
    const std::string prefix = "#/$defs/";
    if (ref.rfind(prefix, 0) != 0) throw std::invalid_argument("unsupported $ref " + ref);
    return resolve(root_["$defs"].at(ref.substr(prefix.size())));
  }

  static bool has_type(const nlohmann::json& doc, const std::string& type) {
    if (type == "object") return doc.is_object();
    if (type == "array") return doc.is_array();
    if (type == "string") return doc.is_string();
    if (type == "integer") return doc.is_number_integer();
    if (type == "number") return doc.is_number();
    if (type == "boolean") return doc.is_boolean();
    if (type == "null") return doc.is_null();
    throw std::invalid_argument("unknown type " + type);
  }

  void check(const nlohmann::json& given, const nlohmann::json& doc, const std::string& path,
             std::vector<std::string>& errors) const {
    const nlohmann::json& schema = resolve(given);
    static const std::vector<std::string> kKnown = {
        "$schema", "$id",     "$ref", "$defs",    "title",      "description",
        "type",    "const",   "enum", "required", "properties", "additionalProperties",
        "items",   "minimum", "oneOf"};
    for (const auto& [keyword, value] : schema.items()) {
      if (std::find(kKnown.begin(), kKnown.end(), keyword) == kKnown.end()) {
        throw std::invalid_argument("unsupported keyword " + keyword + " at " + path);
      }
    }
    if (schema.contains("oneOf")) {
      int matching = 0;
      std::vector<std::string> first;
      for (const auto& option : schema["oneOf"]) {
        std::vector<std::string> e;
        check(option, doc, path, e);
        if (e.empty()) ++matching;
        if (first.empty()) first = e;
      }
      if (matching != 1) {
        errors.push_back(path + ": matches " + std::to_string(matching) + " of oneOf" +
                         (first.empty() ? "" : " (the first says: " + first.front() + ")"));
      }
    }
    if (schema.contains("type") && !has_type(doc, schema["type"])) {
      errors.push_back(path + ": not of type " + schema["type"].get<std::string>());
      return;
    }
    if (schema.contains("const") && doc != schema["const"]) {
      errors.push_back(path + ": is not " + schema["const"].dump());
    }
    if (schema.contains("enum") &&
        std::find(schema["enum"].begin(), schema["enum"].end(), doc) == schema["enum"].end()) {
      errors.push_back(path + ": not one of " + schema["enum"].dump());
    }
    if (schema.contains("minimum") && doc.is_number() && doc.get<double>() < schema["minimum"]) {
      errors.push_back(path + ": below " + schema["minimum"].dump());
    }
    if (doc.is_object()) check_object(schema, doc, path, errors);
    if (doc.is_array() && schema.contains("items")) {
      for (std::size_t i = 0; i < doc.size(); ++i) {
        check(schema["items"], doc[i], path + "[" + std::to_string(i) + "]", errors);
      }
    }
  }

  void check_object(const nlohmann::json& schema, const nlohmann::json& doc,
                    const std::string& path, std::vector<std::string>& errors) const {
    if (schema.contains("required")) {
      for (const auto& key : schema["required"]) {
        if (!doc.contains(key.get<std::string>())) {
          errors.push_back(path + ": missing \"" + key.get<std::string>() + "\"");
        }
      }
    }
    for (const auto& [key, value] : doc.items()) {
      const std::string at = path + "." + key;
      if (schema.contains("properties") && schema["properties"].contains(key)) {
        check(schema["properties"][key], value, at, errors);
      } else if (schema.contains("additionalProperties")) {
        const auto& extra = schema["additionalProperties"];
        if (extra.is_boolean()) {
          if (!extra.get<bool>()) errors.push_back(at + ": not allowed");
        } else {
          check(extra, value, at, errors);
        }
      }
    }
  }

  nlohmann::json root_;
};

}  // namespace eventmart::test
