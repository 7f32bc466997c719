// ParseApiRequest: every field's type and range, unknown fields, the chat and completion
// specifics; each error names its field (OpenAI's "param").
#include "server/openai_request.h"

#include <gtest/gtest.h>

namespace tokenfab {
namespace {

std::optional<ApiError> Chat(const std::string& body, ApiRequest* r = nullptr) {
  ApiRequest local;
  return ParseApiRequest(body, /*chat=*/true, r ? r : &local);
}
std::optional<ApiError> Completion(const std::string& body, ApiRequest* r = nullptr) {
  ApiRequest local;
  return ParseApiRequest(body, /*chat=*/false, r ? r : &local);
}
std::string Param(const std::optional<ApiError>& e) { return e ? e->param : "<no error>"; }

constexpr const char* kMessages = R"("messages": [{"role": "user", "content": "hi"}])";
std::string WithMessages(const std::string& rest) {
  return std::string("{") + kMessages + (rest.empty() ? "" : ", " + rest) + "}";
}

TEST(OpenAiRequestTest, AFullChatRequestParses) {
  ApiRequest r;
  ASSERT_FALSE(Chat(WithMessages(R"("model": "m", "max_completion_tokens": 7, "temperature": 0.5,
      "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 3, "stop": ["a", "b"], "n": 2,
      "presence_penalty": 0.1, "frequency_penalty": -0.2, "repetition_penalty": 1.1,
      "logprobs": true, "top_logprobs": 4, "stream": true, "stream_options": {"include_usage": true},
      "priority": -2, "cache_salt": "t1", "ignore_eos": true, "stop_token_ids": [5],
      "user": "u", "tools": [], "response_format": {"type": "text"},
      "chat_template_kwargs": {"enable_thinking": false})"), &r));
  EXPECT_TRUE(r.chat);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.sampling.temperature, 0.5);
  EXPECT_EQ(r.sampling.top_k, 40);
  EXPECT_EQ(r.sampling.seed, 3u);
  EXPECT_EQ(r.sampling.num_logprobs, 4);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.n, 2);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_FALSE(r.continuous_usage_stats);
  EXPECT_EQ(r.priority, -2);
  EXPECT_EQ(r.cache_salt, "t1");
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_EQ(r.stop_token_ids, (std::vector<int32_t>{5}));
  EXPECT_FALSE(r.chat_template_kwargs["enable_thinking"].get<bool>());
}

TEST(OpenAiRequestTest, LogitBiasMapsTokenIdsToBiases) {
  ApiRequest r;
  ASSERT_FALSE(Chat(WithMessages(R"("logit_bias": {"50256": -100, "7": 2.5, "07": 3, "0": 100})"), &r));
  // Ordered by id; "7" and "07" name one token (the last given wins).
  EXPECT_EQ(r.sampling.logit_bias,
            (std::vector<std::pair<int32_t, float>>{{0, 100.0f}, {7, 3.0f}, {50256, -100.0f}}));
  ApiRequest empty;
  ASSERT_FALSE(Completion(R"({"prompt": "x", "logit_bias": {}})", &empty));
  EXPECT_TRUE(empty.sampling.logit_bias.empty());
  ASSERT_FALSE(Completion(R"({"prompt": "x", "logit_bias": null})", &empty));
}

TEST(OpenAiRequestTest, ContentPartsAreJoinedAndOtherPartsRefused) {
  ApiRequest r;
  ASSERT_FALSE(Chat(R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
      {"type": "text", "text": "b"}]}]})", &r));
  EXPECT_EQ(r.messages[0]["content"], "ab");
  EXPECT_EQ(Param(Chat(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})")),
            "messages[0].content");
  EXPECT_EQ(Param(Chat(R"({"messages": [{"role": "robot", "content": "x"}]})")), "messages[0].role");
  EXPECT_EQ(Param(Chat(R"({"messages": [{"role": "user"}]})")), "messages[0].content");
  EXPECT_FALSE(Chat(R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant"}]})"));
}

TEST(OpenAiRequestTest, BadInputNamesTheField) {
  EXPECT_EQ(Param(Chat("{")), "");
  EXPECT_TRUE(Chat("{"));
  EXPECT_TRUE(Chat("[]"));
  EXPECT_TRUE(Chat("null"));
  EXPECT_EQ(Param(Chat("{}")), "messages");
  EXPECT_EQ(Param(Chat(R"({"messages": {}})")), "messages");
  EXPECT_EQ(Param(Chat(R"({"messages": []})")), "messages");
  EXPECT_EQ(Param(Chat(WithMessages(R"("max_tokens": 0)"))), "max_tokens");
  EXPECT_EQ(Param(Chat(WithMessages(R"("max_tokens": -1)"))), "max_tokens");
  EXPECT_EQ(Param(Chat(WithMessages(R"("max_tokens": 1.5)"))), "max_tokens");
  EXPECT_EQ(Param(Chat(WithMessages(R"("max_completion_tokens": "3")"))), "max_completion_tokens");
  EXPECT_EQ(Param(Chat(WithMessages(R"("temperature": "hot")"))), "temperature");
  EXPECT_EQ(Param(Chat(WithMessages(R"("temperature": -1)"))), "temperature");
  EXPECT_EQ(Param(Chat(WithMessages(R"("top_p": 0)"))), "top_p");
  EXPECT_EQ(Param(Chat(WithMessages(R"("top_p": 1.5)"))), "top_p");
  EXPECT_EQ(Param(Chat(WithMessages(R"("n": 0)"))), "n");
  EXPECT_EQ(Param(Chat(WithMessages(R"("n": 17)"))), "n");
  EXPECT_EQ(Param(Chat(WithMessages(R"("stop": 5)"))), "stop");
  EXPECT_EQ(Param(Chat(WithMessages(R"("stop": [""])"))), "stop");
  EXPECT_EQ(Param(Chat(WithMessages(R"("stream": 1)"))), "stream");
  EXPECT_EQ(Param(Chat(WithMessages(R"("stream_options": {"bogus": true})"))), "stream_options.bogus");
  EXPECT_EQ(Param(Chat(WithMessages(R"("stream_options": {"continuous_usage_stats": 1})"))),
            "continuous_usage_stats");
  EXPECT_EQ(Param(Chat(WithMessages(R"("top_logprobs": 3)"))), "top_logprobs");
  EXPECT_EQ(Param(Chat(WithMessages(R"("logprobs": true, "top_logprobs": 21)"))), "top_logprobs");
  EXPECT_EQ(Param(Chat(WithMessages(R"("logit_bias": [5])"))), "logit_bias");
  EXPECT_EQ(Param(Chat(WithMessages(R"("logit_bias": {"x5": 1})"))), "logit_bias");
  EXPECT_EQ(Param(Chat(WithMessages(R"("logit_bias": {"-1": 1})"))), "logit_bias");
  EXPECT_EQ(Param(Chat(WithMessages(R"("logit_bias": {"": 1})"))), "logit_bias");
  EXPECT_EQ(Param(Chat(WithMessages(R"("logit_bias": {"99999999999": 1})"))), "logit_bias");
  EXPECT_EQ(Param(Chat(WithMessages(R"("logit_bias": {"5": 100.5})"))), "logit_bias");
  EXPECT_EQ(Param(Chat(WithMessages(R"("logit_bias": {"5": "1"})"))), "logit_bias.5");
  EXPECT_EQ(Param(Chat(WithMessages(R"("response_format": {"type": "json_object"})"))), "response_format");
  EXPECT_EQ(Param(Chat(WithMessages(R"("frobnicate": 1)"))), "frobnicate");
  EXPECT_EQ(Param(Chat(WithMessages(R"("prompt": "x")"))), "prompt") << "completion-only field";
  EXPECT_EQ(Param(Chat(WithMessages(R"("stop_token_ids": [-1])"))), "stop_token_ids");
}

TEST(OpenAiRequestTest, CompletionPromptsAndLogprobs) {
  ApiRequest r;
  ASSERT_FALSE(Completion(R"({"prompt": "hello", "logprobs": 3})", &r));
  EXPECT_EQ(r.prompt_text, "hello");
  EXPECT_EQ(r.sampling.num_logprobs, 3);
  ApiRequest tokens;
  ASSERT_FALSE(Completion(R"({"prompt": [1, 2, 3]})", &tokens));
  EXPECT_EQ(*tokens.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  ApiRequest nested;
  ASSERT_FALSE(Completion(R"({"prompt": [[4, 5]]})", &nested));
  EXPECT_EQ(*nested.prompt_tokens, (std::vector<int32_t>{4, 5}));
  ApiRequest list;
  ASSERT_FALSE(Completion(R"({"prompt": ["only"]})", &list));
  EXPECT_EQ(list.prompt_text, "only");
  EXPECT_EQ(Param(Completion(R"({"prompt": ["a", "b"]})")), "prompt");
  EXPECT_EQ(Param(Completion(R"({"prompt": [1, "x"]})")), "prompt");
  EXPECT_EQ(Param(Completion(R"({"prompt": []})")), "prompt");
  EXPECT_EQ(Param(Completion(R"({"prompt": 5})")), "prompt");
  EXPECT_EQ(Param(Completion("{}")), "prompt");
  EXPECT_EQ(Param(Completion(R"({"prompt": "x", "logprobs": true})")), "logprobs");
  EXPECT_EQ(Param(Completion(R"({"prompt": "x", "echo": true})")), "echo");
  EXPECT_EQ(Param(Completion(R"({"prompt": "x", "messages": []})")), "messages");
  ApiRequest defaults;
  ASSERT_FALSE(Completion(R"({"prompt": "x", "top_k": -1, "seed": null, "stop": null})", &defaults));
  EXPECT_EQ(defaults.sampling.top_k, 0);
  EXPECT_FALSE(defaults.sampling.seed.has_value());
  EXPECT_EQ(defaults.sampling.num_logprobs, -1);
  EXPECT_EQ(defaults.n, 1);
  EXPECT_FALSE(defaults.max_tokens.has_value());
}

TEST(TokenizeRequestTest, APromptOrAChatWithTheirDefaults) {
  TokenizeRequest text;
  ASSERT_FALSE(ParseTokenizeRequest(R"({"model": "m", "prompt": "hi there"})", &text));
  EXPECT_FALSE(text.chat);
  EXPECT_EQ(text.prompt_text, "hi there");
  EXPECT_TRUE(text.add_special_tokens) << "a text prompt gets BOS by default";
  EXPECT_FALSE(text.return_token_strs);
  TokenizeRequest chat;
  ASSERT_FALSE(ParseTokenizeRequest(
      R"({"messages": [{"role": "user", "content": "x"}], "add_generation_prompt": false,
          "return_token_strs": true, "chat_template_kwargs": {"enable_thinking": false}})",
      &chat));
  EXPECT_TRUE(chat.chat);
  EXPECT_EQ(chat.messages.size(), 1u);
  EXPECT_FALSE(chat.add_special_tokens) << "the template writes its own BOS";
  EXPECT_FALSE(chat.add_generation_prompt);
  EXPECT_TRUE(chat.return_token_strs);
  auto param = [](const std::string& body) {
    TokenizeRequest r;
    auto e = ParseTokenizeRequest(body, &r);
    return e ? e->param : "<no error>";
  };
  EXPECT_EQ(param(R"({})"), "prompt");
  EXPECT_EQ(param(R"({"prompt": "a", "messages": [{"role": "user", "content": "x"}]})"), "messages");
  EXPECT_EQ(param(R"({"prompt": 5})"), "prompt");
  EXPECT_EQ(param(R"({"messages": []})"), "messages");
  EXPECT_EQ(param(R"({"prompt": "a", "add_special_tokens": "yes"})"), "add_special_tokens");
  EXPECT_EQ(param(R"({"prompt": "a", "max_tokens": 3})"), "max_tokens");
  EXPECT_EQ(param("not json"), "");
}

TEST(DetokenizeRequestTest, TokenIdsOnly) {
  DetokenizeRequest r;
  ASSERT_FALSE(ParseDetokenizeRequest(R"({"model": "m", "tokens": [1, 2, 3]})", &r));
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{1, 2, 3}));
  auto param = [](const std::string& body) {
    DetokenizeRequest d;
    auto e = ParseDetokenizeRequest(body, &d);
    return e ? e->param : "<no error>";
  };
  EXPECT_EQ(param(R"({})"), "tokens");
  EXPECT_EQ(param(R"({"tokens": "1 2"})"), "tokens");
  EXPECT_EQ(param(R"({"tokens": [1, -2]})"), "tokens");
  EXPECT_EQ(param(R"({"tokens": [1.5]})"), "tokens");
  EXPECT_EQ(param(R"({"tokens": [1], "prompt": "x"})"), "prompt");
  EXPECT_EQ(param(R"({"tokens": []})"), "<no error>");
}

TEST(ApiErrorTest, StatusCodesMapToHttpAndOpenAiErrorJson) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
  const ApiError e = ErrorFromStatus(ResourceExhaustedError("busy"));
  EXPECT_EQ(e.http_status, 429);
  const Json j = Json::parse(e.Body());
  EXPECT_EQ(j["error"]["message"], "busy");
  EXPECT_EQ(j["error"]["type"], "rate_limit_error");
  EXPECT_EQ(j["error"]["code"], "rate_limit_exceeded");
  EXPECT_TRUE(j["error"]["param"].is_null());
  // Invalid UTF-8 in a message never throws.
  EXPECT_NE(BadRequest(std::string("bad \xff byte")).Body().find("bad"), std::string::npos);
}

}  // namespace
}  // namespace tokenfab
