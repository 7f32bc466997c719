// Jinja interpreter: renders a parsed template against a set of variables, with the
// semantics of transformers' chat-template environment (Jinja2 ImmutableSandboxedEnvironment,
// loopcontrols, tojson without HTML escaping and with indent/separators/sort_keys,
// raise_exception, strftime_now). Undefined values print as nothing; using one as an object is
// an error. Every error names the template line.
// Thread-safety: Render is reentrant; a Template may be rendered from many threads at once.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "base/status.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_value.h"

namespace tokenfab::jinja {

using Variables = std::map<std::string, Value>;

Result<std::string> Render(const Template& tmpl, const Variables& variables);

}  // namespace tokenfab::jinja
