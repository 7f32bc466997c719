// Jinja lexer: splits a template into text and the tokens inside {{ }}, {% %} tags, applying
// whitespace control exactly as Jinja2 with transformers' settings (trim_blocks=True,
// lstrip_blocks=True, keep_trailing_newline=False): `-` strips whitespace on that side, `+`
// keeps it, a block tag eats the newline after it and the indentation before it. Comments and
// {% raw %} blocks are handled here. Errors name the template line.
// Thread-safety: pure function.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace tokenfab::jinja {

struct Token {
  enum Kind { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };
  Kind kind;
  std::string text;  // text, name, decoded string literal, number literal or operator
  int line = 1;
};

Result<std::vector<Token>> Lex(std::string_view source);

}  // namespace tokenfab::jinja
