// Errors as the OpenAI API shows them: an HTTP status and
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}.
// This is the one place where Status codes become HTTP statuses (STYLE.md).
// Thread-safety: values and pure functions.
#pragma once

#include <string>

#include "base/json.h"
#include "base/status.h"

namespace tokenfab {

struct ApiError {
  int http_status = 500;
  std::string message;
  std::string type = "server_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null
  double retry_after_s = 0;  // > 0: sent as Retry-After

  std::string Body() const;  // the OpenAI error JSON
};

// InvalidArgument -> 400, NotFound -> 404, ResourceExhausted -> 429, Unavailable -> 503,
// DeadlineExceeded -> 504, Cancelled -> 499, the rest -> 500.
int HttpStatusFor(StatusCode code);

ApiError ErrorFromStatus(const Status& status, std::string param = "");
ApiError BadRequest(std::string message, std::string param = "", std::string code = "");

// A JSON dump that never throws (invalid UTF-8 is replaced).
std::string DumpJson(const Json& json);

}  // namespace tokenfab
