// The referee: tokenfab's CPU forward pass against what Hugging Face transformers computed on
// the same checkpoints (tests/data/golden, made by tools/golden/make_model_goldens.py).
//
// On the CPU (f32 math on the stored weights): every next-token log-probability within 1e-4 of
// transformers, argmax identical wherever transformers' top-2 logit gap is above 1e-3, and
// greedy continuations identical up to the first step where the gap is not. On CUDA (bf16
// activations and KV cache): max |delta logprob| <= 0.1 and mean <= 0.01, greedy identical
// where the gap is above 0.05, leaving out the MoE tokens whose routing is a near-tie (the k-th
// and (k+1)-th expert probabilities within 0.01), where transformers' own bf16 run routes
// differently too (its error there reaches 0.07 on qwen3_moe_fused), and the tokens that one
// such flip at or before them would move by more than 0.01 (the golden's flip_sensitivity). The
// CUDA cases run when the binary has a CUDA backend and a GPU is present.
#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "backend/backend_registry.h"
#include "base/json.h"
#include "base/mapped_file.h"
#include "engine/engine.h"
#include "test_util.h"

namespace tokenfab {
namespace {

struct DeviceTolerance {
  std::string device;
  double max_logprob_diff;
  double mean_logprob_diff;
  double gap_threshold;  // compare argmax / greedy tokens only where the top-2 gap exceeds this
  // MoE: leave out the tokens whose reference routing margin (gap between the k-th and
  // (k+1)-th expert probability) is below this, where bf16 may route to another expert.
  double router_margin_floor;
  // MoE: and the tokens that one flipped near-tie choice at or before them (the golden's
  // flip_sensitivity) would move by more than this, and the argmaxes a flip would change
  // (flip_argmax_changes, unless this is infinite): they measure a coin flip, not the engine.
  double flip_sensitivity_ceiling;
};

const DeviceTolerance kCpu{"cpu", 1e-4, 1e-4, 1e-3, 0.0, INFINITY};
const DeviceTolerance kCuda{"cuda", 0.1, 0.01, 0.05, 1e-2, 1e-2};

// The devices this binary can run here.
std::vector<DeviceTolerance> Devices() {
  RegisterBuiltinBackends();
  std::vector<DeviceTolerance> devices{kCpu};
  const auto names = RegisteredBackends();
  if (std::find(names.begin(), names.end(), "cuda") != names.end() && CreateBackend("cuda").ok()) {
    devices.push_back(kCuda);
  }
  return devices;
}

std::vector<std::string> GoldenNames() {
  std::vector<std::string> names;
  const std::string dir = testing::TestDataPath("golden");
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string file = e->d_name;
      if (file.size() > 5 && file.substr(file.size() - 5) == ".json") {
        names.push_back(file.substr(0, file.size() - 5));
      }
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Json LoadGolden(const std::string& name) {
  auto text = ReadFileToString(testing::TestDataPath("golden/" + name + ".json"));
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  auto json = ParseJson(text.ok() ? *text : "{}", name);
  EXPECT_TRUE(json.ok());
  return json.ok() ? *json : Json::object();
}

std::unique_ptr<Engine> MakeEngine(const std::string& name, const std::string& device) {
  RegisterBuiltinBackends();
  EngineConfig config;
  config.device = device;
  config.model_dir = testing::TestDataPath("models/" + name);
  config.num_threads = 2;
  config.kv_cache_bytes = 64ull << 20;
  auto engine = Engine::Create(config);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

template <typename T>
std::vector<T> AsVector(const Json& j) {
  return j.get<std::vector<T>>();
}

TEST(GoldenSetTest, CoversEveryArchitectureAndLayout) {
  const std::vector<std::string> names = GoldenNames();
  ASSERT_GE(names.size(), 10u);
  std::vector<std::string> archs;
  for (const std::string& n : names) archs.push_back(LoadGolden(n)["architecture"]);
  for (const char* arch : {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                           "Qwen3ForCausalLM", "Qwen3MoeForCausalLM", "MixtralForCausalLM"}) {
    EXPECT_NE(std::find(archs.begin(), archs.end(), arch), archs.end()) << arch;
  }
}

using GoldenParam = std::tuple<DeviceTolerance, std::string>;

class GoldenTest : public ::testing::TestWithParam<GoldenParam> {
 protected:
  const DeviceTolerance& tol() const { return std::get<0>(GetParam()); }
  const std::string& name() const { return std::get<1>(GetParam()); }
};

TEST_P(GoldenTest, LogprobsMatchTransformers) {
  const Json golden = LoadGolden(name());
  auto engine = MakeEngine(name(), tol().device);
  ASSERT_NE(engine, nullptr);
  double worst = 0.0, total = 0.0;
  int64_t count = 0, positions = 0;
  for (const Json& seq : golden["sequences"]) {
    const std::vector<int32_t> tokens = AsVector<int32_t>(seq["tokens"]);
    const std::vector<double> expected = AsVector<double>(seq["next_logprob"]);
    const std::vector<int32_t> argmax = AsVector<int32_t>(seq["argmax"]);
    const std::vector<double> gaps = AsVector<double>(seq["top2_gap"]);
    const std::vector<double> margins = seq.contains("router_margin")
                                            ? AsVector<double>(seq["router_margin"])
                                            : std::vector<double>(tokens.size(), 1.0);
    const std::vector<double> flip_moves = seq.contains("flip_sensitivity")
                                               ? AsVector<double>(seq["flip_sensitivity"])
                                               : std::vector<double>(expected.size(), 0.0);
    ASSERT_EQ(flip_moves.size(), expected.size());
    std::vector<bool> flip_argmax(tokens.size(), false);
    if (seq.contains("flip_argmax_changes") && tol().flip_sensitivity_ceiling < INFINITY) {
      for (const int32_t i : AsVector<int32_t>(seq["flip_argmax_changes"]))
        flip_argmax.at(i) = true;
    }
    ASSERT_OK_AND_ASSIGN(const ScoreResult got, engine->Score(tokens));
    ASSERT_EQ(got.next_logprob.size(), expected.size());
    ASSERT_EQ(got.argmax.size(), tokens.size());
    positions += static_cast<int64_t>(expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      if (margins[i] < tol().router_margin_floor) continue;
      if (flip_moves[i] > tol().flip_sensitivity_ceiling) continue;
      const double diff = std::fabs(got.next_logprob[i] - expected[i]);
      total += diff;
      ++count;
      worst = std::max(worst, diff);
      EXPECT_LE(diff, tol().max_logprob_diff)
          << "sequence of " << tokens.size() << " tokens, position " << i;
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (gaps[i] > tol().gap_threshold && !flip_argmax[i]) {
        EXPECT_EQ(got.argmax[i], argmax[i]) << "position " << i << " gap " << gaps[i];
      }
    }
  }
  ASSERT_GT(count, 0);
  // The near-tie rules may leave positions out (two thirds of qwen3_moe_fused's follow a flip
  // that moves them by more than 0.01), but never nearly all of them.
  EXPECT_GE(4 * count, positions) << count << " of " << positions << " positions compared";
  EXPECT_LE(total / count, tol().mean_logprob_diff);
  RecordProperty("max_abs_logprob_diff", std::to_string(worst));
  RecordProperty("mean_abs_logprob_diff", std::to_string(total / count));
  RecordProperty("positions_compared", std::to_string(count) + "/" + std::to_string(positions));
}

TEST_P(GoldenTest, GreedyContinuationsMatchTransformers) {
  const Json golden = LoadGolden(name());
  auto engine = MakeEngine(name(), tol().device);
  ASSERT_NE(engine, nullptr);
  std::vector<GenerationRequest> requests;
  for (const Json& g : golden["greedy"]) {
    GenerationRequest r;
    r.prompt = AsVector<int32_t>(g["prompt"]);
    r.sampling.temperature = 0.0;
    r.stop.max_tokens = static_cast<int32_t>(g["continuation"].size());
    r.stop.ignore_eos = true;
    requests.push_back(r);
  }
  ASSERT_FALSE(requests.empty());
  ASSERT_OK_AND_ASSIGN(const auto results, engine->Generate(requests));  // batched together
  size_t compared = 0;
  for (size_t r = 0; r < requests.size(); ++r) {
    const Json& g = golden["greedy"][r];
    const std::vector<int32_t> expected = AsVector<int32_t>(g["continuation"]);
    const std::vector<double> gaps = AsVector<double>(g["top2_gap"]);
    ASSERT_EQ(results[r].tokens.size(), expected.size());
    // Identical up to the first step whose top-2 gap is too small to call.
    for (size_t i = 0; i < expected.size() && gaps[i] > tol().gap_threshold; ++i, ++compared) {
      ASSERT_EQ(results[r].tokens[i].token, expected[i]) << "request " << r << " step " << i;
    }
  }
  EXPECT_GT(compared, 0u) << "no step with a clear top-2 gap: the golden tests nothing";
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, GoldenTest,
                         ::testing::Combine(::testing::ValuesIn(Devices()),
                                            ::testing::ValuesIn(GoldenNames())),
                         [](const auto& info) {
                           return std::get<0>(info.param).device + "_" + std::get<1>(info.param);
                         });

}  // namespace
}  // namespace tokenfab
