#include "tokenizer/jinja_parser.h"

#include <cstdlib>

#include "tokenizer/jinja_lexer.h"

namespace tokenfab::jinja {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Result<std::shared_ptr<const Template>> Run() {
    auto tmpl = std::make_shared<Template>();
    std::string end;
    TF_RETURN_IF_ERROR(ParseBody(&tmpl->body, {}, &end));
    return std::shared_ptr<const Template>(std::move(tmpl));
  }

 private:
  const Token& Cur() const { return t_[i_]; }
  const Token& Peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  bool IsOp(std::string_view op) const { return Cur().kind == Token::kOp && Cur().text == op; }
  bool IsName(std::string_view n) const { return Cur().kind == Token::kName && Cur().text == n; }
  bool EatOp(std::string_view op) {
    if (!IsOp(op)) return false;
    ++i_;
    return true;
  }
  bool EatName(std::string_view n) {
    if (!IsName(n)) return false;
    ++i_;
    return true;
  }
  Status Error(const std::string& what) const {
    return InvalidArgumentError("template line " + std::to_string(Cur().line) + ": " + what);
  }
  std::string Describe() const {
    switch (Cur().kind) {
      case Token::kEof: return "end of template";
      case Token::kBlockEnd: return "end of statement block";
      case Token::kVarEnd: return "end of print statement";
      case Token::kString: return "string";
      default: return "'" + Cur().text + "'";
    }
  }
  Status Expect(std::string_view op) {
    if (EatOp(op)) return Status::Ok();
    return Error("expected '" + std::string(op) + "', got " + Describe());
  }
  Status ExpectBlockEnd() {
    if (Cur().kind == Token::kBlockEnd) {
      ++i_;
      return Status::Ok();
    }
    return Error("expected end of statement block, got " + Describe());
  }
  Result<std::string> ExpectName() {
    if (Cur().kind != Token::kName) return Error("expected a name, got " + Describe());
    return t_[i_++].text;
  }

  // Parses statements until a block tag whose name is in `ends` (consumed up to its name).
  Status ParseBody(Body* body, const std::vector<std::string>& ends, std::string* end_found) {
    while (true) {
      const Token& tok = Cur();
      if (tok.kind == Token::kEof) {
        if (ends.empty()) return Status::Ok();
        std::string list;
        for (const auto& e : ends) list += (list.empty() ? "'" : " or '") + e + "'";
        return Error("unexpected end of template, expected " + list);
      }
      if (tok.kind == Token::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::kText;
        s->line = tok.line;
        s->text = tok.text;
        body->push_back(std::move(s));
        ++i_;
        continue;
      }
      if (tok.kind == Token::kVarBegin) {
        ++i_;
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::kOutput;
        s->line = tok.line;
        TF_ASSIGN_OR_RETURN(s->expr, ParseTupleOrExpr());
        if (Cur().kind != Token::kVarEnd) return Error("expected end of print statement, got " + Describe());
        ++i_;
        body->push_back(std::move(s));
        continue;
      }
      if (tok.kind != Token::kBlockBegin) return Error("unexpected " + Describe());
      ++i_;
      if (Cur().kind != Token::kName) return Error("expected a statement name, got " + Describe());
      const std::string name = Cur().text;
      for (const auto& e : ends) {
        if (name == e) {
          ++i_;
          *end_found = name;
          return Status::Ok();
        }
      }
      TF_ASSIGN_OR_RETURN(StmtPtr stmt, ParseStatement());
      if (stmt) body->push_back(std::move(stmt));
    }
  }

  Result<StmtPtr> ParseStatement() {
    const int line = Cur().line;
    const std::string name = t_[i_++].text;
    auto s = std::make_unique<Stmt>();
    s->line = line;
    std::string end;
    if (name == "if") {
      s->kind = Stmt::kIf;
      ExprPtr cond;
      TF_ASSIGN_OR_RETURN(cond, ParseExpr());
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      while (true) {
        Body body;
        TF_RETURN_IF_ERROR(ParseBody(&body, {"elif", "else", "endif"}, &end));
        s->branches.push_back({std::move(cond), std::move(body)});
        if (end == "endif") break;
        if (end == "else") {
          TF_RETURN_IF_ERROR(ExpectBlockEnd());
          Body else_body;
          TF_RETURN_IF_ERROR(ParseBody(&else_body, {"endif"}, &end));
          s->branches.push_back({nullptr, std::move(else_body)});
          break;
        }
        TF_ASSIGN_OR_RETURN(cond, ParseExpr());
        TF_RETURN_IF_ERROR(ExpectBlockEnd());
      }
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (name == "for") {
      s->kind = Stmt::kFor;
      do {
        TF_ASSIGN_OR_RETURN(std::string var, ExpectName());
        s->targets.push_back(std::move(var));
      } while (EatOp(","));
      if (!EatName("in")) return Error("expected 'in' in for loop, got " + Describe());
      TF_ASSIGN_OR_RETURN(s->expr, ParseExpr(/*with_condexpr=*/false));
      if (EatName("if")) {
        TF_ASSIGN_OR_RETURN(s->filter, ParseExpr());
      }
      if (IsName("recursive")) return Error("recursive loops are not supported");
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      TF_RETURN_IF_ERROR(ParseBody(&s->body, {"else", "endfor"}, &end));
      if (end == "else") {
        TF_RETURN_IF_ERROR(ExpectBlockEnd());
        TF_RETURN_IF_ERROR(ParseBody(&s->else_body, {"endfor"}, &end));
      }
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (name == "set") {
      TF_ASSIGN_OR_RETURN(std::string target, ExpectName());
      if (EatOp(".")) {
        TF_ASSIGN_OR_RETURN(s->target_attr, ExpectName());
      }
      s->targets.push_back(std::move(target));
      while (s->target_attr.empty() && EatOp(",")) {
        TF_ASSIGN_OR_RETURN(std::string more, ExpectName());
        s->targets.push_back(std::move(more));
      }
      if (Cur().kind == Token::kBlockEnd) {
        if (s->targets.size() != 1 || !s->target_attr.empty()) return Error("bad set block");
        ++i_;
        s->kind = Stmt::kSetBlock;
        TF_RETURN_IF_ERROR(ParseBody(&s->body, {"endset"}, &end));
        TF_RETURN_IF_ERROR(ExpectBlockEnd());
        return s;
      }
      s->kind = Stmt::kSet;
      TF_RETURN_IF_ERROR(Expect("="));
      TF_ASSIGN_OR_RETURN(s->expr, ParseTupleOrExpr());
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (name == "macro") {
      s->kind = Stmt::kMacro;
      TF_ASSIGN_OR_RETURN(s->name, ExpectName());
      TF_RETURN_IF_ERROR(Expect("("));
      while (!EatOp(")")) {
        TF_ASSIGN_OR_RETURN(std::string param, ExpectName());
        ExprPtr dflt;
        if (EatOp("=")) {
          TF_ASSIGN_OR_RETURN(dflt, ParseExpr());
        }
        s->params.push_back({std::move(param), std::move(dflt)});
        if (!IsOp(")")) TF_RETURN_IF_ERROR(Expect(","));
      }
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      TF_RETURN_IF_ERROR(ParseBody(&s->body, {"endmacro"}, &end));
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (name == "break" || name == "continue") {
      s->kind = name == "break" ? Stmt::kBreak : Stmt::kContinue;
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (name == "generation") {
      s->kind = Stmt::kGeneration;
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      TF_RETURN_IF_ERROR(ParseBody(&s->body, {"endgeneration"}, &end));
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (name == "filter") {
      s->kind = Stmt::kFilterBlock;
      auto placeholder = std::make_unique<Expr>();
      placeholder->kind = Expr::kLiteral;
      TF_ASSIGN_OR_RETURN(s->expr, ParseFilter(std::move(placeholder)));
      while (EatOp("|")) {
        TF_ASSIGN_OR_RETURN(s->expr, ParseFilter(std::move(s->expr)));
      }
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      TF_RETURN_IF_ERROR(ParseBody(&s->body, {"endfilter"}, &end));
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (name == "raw") {
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      Body body;
      TF_RETURN_IF_ERROR(ParseBody(&body, {"endraw"}, &end));
      TF_RETURN_IF_ERROR(ExpectBlockEnd());
      s->kind = Stmt::kGeneration;  // a plain container of its text
      s->body = std::move(body);
      return s;
    }
    --i_;
    return Error("unknown tag '" + name + "'");
  }

  static ExprPtr Make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // An expression, or a bare tuple `a, b` (print and set statements).
  Result<ExprPtr> ParseTupleOrExpr() {
    const int line = Cur().line;
    TF_ASSIGN_OR_RETURN(ExprPtr first, ParseExpr());
    if (!IsOp(",")) return first;
    auto tuple = Make(Expr::kTuple, line);
    tuple->args.push_back(std::move(first));
    while (EatOp(",")) {
      if (Cur().kind == Token::kBlockEnd || Cur().kind == Token::kVarEnd) break;
      TF_ASSIGN_OR_RETURN(ExprPtr next, ParseExpr());
      tuple->args.push_back(std::move(next));
    }
    return tuple;
  }

  Result<ExprPtr> ParseExpr(bool with_condexpr = true) {
    if (!with_condexpr) return ParseOr();
    const int line = Cur().line;
    TF_ASSIGN_OR_RETURN(ExprPtr expr, ParseOr());
    while (EatName("if")) {
      auto cond = Make(Expr::kCond, line);
      TF_ASSIGN_OR_RETURN(ExprPtr test, ParseOr());
      ExprPtr otherwise;
      if (EatName("else")) {
        TF_ASSIGN_OR_RETURN(otherwise, ParseExpr());
      }
      cond->args.push_back(std::move(test));
      cond->args.push_back(std::move(expr));
      cond->args.push_back(std::move(otherwise));  // may be null: undefined
      expr = std::move(cond);
    }
    return expr;
  }

  Result<ExprPtr> ParseOr() {
    TF_ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
    while (IsName("or")) {
      const int line = Cur().line;
      ++i_;
      TF_ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
      left = TwoArgs(Expr::kOr, std::move(left), std::move(right), line);
    }
    return left;
  }

  Result<ExprPtr> ParseAnd() {
    TF_ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
    while (IsName("and")) {
      const int line = Cur().line;
      ++i_;
      TF_ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
      left = TwoArgs(Expr::kAnd, std::move(left), std::move(right), line);
    }
    return left;
  }

  Result<ExprPtr> ParseNot() {
    if (IsName("not")) {
      const int line = Cur().line;
      ++i_;
      auto e = Make(Expr::kNot, line);
      TF_ASSIGN_OR_RETURN(ExprPtr inner, ParseNot());
      e->args.push_back(std::move(inner));
      return e;
    }
    return ParseCompare();
  }

  Result<ExprPtr> ParseCompare() {
    const int line = Cur().line;
    TF_ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().kind == Token::kOp &&
          (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" || Cur().text == ">" ||
           Cur().text == "<=" || Cur().text == ">=")) {
        op = Cur().text;
        ++i_;
      } else if (IsName("in")) {
        op = "in";
        ++i_;
      } else if (IsName("not") && Peek().kind == Token::kName && Peek().text == "in") {
        op = "notin";
        i_ += 2;
      } else {
        break;
      }
      if (!cmp) {
        cmp = Make(Expr::kCompare, line);
        cmp->args.push_back(std::move(first));
      }
      TF_ASSIGN_OR_RETURN(ExprPtr rhs, ParseMath1());
      cmp->args.push_back(std::move(rhs));
      cmp->ops.push_back(op);
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  // A node of `kind` over two operands.
  static ExprPtr TwoArgs(Expr::Kind kind, ExprPtr left, ExprPtr right, int line) {
    auto e = Make(kind, line);
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return e;
  }

  Result<ExprPtr> Binary(ExprPtr left, const std::string& op, ExprPtr right, int line) {
    ExprPtr e = TwoArgs(Expr::kBinary, std::move(left), std::move(right), line);
    e->name = op;
    return e;
  }

  Result<ExprPtr> ParseMath1() {
    TF_ASSIGN_OR_RETURN(ExprPtr left, ParseConcat());
    while (IsOp("+") || IsOp("-")) {
      const std::string op = Cur().text;
      const int line = Cur().line;
      ++i_;
      TF_ASSIGN_OR_RETURN(ExprPtr right, ParseConcat());
      TF_ASSIGN_OR_RETURN(left, Binary(std::move(left), op, std::move(right), line));
    }
    return left;
  }

  Result<ExprPtr> ParseConcat() {
    const int line = Cur().line;
    TF_ASSIGN_OR_RETURN(ExprPtr first, ParseMath2());
    if (!IsOp("~")) return first;
    auto cat = Make(Expr::kConcat, line);
    cat->args.push_back(std::move(first));
    while (EatOp("~")) {
      TF_ASSIGN_OR_RETURN(ExprPtr next, ParseMath2());
      cat->args.push_back(std::move(next));
    }
    return cat;
  }

  Result<ExprPtr> ParseMath2() {
    TF_ASSIGN_OR_RETURN(ExprPtr left, ParsePow());
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const std::string op = Cur().text;
      const int line = Cur().line;
      ++i_;
      TF_ASSIGN_OR_RETURN(ExprPtr right, ParsePow());
      TF_ASSIGN_OR_RETURN(left, Binary(std::move(left), op, std::move(right), line));
    }
    return left;
  }

  Result<ExprPtr> ParsePow() {
    TF_ASSIGN_OR_RETURN(ExprPtr left, ParseUnary(true));
    while (IsOp("**")) {
      const int line = Cur().line;
      ++i_;
      TF_ASSIGN_OR_RETURN(ExprPtr right, ParseUnary(true));
      TF_ASSIGN_OR_RETURN(left, Binary(std::move(left), "**", std::move(right), line));
    }
    return left;
  }

  Result<ExprPtr> ParseUnary(bool with_filter) {
    const int line = Cur().line;
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      const bool neg = IsOp("-");
      ++i_;
      node = Make(neg ? Expr::kNeg : Expr::kPos, line);
      TF_ASSIGN_OR_RETURN(ExprPtr inner, ParseUnary(false));
      node->args.push_back(std::move(inner));
    } else {
      TF_ASSIGN_OR_RETURN(node, ParsePrimary());
    }
    TF_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
    if (with_filter) {
      TF_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
    }
    return node;
  }

  Result<ExprPtr> ParsePrimary() {
    const Token tok = Cur();
    const int line = tok.line;
    switch (tok.kind) {
      case Token::kName: {
        ++i_;
        auto lit = Make(Expr::kLiteral, line);
        if (tok.text == "true" || tok.text == "True") lit->literal = Value(true);
        else if (tok.text == "false" || tok.text == "False") lit->literal = Value(false);
        else if (tok.text == "none" || tok.text == "None") lit->literal = Value::None();
        else {
          auto n = Make(Expr::kName, line);
          n->name = tok.text;
          return n;
        }
        return lit;
      }
      case Token::kString: {
        std::string s;
        while (Cur().kind == Token::kString) s += t_[i_++].text;  // adjacent literals join
        auto lit = Make(Expr::kLiteral, line);
        lit->literal = Value(std::move(s));
        return lit;
      }
      case Token::kInt: case Token::kFloat: {
        ++i_;
        auto lit = Make(Expr::kLiteral, line);
        if (tok.kind == Token::kInt) {
          errno = 0;
          const long long v = std::strtoll(tok.text.c_str(), nullptr, 10);
          lit->literal = errno == ERANGE ? Value::BigNumber(std::strtod(tok.text.c_str(), nullptr), tok.text)
                                         : Value(static_cast<int64_t>(v));
        } else {
          lit->literal = Value(std::strtod(tok.text.c_str(), nullptr));
        }
        return lit;
      }
      case Token::kOp:
        if (tok.text == "(") {
          ++i_;
          if (EatOp(")")) return Make(Expr::kTuple, line);
          TF_ASSIGN_OR_RETURN(ExprPtr first, ParseExpr());
          if (EatOp(")")) return first;
          auto tuple = Make(Expr::kTuple, line);
          tuple->args.push_back(std::move(first));
          while (EatOp(",")) {
            if (IsOp(")")) break;
            TF_ASSIGN_OR_RETURN(ExprPtr next, ParseExpr());
            tuple->args.push_back(std::move(next));
          }
          TF_RETURN_IF_ERROR(Expect(")"));
          return tuple;
        }
        if (tok.text == "[") {
          ++i_;
          auto list = Make(Expr::kList, line);
          while (!EatOp("]")) {
            TF_ASSIGN_OR_RETURN(ExprPtr item, ParseExpr());
            list->args.push_back(std::move(item));
            if (!IsOp("]")) TF_RETURN_IF_ERROR(Expect(","));
          }
          return list;
        }
        if (tok.text == "{") {
          ++i_;
          auto dict = Make(Expr::kDict, line);
          while (!EatOp("}")) {
            TF_ASSIGN_OR_RETURN(ExprPtr key, ParseExpr());
            TF_RETURN_IF_ERROR(Expect(":"));
            TF_ASSIGN_OR_RETURN(ExprPtr value, ParseExpr());
            dict->args.push_back(std::move(key));
            dict->args.push_back(std::move(value));
            if (!IsOp("}")) TF_RETURN_IF_ERROR(Expect(","));
          }
          return dict;
        }
        break;
      default: break;
    }
    return Error("expected an expression, got " + Describe());
  }

  Status ParseCallArgs(Expr* call) {
    while (!EatOp(")")) {
      if (IsOp("*") || IsOp("**")) return Error("*args and **kwargs in calls are not supported");
      if (Cur().kind == Token::kName && Peek().kind == Token::kOp && Peek().text == "=") {
        std::string key = t_[i_].text;
        i_ += 2;
        TF_ASSIGN_OR_RETURN(ExprPtr v, ParseExpr());
        call->kwargs.push_back({std::move(key), std::move(v)});
      } else {
        if (!call->kwargs.empty()) return Error("positional argument after keyword argument");
        TF_ASSIGN_OR_RETURN(ExprPtr v, ParseExpr());
        call->args.push_back(std::move(v));
      }
      if (!IsOp(")")) TF_RETURN_IF_ERROR(Expect(","));
    }
    return Status::Ok();
  }

  Result<ExprPtr> ParsePostfix(ExprPtr node) {
    while (true) {
      const int line = Cur().line;
      if (EatOp(".")) {
        auto attr = Make(Expr::kAttr, line);
        if (Cur().kind == Token::kName) {
          attr->name = t_[i_++].text;
        } else if (Cur().kind == Token::kInt) {  // foo.0 is foo[0]
          auto item = Make(Expr::kItem, line);
          auto idx = Make(Expr::kLiteral, line);
          idx->literal = Value(static_cast<int64_t>(std::strtoll(t_[i_++].text.c_str(), nullptr, 10)));
          item->args.push_back(std::move(node));
          item->args.push_back(std::move(idx));
          node = std::move(item);
          continue;
        } else {
          return Error("expected an attribute name, got " + Describe());
        }
        attr->args.push_back(std::move(node));
        node = std::move(attr);
      } else if (EatOp("[")) {
        ExprPtr parts[3];
        bool is_slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!IsOp(":") && !IsOp("]")) {
            TF_ASSIGN_OR_RETURN(parts[k], ParseExpr());
          }
          if (k < 2 && EatOp(":")) {
            is_slice = true;
            continue;
          }
          break;
        }
        TF_RETURN_IF_ERROR(Expect("]"));
        if (is_slice) {
          auto slice = Make(Expr::kSlice, line);
          slice->args.push_back(std::move(node));
          for (auto& p : parts) slice->args.push_back(std::move(p));
          node = std::move(slice);
        } else {
          if (!parts[0]) return Error("empty subscript");
          auto item = Make(Expr::kItem, line);
          item->args.push_back(std::move(node));
          item->args.push_back(std::move(parts[0]));
          node = std::move(item);
        }
      } else if (EatOp("(")) {
        auto call = Make(Expr::kCall, line);
        call->args.push_back(std::move(node));
        TF_RETURN_IF_ERROR(ParseCallArgs(call.get()));
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  Result<ExprPtr> ParseFilter(ExprPtr node) {
    const int line = Cur().line;
    TF_ASSIGN_OR_RETURN(std::string name, ExpectName());
    while (EatOp(".")) {
      TF_ASSIGN_OR_RETURN(std::string more, ExpectName());
      name += "." + more;
    }
    auto f = Make(Expr::kFilter, line);
    f->name = std::move(name);
    f->args.push_back(std::move(node));
    if (EatOp("(")) TF_RETURN_IF_ERROR(ParseCallArgs(f.get()));
    return f;
  }

  Result<ExprPtr> ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (EatOp("|")) {
        TF_ASSIGN_OR_RETURN(node, ParseFilter(std::move(node)));
      } else if (IsName("is")) {
        const int line = Cur().line;
        ++i_;
        auto test = Make(Expr::kTest, line);
        test->negated = EatName("not");
        TF_ASSIGN_OR_RETURN(test->name, ExpectName());
        while (EatOp(".")) {
          TF_ASSIGN_OR_RETURN(std::string more, ExpectName());
          test->name += "." + more;
        }
        test->args.push_back(std::move(node));
        if (EatOp("(")) {
          TF_RETURN_IF_ERROR(ParseCallArgs(test.get()));
        } else if ((Cur().kind == Token::kName && Cur().text != "else" && Cur().text != "or" &&
                    Cur().text != "and" && Cur().text != "is" && Cur().text != "if" &&
                    Cur().text != "in" && Cur().text != "not") ||
                   Cur().kind == Token::kString || Cur().kind == Token::kInt ||
                   Cur().kind == Token::kFloat || IsOp("[") || IsOp("{") || IsOp("-")) {
          TF_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
          TF_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
          test->args.push_back(std::move(arg));
        }
        node = std::move(test);
      } else if (IsOp("(")) {
        const int line = Cur().line;
        ++i_;
        auto call = Make(Expr::kCall, line);
        call->args.push_back(std::move(node));
        TF_RETURN_IF_ERROR(ParseCallArgs(call.get()));
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  std::vector<Token> t_;
  size_t i_ = 0;
};

}  // namespace

Result<std::shared_ptr<const Template>> Parse(std::string_view source) {
  TF_ASSIGN_OR_RETURN(std::vector<Token> tokens, Lex(source));
  return Parser(std::move(tokens)).Run();
}

}  // namespace tokenfab::jinja
