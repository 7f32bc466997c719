// The tokenfab binary on bad input and on good: every failure exits non-zero (never by a
// signal) with exactly one line on stderr naming the problem; score and generate print the
// documented JSON shapes; --dummy-weights runs a config alone; --seed makes sampling
// reproducible.
//
// Bad checkpoints are temp copies of a golden one, corrupted on purpose.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/mapped_file.h"
#include "checkpoint_files.h"
#include "test_util.h"

namespace tokenfab {
namespace {

using testing::CommandResult;
using testing::RunTokenfab;
using testing::ScopedTempDir;
using testing::TensorBlob;

constexpr const char* kModel = "llama_gqa4_llama3rope_classic";  // vocab 1003, bf16, one file
constexpr const char* kTensor = "model.layers.0.mlp.up_proj.weight";

std::string Golden(const std::string& name) { return testing::TestDataPath("models/" + name); }

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// "1,2,3"
template <typename T>
std::string Join(const std::vector<T>& ids) {
  std::string out;
  for (const T& id : ids) {
    if (!out.empty()) out += ',';
    out += std::to_string(id);
  }
  return out;
}

std::string Describe(const CommandResult& r) {
  auto clip = [](const std::string& s) { return s.size() > 600 ? s.substr(0, 600) + "..." : s; };
  return "exit " + std::to_string(r.exit_code) + "\nstdout: " + clip(r.out) +
         "\nstderr: " + clip(r.err);
}

// A failed run: non-zero exit without a crash, and one stderr line containing every needle.
void ExpectOneLineError(const CommandResult& r, const std::vector<std::string>& needles) {
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_LT(r.exit_code, 128) << "killed by a signal\n" << Describe(r);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "want one line\n" << Describe(r);
  EXPECT_FALSE(r.err.empty() || r.err.back() != '\n') << Describe(r);
  EXPECT_EQ(r.err.rfind("tokenfab", 0), 0u) << Describe(r);
  for (const std::string& n : needles) {
    EXPECT_NE(r.err.find(n), std::string::npos) << "stderr does not name '" << n << "'\n"
                                                << Describe(r);
  }
  EXPECT_TRUE(r.out.empty()) << "a failed command printed a result\n" << Describe(r);
}

CommandResult Score(const std::string& model_dir, const std::string& tokens = "1,2,3") {
  return RunTokenfab("score --threads 1 --model " + Quote(model_dir) + " --tokens " +
                     Quote(tokens));
}

// A temp copy of kModel.
class CorruptModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<ScopedTempDir>("cli_model");
    testing::CopyGoldenModel(kModel, *dir_);
  }
  std::string weights() const { return dir_->file("model.safetensors"); }
  void EditTensors(const std::function<void(std::vector<TensorBlob>&)>& edit) {
    std::vector<TensorBlob> t = testing::DecodeSafetensors(testing::ReadFileBytes(weights()));
    edit(t);
    testing::WriteFileBytes(weights(), testing::EncodeSafetensors(t));
  }
  TensorBlob& Find(std::vector<TensorBlob>& tensors, const std::string& name) {
    auto it = std::find_if(tensors.begin(), tensors.end(),
                           [&](const TensorBlob& b) { return b.name == name; });
    EXPECT_NE(it, tensors.end());
    return *it;
  }
  std::unique_ptr<ScopedTempDir> dir_;
};

TEST_F(CorruptModelTest, TheUncorruptedCopyScores) {
  const CommandResult r = Score(dir_->path());
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
}

TEST_F(CorruptModelTest, MissingConfig) {
  std::remove(dir_->file("config.json").c_str());
  ExpectOneLineError(Score(dir_->path()), {"config.json"});
}

TEST_F(CorruptModelTest, MalformedConfig) {
  testing::WriteFileBytes(dir_->file("config.json"),
                          "{\"architectures\": [\"LlamaForCausalLM\"],\n");
  ExpectOneLineError(Score(dir_->path()), {"config.json", "JSON"});
}

TEST_F(CorruptModelTest, MissingWeights) {
  std::remove(weights().c_str());
  ExpectOneLineError(Score(dir_->path()), {"model.safetensors", "--dummy-weights"});
}

TEST_F(CorruptModelTest, TruncatedSafetensors) {
  const std::string bytes = testing::ReadFileBytes(weights());
  testing::WriteFileBytes(weights(), bytes.substr(0, bytes.size() / 2));
  ExpectOneLineError(Score(dir_->path()), {weights(), "truncated"});
}

TEST_F(CorruptModelTest, TruncatedToAFewBytes) {
  testing::WriteFileBytes(weights(), "abc");
  ExpectOneLineError(Score(dir_->path()), {weights(), "truncated"});
}

TEST_F(CorruptModelTest, CorruptHeaderLength) {
  std::string bytes = testing::ReadFileBytes(weights());
  for (int i = 0; i < 8; ++i) bytes[i] = '\xee';
  testing::WriteFileBytes(weights(), bytes);
  ExpectOneLineError(Score(dir_->path()), {weights(), "header"});
}

TEST_F(CorruptModelTest, MissingTensor) {
  EditTensors([&](std::vector<TensorBlob>& t) {
    t.erase(
        std::find_if(t.begin(), t.end(), [](const TensorBlob& b) { return b.name == kTensor; }));
  });
  ExpectOneLineError(Score(dir_->path()), {kTensor, "model.safetensors"});
}

TEST_F(CorruptModelTest, TensorOfTheWrongShape) {
  EditTensors([&](std::vector<TensorBlob>& t) {
    TensorBlob& b = Find(t, kTensor);
    std::swap(b.shape[0], b.shape[1]);
  });
  ExpectOneLineError(Score(dir_->path()), {kTensor, "shape", "model.safetensors"});
}

TEST_F(CorruptModelTest, TensorOfANonFloatDType) {
  EditTensors([&](std::vector<TensorBlob>& t) { Find(t, kTensor).dtype = "I16"; });
  ExpectOneLineError(Score(dir_->path()), {kTensor, "I16", "model.safetensors"});
}

TEST_F(CorruptModelTest, UnknownArchitecture) {
  testing::EditConfig(dir_->path(), [](Json& c) { c["architectures"] = {"GPTNeoXForCausalLM"}; });
  ExpectOneLineError(Score(dir_->path()), {"GPTNeoXForCausalLM", "config.json"});
}

TEST_F(CorruptModelTest, UnsupportedRopeType) {
  testing::EditConfig(dir_->path(), [](Json& c) {
    c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  });
  ExpectOneLineError(Score(dir_->path()), {"yarn", "config.json"});
}

TEST_F(CorruptModelTest, ConfigAndWeightsDisagree) {
  testing::EditConfig(dir_->path(), [](Json& c) { c["vocab_size"] = 2000; });
  ExpectOneLineError(Score(dir_->path()), {"model.embed_tokens.weight", "shape"});
}

TEST_F(CorruptModelTest, ShardIndexNamingAMissingShard) {
  testing::WriteFileBytes(
      dir_->file("model.safetensors.index.json"),
      R"({"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}})");
  ExpectOneLineError(Score(dir_->path()), {"model-00002-of-00002.safetensors"});
}

TEST(CliErrorsTest, MissingModelDirectory) {
  ExpectOneLineError(Score("/nonexistent/tokenfab_model"), {"/nonexistent/tokenfab_model"});
}

TEST(CliErrorsTest, TokenIdOutOfRange) {
  ExpectOneLineError(Score(Golden(kModel), "1,1003,2"), {"1003"});
  ExpectOneLineError(Score(Golden(kModel), "1,-5"), {"-5"});
  ExpectOneLineError(Score(Golden(kModel), "99999999999"), {"99999999999"});
}

TEST(CliErrorsTest, EmptyTokenList) {
  ExpectOneLineError(Score(Golden(kModel), ""), {"--tokens", "empty"});
  ExpectOneLineError(Score(Golden(kModel), " "), {"--tokens", "empty"});
}

TEST(CliErrorsTest, MalformedTokens) {
  for (const char* tokens : {"1,x,3", "1,,2", "1,2,", "1.5", "0x10"}) {
    ExpectOneLineError(Score(Golden(kModel), tokens), {"--tokens"});
  }
}

TEST(CliErrorsTest, UnknownFlagMissingValueAndMissingModel) {
  ExpectOneLineError(RunTokenfab("score --model " + Quote(Golden(kModel)) + " --tokens 1 --bogus"),
                     {"--bogus"});
  ExpectOneLineError(RunTokenfab("score --tokens 1,2"), {"--model"});
  ExpectOneLineError(RunTokenfab("score --model " + Quote(Golden(kModel)) + " --tokens"),
                     {"--tokens"});
  ExpectOneLineError(RunTokenfab("score --model " + Quote(Golden(kModel))), {"--tokens"});
  ExpectOneLineError(RunTokenfab("frobnicate"), {"frobnicate"});
  ExpectOneLineError(RunTokenfab("score stray --tokens 1"), {"stray"});
}

TEST(CliErrorsTest, BadGenerateSettings) {
  const std::string base = "generate --model " + Quote(Golden(kModel)) + " --tokens 1,2 ";
  ExpectOneLineError(RunTokenfab(base + "--max-tokens 0"), {"--max-tokens"});
  ExpectOneLineError(RunTokenfab(base + "--temperature -1"), {"temperature"});
  ExpectOneLineError(RunTokenfab(base + "--temperature abc"), {"--temperature"});
  ExpectOneLineError(RunTokenfab(base + "--top-p 0"), {"top_p"});
  ExpectOneLineError(RunTokenfab(base + "--logprobs 21"), {"--logprobs"});
  ExpectOneLineError(RunTokenfab(base + "--stop-token-ids 1,x"), {"--stop-token-ids"});
  ExpectOneLineError(RunTokenfab(base + "--block-size 0"), {"--block-size"});
  ExpectOneLineError(RunTokenfab(base + "--device tpu"), {"tpu"});
  ExpectOneLineError(RunTokenfab(base + "--log-level loud"), {"--log-level"});
  // 0.0001 GB holds 24 blocks of 16 tokens of this model's KV cache.
  ExpectOneLineError(RunTokenfab(base + "--kv-cache-gb 0.0001 --max-tokens 1000"), {"KV cache"});
  ExpectOneLineError(RunTokenfab(base + "--kv-cache-gb 0.000000001"), {"KV cache"});
}

TEST(CliErrorsTest, BadRateSearchSettings) {
  // Checked before any request is sent (nothing listens on port 1).
  const std::string base = "bench --url http://127.0.0.1:1 --model m ";
  ExpectOneLineError(RunTokenfab(base + "--find-max-rate 0"), {"rate search"});
  ExpectOneLineError(RunTokenfab(base + "--find-max-rate 4 --max-rate 1"), {"rate search"});
  ExpectOneLineError(RunTokenfab(base + "--find-max-rate x"), {"--find-max-rate"});
  ExpectOneLineError(RunTokenfab(base + "--find-max-rate 4 --request-rate 2"),
                     {"--find-max-rate", "--request-rate"});
  ExpectOneLineError(RunTokenfab(base + "--find-max-rate 4 --trial-seconds 0"),
                     {"--trial-seconds"});
  ExpectOneLineError(RunTokenfab(base + "--find-max-rate 4 --rate-precision -1"), {"precision"});
}

// ---------------------------------------------------------------------------------------------
// Output shapes and determinism.

Json ParseStdout(const CommandResult& r) {
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one line of JSON\n" << Describe(r);
  auto j = ParseJson(r.out, "stdout");
  EXPECT_TRUE(j.ok()) << j.status().ToString() << "\n" << Describe(r);
  return j.ok() ? *j : Json::object();
}

TEST(CliOutputTest, ScoreMatchesTheGoldenLogprobs) {
  // The golden file's sequences, scored through the CLI: n - 1 log-probs, n argmaxes, and the
  // values transformers computed.
  auto text = ReadFileToString(testing::TestDataPath(std::string("golden/") + kModel + ".json"));
  ASSERT_TRUE(text.ok());
  auto golden = ParseJson(*text, "golden");
  ASSERT_TRUE(golden.ok());
  int checked = 0;
  for (const Json& seq : (*golden)["sequences"]) {
    const std::vector<int32_t> tokens = seq["tokens"].get<std::vector<int32_t>>();
    if (tokens.size() > 40 || checked >= 3) continue;
    const Json out = ParseStdout(Score(Golden(kModel), Join(tokens)));
    ASSERT_TRUE(out.contains("next_logprob") && out.contains("argmax")) << out.dump();
    ASSERT_EQ(out["next_logprob"].size(), tokens.size() - 1);
    ASSERT_EQ(out["argmax"].size(), tokens.size());
    const std::vector<double> want = seq["next_logprob"].get<std::vector<double>>();
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(out["next_logprob"][i].get<double>(), want[i], 1e-4) << i;
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(CliOutputTest, GenerateJsonShape) {
  const Json out = ParseStdout(RunTokenfab("generate --threads 1 --model " + Quote(Golden(kModel)) +
                                           " --tokens 5,6,7 --max-tokens 6 --temperature 0 "
                                           "--ignore-eos --json"));
  ASSERT_TRUE(out.contains("tokens") && out.contains("logprobs")) << out.dump();
  ASSERT_EQ(out["tokens"].size(), 6u);
  ASSERT_EQ(out["logprobs"].size(), 6u);
  EXPECT_EQ(out["finish_reason"], "length");
  EXPECT_FALSE(out.contains("top_logprobs")) << "only with --logprobs N";
  for (const Json& t : out["tokens"]) {
    EXPECT_GE(t.get<int>(), 0);
    EXPECT_LT(t.get<int>(), 1003);
  }
  for (const Json& lp : out["logprobs"]) EXPECT_LE(lp.get<double>(), 0.0);
  // Greedy: each token is the argmax that score reports for the same prefix.
  std::vector<int> all = {5, 6, 7};
  for (const Json& t : out["tokens"]) all.push_back(t.get<int>());
  const Json score = ParseStdout(Score(Golden(kModel), Join(all)));
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_NEAR(out["logprobs"][i].get<double>(), score["next_logprob"][2 + i].get<double>(), 1e-5);
  }
}

TEST(CliOutputTest, GenerateTopLogprobsAndPlainOutput) {
  const std::string base = "generate --threads 1 --model " + Quote(Golden(kModel)) +
                           " --tokens 9,8 --max-tokens 4 --temperature 0 --ignore-eos ";
  const Json out = ParseStdout(RunTokenfab(base + "--json --logprobs 3"));
  ASSERT_EQ(out["top_logprobs"].size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_EQ(out["top_logprobs"][i].size(), 3u);
    EXPECT_EQ(out["top_logprobs"][i][0]["token"], out["tokens"][i]) << "greedy takes the best";
  }
  const CommandResult plain = RunTokenfab(base);
  ASSERT_EQ(plain.exit_code, 0) << Describe(plain);
  EXPECT_EQ(plain.out, Join(out["tokens"].get<std::vector<int>>()) + "\n");
}

TEST(CliOutputTest, StopTokenEndsGeneration) {
  const std::string base = "generate --threads 1 --model " + Quote(Golden(kModel)) +
                           " --tokens 3,4 --max-tokens 5 --temperature 0 --ignore-eos --json";
  const Json free_run = ParseStdout(RunTokenfab(base));
  const int first = free_run["tokens"][0].get<int>();
  const Json stopped =
      ParseStdout(RunTokenfab(base + " --stop-token-ids " + std::to_string(first)));
  EXPECT_EQ(stopped["tokens"].size(), 1u);
  EXPECT_EQ(stopped["finish_reason"], "stop");
}

TEST(CliOutputTest, DummyWeightsRunAConfigAlone) {
  ScopedTempDir dir("config_only");
  testing::WriteFileBytes(dir.file("config.json"),
                          testing::ReadFileBytes(Golden("qwen3_moe_fused") + "/config.json"));
  const std::string base =
      "score --threads 1 --dummy-weights --model " + Quote(dir.path()) + " --tokens 1,2,3,4";
  const Json a = ParseStdout(RunTokenfab(base));
  ASSERT_EQ(a["next_logprob"].size(), 3u);
  ASSERT_EQ(a["argmax"].size(), 4u);
  EXPECT_EQ(ParseStdout(RunTokenfab(base)), a) << "dummy weights are seeded";
  EXPECT_NE(ParseStdout(RunTokenfab(base + " --dummy-seed 9")), a) << "another seed, other weights";
  // Without --dummy-weights the missing safetensors is an error.
  ExpectOneLineError(RunTokenfab("score --model " + Quote(dir.path()) + " --tokens 1,2"),
                     {"--dummy-weights"});
}

TEST(CliOutputTest, SeededGenerationIsDeterministic) {
  const std::string base = "generate --threads 1 --model " + Quote(Golden(kModel)) +
                           " --tokens 1,2,3 --max-tokens 12 --temperature 1 --ignore-eos --json";
  const Json a = ParseStdout(RunTokenfab(base + " --seed 7"));
  const Json b = ParseStdout(RunTokenfab(base + " --seed 7"));
  const Json c = ParseStdout(RunTokenfab(base + " --seed 8"));
  EXPECT_EQ(a["tokens"], b["tokens"]);
  EXPECT_EQ(a["logprobs"], b["logprobs"]);
  EXPECT_NE(a["tokens"], c["tokens"]);
}

TEST(CliOutputTest, HelpAndVersion) {
  const CommandResult version = RunTokenfab("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("tokenfab ", 0), 0u) << version.out;
  const CommandResult help = RunTokenfab("score --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--tokens"), std::string::npos) << help.out;
  const CommandResult usage = RunTokenfab("");
  EXPECT_EQ(usage.exit_code, 2);
}

}  // namespace
}  // namespace tokenfab
