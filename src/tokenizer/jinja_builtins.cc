// The builtin filters, tests, methods and operators of the Jinja interpreter, each with the
// behaviour of Jinja2 / Python that chat templates rely on.
#include <algorithm>
#include <cmath>

// GCC 12 reports a false -Wrestrict inside std::string concatenation at -O3 (GCC bug 105329).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <ctime>

#include "tokenizer/jinja_interpreter_impl.h"
#include "tokenizer/unicode.h"

namespace tokenfab::jinja {
namespace {

bool IsPySpace(char32_t c) { return unicode::IsWhiteSpace(c) || (c >= 0x1C && c <= 0x1F); }

std::string Strip(const std::string& s, const Value* chars, bool left, bool right) {
  const std::u32string cps = unicode::DecodeUtf8(s);
  std::u32string set;
  const bool custom = chars && chars->is_string();
  if (custom) set = unicode::DecodeUtf8(chars->AsString());
  auto strip = [&](char32_t c) { return custom ? set.find(c) != std::u32string::npos : IsPySpace(c); };
  size_t b = 0, e = cps.size();
  if (left) while (b < e && strip(cps[b])) ++b;
  if (right) while (e > b && strip(cps[e - 1])) --e;
  return unicode::EncodeUtf8(std::u32string_view(cps).substr(b, e - b));
}

std::vector<std::string> Split(const std::string& s, const Value* sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (!sep || sep->is_none()) {  // runs of whitespace, no empty strings
    const std::u32string cps = unicode::DecodeUtf8(s);
    std::vector<std::pair<size_t, size_t>> words;
    for (size_t i = 0; i < cps.size();) {
      while (i < cps.size() && IsPySpace(cps[i])) ++i;
      if (i == cps.size()) break;
      size_t j = i;
      while (j < cps.size() && !IsPySpace(cps[j])) ++j;
      words.push_back({i, j});
      i = j;
    }
    if (maxsplit >= 0 && static_cast<int64_t>(words.size()) > maxsplit + 1) {
      if (!from_right) {
        words[maxsplit].second = cps.size();
        size_t e = cps.size();
        while (e > words[maxsplit].first && IsPySpace(cps[e - 1])) --e;
        words[maxsplit].second = e;
        words.resize(maxsplit + 1);
      } else {
        const size_t keep = words.size() - maxsplit - 1;
        size_t b = 0;
        while (b < cps.size() && IsPySpace(cps[b])) ++b;
        words[keep].first = b;
        words.erase(words.begin(), words.begin() + keep);
      }
    }
    for (const auto& [b, e] : words) parts.push_back(unicode::EncodeUtf8(std::u32string_view(cps).substr(b, e - b)));
    return parts;
  }
  const std::string d = sep->ToString();
  if (!from_right) {
    size_t pos = 0;
    int64_t n = 0;
    for (size_t at = s.find(d); at != std::string::npos && (maxsplit < 0 || n < maxsplit); at = s.find(d, pos), ++n) {
      parts.push_back(s.substr(pos, at - pos));
      pos = at + d.size();
    }
    parts.push_back(s.substr(pos));
    return parts;
  }
  size_t end = s.size();
  int64_t n = 0;
  while (maxsplit < 0 || n < maxsplit) {
    if (end < d.size()) break;
    const size_t at = s.rfind(d, end - d.size());
    if (at == std::string::npos) break;
    parts.insert(parts.begin(), s.substr(at + d.size(), end - at - d.size()));
    end = at;
    ++n;
  }
  parts.insert(parts.begin(), s.substr(0, end));
  return parts;
}

std::string MapCase(const std::string& s, int mode) {  // 0 upper, 1 lower, 2 title, 3 capitalize
  std::string out;
  bool prev_cased = false;
  bool first = true;
  for (char32_t c : unicode::DecodeUtf8(s)) {
    char32_t m = c;
    const char32_t lower = unicode::SimpleLowercase(c);
    char32_t upper = c;
    if (c < 128) upper = (c >= 'a' && c <= 'z') ? c - 32 : c;
    else if (unicode::GetCategory(c) == unicode::Category::kLl) {
      // Simple uppercase: find a code point whose lowercase is c (Latin/Greek/Cyrillic blocks).
      for (char32_t u = c > 0x400 ? c - 0x50 : 0x80; u < c; ++u) {
        if (unicode::SimpleLowercase(u) == c) {
          upper = u;
          break;
        }
      }
    }
    switch (mode) {
      case 0: m = upper; break;
      case 1: m = lower; break;
      case 2: m = prev_cased ? lower : upper; break;
      case 3: m = first ? upper : lower; break;
    }
    const unicode::Category cat = unicode::GetCategory(c);
    prev_cased = cat == unicode::Category::kLu || cat == unicode::Category::kLl || cat == unicode::Category::kLt;
    first = false;
    unicode::AppendUtf8(m, &out);
  }
  return out;
}

std::string Replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` between every character
    const std::u32string cps = unicode::DecodeUtf8(s);
    int64_t n = 0;
    for (char32_t c : cps) {
      if (count < 0 || n < count) out += to, ++n;
      unicode::AppendUtf8(c, &out);
    }
    if (count < 0 || n < count) out += to;
    return out;
  }
  size_t pos = 0;
  int64_t n = 0;
  for (size_t at = s.find(from); at != std::string::npos && (count < 0 || n < count); at = s.find(from, pos), ++n) {
    out.append(s, pos, at - pos);
    out += to;
    pos = at + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

size_t CharLength(const std::string& s) { return unicode::DecodeUtf8(s).size(); }

int64_t PyFloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

Result<ValueList> Interpreter::Iterate(const Value& v, int line) {
  if (v.is_list()) return v.AsList();
  if (v.is_dict()) {
    ValueList keys;
    for (const auto& [k, x] : v.AsDict().items()) keys.push_back(Value(k));
    return keys;
  }
  if (v.is_string()) {
    ValueList chars;
    for (char32_t c : unicode::DecodeUtf8(v.AsString())) chars.push_back(Value(unicode::EncodeUtf8(std::u32string(1, c))));
    return chars;
  }
  if (v.is_undefined()) return ValueList{};  // Jinja2's Undefined iterates as empty
  return Error(line, "'" + v.TypeName() + "' object is not iterable");
}

Result<Value> Interpreter::GetAttr(const Value& obj, const std::string& name, int line) {
  if (obj.is_undefined()) {
    return Error(line, "'" + (obj.name().empty() ? std::string("value") : obj.name()) + "' is undefined");
  }
  if (obj.is_dict()) {
    if (const Value* v = obj.AsDict().Find(name)) return *v;
    return Value::Undefined(name);
  }
  return Value::Undefined(name);  // attributes of str/list are methods, reached through calls
}

Result<Value> Interpreter::GetItem(const Value& obj, const Value& key, int line) {
  if (obj.is_undefined()) {
    return Error(line, "'" + (obj.name().empty() ? std::string("value") : obj.name()) + "' is undefined");
  }
  if (obj.is_dict()) {
    if (const Value* v = obj.AsDict().Find(key.ToString())) return *v;
    return Value::Undefined(key.ToString());
  }
  if (obj.is_list() || obj.is_string()) {
    if (!key.is_int() && !key.is_bool()) return Value::Undefined();
    int64_t i = key.AsInt();
    if (obj.is_list()) {
      const int64_t n = static_cast<int64_t>(obj.AsList().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::Undefined();
      return obj.AsList()[i];
    }
    const std::u32string cps = unicode::DecodeUtf8(obj.AsString());
    const int64_t n = static_cast<int64_t>(cps.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::Undefined();
    return Value(unicode::EncodeUtf8(std::u32string(1, cps[i])));
  }
  return Value::Undefined();
}

Result<Value> Interpreter::Binary(const std::string& op, const Value& a, const Value& b, int line) {
  auto type_error = [&] {
    return Error(line, "unsupported operand type(s) for " + op + ": '" + a.TypeName() + "' and '" + b.TypeName() + "'");
  };
  if (op == "+") {
    if (a.is_string() && b.is_string()) return Value(a.AsString() + b.AsString());
    if (a.is_list() && b.is_list()) {
      ValueList l = a.AsList();
      l.insert(l.end(), b.AsList().begin(), b.AsList().end());
      return Value(std::move(l));
    }
  }
  if (op == "*" && (a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) {
    if (a.is_string()) {
      std::string s;
      for (int64_t i = 0; i < b.AsInt(); ++i) s += a.AsString();
      return Value(std::move(s));
    }
    ValueList l;
    for (int64_t i = 0; i < b.AsInt(); ++i) l.insert(l.end(), a.AsList().begin(), a.AsList().end());
    return Value(std::move(l));
  }
  if (op == "%" && a.is_string()) return Error(line, "printf-style string formatting is not supported");
  if (a.is_undefined() || b.is_undefined()) {
    return Error(line, "'" + (a.is_undefined() ? a.name() : b.name()) + "' is undefined");
  }
  if (!a.is_number() || !b.is_number()) return type_error();
  const bool ints = !a.is_float() && !b.is_float();
  if (op == "/") {
    if (b.AsFloat() == 0) return Error(line, "division by zero");
    return Value(a.AsFloat() / b.AsFloat());
  }
  if (op == "//" || op == "%") {
    if (b.AsFloat() == 0) return Error(line, "integer division or modulo by zero");
    if (ints) {
      const int64_t q = PyFloorDiv(a.AsInt(), b.AsInt());
      return op == "//" ? Value(q) : Value(a.AsInt() - q * b.AsInt());
    }
    const double q = std::floor(a.AsFloat() / b.AsFloat());
    return op == "//" ? Value(q) : Value(a.AsFloat() - q * b.AsFloat());
  }
  if (op == "**") {
    if (ints && b.AsInt() >= 0) {
      int64_t r = 1;
      for (int64_t i = 0; i < b.AsInt() && i < 64; ++i) r *= a.AsInt();
      return Value(r);
    }
    return Value(std::pow(a.AsFloat(), b.AsFloat()));
  }
  if (ints) {
    if (op == "+") return Value(a.AsInt() + b.AsInt());
    if (op == "-") return Value(a.AsInt() - b.AsInt());
    if (op == "*") return Value(a.AsInt() * b.AsInt());
  } else {
    if (op == "+") return Value(a.AsFloat() + b.AsFloat());
    if (op == "-") return Value(a.AsFloat() - b.AsFloat());
    if (op == "*") return Value(a.AsFloat() * b.AsFloat());
  }
  return type_error();
}

Result<bool> Interpreter::Compare(const std::string& op, const Value& a, const Value& b, int line) {
  if (op == "==") return a.Equals(b);
  if (op == "!=") return !a.Equals(b);
  if (op == "in" || op == "notin") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) return Error(line, "'in <string>' requires string as left operand, not " + a.TypeName());
      found = b.AsString().find(a.AsString()) != std::string::npos;
    } else if (b.is_list()) {
      for (const Value& x : b.AsList()) found = found || x.Equals(a);
    } else if (b.is_dict()) {
      found = b.AsDict().Find(a.ToString()) != nullptr;
    } else if (b.is_undefined()) {
      return Error(line, "'" + b.name() + "' is undefined");
    } else {
      return Error(line, "argument of type '" + b.TypeName() + "' is not iterable");
    }
    return op == "in" ? found : !found;
  }
  int c;
  if (a.is_number() && b.is_number()) {
    c = a.AsFloat() < b.AsFloat() ? -1 : a.AsFloat() > b.AsFloat() ? 1 : 0;
  } else if (a.is_string() && b.is_string()) {
    c = a.AsString().compare(b.AsString());
  } else {
    return Error(line, "'" + op + "' not supported between instances of '" + a.TypeName() + "' and '" + b.TypeName() + "'");
  }
  if (op == "<") return c < 0;
  if (op == ">") return c > 0;
  if (op == "<=") return c <= 0;
  if (op == ">=") return c >= 0;
  return Error(line, "unknown comparison " + op);
}

Result<bool> Interpreter::ApplyTest(const std::string& name, const Value& v, const CallArgs& args, int line) {
  const Value* arg = args.positional.empty() ? nullptr : &args.positional[0];
  auto need_arg = [&]() -> Status {
    return arg ? Status::Ok() : Error(line, "test '" + name + "' needs an argument");
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.AsBool();
  if (name == "false") return v.is_bool() && !v.AsBool();
  if (name == "mapping") return v.is_dict();
  if (name == "sequence") return v.is_list() || v.is_string() || v.is_dict();
  if (name == "iterable") return v.is_list() || v.is_string() || v.is_dict();
  if (name == "callable") return v.is_function();
  if (name == "lower") return v.is_string() && MapCase(v.AsString(), 1) == v.AsString();
  if (name == "upper") return v.is_string() && MapCase(v.AsString(), 0) == v.AsString();
  if (name == "even" || name == "odd") {
    if (!v.is_number()) return Error(line, "test '" + name + "' needs a number");
    return (v.AsInt() % 2 == 0) == (name == "even");
  }
  if (name == "divisibleby") {
    TF_RETURN_IF_ERROR(need_arg());
    if (arg->AsInt() == 0) return Error(line, "division by zero");
    return v.AsInt() % arg->AsInt() == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==" || name == "sameas") {
    TF_RETURN_IF_ERROR(need_arg());
    return v.Equals(*arg);
  }
  if (name == "ne" || name == "!=") {
    TF_RETURN_IF_ERROR(need_arg());
    return !v.Equals(*arg);
  }
  for (const auto& [test, op] : std::initializer_list<std::pair<const char*, const char*>>{
           {"lt", "<"}, {"lessthan", "<"}, {"gt", ">"}, {"greaterthan", ">"}, {"le", "<="}, {"ge", ">="},
           {"in", "in"}}) {
    if (name == test) {
      TF_RETURN_IF_ERROR(need_arg());
      return Compare(op, v, *arg, line);
    }
  }
  return Error(line, "no test named '" + name + "'");
}

Result<Value> Interpreter::ApplyFilter(const std::string& name, const Value& v, const CallArgs& args, int line) {
  const Value* a0 = args.Get(0, "");
  auto str_arg = [&](size_t i, const std::string& key, const std::string& dflt) {
    const Value* x = args.Get(i, key);
    return x ? x->ToString() : dflt;
  };
  auto need_string = [&]() -> Status {
    if (v.is_undefined()) return Status::Ok();
    return v.is_string() ? Status::Ok() : Error(line, "filter '" + name + "' needs a string, got " + v.TypeName());
  };
  if (name == "safe" || name == "string") return name == "string" ? Value(v.ToString()) : v;
  if (name == "trim") {
    TF_RETURN_IF_ERROR(need_string());
    return Value(Strip(v.ToString(), args.Get(0, "chars"), true, true));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    const int mode = name == "upper" ? 0 : name == "lower" ? 1 : name == "title" ? 2 : 3;
    return Value(MapCase(v.ToString(), mode));
  }
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value(static_cast<int64_t>(CharLength(v.AsString())));
    if (v.is_list()) return Value(static_cast<int64_t>(v.AsList().size()));
    if (v.is_dict()) return Value(static_cast<int64_t>(v.AsDict().size()));
    if (v.is_undefined()) return Value(int64_t{0});
    return Error(line, "object of type '" + v.TypeName() + "' has no len()");
  }
  if (name == "default" || name == "d") {
    const Value* dflt = args.Get(0, "default_value");
    const Value* boolean = args.Get(1, "boolean");
    const bool use = v.is_undefined() || (boolean && boolean->Truthy() && !v.Truthy());
    return use ? (dflt ? *dflt : Value(std::string())) : v;
  }
  if (name == "tojson") {
    const Value* indent = args.Get(0, "indent");
    const Value* sort = args.Get(99, "sort_keys");
    const Value* seps = args.Get(99, "separators");
    const int ind = indent && indent->is_number() ? static_cast<int>(indent->AsInt()) : -1;
    std::string item_sep = ind >= 0 ? "," : ", ", key_sep = ": ";
    if (seps && seps->is_list() && seps->AsList().size() == 2) {
      item_sep = seps->AsList()[0].ToString();
      key_sep = seps->AsList()[1].ToString();
    }
    auto json = v.ToJson(ind, item_sep, key_sep, sort && sort->Truthy());
    if (!json.ok()) return Error(line, json.status().message());
    return Value(std::move(json).value());
  }
  if (name == "replace") {
    if (!a0 || args.positional.size() < 2) return Error(line, "replace needs two arguments");
    const Value* count = args.Get(2, "count");
    return Value(Replace(v.ToString(), args.positional[0].ToString(), args.positional[1].ToString(),
                         count ? count->AsInt() : -1));
  }
  if (name == "join") {
    TF_ASSIGN_OR_RETURN(const ValueList items, Iterate(v, line));
    const std::string sep = str_arg(0, "d", "");
    const Value* attr = args.Get(1, "attribute");
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      Value x = items[i];
      if (attr) {
        TF_ASSIGN_OR_RETURN(x, GetAttr(x, attr->ToString(), line));
      }
      out += (i ? sep : "") + x.ToString();
    }
    return Value(std::move(out));
  }
  if (name == "first" || name == "last") {
    TF_ASSIGN_OR_RETURN(const ValueList items, Iterate(v, line));
    if (items.empty()) return Value::Undefined();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") {
    TF_ASSIGN_OR_RETURN(ValueList items, Iterate(v, line));
    return Value(std::move(items));
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::u32string s = unicode::DecodeUtf8(v.AsString());
      std::reverse(s.begin(), s.end());
      return Value(unicode::EncodeUtf8(s));
    }
    TF_ASSIGN_OR_RETURN(ValueList items, Iterate(v, line));
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
  }
  if (name == "sort" || name == "unique" || name == "min" || name == "max" || name == "dictsort") {
    ValueList items;
    if (name == "dictsort") {
      if (!v.is_dict()) return Error(line, "dictsort needs a dict");
      for (const auto& [k, x] : v.AsDict().items()) items.push_back(Value::Tuple(ValueList{Value(k), x}));
    } else {
      TF_ASSIGN_OR_RETURN(items, Iterate(v, line));
    }
    const Value* attr = args.Get(name == "sort" ? 2 : name == "unique" ? 1 : 1, "attribute");
    const Value* reverse = name == "sort" ? args.Get(0, "reverse") : nullptr;
    const Value* case_sensitive = args.Get(name == "sort" ? 1 : 0, "case_sensitive");
    const bool fold = !(case_sensitive && case_sensitive->Truthy());
    auto key = [&](const Value& x) -> Value {
      Value k = x;
      if (name == "dictsort") k = x.AsList()[0];
      if (attr) {
        auto r = GetAttr(x, attr->ToString(), line);
        k = r.ok() ? *r : Value();
      }
      if (fold && k.is_string()) return Value(MapCase(k.AsString(), 1));
      return k;
    };
    Status error;
    auto less = [&](const Value& x, const Value& y) {
      auto r = Compare("<", key(x), key(y), line);
      if (!r.ok()) {
        error = r.status();
        return false;
      }
      return *r;
    };
    if (name == "unique") {
      ValueList out;
      for (const Value& x : items) {
        bool seen = false;
        for (const Value& y : out) seen = seen || key(x).Equals(key(y));
        if (!seen) out.push_back(x);
      }
      return Value(std::move(out));
    }
    if (name == "min" || name == "max") {
      if (items.empty()) return Value::Undefined();
      auto it = name == "min" ? std::min_element(items.begin(), items.end(), less)
                              : std::max_element(items.begin(), items.end(), less);
      TF_RETURN_IF_ERROR(error);
      return *it;
    }
    std::stable_sort(items.begin(), items.end(), less);
    TF_RETURN_IF_ERROR(error);
    if (reverse && reverse->Truthy()) std::reverse(items.begin(), items.end());
    return Value(std::move(items));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value(ValueList{});
    if (!v.is_dict()) return Error(line, "items needs a mapping");
    ValueList out;
    for (const auto& [k, x] : v.AsDict().items()) out.push_back(Value::Tuple(ValueList{Value(k), x}));
    return Value(std::move(out));
  }
  if (name == "map" || name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    TF_ASSIGN_OR_RETURN(const ValueList items, Iterate(v, line));
    ValueList out;
    if (name == "map") {
      const Value* attr = args.Get(99, "attribute");
      if (attr) {
        const Value* dflt = args.Get(99, "default");
        for (const Value& x : items) {
          TF_ASSIGN_OR_RETURN(Value y, GetAttr(x, attr->ToString(), line));
          if (y.is_undefined() && dflt) y = *dflt;
          out.push_back(std::move(y));
        }
        return Value(std::move(out));
      }
      if (args.positional.empty()) return Error(line, "map needs a filter name or attribute=");
      CallArgs rest;
      rest.positional.assign(args.positional.begin() + 1, args.positional.end());
      rest.keyword = args.keyword;
      for (const Value& x : items) {
        TF_ASSIGN_OR_RETURN(Value y, ApplyFilter(args.positional[0].ToString(), x, rest, line));
        out.push_back(std::move(y));
      }
      return Value(std::move(out));
    }
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep_if = name == "select" || name == "selectattr";
    const size_t test_index = by_attr ? 1 : 0;
    CallArgs rest;
    if (args.positional.size() > test_index + 1) {
      rest.positional.assign(args.positional.begin() + test_index + 1, args.positional.end());
    }
    if (by_attr && args.positional.empty()) return Error(line, name + " needs an attribute name");
    for (const Value& x : items) {
      Value subject = x;
      if (by_attr) {
        TF_ASSIGN_OR_RETURN(subject, GetAttr(x, args.positional[0].ToString(), line));
      }
      bool r;
      if (args.positional.size() > test_index) {
        TF_ASSIGN_OR_RETURN(r, ApplyTest(args.positional[test_index].ToString(), subject, rest, line));
      } else {
        r = subject.Truthy();
      }
      if (r == keep_if) out.push_back(x);
    }
    return Value(std::move(out));
  }
  if (name == "int") {
    const Value* dflt = args.Get(0, "default");
    if (v.is_number()) return Value(v.AsInt());
    if (v.is_string()) {
      try {
        size_t used = 0;
        const std::string t = Strip(v.AsString(), nullptr, true, true);
        const double d = std::stod(t, &used);
        if (used == t.size()) return Value(static_cast<int64_t>(d));
      } catch (...) {
      }
    }
    return dflt ? *dflt : Value(int64_t{0});
  }
  if (name == "float") {
    if (v.is_number()) return Value(v.AsFloat());
    if (v.is_string()) {
      try {
        return Value(std::stod(v.AsString()));
      } catch (...) {
      }
    }
    return Value(0.0);
  }
  if (name == "abs") {
    if (!v.is_number()) return Error(line, "abs needs a number");
    return v.is_float() ? Value(std::fabs(v.AsFloat())) : Value(static_cast<int64_t>(std::llabs(v.AsInt())));
  }
  if (name == "round") {
    const Value* precision = args.Get(0, "precision");
    const Value* method = args.Get(1, "method");
    const double p = std::pow(10.0, precision ? static_cast<double>(precision->AsInt()) : 0.0);
    const std::string m = method ? method->ToString() : "common";
    double x = v.AsFloat() * p;
    x = m == "ceil" ? std::ceil(x) : m == "floor" ? std::floor(x) : std::round(x);
    return Value(x / p);
  }
  if (name == "sum") {
    TF_ASSIGN_OR_RETURN(const ValueList items, Iterate(v, line));
    const Value* attr = args.Get(99, "attribute");
    Value total = args.Get(1, "start") ? *args.Get(1, "start") : Value(int64_t{0});
    for (const Value& x : items) {
      Value y = x;
      if (attr) {
        TF_ASSIGN_OR_RETURN(y, GetAttr(x, attr->ToString(), line));
      }
      TF_ASSIGN_OR_RETURN(total, Binary("+", total, y, line));
    }
    return total;
  }
  if (name == "indent") {
    const Value* width = args.Get(0, "width");
    const Value* first = args.Get(1, "first");
    const Value* blank = args.Get(2, "blank");
    const std::string pad = width && width->is_string() ? width->AsString()
                                                        : std::string(width ? width->AsInt() : 4, ' ');
    const std::vector<std::string> lines = Split(v.ToString(), nullptr, -1, false).empty()
                                               ? std::vector<std::string>{}
                                               : std::vector<std::string>{};
    (void)lines;
    std::string s = v.ToString(), out;
    size_t pos = 0;
    bool is_first = true;
    while (true) {
      const size_t nl = s.find('\n', pos);
      const std::string ln = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      const bool indent_it = is_first ? (first && first->Truthy()) : (!ln.empty() || (blank && blank->Truthy()));
      out += (indent_it ? pad : "") + ln;
      if (nl == std::string::npos) break;
      out += "\n";
      pos = nl + 1;
      is_first = false;
    }
    return Value(std::move(out));
  }
  if (name == "center") {
    const int64_t width = a0 ? a0->AsInt() : 80;
    const std::string s = v.ToString();
    const int64_t len = static_cast<int64_t>(CharLength(s));
    if (width <= len) return Value(s);
    const int64_t total = width - len, left = total / 2 + (total & width & 1);
    return Value(std::string(left, ' ') + s + std::string(total - left, ' '));
  }
  if (name == "batch") {
    TF_ASSIGN_OR_RETURN(const ValueList items, Iterate(v, line));
    const int64_t size = a0 ? a0->AsInt() : 1;
    if (size <= 0) return Error(line, "batch size must be positive");
    ValueList out, cur;
    for (const Value& x : items) {
      cur.push_back(x);
      if (static_cast<int64_t>(cur.size()) == size) out.push_back(Value(std::move(cur))), cur.clear();
    }
    if (!cur.empty()) {
      const Value* fill = args.Get(1, "fill_with");
      while (fill && static_cast<int64_t>(cur.size()) < size) cur.push_back(*fill);
      out.push_back(Value(std::move(cur)));
    }
    return Value(std::move(out));
  }
  if (name == "wordcount") return Value(static_cast<int64_t>(Split(v.ToString(), nullptr, -1, false).size()));
  if (name == "e" || name == "escape") {
    std::string out;
    for (char c : v.ToString()) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out.push_back(c);
      }
    }
    return Value(std::move(out));
  }
  return Error(line, "no filter named '" + name + "'");
}

Result<Value> Interpreter::CallMethod(const Value& obj, const std::string& name, const CallArgs& args, int line) {
  const Value* a0 = args.positional.empty() ? nullptr : &args.positional[0];
  if (obj.is_undefined()) {
    return Error(line, "'" + (obj.name().empty() ? std::string("value") : obj.name()) + "' is undefined");
  }
  if (obj.is_string()) {
    const std::string& s = obj.AsString();
    if (name == "startswith" || name == "endswith") {
      if (!a0) return Error(line, name + " needs an argument");
      ValueList options = a0->is_list() ? a0->AsList() : ValueList{*a0};
      for (const Value& o : options) {
        if (!o.is_string()) return Error(line, name + " needs a string argument");
        const std::string& p = o.AsString();
        if (p.size() > s.size()) continue;
        if (name == "startswith" ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0) {
          return Value(true);
        }
      }
      return Value(false);
    }
    if (name == "strip") return Value(Strip(s, a0, true, true));
    if (name == "lstrip") return Value(Strip(s, a0, true, false));
    if (name == "rstrip") return Value(Strip(s, a0, false, true));
    if (name == "split" || name == "rsplit") {
      const Value* sep = args.Get(0, "sep");
      const Value* maxsplit = args.Get(1, "maxsplit");
      if (sep && sep->is_string() && sep->AsString().empty()) return Error(line, "empty separator");
      ValueList out;
      for (std::string& p : Split(s, sep, maxsplit ? maxsplit->AsInt() : -1, name == "rsplit")) out.push_back(Value(std::move(p)));
      return Value(std::move(out));
    }
    if (name == "splitlines") {
      ValueList out;
      size_t pos = 0;
      while (pos < s.size()) {
        size_t nl = s.find_first_of("\r\n", pos);
        if (nl == std::string::npos) {
          out.push_back(Value(s.substr(pos)));
          break;
        }
        out.push_back(Value(s.substr(pos, nl - pos)));
        pos = nl + (s.compare(nl, 2, "\r\n") == 0 ? 2 : 1);
      }
      return Value(std::move(out));
    }
    if (name == "upper") return Value(MapCase(s, 0));
    if (name == "lower") return Value(MapCase(s, 1));
    if (name == "title") return Value(MapCase(s, 2));
    if (name == "capitalize") return Value(MapCase(s, 3));
    if (name == "replace") {
      if (args.positional.size() < 2) return Error(line, "replace needs two arguments");
      const Value* count = args.Get(2, "count");
      return Value(Replace(s, args.positional[0].ToString(), args.positional[1].ToString(), count ? count->AsInt() : -1));
    }
    if (name == "find" || name == "rfind" || name == "index" || name == "count") {
      if (!a0 || !a0->is_string()) return Error(line, name + " needs a string argument");
      const std::string& sub = a0->AsString();
      if (name == "count") {
        if (sub.empty()) return Value(static_cast<int64_t>(CharLength(s) + 1));
        int64_t n = 0;
        for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
        return Value(n);
      }
      const size_t at = name == "rfind" ? s.rfind(sub) : s.find(sub);
      if (at == std::string::npos) {
        if (name == "index") return Error(line, "substring not found");
        return Value(int64_t{-1});
      }
      return Value(static_cast<int64_t>(CharLength(s.substr(0, at))));
    }
    if (name == "join") {
      if (!a0) return Error(line, "join needs an argument");
      TF_ASSIGN_OR_RETURN(const ValueList items, Iterate(*a0, line));
      std::string out;
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].is_string()) return Error(line, "sequence item " + std::to_string(i) + ": expected str instance");
        out += (i ? s : "") + items[i].AsString();
      }
      return Value(std::move(out));
    }
    if (name == "format") {
      std::string out;
      size_t next = 0;
      for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '{' && i + 1 < s.size() && s[i + 1] == '{') { out += '{'; ++i; continue; }
        if (s[i] == '}' && i + 1 < s.size() && s[i + 1] == '}') { out += '}'; ++i; continue; }
        if (s[i] == '{') {
          const size_t close = s.find('}', i);
          if (close == std::string::npos) return Error(line, "bad format string");
          const std::string field = s.substr(i + 1, close - i - 1);
          const Value* v = nullptr;
          if (field.empty()) v = next < args.positional.size() ? &args.positional[next++] : nullptr;
          else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
            const size_t k = std::stoul(field);
            v = k < args.positional.size() ? &args.positional[k] : nullptr;
          } else {
            v = args.Get(SIZE_MAX, field);
          }
          if (!v) return Error(line, "format: missing argument for {" + field + "}");
          out += v->ToString();
          i = close;
          continue;
        }
        out += s[i];
      }
      return Value(std::move(out));
    }
    auto all = [&](auto pred) {
      const std::u32string cps = unicode::DecodeUtf8(s);
      if (cps.empty()) return Value(false);
      for (char32_t c : cps) if (!pred(c)) return Value(false);
      return Value(true);
    };
    if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") return all([](char32_t c) { return unicode::IsDigit(c); });
    if (name == "isalpha") return all([](char32_t c) { return unicode::IsLetter(c); });
    if (name == "isalnum") return all([](char32_t c) { return unicode::IsLetter(c) || unicode::IsNumber(c); });
    if (name == "isspace") return all([](char32_t c) { return IsPySpace(c); });
    if (name == "islower") return Value(MapCase(s, 1) == s && MapCase(s, 0) != s);
    if (name == "isupper") return Value(MapCase(s, 0) == s && MapCase(s, 1) != s);
    return Error(line, "str has no method '" + name + "'");
  }
  if (obj.is_dict()) {
    const ValueDict& d = obj.AsDict();
    if (name == "get") {
      if (!a0) return Error(line, "get needs a key");
      if (const Value* v = d.Find(a0->ToString())) return *v;
      return args.positional.size() > 1 ? args.positional[1] : Value::None();
    }
    if (name == "keys" || name == "values" || name == "items") {
      ValueList out;
      for (const auto& [k, v] : d.items()) {
        if (name == "keys") out.push_back(Value(k));
        else if (name == "values") out.push_back(v);
        else out.push_back(Value::Tuple(ValueList{Value(k), v}));
      }
      return Value(std::move(out));
    }
    return Error(line, "dict has no method '" + name + "'");
  }
  if (obj.is_list()) {
    if (name == "index" || name == "count") {
      if (!a0) return Error(line, name + " needs an argument");
      int64_t n = 0;
      for (size_t i = 0; i < obj.AsList().size(); ++i) {
        if (obj.AsList()[i].Equals(*a0)) {
          if (name == "index") return Value(static_cast<int64_t>(i));
          ++n;
        }
      }
      if (name == "index") return Error(line, "value is not in list");
      return Value(n);
    }
    if (name == "append" || name == "pop" || name == "insert" || name == "extend" || name == "remove") {
      return Error(line, "access to list." + name + " is unsafe (the sandbox forbids modifying lists)");
    }
  }
  return Error(line, "'" + obj.TypeName() + "' object has no method '" + name + "'");
}

}  // namespace tokenfab::jinja

namespace tokenfab::jinja {

void AddBuiltinGlobals(std::unordered_map<std::string, Value>* globals) {
  auto add = [&](const std::string& name, Function f) {
    if (!globals->count(name)) (*globals)[name] = Value::Func(std::move(f), name);
  };
  add("range", [](const CallArgs& args) -> Result<Value> {
    int64_t start = 0, stop = 0, step = 1;
    const auto& p = args.positional;
    if (p.size() == 1) stop = p[0].AsInt();
    else if (p.size() >= 2) start = p[0].AsInt(), stop = p[1].AsInt();
    if (p.size() == 3) step = p[2].AsInt();
    if (p.empty() || p.size() > 3) return InvalidArgumentError("range expects 1 to 3 arguments");
    if (step == 0) return InvalidArgumentError("range() arg 3 must not be zero");
    ValueList out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (out.size() > 1'000'000) return InvalidArgumentError("range too large");
      out.push_back(Value(i));
    }
    return Value(std::move(out));
  });
  add("namespace", [](const CallArgs& args) -> Result<Value> {
    ValueDict d;
    for (const Value& p : args.positional) {
      if (!p.is_dict()) return InvalidArgumentError("namespace() takes keyword arguments or a dict");
      for (const auto& [k, v] : p.AsDict().items()) d.Set(k, v);
    }
    for (const auto& [k, v] : args.keyword) d.Set(k, v);
    return Value::Namespace(std::move(d));
  });
  add("dict", [](const CallArgs& args) -> Result<Value> {
    ValueDict d;
    for (const auto& [k, v] : args.keyword) d.Set(k, v);
    return Value::Dict(std::move(d));
  });
  add("raise_exception", [](const CallArgs& args) -> Result<Value> {
    return InvalidArgumentError("raise_exception: " +
                                (args.positional.empty() ? std::string() : args.positional[0].ToString()));
  });
  add("strftime_now", [](const CallArgs& args) -> Result<Value> {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[256];
    const std::string fmt = args.positional.empty() ? "" : args.positional[0].ToString();
    const size_t n = std::strftime(buf, sizeof(buf), fmt.c_str(), &tm);
    return Value(std::string(buf, n));
  });
}

}  // namespace tokenfab::jinja
