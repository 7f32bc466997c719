#include "server/generation_call.h"

#include <cstdio>

#include "base/logging.h"

namespace tokenfab {
namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "abort";
  }
  return "stop";
}

}  // namespace

GenerationCall::GenerationCall(CallContext context, std::shared_ptr<HttpExchange> exchange,
                               ApiRequest request, std::vector<EngineRequest> choices,
                               std::string endpoint, std::chrono::steady_clock::time_point arrival,
                               std::string request_id)
    : ctx_(std::move(context)),
      exchange_(std::move(exchange)),
      request_(std::move(request)),
      engine_requests_(std::move(choices)),
      endpoint_(std::move(endpoint)),
      arrival_(arrival),
      id_(std::move(request_id)) {
  created_ = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  choices_.resize(engine_requests_.size());
  remaining_ = choices_.size();
  prompt_tokens_ = engine_requests_.empty() ? 0 : static_cast<int32_t>(engine_requests_[0].prompt.size());
  for (Choice& c : choices_) {
    c.text = std::make_unique<ChoiceText>(*ctx_.tokenizer, request_.skip_special_tokens, request_.stop);
    if (request_.sampling.num_logprobs >= 0) {
      c.logprobs = request_.chat ? Json{{"content", Json::array()}}
                                 : Json{{"tokens", Json::array()},
                                        {"token_logprobs", Json::array()},
                                        {"top_logprobs", Json::array()},
                                        {"text_offset", Json::array()}};
    }
  }
}

void GenerationCall::Start() {
  auto self = shared_from_this();
  submitted_ = std::chrono::steady_clock::now();
  for (size_t i = 0; i < engine_requests_.size(); ++i) {
    double retry_after = 0;
    OutputCallback on_output = [self, i](RequestOutput&& out) {
      self->exchange_->Post([self, i, out = std::move(out)]() mutable {
        self->OnOutput(i, std::move(out));
      });
    };
    auto id = ctx_.engine->Submit(std::move(engine_requests_[i]), std::move(on_output), &retry_after);
    if (!id.ok()) {
      CancelAll();
      ApiError error = ErrorFromStatus(id.status());
      error.retry_after_s = retry_after;
      done_ = true;
      HttpHeaders headers;
      if (retry_after > 0) headers.push_back({"Retry-After", std::to_string(static_cast<int>(retry_after))});
      exchange_->Respond(error.http_status, "application/json", error.Body(), std::move(headers));
      Record(error.http_status, error.message);
      return;
    }
    choices_[i].engine_id = *id;
  }
  engine_requests_.clear();
  exchange_->SetOnClose([self] { self->OnClientGone(); });
  if (request_.stream) {
    streaming_ = true;
    exchange_->StartStream(200, "text/event-stream", {{"X-Request-Id", id_}});
    if (request_.chat) {
      for (size_t i = 0; i < choices_.size(); ++i) {
        Json chunk = ChunkBase();
        chunk["choices"] = Json::array({Json{{"index", i},
                                             {"delta", {{"role", "assistant"}, {"content", ""}}},
                                             {"logprobs", nullptr},
                                             {"finish_reason", nullptr}}});
        SendEvent(chunk);
      }
    }
  }
}

std::string GenerationCall::TokenText(int32_t id) const {
  auto text = ctx_.tokenizer->Decode(std::span<const int32_t>(&id, 1), false);
  return text.ok() ? *text : std::string();
}

void GenerationCall::AppendLogprob(const SampledToken& t, int32_t text_offset, Json* lp) const {
  const std::string text = TokenText(t.token);
  if (request_.chat) {
    auto entry = [&](int32_t id, float logprob) {
      const std::string s = id == t.token ? text : TokenText(id);
      Json bytes = Json::array();
      for (unsigned char c : s) bytes.push_back(static_cast<int>(c));
      return Json{{"token", s}, {"logprob", logprob}, {"bytes", std::move(bytes)}};
    };
    Json e = entry(t.token, t.logprob);
    Json top = Json::array();
    for (const TokenLogprob& alt : t.top_logprobs) top.push_back(entry(alt.token, alt.logprob));
    e["top_logprobs"] = std::move(top);
    (*lp)["content"].push_back(std::move(e));
  } else {
    (*lp)["tokens"].push_back(text);
    (*lp)["token_logprobs"].push_back(t.logprob);
    Json top = Json::object();
    for (const TokenLogprob& alt : t.top_logprobs) top[TokenText(alt.token)] = alt.logprob;
    (*lp)["top_logprobs"].push_back(std::move(top));
    (*lp)["text_offset"].push_back(text_offset);
  }
}

Json GenerationCall::ChunkBase() const {
  Json j;
  j["id"] = id_;
  j["object"] = request_.chat ? "chat.completion.chunk" : "text_completion";
  j["created"] = created_;
  j["model"] = ctx_.model_name;
  // With include_usage, chunks carry "usage": null until the last (OpenAI), or the counts so
  // far with continuous_usage_stats (vLLM).
  if (request_.include_usage) j["usage"] = request_.continuous_usage_stats ? Usage() : Json();
  return j;
}

void GenerationCall::SendEvent(const Json& json) { exchange_->Send("data: " + DumpJson(json) + "\n\n"); }

Json GenerationCall::Usage() const {
  int32_t completion = 0;
  for (const Choice& c : choices_) completion += c.completion_tokens;
  return Json{{"prompt_tokens", prompt_tokens_},
              {"completion_tokens", completion},
              {"total_tokens", prompt_tokens_ + completion},
              {"prompt_tokens_details", {{"cached_tokens", cached_tokens_}}}};
}

void GenerationCall::OnOutput(size_t index, RequestOutput out) {
  if (done_) return;
  Choice& c = choices_[index];
  if (c.finished) return;  // e.g. the cancellation after a stop string
  if (!out.status.ok()) {
    Fail(ErrorFromStatus(out.status));
    return;
  }
  cached_tokens_ = std::max(cached_tokens_, out.cached_prompt_tokens);
  if (first_scheduled_ == std::chrono::steady_clock::time_point{}) {
    first_scheduled_ = out.first_scheduled;
  }
  const auto now = std::chrono::steady_clock::now();
  if (!out.tokens.empty()) {
    if (!first_token_) {
      first_token_ = now;
      ctx_.metrics->ttft().Observe(Seconds(now - arrival_));
    } else if (c.completion_tokens > 0) {
      const double gap = Seconds(now - c.last_token) / static_cast<double>(out.tokens.size());
      for (size_t k = 0; k < out.tokens.size(); ++k) ctx_.metrics->inter_token().Observe(gap);
    }
    c.last_token = now;
  }
  std::string text;
  Json logprobs;  // this output's tokens' log-probs, when asked for
  if (!c.logprobs.is_null()) {
    logprobs = request_.chat ? Json{{"content", Json::array()}}
                             : Json{{"tokens", Json::array()},
                                    {"token_logprobs", Json::array()},
                                    {"top_logprobs", Json::array()},
                                    {"text_offset", Json::array()}};
  }
  bool stopped = false;
  for (const SampledToken& t : out.tokens) {
    ++c.completion_tokens;
    if (!logprobs.is_null()) {
      AppendLogprob(t, static_cast<int32_t>(c.content.size() + text.size()), &logprobs);
    }
    auto piece = c.text->Add(t.token);
    if (!piece.ok()) {
      Fail(ErrorFromStatus(piece.status()));
      return;
    }
    text += *piece;
    if (c.text->stopped()) {
      stopped = true;
      break;
    }
  }
  std::string finish;
  if (stopped) {
    finish = "stop";
    ctx_.engine->Cancel(c.engine_id);
  } else if (out.finished) {
    auto rest = c.text->Finish();
    if (rest.ok()) text += *rest;
    finish = FinishReasonName(out.finish_reason);
  }
  if (!logprobs.is_null() && !streaming_) {
    for (auto& [key, values] : logprobs.items()) {
      for (Json& v : values) c.logprobs[key].push_back(std::move(v));
    }
  }
  if (streaming_ && (!text.empty() || !finish.empty() || !logprobs.is_null())) {
    Json choice = {{"index", index}, {"logprobs", logprobs}, {"finish_reason", nullptr}};
    if (request_.chat) {
      choice["delta"] = text.empty() && !finish.empty() ? Json::object() : Json{{"content", text}};
    } else {
      choice["text"] = text;
    }
    if (!finish.empty()) choice["finish_reason"] = finish;
    Json chunk = ChunkBase();
    chunk["choices"] = Json::array({std::move(choice)});
    SendEvent(chunk);
  }
  c.content += text;
  if (!finish.empty()) FinishChoice(index, finish);
}

void GenerationCall::FinishChoice(size_t index, const std::string& reason) {
  Choice& c = choices_[index];
  if (c.finished) return;
  c.finished = true;
  c.finish_reason = reason;
  if (--remaining_ == 0) Complete();
}

void GenerationCall::Complete() {
  done_ = true;
  if (streaming_) {
    if (request_.include_usage) {
      Json chunk = ChunkBase();
      chunk["choices"] = Json::array();
      chunk["usage"] = Usage();
      SendEvent(chunk);
    }
    exchange_->Send("data: [DONE]\n\n");
    exchange_->End();
  } else {
    Json body;
    body["id"] = id_;
    body["object"] = request_.chat ? "chat.completion" : "text_completion";
    body["created"] = created_;
    body["model"] = ctx_.model_name;
    Json choices = Json::array();
    for (size_t i = 0; i < choices_.size(); ++i) {
      Choice& c = choices_[i];
      Json choice = {{"index", i}, {"logprobs", c.logprobs}, {"finish_reason", c.finish_reason}};
      if (request_.chat) {
        choice["message"] = {{"role", "assistant"}, {"content", c.content}};
      } else {
        choice["text"] = c.content;
      }
      choices.push_back(std::move(choice));
    }
    body["choices"] = std::move(choices);
    body["usage"] = Usage();
    exchange_->Respond(200, "application/json", DumpJson(body), {{"X-Request-Id", id_}});
  }
  int64_t completion = 0;
  for (const Choice& c : choices_) completion += c.completion_tokens;
  ctx_.metrics->CountTokens(prompt_tokens_, completion);
  ctx_.metrics->e2e().Observe(Seconds(std::chrono::steady_clock::now() - arrival_));
  std::string finishes;
  for (const Choice& c : choices_) finishes += (finishes.empty() ? "" : ",") + c.finish_reason;
  Record(200, "finish=" + finishes);
}

void GenerationCall::Fail(const ApiError& error) {
  if (done_) return;
  done_ = true;
  CancelAll();
  if (streaming_) {
    Json e = Json::parse(error.Body(), nullptr, false);
    exchange_->Send("data: " + DumpJson(e) + "\n\n");
    exchange_->Send("data: [DONE]\n\n");
    exchange_->End();
  } else {
    exchange_->Respond(error.http_status, "application/json", error.Body(), {{"X-Request-Id", id_}});
  }
  Record(error.http_status, error.message);
}

void GenerationCall::CancelAll() {
  for (Choice& c : choices_) {
    if (c.engine_id >= 0 && !c.finished) ctx_.engine->Cancel(c.engine_id);
  }
}

void GenerationCall::OnClientGone() {
  if (done_) return;
  done_ = true;
  CancelAll();
  Record(499, "client disconnected; generation cancelled");
}

void GenerationCall::Record(int http_status, const std::string& note) {
  ctx_.metrics->CountRequest(endpoint_, http_status);
  int64_t completion = 0;
  for (const Choice& c : choices_) completion += c.completion_tokens;
  const auto now = std::chrono::steady_clock::now();
  // Where the time to first token went: parsing, template and tokenization before the engine
  // had it (prepare), waiting for a step (queue), the steps up to the first token (prefill).
  const bool scheduled = first_scheduled_ != std::chrono::steady_clock::time_point{};
  auto ms = [](std::chrono::steady_clock::duration d) { return 1e3 * Seconds(d); };
  char timing[192];
  std::snprintf(timing, sizeof(timing),
                "ttft_ms=%.1f e2e_ms=%.1f prepare_ms=%.1f queue_ms=%.1f prefill_ms=%.1f",
                first_token_ ? ms(*first_token_ - arrival_) : -1.0, ms(now - arrival_),
                ms(submitted_ - arrival_), scheduled ? ms(first_scheduled_ - submitted_) : -1.0,
                scheduled && first_token_ ? ms(*first_token_ - first_scheduled_) : -1.0);
  LOG(INFO) << "request_id=" << id_ << " endpoint=" << endpoint_ << " status=" << http_status
            << " stream=" << (request_.stream ? "true" : "false") << " n=" << choices_.size()
            << " prompt_tokens=" << prompt_tokens_ << " cached_tokens=" << cached_tokens_
            << " completion_tokens=" << completion << " " << timing << " " << note;
}

}  // namespace tokenfab
