// `tokenfab chat`: an interactive terminal chat. Each user line is appended to the
// conversation, rendered with the model's chat template, and the reply is printed as it is
// generated, through the streaming detokenizer (never half a UTF-8 character).
//
// The engine's offline interface runs a request to completion, so the reply is generated in
// chunks of --stream-tokens tokens (each chunk continues the previous one) and printed chunk by
// chunk; with a per-token callback in the engine this becomes per token.
#include <iostream>
#include <limits>

#include "cli/command.h"
#include "tokenizer/detokenizer.h"

namespace tokenfab {

Command ChatCommand() {
  Command c;
  c.name = "chat";
  c.summary = "interactive chat in the terminal, streaming the reply (/reset, /exit)";
  c.flags = EngineFlagSpecs();
  const std::vector<FlagSpec> own = {
      {"system", true, "system prompt"},
      {"max-tokens", true, "reply length limit in tokens (default 512)"},
      {"temperature", true, "0 = greedy (default 0.7)"},
      {"top-p", true, "nucleus sampling mass (default 0.95)"},
      {"seed", true, "seed for reproducible sampling"},
      {"stream-tokens", true, "tokens generated per streamed chunk (default 4)"},
      {"chat-template-kwargs", true, "extra template variables as a JSON object"},
  };
  c.flags.insert(c.flags.end(), own.begin(), own.end());
  c.run = [](const Flags& flags) -> Status {
    TF_ASSIGN_OR_RETURN(EngineConfig config, EngineConfigFromFlags(flags));
    TF_ASSIGN_OR_RETURN(const TextModel text, LoadTextModel(config.model_dir));
    if (!text.config.chat_template) return NotFoundError(config.model_dir + ": the model has no chat template");
    TF_ASSIGN_OR_RETURN(const OrderedJson kwargs, ChatTemplateKwargs(flags));
    TF_ASSIGN_OR_RETURN(const int64_t max_tokens, flags.GetInt("max-tokens", 512));
    TF_ASSIGN_OR_RETURN(const int64_t chunk, flags.GetInt("stream-tokens", 4));
    if (max_tokens < 1 || chunk < 1 || chunk > max_tokens) {
      return InvalidArgumentError("--max-tokens and --stream-tokens must be >= 1, chunk <= max");
    }
    SamplingParams sampling;
    TF_ASSIGN_OR_RETURN(sampling.temperature, flags.GetDouble("temperature", 0.7));
    TF_ASSIGN_OR_RETURN(sampling.top_p, flags.GetDouble("top-p", 0.95));
    if (flags.Has("seed")) {
      TF_ASSIGN_OR_RETURN(const int64_t seed, flags.GetInt("seed", 0));
      sampling.seed = static_cast<uint64_t>(seed);
    }
    TF_RETURN_IF_ERROR(sampling.Validate());
    TF_ASSIGN_OR_RETURN(auto engine, Engine::Create(config));
    const std::vector<int32_t> stop_ids = text.StopTokenIds();

    OrderedJson messages = OrderedJson::array();
    auto reset = [&] {
      messages = OrderedJson::array();
      if (flags.Has("system")) messages.push_back({{"role", "system"}, {"content", flags.GetString("system")}});
    };
    reset();
    std::cerr << "tokenfab chat: type a message; /reset starts over, /exit or Ctrl-D quits\n";
    std::string line;
    while (true) {
      std::cout << "> " << std::flush;
      if (!std::getline(std::cin, line)) break;
      if (line == "/exit" || line == "/quit") break;
      if (line == "/reset") {
        reset();
        continue;
      }
      if (line.empty()) continue;
      messages.push_back({{"role", "user"}, {"content", line}});
      TF_ASSIGN_OR_RETURN(const std::string prompt, RenderChat(text, messages, OrderedJson(), true, kwargs));
      TF_ASSIGN_OR_RETURN(std::vector<int32_t> context, text.tokenizer->Encode(prompt));
      StreamingDetokenizer stream(*text.tokenizer, /*skip_special_tokens=*/true);
      std::vector<int32_t> reply;
      std::string reply_text;
      bool done = false;
      while (!done && static_cast<int64_t>(reply.size()) < max_tokens) {
        GenerationRequest request;
        request.prompt = context;
        request.sampling = sampling;
        if (sampling.seed) request.sampling.seed = *sampling.seed + reply.size();
        request.stop.max_tokens = static_cast<int32_t>(std::min<int64_t>(chunk, max_tokens - reply.size()));
        request.stop.stop_token_ids = stop_ids;
        TF_ASSIGN_OR_RETURN(const auto results, engine->Generate({request}));
        const GenerationResult& result = results.front();
        for (const SampledToken& t : result.tokens) {
          const bool is_stop = std::find(stop_ids.begin(), stop_ids.end(), t.token) != stop_ids.end();
          context.push_back(t.token);
          if (is_stop) break;
          reply.push_back(t.token);
          TF_ASSIGN_OR_RETURN(const auto piece, stream.Step(t.token));
          if (piece) {
            std::cout << *piece << std::flush;
            reply_text += *piece;
          }
        }
        done = result.finish_reason == FinishReason::kStop;
      }
      TF_ASSIGN_OR_RETURN(const std::string rest, stream.Finish());
      reply_text += rest;
      std::cout << rest << std::endl;
      messages.push_back({{"role", "assistant"}, {"content", reply_text}});
    }
    return Status::Ok();
  };
  return c;
}

}  // namespace tokenfab
