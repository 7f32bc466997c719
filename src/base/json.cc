#include "base/json.h"

#include <cmath>

namespace tokenfab {

Result<Json> ParseJson(std::string_view text, std::string_view source) {
  Json value = Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    // Re-run with exceptions only to recover the parser's message (position of the error).
    try {
      const Json unused = Json::parse(text.begin(), text.end());
      (void)unused;
    } catch (const Json::exception& e) {
      return InvalidArgumentError(std::string(source) + ": invalid JSON: " + e.what());
    }
    return InvalidArgumentError(std::string(source) + ": invalid JSON");
  }
  return value;
}

Result<JsonObject> JsonObject::From(const Json& value, std::string context) {
  if (!value.is_object()) return InvalidArgumentError(context + ": expected a JSON object");
  return JsonObject(&value, std::move(context));
}

bool JsonObject::Has(std::string_view key) const {
  const auto it = json_->find(key);
  return it != json_->end() && !it->is_null();
}

Status JsonObject::FieldError(std::string_view key, std::string_view expected) const {
  return InvalidArgumentError(context_ + ": field '" + std::string(key) + "' must be " +
                              std::string(expected));
}

Result<int64_t> JsonObject::Int(std::string_view key) const {
  const auto it = json_->find(key);
  if (it == json_->end() || it->is_null()) {
    return InvalidArgumentError(context_ + ": missing field '" + std::string(key) + "'");
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) {  // 4096.0 is an integer; 1.5 is not
    const double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return static_cast<int64_t>(d);
    }
  }
  return FieldError(key, "an integer");
}

Result<int64_t> JsonObject::IntOr(std::string_view key, int64_t fallback) const {
  if (!Has(key)) return fallback;
  return Int(key);
}

Result<double> JsonObject::Number(std::string_view key) const {
  const auto it = json_->find(key);
  if (it == json_->end() || it->is_null()) {
    return InvalidArgumentError(context_ + ": missing field '" + std::string(key) + "'");
  }
  if (!it->is_number()) return FieldError(key, "a number");
  const double d = it->get<double>();
  if (!std::isfinite(d)) return FieldError(key, "a finite number");
  return d;
}

Result<double> JsonObject::NumberOr(std::string_view key, double fallback) const {
  if (!Has(key)) return fallback;
  return Number(key);
}

Result<bool> JsonObject::BoolOr(std::string_view key, bool fallback) const {
  if (!Has(key)) return fallback;
  const Json& v = json_->at(std::string(key));
  if (!v.is_boolean()) return FieldError(key, "true or false");
  return v.get<bool>();
}

Result<std::string> JsonObject::String(std::string_view key) const {
  const auto it = json_->find(key);
  if (it == json_->end() || it->is_null()) {
    return InvalidArgumentError(context_ + ": missing field '" + std::string(key) + "'");
  }
  if (!it->is_string()) return FieldError(key, "a string");
  return it->get<std::string>();
}

Result<std::string> JsonObject::StringOr(std::string_view key, std::string fallback) const {
  if (!Has(key)) return fallback;
  return String(key);
}

Result<std::vector<int64_t>> JsonObject::IntList(std::string_view key) const {
  std::vector<int64_t> values;
  if (!Has(key)) return values;
  const Json& v = json_->at(std::string(key));
  if (v.is_number_integer()) {  // some configs give a single id where a list is allowed
    values.push_back(v.get<int64_t>());
    return values;
  }
  if (!v.is_array()) return FieldError(key, "a list of integers");
  for (const Json& item : v) {
    if (!item.is_number_integer()) return FieldError(key, "a list of integers");
    values.push_back(item.get<int64_t>());
  }
  return values;
}

Result<JsonObject> JsonObject::Object(std::string_view key) const {
  const auto it = json_->find(key);
  if (it == json_->end() || it->is_null()) {
    return InvalidArgumentError(context_ + ": missing field '" + std::string(key) + "'");
  }
  return From(*it, context_ + ": " + std::string(key));
}

}  // namespace tokenfab
