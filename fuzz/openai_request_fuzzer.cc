// Feeds arbitrary bodies to the OpenAI request parser (the first byte picks chat or
// completions): errors are fine, crashes and aborts are not. An error must name an HTTP status
// of 4xx and carry a message; an accepted request must hold what the engine will check again
// (valid sampling parameters, 1 <= n <= 16, positive max_tokens, a chat's messages an array).
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool chat = data[0] & 1;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  tokenfab::ApiRequest request;
  const auto error = tokenfab::ParseApiRequest(body, chat, &request);
  if (error) {
    if (error->http_status < 400 || error->http_status >= 500 || error->message.empty()) {
      __builtin_trap();
    }
    return 0;
  }
  if (!request.sampling.Validate().ok()) __builtin_trap();
  if (request.n < 1 || request.n > 16) __builtin_trap();
  if (request.max_tokens && *request.max_tokens < 1) __builtin_trap();
  if (chat && !request.messages.is_array()) __builtin_trap();
  // Accepted requests survive the serialisations the server does with them.
  (void)request.messages.dump();
  (void)request.tools.dump();
  return 0;
}
