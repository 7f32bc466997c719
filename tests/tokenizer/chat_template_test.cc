// Chat templates against transformers: the real Qwen3 and Llama 3.1 templates over several
// conversations (system, multi-turn, tools, thinking, add_generation_prompt, enable_thinking),
// rendered text and token ids; and small templates exercising each Jinja construct, rendered
// by transformers' own environment (tools/golden/make_tokenizer_goldens.py).
#include <gtest/gtest.h>

#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer_test_util.h"

namespace tokenfab {
namespace {

using testing::AssetTokenizerDir;
using testing::LoadAssetTokenizer;
using testing::LoadGolden;

OrderedJson ToOrdered(const std::string& text) {
  auto j = ParseOrderedJson(text, "golden");
  EXPECT_TRUE(j.ok());
  return j.ok() ? *j : OrderedJson();
}

// The golden files are read with key order kept: templates see dicts in insertion order.
OrderedJson LoadOrderedGolden(const std::string& file) {
  return ToOrdered(testing::ReadTextFile(testing::TestDataPath("tokenizer/" + file)));
}

TEST(ChatTemplateTest, JinjaConstructsMatchTransformers) {
  const OrderedJson golden = LoadOrderedGolden("templates.json");
  ASSERT_TRUE(golden.contains("results"));
  int checked = 0;
  for (const OrderedJson& r : golden["results"]) {
    const std::string name = r["name"].get<std::string>();
    SCOPED_TRACE(name);
    ChatRenderOptions options;
    options.add_generation_prompt = true;
    options.extra = r["kwargs"];
    if (options.extra.contains("tools")) {
      options.tools = options.extra["tools"];
      options.extra.erase("tools");
    }
    auto tmpl = ChatTemplate::Create(r["template"].get<std::string>(), name);
    Result<std::string> out = tmpl.ok() ? (*tmpl)->Render(r["messages"], options,
                                                          {{"bos_token", "<s>"}, {"eos_token", "</s>"}})
                                        : Result<std::string>(tmpl.status());
    if (r.contains("output")) {
      EXPECT_TRUE(out.ok()) << out.status().ToString();
      if (out.ok()) {
        EXPECT_EQ(*out, r["output"].get<std::string>());
      }
    } else {
      EXPECT_FALSE(out.ok()) << "transformers failed with " << r["error"] << " but we rendered '"
                             << out.value() << "'";
      if (!out.ok()) {
        EXPECT_NE(out.status().message().find("line"), std::string::npos) << out.status().message();
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 40);
}

TEST(ChatTemplateTest, RaiseExceptionMessageIsReported) {
  ASSERT_OK_AND_ASSIGN(auto tmpl, ChatTemplate::Create("a\n{{ raise_exception('roles must alternate') }}", "t"));
  auto out = tmpl->Render(OrderedJson::array(), {}, {});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("roles must alternate"), std::string::npos);
  EXPECT_NE(out.status().message().find("line 2"), std::string::npos) << out.status().message();
}

TEST(ChatTemplateTest, UnknownConstructNamesTheLine) {
  auto tmpl = ChatTemplate::Create("ok\nok\n{% include 'x.j2' %}", "t");
  ASSERT_FALSE(tmpl.ok());
  EXPECT_NE(tmpl.status().message().find("line 3"), std::string::npos) << tmpl.status().message();
  EXPECT_NE(tmpl.status().message().find("include"), std::string::npos);
}

class RealChatTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RealChatTest, RenderingsAndIdsMatchApplyChatTemplate) {
  const auto tok = LoadAssetTokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  ASSERT_OK_AND_ASSIGN(const TokenizerConfig config, TokenizerConfig::Load(AssetTokenizerDir(GetParam())));
  ASSERT_NE(config.chat_template, nullptr);
  const OrderedJson golden = LoadOrderedGolden("chat_" + GetParam() + ".json");
  std::map<std::string, OrderedJson> conversations;
  for (const OrderedJson& c : golden["conversations"]) conversations[c["name"].get<std::string>()] = c;
  int checked = 0;
  for (const OrderedJson& r : golden["results"]) {
    const OrderedJson& conv = conversations.at(r["conversation"].get<std::string>());
    SCOPED_TRACE(r["conversation"].get<std::string>() + "/" + r["variant"].get<std::string>());
    ChatRenderOptions options;
    options.extra = r["kwargs"];
    options.add_generation_prompt = r["kwargs"].value("add_generation_prompt", false);
    if (conv.contains("tools")) options.tools = conv["tools"];
    auto prompt = config.chat_template->Render(conv["messages"], options, config.special_tokens);
    if (r.contains("error")) {
      EXPECT_FALSE(prompt.ok());
      continue;
    }
    ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
    EXPECT_EQ(*prompt, r["prompt"].get<std::string>());
    ASSERT_OK_AND_ASSIGN(const auto ids, tok->Encode(*prompt));
    EXPECT_EQ(ids, r["ids"].get<std::vector<int32_t>>());
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, RealChatTest, ::testing::Values("qwen3", "llama3_1"));

}  // namespace
}  // namespace tokenfab
