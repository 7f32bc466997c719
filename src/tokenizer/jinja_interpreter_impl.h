// Internal to the Jinja interpreter (jinja_interpreter.cc, jinja_builtins.cc): the evaluation
// state shared by statements, expressions and the builtin filters, tests and methods.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/jinja_interpreter.h"

namespace tokenfab::jinja {

// range, namespace, dict, raise_exception, strftime_now (unless `globals` defines them).
void AddBuiltinGlobals(std::unordered_map<std::string, Value>* globals);

class Interpreter {
 public:
  explicit Interpreter(const Variables& globals);

  Status Exec(const Body& body, std::string* out);
  Result<Value> Eval(const Expr& e);

  // Builtins (jinja_builtins.cc).
  Result<Value> ApplyFilter(const std::string& name, const Value& value, const CallArgs& args, int line);
  Result<bool> ApplyTest(const std::string& name, const Value& value, const CallArgs& args, int line);
  Result<Value> CallMethod(const Value& object, const std::string& name, const CallArgs& args, int line);
  Result<Value> GetAttr(const Value& object, const std::string& name, int line);
  Result<Value> GetItem(const Value& object, const Value& key, int line);
  Result<Value> Binary(const std::string& op, const Value& a, const Value& b, int line);
  Result<bool> Compare(const std::string& op, const Value& a, const Value& b, int line);
  Result<ValueList> Iterate(const Value& v, int line);

  static Status Error(int line, const std::string& what) {
    return InvalidArgumentError("template line " + std::to_string(line) + ": " + what);
  }

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  Status ExecStmt(const Stmt& s, std::string* out);
  Status ExecFor(const Stmt& s, std::string* out);
  Result<Value> Call(const Expr& e);
  Value Lookup(const std::string& name) const;
  void Assign(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }
  Value MakeMacro(const Stmt& s);

  std::vector<std::unordered_map<std::string, Value>> scopes_;
  Flow flow_ = Flow::kNormal;
  int depth_ = 0;
};

}  // namespace tokenfab::jinja
