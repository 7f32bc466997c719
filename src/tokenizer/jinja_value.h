// Values of the Jinja interpreter, with Python's semantics as Jinja2 (which transformers uses
// to render chat templates) gives them: undefined, none, bool, int, float, str, list, dict
// (insertion-ordered), callables (macros, builtins) and namespace objects. Printing follows
// Python's str()/repr() (True, None, 1.0, ['a', 1], {'k': 'v'}); ToJson follows json.dumps.
// Lists and dicts are shared by reference, like Python objects.
// Thread-safety: values are not synchronized; one render uses them from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace tokenfab::jinja {

class Value;
using ValueList = std::vector<Value>;

class ValueDict;
struct CallArgs;
using Function = std::function<Result<Value>(const CallArgs&)>;

class Value {
 public:
  enum class Type { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction, kNamespace };

  Value() = default;  // undefined
  static Value None() { Value v; v.type_ = Type::kNone; return v; }
  Value(bool b) : type_(Type::kBool), int_(b) {}                 // NOLINT
  Value(int64_t i) : type_(Type::kInt), int_(i) {}               // NOLINT
  Value(int i) : type_(Type::kInt), int_(i) {}                   // NOLINT
  Value(double d) : type_(Type::kFloat), float_(d) {}            // NOLINT
  Value(std::string s) : type_(Type::kString), str_(std::make_shared<std::string>(std::move(s))) {}  // NOLINT
  Value(const char* s) : Value(std::string(s)) {}                // NOLINT
  Value(ValueList l) : type_(Type::kList), list_(std::make_shared<ValueList>(std::move(l))) {}  // NOLINT
  static Value Tuple(ValueList l) {
    Value v(std::move(l));
    v.tuple_ = true;
    return v;
  }
  // A number whose Python repr is `text` (integer literals beyond int64).
  static Value BigNumber(double d, std::string text) {
    Value v(d);
    v.undefined_name_ = std::move(text);
    return v;
  }
  static Value Dict(ValueDict d);
  static Value Namespace(ValueDict d);
  static Value Func(Function f, std::string name);
  static Value Undefined(std::string name = "") {
    Value v;
    v.undefined_name_ = std::move(name);
    return v;
  }
  // From JSON (objects keep their key order).
  static Value FromJson(const nlohmann::ordered_json& j);

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::kUndefined; }
  bool is_none() const { return type_ == Type::kNone; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_int() const { return type_ == Type::kInt; }
  bool is_float() const { return type_ == Type::kFloat; }
  bool is_number() const { return type_ == Type::kInt || type_ == Type::kFloat || type_ == Type::kBool; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_list() const { return type_ == Type::kList; }
  bool is_dict() const { return type_ == Type::kDict || type_ == Type::kNamespace; }
  bool is_namespace() const { return type_ == Type::kNamespace; }
  bool is_function() const { return type_ == Type::kFunction; }

  bool AsBool() const { return int_ != 0; }
  int64_t AsInt() const { return type_ == Type::kFloat ? static_cast<int64_t>(float_) : int_; }
  double AsFloat() const { return type_ == Type::kFloat ? float_ : static_cast<double>(int_); }
  const std::string& AsString() const { return *str_; }
  const ValueList& AsList() const { return *list_; }
  ValueList& MutableList() { return *list_; }
  const ValueDict& AsDict() const { return *dict_; }
  ValueDict& MutableDict() { return *dict_; }
  const Function& AsFunction() const { return *func_; }
  const std::string& name() const { return undefined_name_; }  // undefined: what was looked up

  bool Truthy() const;
  // Python str(): what {{ value }} prints.
  std::string ToString() const;
  // Python repr().
  std::string Repr() const;
  // json.dumps(value, ensure_ascii=False, indent=indent, separators=..., sort_keys=...);
  // indent < 0 means None.
  Result<std::string> ToJson(int indent, const std::string& item_sep, const std::string& key_sep,
                             bool sort_keys) const;
  // Python ==.
  bool Equals(const Value& other) const;
  std::string TypeName() const;

 private:
  Status AppendJson(std::string* out, int indent, int depth, const std::string& item_sep,
                    const std::string& key_sep, bool sort_keys) const;

  Type type_ = Type::kUndefined;
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<std::string> str_;
  std::shared_ptr<ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<Function> func_;
  std::string undefined_name_;  // also the function name, and a BigNumber's repr
  bool tuple_ = false;          // a list that prints as a tuple
};

// Insertion-ordered string-keyed map (Python dict with str keys; other key types are
// converted to their string form, which chat templates never distinguish).
class ValueDict {
 public:
  Value* Find(const std::string& key);
  const Value* Find(const std::string& key) const;
  void Set(const std::string& key, Value value);
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<std::string, Value>> items_;
  std::map<std::string, size_t> index_;
};

struct CallArgs {
  ValueList positional;
  std::vector<std::pair<std::string, Value>> keyword;
  // The keyword argument `name`, else positional[index], else null.
  const Value* Get(size_t index, const std::string& name) const;
};

// Python repr of a float ("1.0", "0.30000000000000004", "1e-07", "inf").
std::string FormatFloat(double d);
// Python repr of a str ('abc', "it's").
std::string ReprString(const std::string& s);

}  // namespace tokenfab::jinja
