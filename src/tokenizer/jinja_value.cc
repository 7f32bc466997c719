#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/unicode.h"

namespace tokenfab::jinja {

Value* ValueDict::Find(const std::string& key) {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}
const Value* ValueDict::Find(const std::string& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}
void ValueDict::Set(const std::string& key, Value value) {
  if (Value* v = Find(key)) {
    *v = std::move(value);
    return;
  }
  index_[key] = items_.size();
  items_.emplace_back(key, std::move(value));
}

const Value* CallArgs::Get(size_t index, const std::string& name) const {
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return index < positional.size() ? &positional[index] : nullptr;
}

Value Value::Dict(ValueDict d) {
  Value v;
  v.type_ = Type::kDict;
  v.dict_ = std::make_shared<ValueDict>(std::move(d));
  return v;
}
Value Value::Namespace(ValueDict d) {
  Value v = Dict(std::move(d));
  v.type_ = Type::kNamespace;
  return v;
}
Value Value::Func(Function f, std::string name) {
  Value v;
  v.type_ = Type::kFunction;
  v.func_ = std::make_shared<Function>(std::move(f));
  v.undefined_name_ = std::move(name);
  return v;
}

Value Value::FromJson(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return None();
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList l;
      for (const auto& e : j) l.push_back(FromJson(e));
      return Value(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      ValueDict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.Set(it.key(), FromJson(it.value()));
      return Dict(std::move(d));
    }
    default: return Value();
  }
}

bool Value::Truthy() const {
  switch (type_) {
    case Type::kUndefined: case Type::kNone: return false;
    case Type::kBool: case Type::kInt: return int_ != 0;
    case Type::kFloat: return float_ != 0.0;
    case Type::kString: return !str_->empty();
    case Type::kList: return !list_->empty();
    case Type::kDict: return dict_->size() > 0;
    default: return true;
  }
}

std::string FormatFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);  // d.ddde[+-]XX, shortest round-trip digits
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp10 = std::stoi(sci.substr(e + 1));
  std::string sign;
  if (mant[0] == '-') {
    sign = "-";
    mant = mant.substr(1);
  }
  std::string digits;
  for (char c : mant) if (c != '.') digits.push_back(c);
  const int decpt = exp10 + 1;  // position of the decimal point after the first digit
  if (decpt > 16 || decpt <= -4) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    std::snprintf(buf, sizeof(buf), "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    return out + buf;
  }
  if (decpt <= 0) return sign + "0." + std::string(-decpt, '0') + digits;
  if (static_cast<size_t>(decpt) >= digits.size()) {
    return sign + digits + std::string(decpt - digits.size(), '0') + ".0";
  }
  return sign + digits.substr(0, decpt) + "." + digits.substr(decpt);
}

namespace {

bool IsPrintable(char32_t c) {
  using unicode::Category;
  if (c == ' ') return true;
  const Category cat = unicode::GetCategory(c);
  return !(cat == Category::kCc || cat == Category::kCf || cat == Category::kCs ||
           cat == Category::kCo || cat == Category::kCn || cat == Category::kZl ||
           cat == Category::kZp || cat == Category::kZs);
}

}  // namespace

std::string ReprString(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  char buf[16];
  for (char32_t c : unicode::DecodeUtf8(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!IsPrintable(c)) {
      if (c < 0x100) std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      else if (c < 0x10000) std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      else std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
      out += buf;
    } else {
      unicode::AppendUtf8(c, &out);
    }
  }
  out.push_back(quote);
  return out;
}

std::string Value::ToString() const {
  switch (type_) {
    case Type::kUndefined: return "";
    case Type::kString: return *str_;
    default: return Repr();
  }
}

std::string Value::Repr() const {
  switch (type_) {
    case Type::kUndefined: return "";
    case Type::kNone: return "None";
    case Type::kBool: return int_ ? "True" : "False";
    case Type::kInt: return std::to_string(int_);
    case Type::kFloat: return undefined_name_.empty() ? FormatFloat(float_) : undefined_name_;
    case Type::kString: return ReprString(*str_);
    case Type::kList: {
      std::string out = tuple_ ? "(" : "[";
      for (size_t i = 0; i < list_->size(); ++i) out += (i ? ", " : "") + (*list_)[i].Repr();
      if (tuple_ && list_->size() == 1) out += ",";
      return out + (tuple_ ? ")" : "]");
    }
    case Type::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : dict_->items()) {
        out += (first ? "" : ", ") + ReprString(k) + ": " + v.Repr();
        first = false;
      }
      return out + "}";
    }
    case Type::kNamespace: return "<Namespace>";
    case Type::kFunction: return "<function " + undefined_name_ + ">";
  }
  return "";
}

std::string Value::TypeName() const {
  switch (type_) {
    case Type::kUndefined: return "Undefined";
    case Type::kNone: return "NoneType";
    case Type::kBool: return "bool";
    case Type::kInt: return "int";
    case Type::kFloat: return "float";
    case Type::kString: return "str";
    case Type::kList: return "list";
    case Type::kDict: return "dict";
    case Type::kNamespace: return "Namespace";
    case Type::kFunction: return "function";
  }
  return "?";
}

bool Value::Equals(const Value& o) const {
  if (is_number() && o.is_number()) {
    if (type_ == Type::kFloat || o.type_ == Type::kFloat) return AsFloat() == o.AsFloat();
    return int_ == o.int_;
  }
  if (type_ != o.type_) return false;
  switch (type_) {
    case Type::kUndefined: case Type::kNone: return true;
    case Type::kString: return *str_ == *o.str_;
    case Type::kList:
      if (list_->size() != o.list_->size()) return false;
      for (size_t i = 0; i < list_->size(); ++i) {
        if (!(*list_)[i].Equals((*o.list_)[i])) return false;
      }
      return true;
    case Type::kDict: {
      if (dict_->size() != o.dict_->size()) return false;
      for (const auto& [k, v] : dict_->items()) {
        const Value* ov = o.dict_->Find(k);
        if (!ov || !v.Equals(*ov)) return false;
      }
      return true;
    }
    default: return this == &o || (dict_ && dict_ == o.dict_) || (func_ && func_ == o.func_);
  }
}

namespace {

void AppendJsonString(const std::string& s, std::string* out) {
  out->push_back('"');
  char buf[8];
  for (char32_t c : unicode::DecodeUtf8(s)) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      default:
        if (c < 0x20) {
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          *out += buf;
        } else {
          unicode::AppendUtf8(c, out);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

Result<std::string> Value::ToJson(int indent, const std::string& item_sep,
                                  const std::string& key_sep, bool sort_keys) const {
  std::string out;
  TF_RETURN_IF_ERROR(AppendJson(&out, indent, 0, item_sep, key_sep, sort_keys));
  return out;
}

Status Value::AppendJson(std::string* out, int indent, int depth, const std::string& item_sep,
                         const std::string& key_sep, bool sort_keys) const {
  auto newline = [&](int d) {
    if (indent < 0) return;
    out->push_back('\n');
    out->append(static_cast<size_t>(indent) * d, ' ');
  };
  switch (type_) {
    case Type::kNone: *out += "null"; return Status::Ok();
    case Type::kBool: *out += int_ ? "true" : "false"; return Status::Ok();
    case Type::kInt: *out += std::to_string(int_); return Status::Ok();
    case Type::kFloat:
      if (std::isnan(float_)) *out += "NaN";
      else if (std::isinf(float_)) *out += float_ > 0 ? "Infinity" : "-Infinity";
      else *out += FormatFloat(float_);
      return Status::Ok();
    case Type::kString: AppendJsonString(*str_, out); return Status::Ok();
    case Type::kList: {
      if (list_->empty()) {
        *out += "[]";
        return Status::Ok();
      }
      out->push_back('[');
      for (size_t i = 0; i < list_->size(); ++i) {
        if (i) *out += item_sep;
        newline(depth + 1);
        TF_RETURN_IF_ERROR((*list_)[i].AppendJson(out, indent, depth + 1, item_sep, key_sep, sort_keys));
      }
      newline(depth);
      out->push_back(']');
      return Status::Ok();
    }
    case Type::kDict: case Type::kNamespace: {
      if (dict_->size() == 0) {
        *out += "{}";
        return Status::Ok();
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : dict_->items()) items.push_back(&kv);
      if (sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](const auto* a, const auto* b) { return a->first < b->first; });
      }
      out->push_back('{');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) *out += item_sep;
        newline(depth + 1);
        AppendJsonString(items[i]->first, out);
        *out += key_sep;
        TF_RETURN_IF_ERROR(items[i]->second.AppendJson(out, indent, depth + 1, item_sep, key_sep, sort_keys));
      }
      newline(depth);
      out->push_back('}');
      return Status::Ok();
    }
    default:
      return InvalidArgumentError("Object of type " + TypeName() + " is not JSON serializable");
  }
}

}  // namespace tokenfab::jinja
