// `tokenfab chat` end to end: two turns typed on stdin against a Qwen3-shaped model with seeded
// dummy weights and the real Qwen3 tokenizer; each turn's reply is streamed and the
// conversation (with the first reply) is rendered again for the second turn.
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"
#include "tokenizer_test_util.h"

namespace tokenfab {
namespace {

TEST(ChatCommandTest, StreamsAReplyPerTurnAndQuits) {
  const std::string tokenizer = testing::AssetTokenizerDir("qwen3");
  const std::string dir = testing::MakeTempDir("chat");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    const std::string text = testing::ReadTextFile(tokenizer + "/" + f);
    ASSERT_FALSE(text.empty()) << tokenizer << "/" << f << " is missing: run scripts/setup.sh";
    testing::WriteFile(dir + "/" + f, text);
  }
  testing::WriteFile(dir + "/config.json", R"({"architectures": ["Qwen3ForCausalLM"],
      "vocab_size": 151936, "hidden_size": 32, "intermediate_size": 64,
      "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
      "head_dim": 16, "max_position_embeddings": 2048, "tie_word_embeddings": true})");
  testing::WriteFile(dir + "/input.txt", "Hello there\nAnd again\n/exit\n");
  const auto r = testing::RunTokenfab("chat --model " + dir +
                                      " --dummy-weights --max-tokens 6 --temperature 0 "
                                      "--kv-cache-gb 0.05 --threads 2 < " + dir + "/input.txt");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One prompt per turn plus the one answered by /exit; a non-empty reply after each turn.
  size_t prompts = 0, pos = 0;
  while ((pos = r.out.find("> ", pos)) != std::string::npos) ++prompts, pos += 2;
  EXPECT_EQ(prompts, 3u) << r.out;
  const size_t first = r.out.find("> "), second = r.out.find("> ", first + 2);
  EXPECT_GT(second - first, 3u) << "empty first reply: " << r.out;
}

}  // namespace
}  // namespace tokenfab
