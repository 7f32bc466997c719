// ChatTemplate: renders an OpenAI-style conversation into the prompt text the model was trained
// on, exactly as transformers' apply_chat_template does: the Jinja template from
// tokenizer_config.json ("chat_template": a string, or a list of {name, template} of which
// "default" is used unless another is named), with the variables messages, tools, documents,
// add_generation_prompt, bos_token, eos_token (and the other special tokens of the config),
// plus any extra keyword variables (e.g. enable_thinking).
//
// TokenizerConfig also carries the config's bos/eos tokens and, when generation_config.json is
// present, its eos_token_id list (the ids that end generation).
// Thread-safety: immutable after loading; Render may be called from many threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "tokenizer/jinja_ast.h"

namespace tokenfab {

using OrderedJson = nlohmann::ordered_json;

// Parses JSON keeping object key order (what templates see when they iterate or tojson a
// dict). Never throws: InvalidArgument "<source>: invalid JSON: ..." on bad input.
Result<OrderedJson> ParseOrderedJson(std::string_view text, const std::string& source);

struct ChatRenderOptions {
  bool add_generation_prompt = false;
  OrderedJson tools;      // null or a list of tool schemas
  OrderedJson documents;  // null or a list
  OrderedJson extra = OrderedJson::object();  // more template variables (enable_thinking, ...)
};

class ChatTemplate {
 public:
  // `source` names the template in errors (e.g. "tokenizer_config.json: chat_template").
  static Result<std::shared_ptr<const ChatTemplate>> Create(const std::string& template_text,
                                                            const std::string& source);
  // `special_tokens` are the template variables bos_token, eos_token, ... from the config.
  Result<std::string> Render(const OrderedJson& messages, const ChatRenderOptions& options,
                             const std::map<std::string, std::string>& special_tokens) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string source_;
  std::shared_ptr<const jinja::Template> parsed_;
};

struct TokenizerConfig {
  std::shared_ptr<const ChatTemplate> chat_template;  // null if the model has none
  // bos_token, eos_token, unk_token, pad_token, ... as strings (absent when null).
  std::map<std::string, std::string> special_tokens;
  std::vector<int64_t> generation_eos_token_ids;  // from generation_config.json (may be empty)

  // Reads <dir>/tokenizer_config.json (required) and <dir>/generation_config.json (optional).
  // `template_name` picks one of several named templates ("" = "default").
  static Result<TokenizerConfig> Load(const std::string& dir, const std::string& template_name = "");
};

}  // namespace tokenfab
