// Checkpoint: single files and sharded ones with their index, and an index that lies (a shard
// that is missing, a tensor it promises that is not there, a file name that would escape the
// model directory).
#include "model/checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "checkpoint_files.h"
#include "test_util.h"

namespace tokenfab {
namespace {

using testing::EncodeSafetensors;
using testing::F32Bytes;
using testing::ScopedTempDir;
using testing::WriteFileBytes;

void WriteIndex(const ScopedTempDir& dir, const Json& weight_map) {
  WriteFileBytes(dir.file("model.safetensors.index.json"),
                 Json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump());
}

// Two shards: a.safetensors holds x and y, b.safetensors holds z.
void WriteShards(const ScopedTempDir& dir) {
  WriteFileBytes(dir.file("a.safetensors"), EncodeSafetensors({{"x", "F32", {2}, F32Bytes({1, 2})},
                                                               {"y", "F32", {1}, F32Bytes({3})}}));
  WriteFileBytes(dir.file("b.safetensors"), EncodeSafetensors({{"z", "F32", {1}, F32Bytes({4})}}));
}

// Element i of an f32 tensor, read in place (the data need not be aligned).
float FloatAt(const HostTensor& t, int64_t i) {
  float v;
  std::memcpy(&v, t.data + i * sizeof(float), sizeof(v));
  return v;
}

template <typename T>
void ExpectError(const Result<T>& r, StatusCode code, const std::vector<std::string>& needles) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  for (const std::string& n : needles) {
    EXPECT_NE(r.status().message().find(n), std::string::npos) << r.status().message();
  }
}

TEST(CheckpointTest, SingleFile) {
  ScopedTempDir dir("ckpt_single");
  WriteFileBytes(dir.file("model.safetensors"),
                 EncodeSafetensors({{"w", "F32", {3}, F32Bytes({1, 2, 3})}}));
  ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpoint::Open(dir.path()));
  EXPECT_TRUE(ckpt->Has("w"));
  EXPECT_FALSE(ckpt->Has("v"));
  ASSERT_OK_AND_ASSIGN(const HostTensor t, ckpt->Find("w"));
  EXPECT_EQ(t.dtype, SafeDType::kF32);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(t.bytes, 12u);
  EXPECT_EQ(t.numel(), 3);
  EXPECT_EQ(t.file, dir.file("model.safetensors"));
  EXPECT_EQ(FloatAt(t, 2), 3.0f);
  EXPECT_EQ(ckpt->TensorNames(), (std::vector<std::string>{"w"}));
  ExpectError(ckpt->Find("v"), StatusCode::kNotFound, {"'v'", "model.safetensors"});
}

TEST(CheckpointTest, ShardedWithIndex) {
  ScopedTempDir dir("ckpt_sharded");
  WriteShards(dir);
  WriteIndex(dir, {{"x", "a.safetensors"}, {"y", "a.safetensors"}, {"z", "b.safetensors"}});
  ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpoint::Open(dir.path()));
  ASSERT_OK_AND_ASSIGN(const HostTensor z, ckpt->Find("z"));
  EXPECT_EQ(z.file, dir.file("b.safetensors"));
  EXPECT_EQ(FloatAt(z, 0), 4.0f);
  ASSERT_OK_AND_ASSIGN(const HostTensor x, ckpt->Find("x"));
  EXPECT_EQ(FloatAt(x, 1), 2.0f);
  EXPECT_EQ(ckpt->TensorNames().size(), 3u);
  EXPECT_NE(ckpt->description().find("2 shards"), std::string::npos) << ckpt->description();
}

TEST(CheckpointTest, GoldenShardedCheckpointsOpen) {
  for (const char* name : {"llama_headdim24_linear_sharded", "mixtral_per_expert_sharded"}) {
    auto ckpt = Checkpoint::Open(testing::TestDataPath(std::string("models/") + name));
    ASSERT_TRUE(ckpt.ok()) << name << ": " << ckpt.status().ToString();
    EXPECT_TRUE((*ckpt)->Has("model.embed_tokens.weight")) << name;
  }
}

TEST(CheckpointTest, MissingDirectoryOrWeights) {
  ExpectError(Checkpoint::Open("/nonexistent/model"), StatusCode::kNotFound,
              {"/nonexistent/model"});
  ScopedTempDir dir("ckpt_empty");
  WriteFileBytes(dir.file("config.json"), "{}");
  ExpectError(Checkpoint::Open(dir.path()), StatusCode::kNotFound,
              {"model.safetensors", "--dummy-weights"});
}

TEST(CheckpointTest, IndexNamingAMissingShard) {
  ScopedTempDir dir("ckpt_missing_shard");
  WriteShards(dir);
  WriteIndex(dir, {{"x", "a.safetensors"}, {"z", "c.safetensors"}});
  ExpectError(Checkpoint::Open(dir.path()), StatusCode::kNotFound, {"c.safetensors"});
}

TEST(CheckpointTest, IndexPromisingATensorThatIsNotThere) {
  ScopedTempDir dir("ckpt_absent_tensor");
  WriteShards(dir);
  // z lives in b, not in a; w lives nowhere.
  WriteIndex(dir, {{"x", "a.safetensors"}, {"z", "a.safetensors"}, {"y", "a.safetensors"}});
  ExpectError(Checkpoint::Open(dir.path()), StatusCode::kDataLoss, {"'z'", "a.safetensors"});
  WriteIndex(dir, {{"x", "a.safetensors"}, {"w", "b.safetensors"}});
  ExpectError(Checkpoint::Open(dir.path()), StatusCode::kDataLoss, {"'w'", "b.safetensors"});
}

TEST(CheckpointTest, IndexPathsMayNotEscapeTheDirectory) {
  ScopedTempDir dir("ckpt_escape");
  WriteShards(dir);
  for (const char* evil : {"../a.safetensors", "/etc/passwd", "..", "sub/a.safetensors", ""}) {
    WriteIndex(dir, {{"x", "a.safetensors"}, {"y", evil}});
    ExpectError(Checkpoint::Open(dir.path()), StatusCode::kDataLoss, {"outside the directory"});
  }
}

TEST(CheckpointTest, CorruptIndexOrShard) {
  ScopedTempDir dir("ckpt_corrupt");
  WriteShards(dir);
  WriteFileBytes(dir.file("model.safetensors.index.json"), "{\"weight_map\": ");
  ExpectError(Checkpoint::Open(dir.path()), StatusCode::kDataLoss,
              {"model.safetensors.index.json"});
  WriteFileBytes(dir.file("model.safetensors.index.json"), "{\"metadata\": {}}");
  ExpectError(Checkpoint::Open(dir.path()), StatusCode::kDataLoss, {"weight_map"});
  WriteIndex(dir, {{"x", 7}});
  ExpectError(Checkpoint::Open(dir.path()), StatusCode::kDataLoss, {"weight_map"});
  WriteIndex(dir, {{"x", "a.safetensors"}});
  WriteFileBytes(dir.file("a.safetensors"), std::string("\x05\0\0", 3));
  ExpectError(Checkpoint::Open(dir.path()), StatusCode::kDataLoss, {"a.safetensors", "truncated"});
}

}  // namespace
}  // namespace tokenfab
