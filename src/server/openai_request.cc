#include "server/openai_request.h"

#include <charconv>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace tokenfab {
namespace {

constexpr int32_t kMaxChoices = 16;
constexpr size_t kMaxStops = 16;

const std::set<std::string>& CommonFields() {
  static const std::set<std::string> fields = {
      "model", "stream", "stream_options", "n", "max_tokens", "temperature", "top_p", "top_k",
      "min_p", "seed", "stop", "presence_penalty", "frequency_penalty", "repetition_penalty",
      "logprobs", "user", "priority", "cache_salt", "ignore_eos", "stop_token_ids",
      "skip_special_tokens", "logit_bias", "best_of", "metadata", "store", "service_tier"};
  return fields;
}
const std::set<std::string>& ChatFields() {
  static const std::set<std::string> fields = {
      "messages", "max_completion_tokens", "top_logprobs", "tools", "tool_choice",
      "parallel_tool_calls", "response_format", "chat_template_kwargs"};
  return fields;
}
const std::set<std::string>& CompletionFields() {
  static const std::set<std::string> fields = {"prompt", "suffix", "echo"};
  return fields;
}

std::string TypeName(const OrderedJson& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

ApiError WrongType(const std::string& field, const std::string& expected, const OrderedJson& v) {
  return BadRequest("'" + field + "' must be " + expected + ", not " + TypeName(v), field);
}

// The body as a JSON object, or a 400.
std::optional<ApiError> ParseObject(const std::string& body, OrderedJson* out) {
  *out = OrderedJson::parse(body, nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) {
    return BadRequest("We could not parse the JSON body of your request: it is not valid JSON.");
  }
  if (!out->is_object()) return BadRequest("The request body must be a JSON object.");
  return std::nullopt;
}

// A 400 naming the first field of `j` in none of `known`.
std::optional<ApiError> UnknownField(const OrderedJson& j,
                                     std::initializer_list<const std::set<std::string>*> known) {
  for (const auto& [key, value] : j.items()) {
    bool found = false;
    for (const std::set<std::string>* fields : known) found = found || fields->count(key) > 0;
    if (!found) return BadRequest("Unrecognized request argument supplied: " + key, key);
  }
  return std::nullopt;
}

// Field readers: nullopt when fine (absent or null leaves *out alone).
std::optional<ApiError> ReadBool(const OrderedJson& j, const std::string& f, bool* out) {
  if (!j.contains(f) || j[f].is_null()) return std::nullopt;
  if (!j[f].is_boolean()) return WrongType(f, "a boolean", j[f]);
  *out = j[f].get<bool>();
  return std::nullopt;
}

std::optional<ApiError> ReadInt(const OrderedJson& j, const std::string& f, int64_t lo, int64_t hi,
                                std::optional<int64_t>* out) {
  if (!j.contains(f) || j[f].is_null()) return std::nullopt;
  const OrderedJson& v = j[f];
  int64_t x;
  if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>()))) {
    x = static_cast<int64_t>(v.get<double>());  // 5.0 is an integer
  } else {
    return WrongType(f, "an integer", v);
  }
  if (x < lo || x > hi) {
    return BadRequest("'" + f + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                          "], got " + std::to_string(x),
                      f);
  }
  *out = x;
  return std::nullopt;
}

std::optional<ApiError> ReadNumber(const OrderedJson& j, const std::string& f, double lo, double hi,
                                   double* out) {
  if (!j.contains(f) || j[f].is_null()) return std::nullopt;
  const OrderedJson& v = j[f];
  if (!v.is_number()) return WrongType(f, "a number", v);
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi)) {
    char text[128];
    std::snprintf(text, sizeof(text), "'%s' must be in [%g, %g], got %g", f.c_str(), lo, hi, x);
    return BadRequest(text, f);
  }
  *out = x;
  return std::nullopt;
}

std::optional<ApiError> ReadString(const OrderedJson& j, const std::string& f, std::string* out) {
  if (!j.contains(f) || j[f].is_null()) return std::nullopt;
  if (!j[f].is_string()) return WrongType(f, "a string", j[f]);
  *out = j[f].get<std::string>();
  return std::nullopt;
}

std::optional<ApiError> ReadTokenIds(const OrderedJson& v, const std::string& f,
                                     std::vector<int32_t>* out) {
  for (const OrderedJson& t : v) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
        t.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return BadRequest("'" + f + "' must hold token ids (non-negative integers)", f);
    }
    out->push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return std::nullopt;
}

std::optional<ApiError> ReadTools(const OrderedJson& j, OrderedJson* out) {
  if (!j.contains("tools") || j["tools"].is_null()) return std::nullopt;
  if (!j["tools"].is_array()) return WrongType("tools", "an array", j["tools"]);
  *out = j["tools"];
  return std::nullopt;
}

std::optional<ApiError> ReadTemplateKwargs(const OrderedJson& j, OrderedJson* out) {
  const std::string f = "chat_template_kwargs";
  if (!j.contains(f) || j[f].is_null()) return std::nullopt;
  if (!j[f].is_object()) return WrongType(f, "an object", j[f]);
  *out = j[f];
  return std::nullopt;
}

// logit_bias: {"token id": bias in [-100, 100], ...} (OpenAI's form: ids as decimal strings).
// The ids are checked against the vocabulary by the engine.
std::optional<ApiError> ReadLogitBias(const OrderedJson& j,
                                      std::vector<std::pair<int32_t, float>>* out) {
  const std::string f = "logit_bias";
  if (!j.contains(f) || j[f].is_null()) return std::nullopt;
  if (!j[f].is_object()) return WrongType(f, "an object mapping token ids to biases", j[f]);
  std::map<int32_t, float> biases;  // "5" and "05" name one token: the last one given wins
  for (const auto& [key, value] : j[f].items()) {
    int32_t token = -1;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), token);
    if (key.empty() || ec != std::errc() || end != key.data() + key.size() || token < 0) {
      return BadRequest("'logit_bias' keys must be token ids (non-negative integers), got '" +
                            key + "'",
                        f);
    }
    if (!value.is_number()) return WrongType(f + "." + key, "a number", value);
    const double bias = value.get<double>();
    if (!(bias >= -100.0 && bias <= 100.0)) {
      return BadRequest("'logit_bias' values must be in [-100, 100], got " + value.dump() +
                            " for token " + key,
                        f);
    }
    biases[token] = static_cast<float>(bias);
  }
  out->assign(biases.begin(), biases.end());
  return std::nullopt;
}

std::optional<ApiError> ReadMessages(const OrderedJson& j, OrderedJson* out) {
  if (!j.contains("messages")) return BadRequest("'messages' is required", "messages");
  const OrderedJson& messages = j["messages"];
  if (!messages.is_array()) return WrongType("messages", "an array", messages);
  if (messages.empty()) return BadRequest("'messages' must not be empty", "messages", "empty_array");
  static const std::set<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
  *out = OrderedJson::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string where = "messages[" + std::to_string(i) + "]";
    OrderedJson m = messages[i];
    if (!m.is_object()) return WrongType(where, "an object", m);
    if (!m.contains("role") || !m["role"].is_string()) {
      return BadRequest(where + " needs a string 'role'", where + ".role");
    }
    if (roles.count(m["role"].get<std::string>()) == 0) {
      return BadRequest(where + ".role must be one of system, developer, user, assistant, tool",
                        where + ".role");
    }
    if (m.contains("content")) {
      OrderedJson& content = m["content"];
      if (content.is_array()) {
        // Text parts are joined; other kinds (images, audio) are not supported.
        std::string text;
        for (const OrderedJson& part : content) {
          if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
              !part.contains("text") || !part["text"].is_string()) {
            return BadRequest(where + ".content: only text parts are supported",
                              where + ".content");
          }
          text += part["text"].get<std::string>();
        }
        content = text;
      } else if (!content.is_string() && !content.is_null()) {
        return WrongType(where + ".content", "a string or an array of text parts", content);
      }
    } else if (m["role"] != "assistant") {
      return BadRequest(where + " needs 'content'", where + ".content");
    }
    out->push_back(std::move(m));
  }
  return std::nullopt;
}

std::optional<ApiError> ReadPrompt(const OrderedJson& j, ApiRequest* r) {
  if (!j.contains("prompt") || j["prompt"].is_null()) {
    return BadRequest("'prompt' is required", "prompt");
  }
  const OrderedJson& p = j["prompt"];
  if (p.is_string()) {
    r->prompt_text = p.get<std::string>();
    return std::nullopt;
  }
  if (!p.is_array()) return WrongType("prompt", "a string or an array", p);
  if (p.empty()) return BadRequest("'prompt' must not be empty", "prompt");
  if (p[0].is_number_integer()) {
    r->prompt_tokens.emplace();
    return ReadTokenIds(p, "prompt", &*r->prompt_tokens);
  }
  if (p.size() > 1) {
    return BadRequest("batched prompts are not supported: send one request per prompt", "prompt");
  }
  if (p[0].is_string()) {
    r->prompt_text = p[0].get<std::string>();
    return std::nullopt;
  }
  if (p[0].is_array()) {
    r->prompt_tokens.emplace();
    return ReadTokenIds(p[0], "prompt", &*r->prompt_tokens);
  }
  return WrongType("prompt", "a string, token ids, or a list of one of them", p);
}

}  // namespace

std::optional<ApiError> ParseApiRequest(const std::string& body, bool chat, ApiRequest* r) {
  OrderedJson j;
  if (auto e = ParseObject(body, &j)) return e;
  if (auto e = UnknownField(j, {&CommonFields(), chat ? &ChatFields() : &CompletionFields()})) {
    return e;
  }
  r->chat = chat;
  std::optional<ApiError> e;
  auto fail = [&](std::optional<ApiError> error) {
    if (error && !e) e = std::move(error);
    return e.has_value();
  };
  if (fail(ReadString(j, "model", &r->model))) return e;
  if (chat ? fail(ReadMessages(j, &r->messages)) : fail(ReadPrompt(j, r))) return e;

  std::optional<int64_t> i;
  if (fail(ReadInt(j, "n", 1, kMaxChoices, &i))) return e;
  if (i) r->n = static_cast<int32_t>(*i);
  for (const char* f : {"max_tokens", "max_completion_tokens"}) {
    if (!chat && std::string(f) == "max_completion_tokens") continue;
    i.reset();
    if (j.contains(f) && j[f].is_number_integer() && j[f].get<int64_t>() <= 0) {
      return BadRequest(std::string("'") + f + "' must be at least 1, got " +
                            std::to_string(j[f].get<int64_t>()),
                        f);
    }
    if (fail(ReadInt(j, f, 1, std::numeric_limits<int32_t>::max(), &i))) return e;
    if (i) r->max_tokens = *i;
  }
  SamplingParams& s = r->sampling;
  if (fail(ReadNumber(j, "temperature", 0, 100, &s.temperature))) return e;
  if (fail(ReadNumber(j, "top_p", 0, 1, &s.top_p))) return e;
  if (j.contains("top_p") && j["top_p"].is_number() && s.top_p == 0) {
    return BadRequest("'top_p' must be in (0, 1]", "top_p");
  }
  i.reset();
  if (fail(ReadInt(j, "top_k", -1, std::numeric_limits<int32_t>::max(), &i))) return e;
  if (i) s.top_k = *i < 0 ? 0 : static_cast<int32_t>(*i);  // -1 means off, as in vLLM
  if (fail(ReadNumber(j, "min_p", 0, 1, &s.min_p))) return e;
  if (fail(ReadNumber(j, "presence_penalty", -2, 2, &s.presence_penalty))) return e;
  if (fail(ReadNumber(j, "frequency_penalty", -2, 2, &s.frequency_penalty))) return e;
  if (fail(ReadNumber(j, "repetition_penalty", 1e-6, 100, &s.repetition_penalty))) return e;
  i.reset();
  if (fail(ReadInt(j, "seed", std::numeric_limits<int64_t>::min(),
                   std::numeric_limits<int64_t>::max(), &i))) {
    return e;
  }
  if (i) s.seed = static_cast<uint64_t>(*i);

  // Log-probs: chat has logprobs (bool) + top_logprobs; completions has logprobs (0..20).
  if (chat) {
    bool logprobs = false;
    if (fail(ReadBool(j, "logprobs", &logprobs))) return e;
    i.reset();
    if (fail(ReadInt(j, "top_logprobs", 0, 20, &i))) return e;
    if (i && !logprobs) return BadRequest("'top_logprobs' needs 'logprobs': true", "top_logprobs");
    s.num_logprobs = logprobs ? static_cast<int32_t>(i.value_or(0)) : -1;
  } else {
    i.reset();
    if (j.contains("logprobs") && j["logprobs"].is_boolean()) {
      return WrongType("logprobs", "an integer (0-20) for /v1/completions", j["logprobs"]);
    }
    if (fail(ReadInt(j, "logprobs", 0, 20, &i))) return e;
    s.num_logprobs = i ? static_cast<int32_t>(*i) : -1;
    bool echo = false;
    if (fail(ReadBool(j, "echo", &echo))) return e;
    if (echo) return BadRequest("'echo' is not supported", "echo");
    if (j.contains("suffix") && !j["suffix"].is_null()) {
      return BadRequest("'suffix' is not supported", "suffix");
    }
  }

  if (j.contains("stop") && !j["stop"].is_null()) {
    const OrderedJson& stop = j["stop"];
    if (stop.is_string()) {
      r->stop.push_back(stop.get<std::string>());
    } else if (stop.is_array()) {
      if (stop.size() > kMaxStops) {
        return BadRequest("'stop' holds at most " + std::to_string(kMaxStops) + " strings", "stop");
      }
      for (const OrderedJson& x : stop) {
        if (!x.is_string()) return WrongType("stop", "a string or an array of strings", stop);
        r->stop.push_back(x.get<std::string>());
      }
    } else {
      return WrongType("stop", "a string or an array of strings", stop);
    }
    for (const std::string& x : r->stop) {
      if (x.empty()) return BadRequest("'stop' strings must not be empty", "stop");
    }
  }
  if (j.contains("stop_token_ids") && !j["stop_token_ids"].is_null()) {
    if (!j["stop_token_ids"].is_array()) {
      return WrongType("stop_token_ids", "an array of token ids", j["stop_token_ids"]);
    }
    if (fail(ReadTokenIds(j["stop_token_ids"], "stop_token_ids", &r->stop_token_ids))) return e;
  }
  if (fail(ReadBool(j, "ignore_eos", &r->ignore_eos))) return e;
  if (fail(ReadBool(j, "skip_special_tokens", &r->skip_special_tokens))) return e;
  if (fail(ReadBool(j, "stream", &r->stream))) return e;
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    const OrderedJson& o = j["stream_options"];
    if (!o.is_object()) return WrongType("stream_options", "an object", o);
    for (const auto& [key, value] : o.items()) {
      if (key != "include_usage" && key != "continuous_usage_stats") {
        return BadRequest("Unrecognized stream option: " + key, "stream_options." + key);
      }
    }
    if (fail(ReadBool(o, "include_usage", &r->include_usage))) return e;
    if (fail(ReadBool(o, "continuous_usage_stats", &r->continuous_usage_stats))) return e;
  }
  i.reset();
  if (fail(ReadInt(j, "priority", -1000000, 1000000, &i))) return e;
  if (i) r->priority = static_cast<int32_t>(*i);
  if (fail(ReadString(j, "cache_salt", &r->cache_salt))) return e;
  if (fail(ReadString(j, "user", &r->user))) return e;
  if (fail(ReadLogitBias(j, &s.logit_bias))) return e;
  i.reset();
  if (fail(ReadInt(j, "best_of", 1, 1, &i))) return e;
  if (chat) {
    if (fail(ReadTools(j, &r->tools))) return e;
    if (j.contains("response_format") && !j["response_format"].is_null()) {
      const OrderedJson& f = j["response_format"];
      if (!f.is_object() || !f.contains("type") || f["type"] != "text") {
        return BadRequest("only response_format {\"type\": \"text\"} is supported", "response_format");
      }
    }
    if (fail(ReadTemplateKwargs(j, &r->chat_template_kwargs))) return e;
  }
  if (const Status valid = s.Validate(); !valid.ok()) return BadRequest(valid.message());
  return std::nullopt;
}

std::optional<ApiError> ParseTokenizeRequest(const std::string& body, TokenizeRequest* r) {
  OrderedJson j;
  if (auto e = ParseObject(body, &j)) return e;
  static const std::set<std::string> fields = {
      "model", "prompt", "messages", "add_special_tokens", "add_generation_prompt",
      "return_token_strs", "chat_template_kwargs", "tools"};
  if (auto e = UnknownField(j, {&fields})) return e;
  const bool has_prompt = j.contains("prompt") && !j["prompt"].is_null();
  const bool has_messages = j.contains("messages") && !j["messages"].is_null();
  if (has_prompt == has_messages) {
    return BadRequest("give exactly one of 'prompt' (text) or 'messages' (a chat)",
                      has_prompt ? "messages" : "prompt");
  }
  r->chat = has_messages;
  r->add_special_tokens = !r->chat;  // a chat template writes its own BOS
  std::optional<ApiError> e;
  auto fail = [&](std::optional<ApiError> error) {
    if (error && !e) e = std::move(error);
    return e.has_value();
  };
  if (fail(ReadString(j, "model", &r->model))) return e;
  if (r->chat) {
    if (fail(ReadMessages(j, &r->messages))) return e;
  } else {
    if (!j["prompt"].is_string()) return WrongType("prompt", "a string", j["prompt"]);
    r->prompt_text = j["prompt"].get<std::string>();
  }
  if (fail(ReadBool(j, "add_special_tokens", &r->add_special_tokens))) return e;
  if (fail(ReadBool(j, "add_generation_prompt", &r->add_generation_prompt))) return e;
  if (fail(ReadBool(j, "return_token_strs", &r->return_token_strs))) return e;
  if (fail(ReadTools(j, &r->tools))) return e;
  if (fail(ReadTemplateKwargs(j, &r->chat_template_kwargs))) return e;
  return std::nullopt;
}

std::optional<ApiError> ParseDetokenizeRequest(const std::string& body, DetokenizeRequest* r) {
  OrderedJson j;
  if (auto e = ParseObject(body, &j)) return e;
  static const std::set<std::string> fields = {"model", "tokens"};
  if (auto e = UnknownField(j, {&fields})) return e;
  if (auto e = ReadString(j, "model", &r->model)) return e;
  if (!j.contains("tokens") || j["tokens"].is_null()) {
    return BadRequest("'tokens' is required", "tokens");
  }
  if (!j["tokens"].is_array()) return WrongType("tokens", "an array of token ids", j["tokens"]);
  return ReadTokenIds(j["tokens"], "tokens", &r->tokens);
}

}  // namespace tokenfab
