#include "tokenizer/chat_template.h"

#include "base/mapped_file.h"
#include "tokenizer/jinja_interpreter.h"
#include "tokenizer/jinja_parser.h"

namespace tokenfab {

Result<OrderedJson> ParseOrderedJson(std::string_view text, const std::string& source) {
  OrderedJson j = OrderedJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError(source + ": invalid JSON");
  return j;
}

Result<std::shared_ptr<const ChatTemplate>> ChatTemplate::Create(const std::string& template_text,
                                                                 const std::string& source) {
  auto t = std::make_shared<ChatTemplate>();
  t->text_ = template_text;
  t->source_ = source;
  auto parsed = jinja::Parse(template_text);
  if (!parsed.ok()) return parsed.status().WithContext(source);
  t->parsed_ = std::move(parsed).value();
  return std::shared_ptr<const ChatTemplate>(std::move(t));
}

Result<std::string> ChatTemplate::Render(const OrderedJson& messages, const ChatRenderOptions& options,
                                         const std::map<std::string, std::string>& special_tokens) const {
  if (!messages.is_array()) return InvalidArgumentError("messages must be a JSON array");
  jinja::Variables vars;
  for (const auto& [k, v] : special_tokens) vars[k] = jinja::Value(v);
  if (options.extra.is_object()) {
    for (auto it = options.extra.begin(); it != options.extra.end(); ++it) {
      vars[it.key()] = jinja::Value::FromJson(it.value());
    }
  }
  vars["messages"] = jinja::Value::FromJson(messages);
  vars["tools"] = options.tools.is_null() ? jinja::Value::None() : jinja::Value::FromJson(options.tools);
  vars["documents"] =
      options.documents.is_null() ? jinja::Value::None() : jinja::Value::FromJson(options.documents);
  vars["add_generation_prompt"] = jinja::Value(options.add_generation_prompt);
  auto out = jinja::Render(*parsed_, vars);
  if (!out.ok()) return out.status().WithContext(source_);
  return out;
}

Result<TokenizerConfig> TokenizerConfig::Load(const std::string& dir, const std::string& template_name) {
  TokenizerConfig config;
  const std::string path = dir + "/tokenizer_config.json";
  TF_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  TF_ASSIGN_OR_RETURN(const OrderedJson json, ParseOrderedJson(text, path));
  if (!json.is_object()) return InvalidArgumentError(path + ": expected a JSON object");
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string& key = it.key();
    if (key.size() < 6 || key.compare(key.size() - 6, 6, "_token") != 0) continue;
    const OrderedJson& v = it.value();
    if (v.is_string()) {
      config.special_tokens[key] = v.get<std::string>();
    } else if (v.is_object() && v.contains("content") && v["content"].is_string()) {
      config.special_tokens[key] = v["content"].get<std::string>();  // AddedToken form
    }
  }
  std::string chat_template_text;
  std::string source = path + ": chat_template";
  if (json.contains("chat_template") && !json["chat_template"].is_null()) {
    const OrderedJson& ct = json["chat_template"];
    if (ct.is_string()) {
      if (!template_name.empty() && template_name != "default") {
        return NotFoundError(path + ": has one chat template, not one named '" + template_name + "'");
      }
      chat_template_text = ct.get<std::string>();
    } else if (ct.is_array()) {
      const std::string want = template_name.empty() ? "default" : template_name;
      for (const OrderedJson& entry : ct) {
        if (entry.is_object() && entry.value("name", "") == want && entry.contains("template") &&
            entry["template"].is_string()) {
          chat_template_text = entry["template"].get<std::string>();
          source = path + ": chat_template '" + want + "'";
        }
      }
      if (chat_template_text.empty()) {
        return NotFoundError(path + ": no chat template named '" + want + "'");
      }
    } else {
      return InvalidArgumentError(path + ": field 'chat_template' must be a string or a list");
    }
  }
  // Newer checkpoints keep the template in chat_template.jinja beside the config.
  if (chat_template_text.empty() && PathExists(dir + "/chat_template.jinja")) {
    TF_ASSIGN_OR_RETURN(chat_template_text, ReadFileToString(dir + "/chat_template.jinja"));
    source = dir + "/chat_template.jinja";
  }
  if (!chat_template_text.empty()) {
    TF_ASSIGN_OR_RETURN(config.chat_template, ChatTemplate::Create(chat_template_text, source));
  }
  const std::string gen_path = dir + "/generation_config.json";
  if (PathExists(gen_path)) {
    TF_ASSIGN_OR_RETURN(const std::string gen_text, ReadFileToString(gen_path));
    TF_ASSIGN_OR_RETURN(const OrderedJson gen, ParseOrderedJson(gen_text, gen_path));
    if (gen.is_object() && gen.contains("eos_token_id")) {
      const OrderedJson& eos = gen["eos_token_id"];
      if (eos.is_number_integer()) {
        config.generation_eos_token_ids.push_back(eos.get<int64_t>());
      } else if (eos.is_array()) {
        for (const OrderedJson& id : eos) {
          if (!id.is_number_integer()) return InvalidArgumentError(gen_path + ": eos_token_id must hold integers");
          config.generation_eos_token_ids.push_back(id.get<int64_t>());
        }
      } else if (!eos.is_null()) {
        return InvalidArgumentError(gen_path + ": eos_token_id must be an integer or a list");
      }
    }
  }
  return config;
}

}  // namespace tokenfab
