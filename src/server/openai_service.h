// OpenAiService: the HTTP API of `tokenfab serve` over an AsyncEngine —
//   GET  /v1/models, POST /v1/completions, POST /v1/chat/completions (OpenAI-compatible),
//   GET  /health, GET /metrics (Prometheus),
//   GET  /v1/kv_events?after=N (KV cache events for routers), POST /v1/cache/pin (pin a prefix),
//   POST /tokenize and /detokenize (vLLM's tokenizer endpoints).
// It checks bearer API keys, parses and validates requests, renders chats with the model's
// template, tokenizes, and hands generation to GenerationCall. Errors are OpenAI error JSON.
// Thread-safety: Handle is called concurrently from the HTTP threads; the service's own state
// is immutable after construction (metrics and engine are thread-safe).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/async_engine.h"
#include "server/api_error.h"
#include "server/http_server.h"
#include "server/server_metrics.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tokenfab {

// The text side of the served model.
struct ServedText {
  std::unique_ptr<Tokenizer> tokenizer;
  TokenizerConfig config;              // chat template, special tokens
  std::vector<int32_t> stop_token_ids;  // generation ends at these (EOS) unless ignore_eos
};

struct OpenAiServiceConfig {
  std::string model_name;             // what /v1/models lists and requests must name
  std::vector<std::string> api_keys;  // empty: no authentication
  OrderedJson default_chat_template_kwargs = OrderedJson::object();
};

class OpenAiService {
 public:
  OpenAiService(OpenAiServiceConfig config, AsyncEngine* engine, ServedText text,
                ServerMetrics* metrics);

  void Handle(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange);

  // Renders [{"role": "system", "content": text}] with the chat template (no generation
  // prompt): the token prefix every conversation with that system prompt starts with.
  Result<std::vector<int32_t>> SystemPromptTokens(const std::string& text) const;
  const ServedText& text() const { return text_; }

 private:
  void Generate(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange, bool chat,
                const std::string& tenant);
  void Pin(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange,
           const std::string& tenant);
  void KvEvents(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange);
  void Models(std::shared_ptr<HttpExchange> exchange);
  // POST /tokenize and /detokenize, as vLLM serves them (token counts, prompt inspection).
  void Tokenize(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange);
  void Detokenize(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange);
  // A 404 when a request names a model other than the served one ("" names it).
  std::optional<ApiError> UnknownModel(const std::string& model) const;
  // A 400 naming `param` when `token` (>= 0, as parsed) is not in the model's vocabulary.
  std::optional<ApiError> OutsideVocabulary(int32_t token, const std::string& param) const;
  // The chat rendered with the model's template (the server's default template kwargs under
  // the request's), or a 400 naming messages.
  std::optional<ApiError> RenderChat(const OrderedJson& messages, const OrderedJson& tools,
                                     const OrderedJson& template_kwargs, bool add_generation_prompt,
                                     std::string* out) const;
  // The tenant prefix of cache salts for this request's API key, or an error.
  bool Authenticate(const HttpRequest& request, std::string* tenant) const;
  void Error(const std::shared_ptr<HttpExchange>& exchange, const std::string& endpoint,
             const ApiError& error);

  const OpenAiServiceConfig config_;
  AsyncEngine* engine_;
  const ServedText text_;
  ServerMetrics* metrics_;
  const int64_t created_;
};

}  // namespace tokenfab
