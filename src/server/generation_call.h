// GenerationCall: one /v1/completions or /v1/chat/completions request from submission to the
// last byte. It submits one engine request per choice (n), turns their token outputs into text
// (ChoiceText: detokenizing, stop strings) and log-probs, and answers with one JSON body or a
// stream of server-sent events; it cancels its engine requests when the client goes away or a
// stop string ends a choice, and records the request's latency metrics and log line.
//
// Thread-safety: after Start, everything runs on the exchange's strand (engine outputs are
// posted there), so the state needs no lock.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/async_engine.h"
#include "server/api_error.h"
#include "server/choice_text.h"
#include "server/http_server.h"
#include "server/openai_request.h"
#include "server/server_metrics.h"
#include "tokenizer/tokenizer.h"

namespace tokenfab {

struct CallContext {
  AsyncEngine* engine = nullptr;
  ServerMetrics* metrics = nullptr;
  const Tokenizer* tokenizer = nullptr;
  std::string model_name;
};

class GenerationCall : public std::enable_shared_from_this<GenerationCall> {
 public:
  GenerationCall(CallContext context, std::shared_ptr<HttpExchange> exchange, ApiRequest request,
                 std::vector<EngineRequest> choices, std::string endpoint,
                 std::chrono::steady_clock::time_point arrival, std::string request_id);
  // Submits the choices; answers 429/503 itself when the engine turns them away.
  void Start();

 private:
  struct Choice {
    int64_t engine_id = -1;
    std::unique_ptr<ChoiceText> text;
    std::string content;           // the whole text (non-streaming)
    int32_t completion_tokens = 0;
    bool finished = false;
    std::string finish_reason;
    Json logprobs;                 // accumulated (non-streaming)
    std::chrono::steady_clock::time_point last_token;
  };

  void OnOutput(size_t index, RequestOutput out);
  void OnClientGone();
  void FinishChoice(size_t index, const std::string& reason);
  void Complete();
  void Fail(const ApiError& error);
  void CancelAll();
  // Log-probs of one token in the response's format (chat or completions).
  void AppendLogprob(const SampledToken& token, int32_t text_offset, Json* logprobs) const;
  std::string TokenText(int32_t id) const;
  Json ChunkBase() const;
  void SendEvent(const Json& json);
  Json Usage() const;
  void Record(int http_status, const std::string& note);

  CallContext ctx_;
  std::shared_ptr<HttpExchange> exchange_;
  ApiRequest request_;
  std::vector<EngineRequest> engine_requests_;
  std::string endpoint_;
  std::chrono::steady_clock::time_point arrival_;
  std::string id_;
  int64_t created_ = 0;
  std::vector<Choice> choices_;
  size_t remaining_ = 0;
  bool done_ = false;
  bool streaming_ = false;
  int32_t prompt_tokens_ = 0;
  int32_t cached_tokens_ = 0;
  std::optional<std::chrono::steady_clock::time_point> first_token_;
  std::chrono::steady_clock::time_point submitted_{};        // handed to the engine
  std::chrono::steady_clock::time_point first_scheduled_{};  // first engine step (engine's clock)
};

}  // namespace tokenfab
