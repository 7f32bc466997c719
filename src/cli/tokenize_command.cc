// `tokenfab tokenize`: text or a chat to token ids, exactly as Hugging Face tokenizers /
// transformers' apply_chat_template give them. Also the shared loading of a model's text side.
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "base/json.h"
#include "cli/command.h"
#include "tokenizer/unicode.h"

namespace tokenfab {
namespace {

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFoundError("cannot open " + path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

std::vector<int32_t> TextModel::StopTokenIds() const {
  std::vector<int32_t> ids;
  for (int64_t id : config.generation_eos_token_ids) {
    if (id >= 0 && id <= INT32_MAX) ids.push_back(static_cast<int32_t>(id));
  }
  auto eos = config.special_tokens.find("eos_token");
  if (eos != config.special_tokens.end()) {
    const int32_t id = tokenizer->TokenToId(eos->second);
    if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

Result<TextModel> LoadTextModel(const std::string& dir) {
  TextModel m;
  TF_ASSIGN_OR_RETURN(m.tokenizer, Tokenizer::FromFile(dir + "/tokenizer.json"));
  std::ifstream probe(dir + "/tokenizer_config.json");
  if (probe) {
    TF_ASSIGN_OR_RETURN(m.config, TokenizerConfig::Load(dir));
  }
  return m;
}

Status ReadChatFile(const std::string& path, OrderedJson* messages, OrderedJson* tools) {
  TF_ASSIGN_OR_RETURN(const std::string text, ReadWholeFile(path));
  TF_ASSIGN_OR_RETURN(const OrderedJson json, ParseOrderedJson(text, path));
  if (json.is_array()) {
    *messages = json;
  } else if (json.is_object() && json.contains("messages") && json["messages"].is_array()) {
    *messages = json["messages"];
    if (json.contains("tools")) *tools = json["tools"];
  } else {
    return InvalidArgumentError(path + ": expected a messages array or {\"messages\": [...]}");
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    const OrderedJson& m = (*messages)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return InvalidArgumentError(path + ": messages[" + std::to_string(i) + "] needs a string 'role'");
    }
  }
  if (!tools->is_null() && !tools->is_array()) return InvalidArgumentError(path + ": 'tools' must be a list");
  return Status::Ok();
}

Result<OrderedJson> ChatTemplateKwargs(const Flags& flags) {
  if (!flags.Has("chat-template-kwargs")) return OrderedJson::object();
  TF_ASSIGN_OR_RETURN(OrderedJson kwargs,
                      ParseOrderedJson(flags.GetString("chat-template-kwargs"), "--chat-template-kwargs"));
  if (!kwargs.is_object()) return InvalidArgumentError("--chat-template-kwargs must be a JSON object");
  return kwargs;
}

Result<std::string> RenderChat(const TextModel& model, const OrderedJson& messages,
                               const OrderedJson& tools, bool add_generation_prompt,
                               const OrderedJson& kwargs) {
  if (!model.config.chat_template) {
    return NotFoundError("the model has no chat template (tokenizer_config.json: chat_template)");
  }
  ChatRenderOptions options;
  options.add_generation_prompt = add_generation_prompt;
  options.tools = tools;
  options.extra = kwargs;
  return model.config.chat_template->Render(messages, options, model.config.special_tokens);
}

void PrintJson(const Json& json) {
  std::cout << json.dump(-1, ' ', false, Json::error_handler_t::replace) << std::endl;
}

Command TokenizeCommand() {
  Command c;
  c.name = "tokenize";
  c.summary = "text or a chat to token ids as JSON: {\"ids\": [...]} (chat: also \"prompt\")";
  c.flags = {
      {"model", true, "model directory (tokenizer.json, tokenizer_config.json)"},
      {"text", true, "the text to tokenize"},
      {"text-file", true, "read the text from a file (any bytes; invalid UTF-8 becomes U+FFFD)"},
      {"chat", true, "a JSON file: messages array or {\"messages\": [...], \"tools\": [...]}"},
      {"add-generation-prompt", false, "with --chat: end with the assistant turn header"},
      {"chat-template-kwargs", true, "with --chat: extra template variables as a JSON object"},
      {"add-special-tokens", false, "apply the tokenizer's post-processor (e.g. add BOS)"},
      {"split-special-tokens", false, "treat special-token text in the input as plain text"},
      {"benchmark", true, "encode the text N times on one thread and print the speed as JSON"},
      {"log-level", true, "debug, info (default), warning, error"},
  };
  c.run = [](const Flags& flags) -> Status {
    TF_ASSIGN_OR_RETURN(const std::string dir, flags.Required("model"));
    const int sources = flags.Has("text") + flags.Has("text-file") + flags.Has("chat");
    if (sources != 1) return InvalidArgumentError("give exactly one of --text, --text-file, --chat");
    TF_ASSIGN_OR_RETURN(const TextModel model, LoadTextModel(dir));
    EncodeOptions options;
    options.add_special_tokens = flags.Has("add-special-tokens");
    options.split_special_tokens = flags.Has("split-special-tokens");
    Json out;
    std::string text;
    if (flags.Has("chat")) {
      OrderedJson messages, tools;
      TF_RETURN_IF_ERROR(ReadChatFile(flags.GetString("chat"), &messages, &tools));
      TF_ASSIGN_OR_RETURN(const OrderedJson kwargs, ChatTemplateKwargs(flags));
      TF_ASSIGN_OR_RETURN(text, RenderChat(model, messages, tools, flags.Has("add-generation-prompt"), kwargs));
      out["prompt"] = text;
    } else if (flags.Has("text-file")) {
      TF_ASSIGN_OR_RETURN(text, ReadWholeFile(flags.GetString("text-file")));
    } else {
      text = flags.GetString("text");
    }
    if (flags.Has("benchmark")) {
      TF_ASSIGN_OR_RETURN(const int64_t n, flags.GetInt("benchmark", 1));
      if (n < 1) return InvalidArgumentError("--benchmark needs a positive repeat count");
      size_t tokens = 0;
      const auto start = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < n; ++i) {
        TF_ASSIGN_OR_RETURN(const std::vector<int32_t> ids, model.tokenizer->Encode(text, options));
        tokens += ids.size();
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      Json bench;
      bench["bytes"] = text.size() * static_cast<size_t>(n);
      bench["tokens"] = tokens;
      bench["seconds"] = seconds;
      bench["mb_per_s"] = static_cast<double>(text.size()) * static_cast<double>(n) / 1e6 / seconds;
      bench["tokens_per_s"] = static_cast<double>(tokens) / seconds;
      PrintJson(bench);
      return Status::Ok();
    }
    TF_ASSIGN_OR_RETURN(const std::vector<int32_t> ids, model.tokenizer->Encode(text, options));
    out["ids"] = ids;
    PrintJson(out);
    return Status::Ok();
  };
  return c;
}

}  // namespace tokenfab
