// JSON at the edges: parsing that never throws, and typed field access with clear errors.
//
// nlohmann::json throws on bad input and on type mismatches; everything that reads untrusted
// JSON goes through these helpers, which return InvalidArgument naming the source and field.
// Thread-safety: stateless functions; a JsonObject is a read-only view.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace tokenfab {

using Json = nlohmann::json;

// Parses `text`; on failure: InvalidArgument "<source>: invalid JSON: <parser message>".
Result<Json> ParseJson(std::string_view text, std::string_view source);

// A JSON object plus a name for error messages ("config.json", "config.json: rope_scaling").
class JsonObject {
 public:
  // InvalidArgument if `value` is not an object.
  static Result<JsonObject> From(const Json& value, std::string context);

  const Json& json() const { return *json_; }
  const std::string& context() const { return context_; }

  // True if the key is present and not null.
  bool Has(std::string_view key) const;

  Result<int64_t> Int(std::string_view key) const;
  Result<int64_t> IntOr(std::string_view key, int64_t fallback) const;
  Result<double> Number(std::string_view key) const;
  Result<double> NumberOr(std::string_view key, double fallback) const;
  Result<bool> BoolOr(std::string_view key, bool fallback) const;
  Result<std::string> String(std::string_view key) const;
  Result<std::string> StringOr(std::string_view key, std::string fallback) const;
  Result<std::vector<int64_t>> IntList(std::string_view key) const;  // absent/null -> empty
  Result<JsonObject> Object(std::string_view key) const;

 private:
  JsonObject(const Json* json, std::string context) : json_(json), context_(std::move(context)) {}
  Status FieldError(std::string_view key, std::string_view expected) const;

  const Json* json_;
  std::string context_;
};

}  // namespace tokenfab
