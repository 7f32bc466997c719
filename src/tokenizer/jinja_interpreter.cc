#include "tokenizer/jinja_interpreter.h"

#include <algorithm>
#include <optional>

#include "tokenizer/jinja_interpreter_impl.h"
#include "tokenizer/unicode.h"

namespace tokenfab::jinja {
namespace {

constexpr int kMaxDepth = 200;  // macro recursion and nesting guard

}  // namespace

Interpreter::Interpreter(const Variables& globals) {
  scopes_.emplace_back(globals.begin(), globals.end());
  AddBuiltinGlobals(&scopes_.back());
  scopes_.emplace_back();  // template-level assignments
}

Value Interpreter::Lookup(const std::string& name) const {
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    auto v = it->find(name);
    if (v != it->end()) return v->second;
  }
  return Value::Undefined(name);
}

Status Interpreter::Exec(const Body& body, std::string* out) {
  for (const StmtPtr& s : body) {
    TF_RETURN_IF_ERROR(ExecStmt(*s, out));
    if (flow_ != Flow::kNormal) return Status::Ok();
  }
  return Status::Ok();
}

Status Interpreter::ExecStmt(const Stmt& s, std::string* out) {
  switch (s.kind) {
    case Stmt::kText: *out += s.text; return Status::Ok();
    case Stmt::kOutput: {
      TF_ASSIGN_OR_RETURN(const Value v, Eval(*s.expr));
      *out += v.ToString();
      return Status::Ok();
    }
    case Stmt::kIf:
      for (const auto& [cond, body] : s.branches) {
        bool take = true;
        if (cond) {
          TF_ASSIGN_OR_RETURN(const Value c, Eval(*cond));
          take = c.Truthy();
        }
        if (take) return Exec(body, out);
      }
      return Status::Ok();
    case Stmt::kFor: return ExecFor(s, out);
    case Stmt::kSet: {
      TF_ASSIGN_OR_RETURN(Value v, Eval(*s.expr));
      if (!s.target_attr.empty()) {
        Value ns = Lookup(s.targets[0]);
        if (!ns.is_namespace()) {
          return Error(s.line, "cannot assign attribute on non-namespace object '" + s.targets[0] + "'");
        }
        ns.MutableDict().Set(s.target_attr, std::move(v));
        return Status::Ok();
      }
      if (s.targets.size() == 1) {
        Assign(s.targets[0], std::move(v));
        return Status::Ok();
      }
      TF_ASSIGN_OR_RETURN(const ValueList items, Iterate(v, s.line));
      if (items.size() != s.targets.size()) {
        return Error(s.line, "cannot unpack " + std::to_string(items.size()) + " values into " +
                                 std::to_string(s.targets.size()) + " names");
      }
      for (size_t i = 0; i < items.size(); ++i) Assign(s.targets[i], items[i]);
      return Status::Ok();
    }
    case Stmt::kSetBlock: {
      std::string captured;
      TF_RETURN_IF_ERROR(Exec(s.body, &captured));
      Assign(s.targets[0], Value(std::move(captured)));
      return Status::Ok();
    }
    case Stmt::kMacro: Assign(s.name, MakeMacro(s)); return Status::Ok();
    case Stmt::kBreak: flow_ = Flow::kBreak; return Status::Ok();
    case Stmt::kContinue: flow_ = Flow::kContinue; return Status::Ok();
    case Stmt::kGeneration: return Exec(s.body, out);
    case Stmt::kFilterBlock: {
      std::string captured;
      TF_RETURN_IF_ERROR(Exec(s.body, &captured));
      // s.expr is a chain of filters over a placeholder literal; apply it innermost first.
      std::vector<const Expr*> chain;
      for (const Expr* e = s.expr.get(); e && e->kind == Expr::kFilter; e = e->args[0].get()) {
        chain.push_back(e);
      }
      Value v(std::move(captured));
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        CallArgs args;
        for (size_t i = 1; i < (*it)->args.size(); ++i) {
          TF_ASSIGN_OR_RETURN(Value a, Eval(*(*it)->args[i]));
          args.positional.push_back(std::move(a));
        }
        for (const auto& [k, e] : (*it)->kwargs) {
          TF_ASSIGN_OR_RETURN(Value a, Eval(*e));
          args.keyword.push_back({k, std::move(a)});
        }
        TF_ASSIGN_OR_RETURN(v, ApplyFilter((*it)->name, v, args, (*it)->line));
      }
      *out += v.ToString();
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status Interpreter::ExecFor(const Stmt& s, std::string* out) {
  TF_ASSIGN_OR_RETURN(const Value iterable, Eval(*s.expr));
  TF_ASSIGN_OR_RETURN(ValueList all, Iterate(iterable, s.line));
  scopes_.emplace_back();
  auto bind = [&](const Value& item) -> Status {
    if (s.targets.size() == 1) {
      Assign(s.targets[0], item);
      return Status::Ok();
    }
    TF_ASSIGN_OR_RETURN(const ValueList parts, Iterate(item, s.line));
    if (parts.size() != s.targets.size()) {
      return Error(s.line, "cannot unpack " + std::to_string(parts.size()) + " values into " +
                               std::to_string(s.targets.size()) + " loop variables");
    }
    for (size_t i = 0; i < parts.size(); ++i) Assign(s.targets[i], parts[i]);
    return Status::Ok();
  };
  ValueList items;
  if (s.filter) {
    for (const Value& item : all) {
      TF_RETURN_IF_ERROR(bind(item));
      TF_ASSIGN_OR_RETURN(const Value keep, Eval(*s.filter));
      if (keep.Truthy()) items.push_back(item);
    }
  } else {
    items = std::move(all);
  }
  const int64_t n = static_cast<int64_t>(items.size());
  Status status;
  for (int64_t i = 0; i < n && status.ok(); ++i) {
    scopes_.back().clear();
    ValueDict loop;
    loop.Set("index", Value(i + 1));
    loop.Set("index0", Value(i));
    loop.Set("revindex", Value(n - i));
    loop.Set("revindex0", Value(n - i - 1));
    loop.Set("first", Value(i == 0));
    loop.Set("last", Value(i == n - 1));
    loop.Set("length", Value(n));
    loop.Set("depth", Value(1));
    loop.Set("depth0", Value(0));
    loop.Set("previtem", i > 0 ? items[i - 1] : Value::Undefined("previtem"));
    loop.Set("nextitem", i + 1 < n ? items[i + 1] : Value::Undefined("nextitem"));
    loop.Set("cycle", Value::Func(
                          [i](const CallArgs& args) -> Result<Value> {
                            if (args.positional.empty()) {
                              return InvalidArgumentError("loop.cycle() needs at least one argument");
                            }
                            return args.positional[static_cast<size_t>(i) % args.positional.size()];
                          },
                          "cycle"));
    Assign("loop", Value::Dict(std::move(loop)));
    status = bind(items[i]);
    if (!status.ok()) break;
    status = Exec(s.body, out);
    if (flow_ == Flow::kBreak) {
      flow_ = Flow::kNormal;
      break;
    }
    flow_ = Flow::kNormal;
  }
  scopes_.pop_back();
  TF_RETURN_IF_ERROR(status);
  if (items.empty() && !s.else_body.empty()) return Exec(s.else_body, out);
  return Status::Ok();
}

Value Interpreter::MakeMacro(const Stmt& s) {
  const Stmt* def = &s;
  return Value::Func(
      [this, def](const CallArgs& args) -> Result<Value> {
        if (++depth_ > kMaxDepth) {
          --depth_;
          return Error(def->line, "macro recursion too deep");
        }
        if (args.positional.size() > def->params.size()) {
          --depth_;
          return Error(def->line, "macro '" + def->name + "' takes " +
                                      std::to_string(def->params.size()) + " arguments");
        }
        std::unordered_map<std::string, Value> frame;
        for (size_t i = 0; i < def->params.size(); ++i) {
          const auto& [pname, dflt] = def->params[i];
          const Value* given = args.Get(i, pname);
          if (given) {
            frame[pname] = *given;
          } else if (dflt) {
            auto v = Eval(*dflt);
            if (!v.ok()) {
              --depth_;
              return v.status();
            }
            frame[pname] = *v;
          } else {
            frame[pname] = Value::Undefined(pname);
          }
        }
        // A macro sees the globals and template-level names, not its caller's locals.
        std::vector<std::unordered_map<std::string, Value>> saved(scopes_.begin() + 2, scopes_.end());
        scopes_.resize(2);
        scopes_.push_back(std::move(frame));
        std::string out;
        const Flow saved_flow = flow_;
        flow_ = Flow::kNormal;
        Status st = Exec(def->body, &out);
        flow_ = saved_flow;
        scopes_.resize(2);
        for (auto& sc : saved) scopes_.push_back(std::move(sc));
        --depth_;
        TF_RETURN_IF_ERROR(st);
        return Value(std::move(out));
      },
      s.name);
}

Result<Value> Interpreter::Call(const Expr& e) {
  const Expr& callee = *e.args[0];
  CallArgs args;
  for (size_t i = 1; i < e.args.size(); ++i) {
    TF_ASSIGN_OR_RETURN(Value a, Eval(*e.args[i]));
    args.positional.push_back(std::move(a));
  }
  for (const auto& [k, v] : e.kwargs) {
    TF_ASSIGN_OR_RETURN(Value a, Eval(*v));
    args.keyword.push_back({k, std::move(a)});
  }
  if (callee.kind == Expr::kAttr) {  // a method call: obj.method(...)
    TF_ASSIGN_OR_RETURN(const Value obj, Eval(*callee.args[0]));
    if (obj.is_dict() && !obj.is_namespace()) {
      const Value* member = obj.AsDict().Find(callee.name);
      if (member && member->is_function()) return member->AsFunction()(args);
    }
    if (obj.is_namespace()) {
      const Value* member = obj.AsDict().Find(callee.name);
      if (member && member->is_function()) return member->AsFunction()(args);
    }
    return CallMethod(obj, callee.name, args, e.line);
  }
  TF_ASSIGN_OR_RETURN(const Value fn, Eval(callee));
  if (fn.is_undefined()) return Error(e.line, "'" + fn.name() + "' is undefined");
  if (!fn.is_function()) return Error(e.line, "'" + fn.TypeName() + "' object is not callable");
  auto r = fn.AsFunction()(args);
  if (!r.ok() && r.status().message().rfind("template line", 0) != 0) {
    return Error(e.line, r.status().message());
  }
  return r;
}

Result<Value> Interpreter::Eval(const Expr& e) {
  switch (e.kind) {
    case Expr::kLiteral: return e.literal;
    case Expr::kName: return Lookup(e.name);
    case Expr::kAttr: {
      TF_ASSIGN_OR_RETURN(const Value obj, Eval(*e.args[0]));
      return GetAttr(obj, e.name, e.line);
    }
    case Expr::kItem: {
      TF_ASSIGN_OR_RETURN(const Value obj, Eval(*e.args[0]));
      TF_ASSIGN_OR_RETURN(const Value key, Eval(*e.args[1]));
      return GetItem(obj, key, e.line);
    }
    case Expr::kSlice: {
      TF_ASSIGN_OR_RETURN(const Value obj, Eval(*e.args[0]));
      std::optional<int64_t> part[3];
      for (int k = 0; k < 3; ++k) {
        if (!e.args[k + 1]) continue;
        TF_ASSIGN_OR_RETURN(const Value v, Eval(*e.args[k + 1]));
        if (v.is_none()) continue;
        if (!v.is_int()) return Error(e.line, "slice indices must be integers");
        part[k] = v.AsInt();
      }
      const int64_t step = part[2].value_or(1);
      if (step == 0) return Error(e.line, "slice step cannot be zero");
      std::u32string chars;
      int64_t len;
      if (obj.is_string()) {
        chars = unicode::DecodeUtf8(obj.AsString());
        len = static_cast<int64_t>(chars.size());
      } else if (obj.is_list()) {
        len = static_cast<int64_t>(obj.AsList().size());
      } else {
        return Error(e.line, "'" + obj.TypeName() + "' object is not subscriptable");
      }
      auto norm = [&](std::optional<int64_t> v, int64_t dflt) {
        if (!v) return dflt;
        int64_t x = *v < 0 ? *v + len : *v;
        if (step > 0) return std::clamp<int64_t>(x, 0, len);
        return std::clamp<int64_t>(x, -1, len - 1);
      };
      const int64_t start = norm(part[0], step > 0 ? 0 : len - 1);
      const int64_t stop = norm(part[1], step > 0 ? len : -1);
      std::vector<int64_t> idx;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) idx.push_back(i);
      if (obj.is_string()) {
        std::u32string s;
        for (int64_t i : idx) s.push_back(chars[i]);
        return Value(unicode::EncodeUtf8(s));
      }
      ValueList l;
      for (int64_t i : idx) l.push_back(obj.AsList()[i]);
      return Value(std::move(l));
    }
    case Expr::kCall: return Call(e);
    case Expr::kFilter: {
      TF_ASSIGN_OR_RETURN(const Value v, Eval(*e.args[0]));
      CallArgs args;
      for (size_t i = 1; i < e.args.size(); ++i) {
        TF_ASSIGN_OR_RETURN(Value a, Eval(*e.args[i]));
        args.positional.push_back(std::move(a));
      }
      for (const auto& [k, x] : e.kwargs) {
        TF_ASSIGN_OR_RETURN(Value a, Eval(*x));
        args.keyword.push_back({k, std::move(a)});
      }
      return ApplyFilter(e.name, v, args, e.line);
    }
    case Expr::kTest: {
      TF_ASSIGN_OR_RETURN(const Value v, Eval(*e.args[0]));
      CallArgs args;
      for (size_t i = 1; i < e.args.size(); ++i) {
        TF_ASSIGN_OR_RETURN(Value a, Eval(*e.args[i]));
        args.positional.push_back(std::move(a));
      }
      TF_ASSIGN_OR_RETURN(const bool r, ApplyTest(e.name, v, args, e.line));
      return Value(r != e.negated);
    }
    case Expr::kNeg: case Expr::kPos: {
      TF_ASSIGN_OR_RETURN(const Value v, Eval(*e.args[0]));
      if (!v.is_number()) return Error(e.line, "bad operand type for unary " + std::string(e.kind == Expr::kNeg ? "-" : "+") + ": '" + v.TypeName() + "'");
      if (e.kind == Expr::kPos) return v.is_bool() ? Value(v.AsInt()) : v;
      return v.is_float() ? Value(-v.AsFloat()) : Value(-v.AsInt());
    }
    case Expr::kNot: {
      TF_ASSIGN_OR_RETURN(const Value v, Eval(*e.args[0]));
      return Value(!v.Truthy());
    }
    case Expr::kAnd: case Expr::kOr: {
      TF_ASSIGN_OR_RETURN(const Value a, Eval(*e.args[0]));
      if ((e.kind == Expr::kAnd) != a.Truthy()) return a;
      return Eval(*e.args[1]);
    }
    case Expr::kBinary: {
      TF_ASSIGN_OR_RETURN(const Value a, Eval(*e.args[0]));
      TF_ASSIGN_OR_RETURN(const Value b, Eval(*e.args[1]));
      return Binary(e.name, a, b, e.line);
    }
    case Expr::kCompare: {
      TF_ASSIGN_OR_RETURN(Value left, Eval(*e.args[0]));
      for (size_t i = 0; i < e.ops.size(); ++i) {
        TF_ASSIGN_OR_RETURN(Value right, Eval(*e.args[i + 1]));
        TF_ASSIGN_OR_RETURN(const bool r, Compare(e.ops[i], left, right, e.line));
        if (!r) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case Expr::kCond: {
      TF_ASSIGN_OR_RETURN(const Value c, Eval(*e.args[0]));
      if (c.Truthy()) return Eval(*e.args[1]);
      if (e.args[2]) return Eval(*e.args[2]);
      return Value::Undefined();
    }
    case Expr::kList: case Expr::kTuple: {
      ValueList l;
      for (const ExprPtr& x : e.args) {
        TF_ASSIGN_OR_RETURN(Value v, Eval(*x));
        l.push_back(std::move(v));
      }
      return e.kind == Expr::kTuple ? Value::Tuple(std::move(l)) : Value(std::move(l));
    }
    case Expr::kDict: {
      ValueDict d;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        TF_ASSIGN_OR_RETURN(const Value k, Eval(*e.args[i]));
        TF_ASSIGN_OR_RETURN(Value v, Eval(*e.args[i + 1]));
        d.Set(k.ToString(), std::move(v));
      }
      return Value::Dict(std::move(d));
    }
    case Expr::kConcat: {
      std::string s;
      for (const ExprPtr& x : e.args) {
        TF_ASSIGN_OR_RETURN(const Value v, Eval(*x));
        s += v.ToString();
      }
      return Value(std::move(s));
    }
  }
  return Error(e.line, "unknown expression");
}

Result<std::string> Render(const Template& tmpl, const Variables& variables) {
  Interpreter interp(variables);
  std::string out;
  TF_RETURN_IF_ERROR(interp.Exec(tmpl.body, &out));
  return out;
}

}  // namespace tokenfab::jinja
