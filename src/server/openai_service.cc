#include "server/openai_service.h"

#include <chrono>
#include <random>

#include "base/logging.h"
#include "base/strings.h"
#include "server/generation_call.h"
#include "server/openai_request.h"

namespace tokenfab {
namespace {

std::string RandomHex(int digits) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < digits; ++i) s.push_back(kDigits[rng() & 15]);
  return s;
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % (b.empty() ? 1 : b.size())];
  return diff == 0 && !b.empty();
}

ApiError ContextTooLong(int64_t max_len, int64_t prompt, int64_t completion, bool chat) {
  std::string message = "This model's maximum context length is " + std::to_string(max_len) +
                        " tokens. However, you requested " + std::to_string(prompt + completion) +
                        " tokens (" + std::to_string(prompt) + " in the " +
                        (chat ? "messages" : "prompt") + ", " + std::to_string(completion) +
                        " in the completion). Please reduce the length of the " +
                        (chat ? "messages" : "prompt") + " or completion.";
  return BadRequest(std::move(message), chat ? "messages" : "prompt", "context_length_exceeded");
}

}  // namespace

OpenAiService::OpenAiService(OpenAiServiceConfig config, AsyncEngine* engine, ServedText text,
                             ServerMetrics* metrics)
    : config_(std::move(config)),
      engine_(engine),
      text_(std::move(text)),
      metrics_(metrics),
      created_(std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count()) {}

void OpenAiService::Error(const std::shared_ptr<HttpExchange>& exchange,
                          const std::string& endpoint, const ApiError& error) {
  metrics_->CountRequest(endpoint, error.http_status);
  HttpHeaders headers;
  if (error.retry_after_s > 0) {
    headers.push_back({"Retry-After", std::to_string(static_cast<int>(error.retry_after_s))});
  }
  if (error.http_status == 401) headers.push_back({"WWW-Authenticate", "Bearer"});
  LOG(INFO) << "endpoint=" << endpoint << " status=" << error.http_status
            << " peer=" << exchange->peer() << " error=\"" << error.message << "\"";
  exchange->Respond(error.http_status, "application/json", error.Body(), std::move(headers));
}

bool OpenAiService::Authenticate(const HttpRequest& request, std::string* tenant) const {
  if (config_.api_keys.empty()) return true;
  const std::string auth = request.Header("authorization");
  const std::string prefix = "Bearer ";
  if (auth.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string key = auth.substr(prefix.size());
  for (size_t i = 0; i < config_.api_keys.size(); ++i) {
    if (ConstantTimeEquals(key, config_.api_keys[i])) {
      // Each key is a tenant: with several keys, prefix-cache salts never cross keys.
      if (config_.api_keys.size() > 1) *tenant = "key" + std::to_string(i) + "/";
      return true;
    }
  }
  return false;
}

void OpenAiService::Handle(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange) {
  const std::string& path = request.path;
  auto method_is = [&](const char* method) {
    if (request.method == method) return true;
    ApiError e = BadRequest("method " + request.method + " is not allowed on " + path);
    e.http_status = 405;
    Error(exchange, path, e);
    return false;
  };
  if (path == "/health") {
    if (!method_is("GET")) return;
    const bool ok = !engine_->draining();
    metrics_->CountRequest(path, ok ? 200 : 503);
    exchange->Respond(ok ? 200 : 503, "application/json",
                      ok ? R"({"status":"ok"})" : R"({"status":"draining"})");
    return;
  }
  if (path == "/metrics") {
    if (!method_is("GET")) return;
    metrics_->CountRequest(path, 200);
    exchange->Respond(200, "text/plain; version=0.0.4; charset=utf-8",
                      metrics_->Render(engine_->Snapshot()));
    return;
  }
  const bool tokenizer_path = path == "/tokenize" || path == "/detokenize";
  if (path.compare(0, 4, "/v1/") != 0 && !tokenizer_path) {
    ApiError e = BadRequest("no such endpoint: " + path);
    e.http_status = 404;
    Error(exchange, "other", e);
    return;
  }
  std::string tenant;
  if (!Authenticate(request, &tenant)) {
    ApiError e = BadRequest("Incorrect or missing API key: send 'Authorization: Bearer <key>'.",
                            "", "invalid_api_key");
    e.http_status = 401;
    Error(exchange, path, e);
    return;
  }
  if (path == "/v1/models") {
    if (method_is("GET")) Models(exchange);
  } else if (path == "/v1/completions") {
    if (method_is("POST")) Generate(request, exchange, /*chat=*/false, tenant);
  } else if (path == "/v1/chat/completions") {
    if (method_is("POST")) Generate(request, exchange, /*chat=*/true, tenant);
  } else if (path == "/v1/kv_events") {
    if (method_is("GET")) KvEvents(request, exchange);
  } else if (path == "/v1/cache/pin") {
    if (method_is("POST")) Pin(request, exchange, tenant);
  } else if (path == "/tokenize") {
    if (method_is("POST")) Tokenize(request, exchange);
  } else if (path == "/detokenize") {
    if (method_is("POST")) Detokenize(request, exchange);
  } else {
    ApiError e = BadRequest("no such endpoint: " + path);
    e.http_status = 404;
    Error(exchange, "other", e);
  }
}

void OpenAiService::Models(std::shared_ptr<HttpExchange> exchange) {
  Json model = {{"id", config_.model_name},
                {"object", "model"},
                {"created", created_},
                {"owned_by", "tokenfab"},
                {"max_model_len", engine_->max_sequence_tokens()}};
  metrics_->CountRequest("/v1/models", 200);
  exchange->Respond(200, "application/json",
                    DumpJson(Json{{"object", "list"}, {"data", Json::array({model})}}));
}

std::optional<ApiError> OpenAiService::UnknownModel(const std::string& model) const {
  if (model.empty() || model == config_.model_name) return std::nullopt;
  ApiError e = BadRequest("The model `" + model + "` does not exist.", "model", "model_not_found");
  e.http_status = 404;
  return e;
}

std::optional<ApiError> OpenAiService::OutsideVocabulary(int32_t token,
                                                         const std::string& param) const {
  const int64_t vocab = engine_->model_config().vocab_size;
  if (token < vocab) return std::nullopt;
  return BadRequest("token id " + std::to_string(token) + " is outside the vocabulary (" +
                        std::to_string(vocab) + ")",
                    param);
}

std::optional<ApiError> OpenAiService::RenderChat(const OrderedJson& messages,
                                                  const OrderedJson& tools,
                                                  const OrderedJson& template_kwargs,
                                                  bool add_generation_prompt,
                                                  std::string* out) const {
  if (!text_.config.chat_template) {
    return BadRequest("the model has no chat template: use /v1/completions", "messages");
  }
  ChatRenderOptions options;
  options.add_generation_prompt = add_generation_prompt;
  options.tools = tools;
  options.extra = config_.default_chat_template_kwargs;
  for (const auto& [key, value] : template_kwargs.items()) options.extra[key] = value;
  auto rendered =
      text_.config.chat_template->Render(messages, options, text_.config.special_tokens);
  if (!rendered.ok()) {
    return BadRequest("the chat template rejected the messages: " + rendered.status().message(),
                      "messages");
  }
  *out = std::move(rendered).value();
  return std::nullopt;
}

void OpenAiService::Tokenize(const HttpRequest& http, std::shared_ptr<HttpExchange> exchange) {
  const std::string endpoint = "/tokenize";
  TokenizeRequest req;
  if (auto e = ParseTokenizeRequest(http.body, &req)) return Error(exchange, endpoint, *e);
  if (auto e = UnknownModel(req.model)) return Error(exchange, endpoint, *e);
  std::string text = req.prompt_text;
  if (req.chat) {
    if (auto e = RenderChat(req.messages, req.tools, req.chat_template_kwargs,
                            req.add_generation_prompt, &text)) {
      return Error(exchange, endpoint, *e);
    }
  }
  EncodeOptions options;
  options.add_special_tokens = req.add_special_tokens;
  auto ids = text_.tokenizer->Encode(text, options);
  if (!ids.ok()) {
    return Error(exchange, endpoint,
                 ErrorFromStatus(ids.status(), req.chat ? "messages" : "prompt"));
  }
  Json out = {{"count", ids->size()},
              {"max_model_len", engine_->max_sequence_tokens()},
              {"tokens", *ids},
              {"token_strs", nullptr}};
  if (req.return_token_strs) {
    Json strs = Json::array();
    for (int32_t id : *ids) strs.push_back(text_.tokenizer->IdToToken(id).value_or(""));
    out["token_strs"] = std::move(strs);
  }
  metrics_->CountRequest(endpoint, 200);
  exchange->Respond(200, "application/json", DumpJson(out));
}

void OpenAiService::Detokenize(const HttpRequest& http, std::shared_ptr<HttpExchange> exchange) {
  const std::string endpoint = "/detokenize";
  DetokenizeRequest req;
  if (auto e = ParseDetokenizeRequest(http.body, &req)) return Error(exchange, endpoint, *e);
  if (auto e = UnknownModel(req.model)) return Error(exchange, endpoint, *e);
  for (int32_t t : req.tokens) {
    if (auto e = OutsideVocabulary(t, "tokens")) return Error(exchange, endpoint, *e);
  }
  // As transformers' tokenizer.decode(ids): special tokens kept.
  auto text = text_.tokenizer->Decode(req.tokens, /*skip_special_tokens=*/false);
  if (!text.ok()) return Error(exchange, endpoint, ErrorFromStatus(text.status(), "tokens"));
  metrics_->CountRequest(endpoint, 200);
  exchange->Respond(200, "application/json", DumpJson(Json{{"prompt", *text}}));
}

Result<std::vector<int32_t>> OpenAiService::SystemPromptTokens(const std::string& text) const {
  if (!text_.config.chat_template) return NotFoundError("the model has no chat template");
  OrderedJson messages = OrderedJson::array({{{"role", "system"}, {"content", text}}});
  ChatRenderOptions options;
  options.extra = config_.default_chat_template_kwargs;
  TF_ASSIGN_OR_RETURN(const std::string prompt,
                      text_.config.chat_template->Render(messages, options, text_.config.special_tokens));
  return text_.tokenizer->Encode(prompt);
}

void OpenAiService::Generate(const HttpRequest& http, std::shared_ptr<HttpExchange> exchange,
                             bool chat, const std::string& tenant) {
  const auto arrival = std::chrono::steady_clock::now();
  const std::string endpoint = chat ? "/v1/chat/completions" : "/v1/completions";
  ApiRequest req;
  if (auto e = ParseApiRequest(http.body, chat, &req)) return Error(exchange, endpoint, *e);
  if (auto e = UnknownModel(req.model)) return Error(exchange, endpoint, *e);
  std::vector<int32_t> prompt;
  if (chat) {
    std::string rendered;
    if (auto e = RenderChat(req.messages, req.tools, req.chat_template_kwargs,
                            /*add_generation_prompt=*/true, &rendered)) {
      return Error(exchange, endpoint, *e);
    }
    auto encoded = text_.tokenizer->Encode(rendered);
    if (!encoded.ok()) return Error(exchange, endpoint, ErrorFromStatus(encoded.status(), "messages"));
    prompt = std::move(encoded).value();
  } else if (req.prompt_tokens) {
    prompt = *req.prompt_tokens;
    for (int32_t t : prompt) {
      if (auto e = OutsideVocabulary(t, "prompt")) return Error(exchange, endpoint, *e);
    }
  } else {
    EncodeOptions options;
    options.add_special_tokens = true;
    auto encoded = text_.tokenizer->Encode(req.prompt_text, options);
    if (!encoded.ok()) return Error(exchange, endpoint, ErrorFromStatus(encoded.status(), "prompt"));
    prompt = std::move(encoded).value();
  }
  if (prompt.empty()) {
    return Error(exchange, endpoint, BadRequest("the prompt is empty", chat ? "messages" : "prompt"));
  }
  for (const auto& [token, bias] : req.sampling.logit_bias) {
    if (auto e = OutsideVocabulary(token, "logit_bias")) return Error(exchange, endpoint, *e);
  }
  const int64_t max_len = engine_->max_sequence_tokens();
  const int64_t n = static_cast<int64_t>(prompt.size());
  if (n >= max_len) return Error(exchange, endpoint, ContextTooLong(max_len, n, 1, chat));
  const int64_t max_tokens = req.max_tokens.value_or(chat ? max_len - n : std::min<int64_t>(16, max_len - n));
  if (n + max_tokens > max_len) {
    return Error(exchange, endpoint, ContextTooLong(max_len, n, max_tokens, chat));
  }
  std::vector<EngineRequest> choices;
  for (int32_t i = 0; i < req.n; ++i) {
    EngineRequest r;
    r.prompt = prompt;
    r.sampling = req.sampling;
    if (r.sampling.seed) r.sampling.seed = *r.sampling.seed + static_cast<uint64_t>(i);
    r.stop.max_tokens = static_cast<int32_t>(max_tokens);
    r.stop.stop_token_ids = req.stop_token_ids;
    if (!req.ignore_eos) {
      r.stop.stop_token_ids.insert(r.stop.stop_token_ids.end(), text_.stop_token_ids.begin(),
                                   text_.stop_token_ids.end());
    }
    r.stop.ignore_eos = req.ignore_eos;
    r.priority = req.priority;
    r.cache_salt = tenant + req.cache_salt;
    choices.push_back(std::move(r));
  }
  CallContext context{engine_, metrics_, text_.tokenizer.get(), config_.model_name};
  const std::string id = (chat ? "chatcmpl-" : "cmpl-") + RandomHex(24);
  auto call = std::make_shared<GenerationCall>(context, std::move(exchange), std::move(req),
                                               std::move(choices), endpoint, arrival, id);
  call->Start();
}

void OpenAiService::Pin(const HttpRequest& http, std::shared_ptr<HttpExchange> exchange,
                        const std::string& tenant) {
  const std::string endpoint = "/v1/cache/pin";
  OrderedJson body = OrderedJson::parse(http.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return Error(exchange, endpoint, BadRequest("the body must be a JSON object"));
  }
  std::vector<int32_t> tokens;
  if (body.contains("system") && body["system"].is_string()) {
    auto t = SystemPromptTokens(body["system"].get<std::string>());
    if (!t.ok()) return Error(exchange, endpoint, ErrorFromStatus(t.status(), "system"));
    tokens = std::move(t).value();
  } else if (body.contains("prompt") && body["prompt"].is_string()) {
    EncodeOptions options;
    options.add_special_tokens = true;
    auto t = text_.tokenizer->Encode(body["prompt"].get<std::string>(), options);
    if (!t.ok()) return Error(exchange, endpoint, ErrorFromStatus(t.status(), "prompt"));
    tokens = std::move(t).value();
  } else {
    return Error(exchange, endpoint,
                 BadRequest("give 'system' (a system prompt) or 'prompt' (text) to pin", "system"));
  }
  if (tokens.empty()) return Error(exchange, endpoint, BadRequest("nothing to pin: empty prompt"));
  EngineRequest r;
  r.prompt = tokens;
  r.sampling.temperature = 0;
  r.stop.max_tokens = 1;
  r.stop.ignore_eos = true;
  r.pin_prefix = true;
  if (body.contains("cache_salt") && body["cache_salt"].is_string()) {
    r.cache_salt = tenant + body["cache_salt"].get<std::string>();
  } else {
    r.cache_salt = tenant;
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t block = engine_->block_size();
  auto on_output = [this, exchange, n, block](RequestOutput&& out) {
    if (!out.finished) return;
    exchange->Post([this, exchange, n, block, status = out.status] {
      if (!status.ok()) return Error(exchange, "/v1/cache/pin", ErrorFromStatus(status));
      metrics_->CountRequest("/v1/cache/pin", 200);
      exchange->Respond(200, "application/json",
                        DumpJson(Json{{"prompt_tokens", n}, {"pinned_tokens", n / block * block}}));
    });
  };
  double retry_after = 0;
  auto id = engine_->Submit(std::move(r), on_output, &retry_after);
  if (!id.ok()) {
    ApiError e = ErrorFromStatus(id.status());
    e.retry_after_s = retry_after;
    Error(exchange, endpoint, e);
  }
}

void OpenAiService::KvEvents(const HttpRequest& http, std::shared_ptr<HttpExchange> exchange) {
  const std::string after_text = http.QueryParam("after");
  const std::string limit_text = http.QueryParam("limit");
  auto after = after_text.empty() ? Result<int64_t>(0) : ParseInt64(after_text, "after");
  auto limit = limit_text.empty() ? Result<int64_t>(1000) : ParseInt64(limit_text, "limit");
  if (!after.ok() || !limit.ok() || *after < 0 || *limit < 1 || *limit > 100000) {
    return Error(exchange, "/v1/kv_events",
                 BadRequest("'after' must be an event id >= 0 and 'limit' in [1, 100000]"));
  }
  const KvEventLog::Page page =
      engine_->kv_events().Read(static_cast<uint64_t>(*after), static_cast<size_t>(*limit));
  Json events = Json::array();
  for (const KvEvent& e : page.events) events.push_back(e.ToJson());
  metrics_->CountRequest("/v1/kv_events", 200);
  exchange->Respond(200, "application/json",
                    DumpJson(Json{{"events", std::move(events)},
                                  {"first_retained_id", page.first_retained_id},
                                  {"last_id", page.last_id}}));
}

}  // namespace tokenfab
