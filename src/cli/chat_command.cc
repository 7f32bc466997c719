// `tokenfab chat`: an interactive terminal chat. Each user line is appended to the
// conversation, rendered with the model's chat template, and the reply is printed token by
// token as the engine produces it, through the streaming detokenizer (never half a UTF-8
// character). The engine runs on its own thread (AsyncEngine); earlier turns' KV is reused
// through the prefix cache.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <limits>
#include <mutex>
#include <optional>

#include "cli/command.h"
#include "engine/async_engine.h"
#include "tokenizer/detokenizer.h"

namespace tokenfab {
namespace {

// Outputs handed over from the engine's thread to the terminal loop.
class OutputQueue {
 public:
  void Push(RequestOutput&& output) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      outputs_.push_back(std::move(output));
    }
    cv_.notify_one();
  }
  // The next output, or nothing if none arrives within `timeout`.
  std::optional<RequestOutput> Pop(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !outputs_.empty(); })) return std::nullopt;
    RequestOutput output = std::move(outputs_.front());
    outputs_.pop_front();
    return output;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RequestOutput> outputs_;  // guarded by mu_
};

}  // namespace

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
      {"chat-template-kwargs", true, "extra template variables as a JSON object"},
  };
  c.flags.insert(c.flags.end(), own.begin(), own.end());
  c.run = [](const Flags& flags) -> Status {
    TF_ASSIGN_OR_RETURN(EngineConfig config, EngineConfigFromFlags(flags));
    TF_ASSIGN_OR_RETURN(const TextModel text, LoadTextModel(config.model_dir));
    if (!text.config.chat_template) return NotFoundError(config.model_dir + ": the model has no chat template");
    TF_ASSIGN_OR_RETURN(const OrderedJson kwargs, ChatTemplateKwargs(flags));
    TF_ASSIGN_OR_RETURN(const int64_t max_tokens, flags.GetInt("max-tokens", 512));
    if (max_tokens < 1 || max_tokens > (1 << 24)) {
      return InvalidArgumentError("--max-tokens must be in [1, 16777216]");
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
    AsyncEngine async(std::move(engine), AdmissionConfig{});
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
      std::string reply_text;
      EngineRequest request;
      request.prompt = std::move(context);
      request.sampling = sampling;
      request.stop.max_tokens = static_cast<int32_t>(max_tokens);
      request.stop.stop_token_ids = stop_ids;
      OutputQueue queue;
      TF_RETURN_IF_ERROR(async.Submit(std::move(request), [&queue](RequestOutput&& o) {
                                queue.Push(std::move(o));
                              }).status());
      for (bool finished = false; !finished;) {
        std::optional<RequestOutput> output = queue.Pop(std::chrono::milliseconds(200));
        if (!output) continue;  // still generating
        TF_RETURN_IF_ERROR(output->status);
        for (const SampledToken& t : output->tokens) {
          if (std::find(stop_ids.begin(), stop_ids.end(), t.token) != stop_ids.end()) continue;
          TF_ASSIGN_OR_RETURN(const auto piece, stream.Step(t.token));
          if (piece) {
            std::cout << *piece << std::flush;
            reply_text += *piece;
          }
        }
        finished = output->finished;
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
