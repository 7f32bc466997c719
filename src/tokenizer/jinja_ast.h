// The syntax tree of a parsed Jinja template: expressions and statements, each with the
// template line it came from (for error messages).
// Thread-safety: immutable after parsing; shared by concurrent renders.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace tokenfab::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum Kind {
    kLiteral, kName, kAttr, kItem, kSlice, kCall, kFilter, kTest, kNeg, kPos, kNot, kBinary,
    kAnd, kOr, kCompare, kCond, kList, kTuple, kDict, kConcat,
  };
  Kind kind;
  int line = 0;
  Value literal;                         // kLiteral
  std::string name;                      // kName, kAttr (attribute), kFilter/kTest, kBinary op
  std::vector<ExprPtr> args;             // operands / call args / list items / dict k,v pairs
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // call/filter/test keyword args
  std::vector<std::string> ops;          // kCompare: operator per comparison
  bool negated = false;                  // kTest: `is not`
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue, kGeneration, kFilterBlock };
  Kind kind;
  int line = 0;
  std::string text;                            // kText
  ExprPtr expr;                                // kOutput, kSet value, kFor iterable, kFilterBlock filter
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf: (condition, body); else has null condition
  std::vector<std::string> targets;            // kFor loop vars; kSet names; kSetBlock name
  std::string target_attr;                     // kSet: `set ns.attr = ...`
  ExprPtr filter;                              // kFor: `for x in y if cond`
  Body body, else_body;                        // kFor, kSetBlock, kMacro, kGeneration, kFilterBlock
  std::string name;                            // kMacro
  std::vector<std::pair<std::string, ExprPtr>> params;  // kMacro: name, default (may be null)
};

struct Template {
  Body body;
};

}  // namespace tokenfab::jinja
