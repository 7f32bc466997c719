#include "server/api_error.h"

namespace tokenfab {

std::string ApiError::Body() const {
  Json error;
  error["message"] = message;
  error["type"] = type;
  error["param"] = param.empty() ? Json() : Json(param);
  error["code"] = code.empty() ? Json() : Json(code);
  return DumpJson(Json{{"error", std::move(error)}});
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    case StatusCode::kCancelled: return 499;
    case StatusCode::kInternal:
    case StatusCode::kDataLoss: return 500;
  }
  return 500;
}

ApiError ErrorFromStatus(const Status& status, std::string param) {
  ApiError e;
  e.http_status = HttpStatusFor(status.code());
  e.message = status.message();
  e.param = std::move(param);
  switch (e.http_status) {
    case 400: e.type = "invalid_request_error"; break;
    case 404: e.type = "invalid_request_error"; break;
    case 429: e.type = "rate_limit_error"; e.code = "rate_limit_exceeded"; break;
    case 503: e.type = "service_unavailable"; break;
    default: e.type = "server_error"; break;
  }
  return e;
}

ApiError BadRequest(std::string message, std::string param, std::string code) {
  ApiError e;
  e.http_status = 400;
  e.type = "invalid_request_error";
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

std::string DumpJson(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace tokenfab
