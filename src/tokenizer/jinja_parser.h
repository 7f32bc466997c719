// Jinja parser: template source to syntax tree. Covers what chat templates use: {{ }},
// if/elif/else, for (with else, `if` filter, tuple unpacking), set (names, tuples, namespace
// attributes, block form), macro, break/continue (loopcontrols), filter blocks, raw, and
// transformers' {% generation %} tag; expressions with Jinja2's precedence, filters, tests,
// calls, attribute/item access and slices. Anything else is an InvalidArgument naming the
// template line and the construct.
// Thread-safety: pure function.
#pragma once

#include <memory>
#include <string_view>

#include "base/status.h"
#include "tokenizer/jinja_ast.h"

namespace tokenfab::jinja {

Result<std::shared_ptr<const Template>> Parse(std::string_view source);

}  // namespace tokenfab::jinja
