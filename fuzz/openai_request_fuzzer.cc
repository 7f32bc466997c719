// Feeds arbitrary bodies to the request parsers (the first byte picks completions, chat,
// tokenize or detokenize): errors are fine, crashes and aborts are not. An error must name an
// HTTP status of 4xx and carry a message; an accepted request must hold what the server and
// engine rely on (valid sampling parameters, 1 <= n <= 16, positive max_tokens, a chat's
// messages an array, non-negative token ids).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "server/openai_request.h"

namespace {

void CheckError(const std::optional<tokenfab::ApiError>& error) {
  if (error && (error->http_status < 400 || error->http_status >= 500 || error->message.empty())) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int kind = data[0] & 3;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (kind == 2) {
    tokenfab::TokenizeRequest t;
    const auto error = tokenfab::ParseTokenizeRequest(body, &t);
    CheckError(error);
    if (!error && t.chat && !t.messages.is_array()) __builtin_trap();
    return 0;
  }
  if (kind == 3) {
    tokenfab::DetokenizeRequest d;
    const auto error = tokenfab::ParseDetokenizeRequest(body, &d);
    CheckError(error);
    for (int32_t id : d.tokens) {
      if (!error && id < 0) __builtin_trap();
    }
    return 0;
  }
  const bool chat = kind == 1;
  tokenfab::ApiRequest request;
  const auto error = tokenfab::ParseApiRequest(body, chat, &request);
  CheckError(error);
  if (error) return 0;
  if (!request.sampling.Validate().ok()) __builtin_trap();
  if (request.n < 1 || request.n > 16) __builtin_trap();
  if (request.max_tokens && *request.max_tokens < 1) __builtin_trap();
  if (chat && !request.messages.is_array()) __builtin_trap();
  // Accepted requests survive the serialisations the server does with them.
  (void)request.messages.dump();
  (void)request.tools.dump();
  return 0;
}
