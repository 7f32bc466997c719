// The body of POST /v1/completions and /v1/chat/completions, parsed and checked field by field
// (types, ranges, unknown fields) into an ApiRequest, or an ApiError naming the field; and the
// bodies of POST /tokenize and /detokenize.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/sampling_params.h"
#include "server/api_error.h"
#include "tokenizer/chat_template.h"

namespace tokenfab {

struct ApiRequest {
  bool chat = false;
  std::string model;  // "" when absent
  // Chat: the conversation and what the template needs.
  OrderedJson messages;
  OrderedJson tools;  // null or a list
  OrderedJson chat_template_kwargs = OrderedJson::object();
  // Completions: a text prompt, or token ids.
  std::string prompt_text;
  std::optional<std::vector<int32_t>> prompt_tokens;

  int32_t n = 1;
  std::optional<int64_t> max_tokens;  // absent: the context's remainder (chat) or 16
  SamplingParams sampling;            // num_logprobs: -1 none, else top-k alternatives
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  bool skip_special_tokens = true;
  bool stream = false;
  bool include_usage = false;
  bool continuous_usage_stats = false;  // with include_usage: the usage so far in every chunk
  int32_t priority = 0;
  std::string cache_salt;
  std::string user;
};

// nullopt on success.
std::optional<ApiError> ParseApiRequest(const std::string& body, bool chat, ApiRequest* out);

// POST /tokenize (vLLM's form): a text prompt, or a chat rendered with the model's template.
struct TokenizeRequest {
  bool chat = false;
  std::string model;
  std::string prompt_text;
  OrderedJson messages;
  OrderedJson tools;
  OrderedJson chat_template_kwargs = OrderedJson::object();
  bool add_special_tokens = true;  // default: true for a prompt, false for a chat
  bool add_generation_prompt = true;
  bool return_token_strs = false;
};
std::optional<ApiError> ParseTokenizeRequest(const std::string& body, TokenizeRequest* out);

// POST /detokenize: token ids back to text.
struct DetokenizeRequest {
  std::string model;
  std::vector<int32_t> tokens;
};
std::optional<ApiError> ParseDetokenizeRequest(const std::string& body, DetokenizeRequest* out);

}  // namespace tokenfab
