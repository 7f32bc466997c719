// The tokenfab subcommands. Each declares its flags and runs against parsed Flags; errors come
// back as a Status that main prints as one line on stderr (exit code 1; usage errors 2).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "engine/engine.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tokenfab {

struct Command {
  std::string name;
  std::string summary;
  std::vector<FlagSpec> flags;
  std::function<Status(const Flags&)> run;
};

Command ScoreCommand();
Command GenerateCommand();
Command BenchEngineCommand();
Command TokenizeCommand();
Command DetokenizeCommand();
Command ChatCommand();
Command ServeCommand();
Command BenchCommand();

// The text side of a model directory (tokenize_command.cc): tokenizer.json,
// tokenizer_config.json (chat template, special tokens), generation_config.json (eos ids).
struct TextModel {
  std::unique_ptr<Tokenizer> tokenizer;
  TokenizerConfig config;
  // Ids that end generation: generation_config.json's eos_token_id and the config's eos_token.
  std::vector<int32_t> StopTokenIds() const;
};
Result<TextModel> LoadTextModel(const std::string& dir);
// A chat file: an OpenAI-style messages array, or {"messages": [...], "tools": [...]}.
Status ReadChatFile(const std::string& path, OrderedJson* messages, OrderedJson* tools);
// --chat-template-kwargs: a JSON object of extra template variables (e.g. enable_thinking).
Result<OrderedJson> ChatTemplateKwargs(const Flags& flags);
// Renders `messages` with the model's chat template.
Result<std::string> RenderChat(const TextModel& model, const OrderedJson& messages,
                               const OrderedJson& tools, bool add_generation_prompt,
                               const OrderedJson& kwargs);
// One JSON line on stdout (non-UTF-8 bytes replaced, never throws).
void PrintJson(const Json& json);

// Flags shared by every command that loads a model, and their translation.
std::vector<FlagSpec> EngineFlagSpecs();
Result<EngineConfig> EngineConfigFromFlags(const Flags& flags);

// --tokens as int32 ids (range against the vocabulary is the engine's check).
Result<std::vector<int32_t>> TokensFromFlags(const Flags& flags);

}  // namespace tokenfab
