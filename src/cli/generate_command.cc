#include <iostream>
#include <limits>

#include "base/json.h"
#include "cli/command.h"

namespace tokenfab {
namespace {

// The prompt: --tokens as given, or --prompt / --chat tokenized with the model's tokenizer
// (vLLM's conventions: a plain prompt gets the tokenizer's special tokens such as BOS, a
// rendered chat already has them). Text modes also stop at the model's EOS ids.
Status PromptFromFlags(const Flags& flags, const TextModel* text, GenerationRequest* r) {
  const int sources = flags.Has("tokens") + flags.Has("prompt") + flags.Has("chat");
  if (sources != 1) return InvalidArgumentError("give exactly one of --tokens, --prompt, --chat");
  if (flags.Has("tokens")) {
    TF_ASSIGN_OR_RETURN(r->prompt, TokensFromFlags(flags));
    return Status::Ok();
  }
  std::string prompt;
  EncodeOptions options;
  if (flags.Has("chat")) {
    OrderedJson messages, tools;
    TF_RETURN_IF_ERROR(ReadChatFile(flags.GetString("chat"), &messages, &tools));
    TF_ASSIGN_OR_RETURN(const OrderedJson kwargs, ChatTemplateKwargs(flags));
    TF_ASSIGN_OR_RETURN(prompt, RenderChat(*text, messages, tools, true, kwargs));
  } else {
    prompt = flags.GetString("prompt");
    options.add_special_tokens = true;
  }
  TF_ASSIGN_OR_RETURN(r->prompt, text->tokenizer->Encode(prompt, options));
  if (r->prompt.empty()) return InvalidArgumentError("the prompt tokenizes to no tokens");
  for (int32_t id : text->StopTokenIds()) r->stop.stop_token_ids.push_back(id);
  return Status::Ok();
}

Result<GenerationRequest> RequestFromFlags(const Flags& flags, const TextModel* text) {
  GenerationRequest r;
  SamplingParams& s = r.sampling;
  TF_ASSIGN_OR_RETURN(s.temperature, flags.GetDouble("temperature", 1.0));
  TF_ASSIGN_OR_RETURN(const int64_t top_k, flags.GetInt("top-k", 0));
  if (top_k < 0 || top_k > std::numeric_limits<int32_t>::max()) {
    return InvalidArgumentError("--top-k must be >= 0");
  }
  s.top_k = static_cast<int32_t>(top_k);
  TF_ASSIGN_OR_RETURN(s.top_p, flags.GetDouble("top-p", 1.0));
  TF_ASSIGN_OR_RETURN(s.min_p, flags.GetDouble("min-p", 0.0));
  TF_ASSIGN_OR_RETURN(s.repetition_penalty, flags.GetDouble("repetition-penalty", 1.0));
  TF_ASSIGN_OR_RETURN(s.presence_penalty, flags.GetDouble("presence-penalty", 0.0));
  TF_ASSIGN_OR_RETURN(s.frequency_penalty, flags.GetDouble("frequency-penalty", 0.0));
  if (flags.Has("seed")) {
    TF_ASSIGN_OR_RETURN(const int64_t seed, flags.GetInt("seed", 0));
    s.seed = static_cast<uint64_t>(seed);
  }
  TF_ASSIGN_OR_RETURN(const int64_t logprobs, flags.GetInt("logprobs", 0));
  if (logprobs < 0 || logprobs > 20) return InvalidArgumentError("--logprobs must be in [0, 20]");
  s.num_logprobs = static_cast<int32_t>(logprobs);
  TF_RETURN_IF_ERROR(s.Validate());

  TF_ASSIGN_OR_RETURN(const int64_t max_tokens, flags.GetInt("max-tokens", 16));
  if (max_tokens < 1 || max_tokens > (1 << 24)) {
    return InvalidArgumentError("--max-tokens must be in [1, 16777216]");
  }
  r.stop.max_tokens = static_cast<int32_t>(max_tokens);
  TF_ASSIGN_OR_RETURN(const std::vector<int64_t> stops, flags.GetIntList("stop-token-ids"));
  for (int64_t id : stops) {
    if (id < 0 || id > std::numeric_limits<int32_t>::max()) {
      return InvalidArgumentError("--stop-token-ids: " + std::to_string(id) + " is not a token id");
    }
    r.stop.stop_token_ids.push_back(static_cast<int32_t>(id));
  }
  r.stop.ignore_eos = flags.Has("ignore-eos");
  TF_RETURN_IF_ERROR(PromptFromFlags(flags, text, &r));
  // --ignore-eos: only the explicit --stop-token-ids end generation.
  if (r.stop.ignore_eos) r.stop.stop_token_ids.resize(stops.size());
  return r;
}

}  // namespace

Command GenerateCommand() {
  Command c;
  c.name = "generate";
  c.summary = "continue --tokens, a --prompt or a --chat; --json prints {\"tokens\": [...], ...}";
  c.flags = EngineFlagSpecs();
  const std::vector<FlagSpec> own = {
      {"tokens", true, "comma-separated prompt token ids"},
      {"prompt", true, "prompt text (tokenized with the model's tokenizer, BOS added)"},
      {"chat", true, "JSON messages file rendered with the model's chat template"},
      {"chat-template-kwargs", true, "with --chat: extra template variables as a JSON object"},
      {"skip-special-tokens", true, "text output: leave special tokens out (default true)"},
      {"max-tokens", true, "tokens to generate at most (default 16)"},
      {"temperature", true, "0 = greedy (default 1)"},
      {"top-p", true, "nucleus sampling mass (default 1 = off)"},
      {"top-k", true, "sample among the k most likely (default 0 = off)"},
      {"min-p", true, "drop tokens below min-p times the best (default 0 = off)"},
      {"seed", true, "seed for reproducible sampling"},
      {"repetition-penalty", true, "HF repetition penalty (default 1)"},
      {"presence-penalty", true, "OpenAI presence penalty (default 0)"},
      {"frequency-penalty", true, "OpenAI frequency penalty (default 0)"},
      {"stop-token-ids", true, "extra token ids that end generation"},
      {"ignore-eos", false, "do not stop at the model's EOS tokens"},
      {"logprobs", true, "with --json: also the top N alternatives per token (0-20)"},
      {"json", false, "print {\"tokens\": [...], \"logprobs\": [...], ...} instead of ids"},
  };
  c.flags.insert(c.flags.end(), own.begin(), own.end());
  c.run = [](const Flags& flags) -> Status {
    const bool text_mode = flags.Has("prompt") || flags.Has("chat");
    TextModel text;
    if (text_mode) {
      TF_ASSIGN_OR_RETURN(const std::string dir, flags.Required("model"));
      TF_ASSIGN_OR_RETURN(text, LoadTextModel(dir));
    }
    TF_ASSIGN_OR_RETURN(GenerationRequest request, RequestFromFlags(flags, &text));
    TF_ASSIGN_OR_RETURN(EngineConfig config, EngineConfigFromFlags(flags));
    TF_ASSIGN_OR_RETURN(auto engine, Engine::Create(config));
    TF_ASSIGN_OR_RETURN(const auto results, engine->Generate({request}));
    const GenerationResult& result = results.front();
    std::vector<int32_t> tokens;
    std::vector<float> logprobs;
    Json top = Json::array();
    for (const SampledToken& t : result.tokens) {
      tokens.push_back(t.token);
      logprobs.push_back(t.logprob);
      Json alternatives = Json::array();
      for (const TokenLogprob& alt : t.top_logprobs) {
        alternatives.push_back({{"token", alt.token}, {"logprob", alt.logprob}});
      }
      top.push_back(std::move(alternatives));
    }
    const char* finish = result.finish_reason == FinishReason::kStop ? "stop" : "length";
    std::string generated_text;
    if (text_mode) {
      const std::string skip = flags.GetString("skip-special-tokens", "true");
      if (skip != "true" && skip != "false") return InvalidArgumentError("--skip-special-tokens must be true or false");
      TF_ASSIGN_OR_RETURN(generated_text, text.tokenizer->Decode(tokens, skip == "true"));
    }
    if (flags.Has("json")) {
      Json out;
      if (text_mode) out["text"] = generated_text;
      out["tokens"] = tokens;
      out["logprobs"] = logprobs;
      if (request.sampling.num_logprobs > 0) out["top_logprobs"] = std::move(top);
      out["finish_reason"] = finish;
      std::cout << out.dump(-1, ' ', false, Json::error_handler_t::replace) << std::endl;
    } else if (text_mode) {
      std::cout << generated_text << std::endl;
    } else {
      std::string line;
      for (int32_t t : tokens) line += (line.empty() ? "" : ",") + std::to_string(t);
      std::cout << line << std::endl;
    }
    return Status::Ok();
  };
  return c;
}

}  // namespace tokenfab
