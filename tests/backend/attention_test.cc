// PrepareQkv and Attention of every backend against double-precision references: GQA ratios 1, 4
// and 8, block sizes 1 (one-token pages), 5 and 16, sliding windows, awkward lengths (17, 97),
// and ragged batches of several sequences with cached prefixes whose blocks are scattered over
// the cache in no particular order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "base/random.h"
#include "op_test_util.h"
#include "test_util.h"

namespace tokenfab {
namespace {

using testing::DeviceTensor;
using testing::Download;
using testing::RandomFloats;
using testing::RoundTo;
using testing::Upload;
using testing::UploadI32;

struct HeadConfig {
  int hq, hkv, d;
};

// One sequence of a batch: `cached` tokens already in the cache plus `new_tokens` this step.
struct SeqShape {
  int32_t cached;
  int32_t new_tokens;
};

// A ragged batch laid out as the engine would: metadata on the host and in backend memory.
struct Batch {
  std::vector<SeqShape> seqs;
  int32_t block_size = 16;
  int32_t num_blocks = 0;
  int32_t max_blocks_per_seq = 0;
  std::vector<int32_t> positions, slots, query_start, seq_lens, block_tables;
  int32_t num_tokens() const { return static_cast<int32_t>(positions.size()); }
  // Slot of position p of sequence s.
  int32_t Slot(int s, int32_t p) const {
    return block_tables[s * max_blocks_per_seq + p / block_size] * block_size + p % block_size;
  }
};

// Block tables take blocks from a seeded shuffle of the cache (so sequences interleave), leave
// two spare blocks, and pad with -1.
Batch MakeBatch(const std::vector<SeqShape>& seqs, int32_t block_size, uint64_t seed) {
  Batch b;
  b.seqs = seqs;
  b.block_size = block_size;
  int32_t total_blocks = 0;
  for (const SeqShape& s : seqs) {
    const int32_t blocks = (s.cached + s.new_tokens + block_size - 1) / block_size;
    b.max_blocks_per_seq = std::max(b.max_blocks_per_seq, blocks);
    total_blocks += blocks;
  }
  b.num_blocks = total_blocks + 2;
  std::vector<int32_t> order(b.num_blocks);
  std::iota(order.begin(), order.end(), 0);
  for (int32_t i = b.num_blocks - 1; i > 0; --i) {
    std::swap(order[i], order[HashCounter(seed, 99, i) % (i + 1)]);
  }
  size_t next = 0;
  b.query_start.push_back(0);
  for (const SeqShape& s : seqs) {
    const int32_t len = s.cached + s.new_tokens;
    const int32_t blocks = (len + block_size - 1) / block_size;
    for (int32_t i = 0; i < b.max_blocks_per_seq; ++i) {
      b.block_tables.push_back(i < blocks ? order[next++] : -1);
    }
    b.seq_lens.push_back(len);
    b.query_start.push_back(b.query_start.back() + s.new_tokens);
  }
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (int32_t i = 0; i < seqs[s].new_tokens; ++i) {
      const int32_t pos = seqs[s].cached + i;
      b.positions.push_back(pos);
      b.slots.push_back(b.Slot(static_cast<int>(s), pos));
    }
  }
  return b;
}

// The metadata tensors of `b` in backend memory; keeps them alive.
struct DeviceMetadata {
  DeviceTensor positions, slots, query_start, seq_lens, block_tables;
  AttentionMetadata meta;
};

DeviceMetadata UploadMetadata(Backend& backend, const Batch& b) {
  DeviceMetadata d;
  const int32_t t = b.num_tokens(), s = static_cast<int32_t>(b.seqs.size());
  d.positions = UploadI32(backend, b.positions, {t});
  d.slots = UploadI32(backend, b.slots, {t});
  d.query_start = UploadI32(backend, b.query_start, {s + 1});
  d.seq_lens = UploadI32(backend, b.seq_lens, {s});
  d.block_tables = UploadI32(backend, b.block_tables, {s, b.max_blocks_per_seq});
  AttentionMetadata& m = d.meta;
  m.num_seqs = s;
  m.num_tokens = t;
  for (const SeqShape& q : b.seqs) m.max_query_len = std::max(m.max_query_len, q.new_tokens);
  m.max_seq_len = *std::max_element(b.seq_lens.begin(), b.seq_lens.end());
  m.num_leading_decodes = CountLeadingDecodes(b.query_start);
  m.block_size = b.block_size;
  m.max_blocks_per_seq = b.max_blocks_per_seq;
  m.positions = d.positions.tensor;
  m.slot_mapping = d.slots.tensor;
  m.query_start = d.query_start.tensor;
  m.seq_lens = d.seq_lens.tensor;
  m.block_tables = d.block_tables.tensor;
  return d;
}

// Batches every test runs: single prefills of awkward lengths, pure decode over several
// contexts, and a mixed step with cached prefixes (chunked prefill next to decodes).
std::vector<std::vector<SeqShape>> Scenarios() {
  return {
      {{0, 17}},
      {{0, 97}},
      {{0, 1}},
      {{16, 1}, {0, 1}, {96, 1}, {40, 1}},
      {{0, 17}, {80, 17}, {96, 1}, {5, 3}, {31, 1}},
      // The order the engine gives a mixed step: its decodes first (the CUDA backend runs
      // them through the decode kernel, the chunks through the prefill kernel).
      {{96, 1}, {31, 1}, {0, 17}, {80, 17}, {5, 3}},
      // A chunk past a cached prefix that spans more than one 128-query prefill tile.
      {{40, 150}, {0, 20}},
  };
}

// ---------------------------------------------------------------------------------------------
// Attention

// (backend, heads, block size)
using AttentionParam = std::tuple<std::string, HeadConfig, int32_t>;

class AttentionTest : public ::testing::TestWithParam<AttentionParam>,
                      public testing::BackendFixture {
 protected:
  void SetUp() override {
    InitBackend(std::get<0>(GetParam()));
    ASSERT_TRUE(ok());
  }

  void Run(const std::vector<SeqShape>& seqs, int window, float scale, uint64_t seed) {
    const HeadConfig h = std::get<1>(GetParam());
    const int32_t bs = std::get<2>(GetParam());
    const Batch b = MakeBatch(seqs, bs, seed);
    const int64_t t = b.num_tokens();
    const int64_t slots = int64_t(b.num_blocks) * bs;
    const int64_t kv_row = int64_t(h.hkv) * h.d;
    // Slots that no sequence owns, and positions past a sequence's end in its last block, hold
    // NaN: a kernel that reads them (or multiplies them by a zero weight) fails loudly.
    std::vector<float> k = RoundTo(act(), RandomFloats(slots * kv_row, seed, 1));
    std::vector<float> v = RoundTo(act(), RandomFloats(slots * kv_row, seed, 2));
    std::vector<bool> owned(slots, false);
    for (size_t s = 0; s < seqs.size(); ++s) {
      for (int32_t p = 0; p < b.seq_lens[s]; ++p) owned[b.Slot(static_cast<int>(s), p)] = true;
    }
    for (int64_t slot = 0; slot < slots; ++slot) {
      if (owned[slot]) continue;
      std::fill(k.begin() + slot * kv_row, k.begin() + (slot + 1) * kv_row, NAN);
      std::fill(v.begin() + slot * kv_row, v.begin() + (slot + 1) * kv_row, NAN);
    }
    const std::vector<float> q = RoundTo(act(), RandomFloats(t * h.hq * h.d, seed, 3, 2.0f));

    DeviceTensor kd = Upload(backend(), k, act(), {b.num_blocks, bs, h.hkv, h.d});
    DeviceTensor vd = Upload(backend(), v, act(), {b.num_blocks, bs, h.hkv, h.d});
    DeviceTensor qd = Upload(backend(), q, act(), {t, int64_t(h.hq) * h.d});
    DeviceTensor out = testing::Filled(backend(), act(), {t, int64_t(h.hq) * h.d}, 7.0f);
    DeviceMetadata md = UploadMetadata(backend(), b);
    AttentionArgs a;
    a.q = qd.tensor;
    a.k_cache = kd.tensor;
    a.v_cache = vd.tensor;
    a.out = out.tensor;
    a.num_q_heads = h.hq;
    a.num_kv_heads = h.hkv;
    a.head_dim = h.d;
    a.scale = scale;
    a.sliding_window = window;
    ASSERT_OK(ops().Attention(a, md.meta));

    std::vector<double> ref(t * h.hq * h.d), bound(ref.size());
    const int group = h.hq / h.hkv;
    for (size_t s = 0; s < seqs.size(); ++s) {
      for (int32_t i = 0; i < seqs[s].new_tokens; ++i) {
        const int64_t row = b.query_start[s] + i;
        const int32_t pos = seqs[s].cached + i;
        const int32_t first = window > 0 ? std::max(0, pos - window + 1) : 0;
        for (int head = 0; head < h.hq; ++head) {
          const int g = head / group;
          const float* qv = q.data() + (row * h.hq + head) * h.d;
          std::vector<double> p(pos - first + 1);
          double max_score = -INFINITY;
          for (int32_t j = first; j <= pos; ++j) {
            const float* kv = k.data() + (b.Slot(static_cast<int>(s), j) * h.hkv + g) * h.d;
            double dot = 0.0;
            for (int x = 0; x < h.d; ++x) dot += double(qv[x]) * kv[x];
            p[j - first] = dot * scale;
            max_score = std::max(max_score, p[j - first]);
          }
          double denom = 0.0;
          for (double& e : p) denom += (e = std::exp(e - max_score));
          for (int x = 0; x < h.d; ++x) {
            double acc = 0.0, abs_acc = 0.0;
            for (int32_t j = first; j <= pos; ++j) {
              const double vv = v[(b.Slot(static_cast<int>(s), j) * h.hkv + g) * h.d + x];
              acc += p[j - first] / denom * vv;
              abs_acc += p[j - first] / denom * std::fabs(vv);
            }
            ref[(row * h.hq + head) * h.d + x] = acc;
            // Softmax weights carry their own relative error of a few roundings, plus the
            // magnitude of the scores (|score| up to ~10 amplifies exp's input error).
            bound[(row * h.hq + head) * h.d + x] = abs_acc;
          }
        }
      }
    }
    testing::ExpectNearBounded(Download(backend(), out.tensor), ref, bound, tol() * 4, "Attention");
  }
};

TEST_P(AttentionTest, FullCausalAttention) {
  const HeadConfig h = std::get<1>(GetParam());
  uint64_t seed = 100;
  for (const auto& seqs : Scenarios()) Run(seqs, 0, 1.0f / std::sqrt(float(h.d)), seed++);
}

TEST_P(AttentionTest, SlidingWindows) {
  const HeadConfig h = std::get<1>(GetParam());
  uint64_t seed = 200;
  for (int window : {1, 7, 16, 40}) {
    SCOPED_TRACE(::testing::Message() << "window " << window);
    for (const auto& seqs : Scenarios()) Run(seqs, window, 1.0f / std::sqrt(float(h.d)), seed++);
  }
}

// Enough decode tokens (1200 sequences of up to 60 keys) that the CUDA decode kernel runs
// without splitting the windows, the path of large batches.
TEST_P(AttentionTest, ManyDecodeSequences) {
  const HeadConfig h = std::get<1>(GetParam());
  std::vector<SeqShape> seqs;
  for (int32_t i = 0; i < 1200; ++i) seqs.push_back({(i * 37) % 60, 1});
  Run(seqs, 0, 1.0f / std::sqrt(float(h.d)), 400);
}

// One or two decode tokens over thousands of keys: on CUDA the decode kernel splits each
// window 33 to 47 ways on an H100 or H200 (more splits than a warp has lanes), the widest case
// of the merges (the decode kernel's own, and MergeSplitsKernel after the generic kernel).
TEST_P(AttentionTest, LongContextDecodesSplitManyWays) {
  const HeadConfig h = std::get<1>(GetParam());
  Run({{3000, 1}}, 0, 1.0f / std::sqrt(float(h.d)), 700);
  Run({{2600, 1}, {40, 1}}, 0, 1.0f / std::sqrt(float(h.d)), 701);
}

// A short chunk after a long cached prefix, next to a fresh prompt, after two decode tokens:
// few query tiles, so the CUDA tensor-core prefill kernel splits their keys across blocks (9
// key tiles in 2 splits; one split of the short prompt is empty) and merges the partial
// softmaxes, while the decode kernel (split too) takes the two leading decodes; with a 520-key
// window the split starts mid-prefix. The shape targets that kernel (head_dim
// 64 and 128); the other head configs go through paths the scenarios above cover.
TEST_P(AttentionTest, ShortChunkAfterLongPrefix) {
  const HeadConfig h = std::get<1>(GetParam());
  if (h.d != 64 && h.d != 128) GTEST_SKIP() << "not a tensor-core prefill shape";
  const std::vector<SeqShape> seqs = {{300, 1}, {64, 1}, {500, 40}, {0, 20}};
  Run(seqs, 0, 1.0f / std::sqrt(float(h.d)), 500);
  Run(seqs, 520, 1.0f / std::sqrt(float(h.d)), 501);
}

// Enough prompts (24 of 33 new tokens, most after a cached prefix) that with 8 or more query
// heads the CUDA wgmma prefill kernel's tiles alone fill the GPU, the path of long prompts (the
// scenarios above, with their few tiles, take the mma.sync kernel's 64-row tiles); only the
// first of each tile's warpgroups has rows.
TEST_P(AttentionTest, ManyPromptsTakeFullTiles) {
  const HeadConfig h = std::get<1>(GetParam());
  std::vector<SeqShape> seqs;
  for (int32_t i = 0; i < 24; ++i) seqs.push_back({(i * 29) % 60, 33});
  Run(seqs, 0, 1.0f / std::sqrt(float(h.d)), 600);
}

// Prompts of a few hundred tokens, some after a cached prefix, enough of them that with 8 or
// more query heads the CUDA wgmma prefill kernel takes them (its 192-row tiles fill the GPU):
// several warpgroups per tile, each with its own causal diagonal, many key tiles, both
// pipeline stages, and a sliding window whose edge crosses the tiles.
TEST_P(AttentionTest, LongPromptsTakeWarpgroupTiles) {
  const HeadConfig h = std::get<1>(GetParam());
  if (h.d != 64 && h.d != 128) GTEST_SKIP() << "not a tensor-core prefill shape";
  const std::vector<SeqShape> seqs = {{0, 390},  {150, 200}, {0, 260},
                                      {70, 129}, {0, 300},   {33, 180}};
  Run(seqs, 0, 1.0f / std::sqrt(float(h.d)), 700);
  Run(seqs, 100, 1.0f / std::sqrt(float(h.d)), 701);
}

TEST_P(AttentionTest, OtherSoftmaxScale) {
  uint64_t seed = 300;
  for (const auto& seqs : Scenarios()) Run(seqs, 0, 0.3f, seed++);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, AttentionTest,
    ::testing::Combine(::testing::ValuesIn(testing::BackendNames()),
                       // d 64/128/256 reach the CUDA decode and tensor-core prefill kernels;
                       // Hq/Hkv 16 goes past the decode kernel's 8 to the generic one.
                       ::testing::Values(HeadConfig{2, 2, 16}, HeadConfig{4, 1, 24},
                                         HeadConfig{8, 2, 16}, HeadConfig{8, 1, 64},
                                         HeadConfig{8, 2, 128}, HeadConfig{4, 4, 256},
                                         HeadConfig{16, 1, 128}),
                       ::testing::Values(1, 5, 16)),
    [](const auto& info) {
      const HeadConfig h = std::get<1>(info.param);
      return std::get<0>(info.param) + "_q" + std::to_string(h.hq) + "_kv" + std::to_string(h.hkv) +
             "_d" + std::to_string(h.d) + "_block" + std::to_string(std::get<2>(info.param));
    });

// ---------------------------------------------------------------------------------------------
// PrepareQkv

// (backend, heads, q/k norm)
using QkvParam = std::tuple<std::string, HeadConfig, bool>;

class PrepareQkvTest : public ::testing::TestWithParam<QkvParam>, public testing::BackendFixture {
 protected:
  void SetUp() override {
    InitBackend(std::get<0>(GetParam()));
    ASSERT_TRUE(ok());
  }
};

// Normalises and rotates one head in double. The angle is the f32 product position * inv_freq,
// as the op contract (and transformers) defines it; all else is exact.
std::vector<double> NormRotate(const float* x, const std::vector<float>* norm, float eps,
                               const std::vector<float>& inv_freq, int32_t pos, int d) {
  std::vector<double> y(x, x + d);
  if (norm) {
    double sum_sq = 0.0;
    for (double e : y) sum_sq += e * e;
    const double inv_rms = 1.0 / std::sqrt(sum_sq / d + eps);
    for (int i = 0; i < d; ++i) y[i] = (*norm)[i] * (y[i] * inv_rms);
  }
  std::vector<double> out(d);
  const int half = d / 2;
  for (int i = 0; i < half; ++i) {
    const double angle = static_cast<float>(pos) * inv_freq[i];
    const double c = std::cos(angle), s = std::sin(angle);
    out[i] = y[i] * c - y[i + half] * s;
    out[i + half] = y[i + half] * c + y[i] * s;
  }
  return out;
}

TEST_P(PrepareQkvTest, NormsRotatesAndWritesTheCache) {
  const HeadConfig h = std::get<1>(GetParam());
  const bool qk_norm = std::get<2>(GetParam());
  const float eps = 1e-6f;
  for (int32_t bs : {1, 5, 16}) {
    uint64_t seed = 400 + bs;
    for (const auto& seqs : Scenarios()) {
      SCOPED_TRACE(::testing::Message() << "block size " << bs << ", " << seqs.size() << " seqs");
      const Batch b = MakeBatch(seqs, bs, seed++);
      const int64_t t = b.num_tokens(), row = int64_t(h.hq + 2 * h.hkv) * h.d;
      const int64_t kv_row = int64_t(h.hkv) * h.d, slots = int64_t(b.num_blocks) * bs;
      const std::vector<float> qkv = RoundTo(act(), RandomFloats(t * row, seed, 1, 3.0f));
      const std::vector<float> q_norm = RandomFloats(h.d, seed, 2, 2.0f);
      const std::vector<float> k_norm = RandomFloats(h.d, seed, 3, 2.0f);
      std::vector<float> inv_freq(h.d / 2);
      for (int i = 0; i < h.d / 2; ++i) {
        inv_freq[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / h.d));
      }
      DeviceTensor qkvd = Upload(backend(), qkv, act(), {t, row});
      DeviceTensor qn = Upload(backend(), q_norm, DType::kF32, {h.d});
      DeviceTensor kn = Upload(backend(), k_norm, DType::kF32, {h.d});
      DeviceTensor fd = Upload(backend(), inv_freq, DType::kF32, {h.d / 2});
      DeviceTensor q_out = testing::Filled(backend(), act(), {t, int64_t(h.hq) * h.d}, 0.0f);
      // A sentinel in every slot: the op must write exactly the batch's slots. (-1232 is exact
      // in f32, bf16 and f16, so it survives any activation dtype unchanged.)
      constexpr float kSentinel = -1232.0f;
      DeviceTensor kc =
          testing::Filled(backend(), act(), {b.num_blocks, bs, h.hkv, h.d}, kSentinel);
      DeviceTensor vc =
          testing::Filled(backend(), act(), {b.num_blocks, bs, h.hkv, h.d}, kSentinel);
      DeviceMetadata md = UploadMetadata(backend(), b);
      QkvArgs a;
      a.qkv = qkvd.tensor;
      if (qk_norm) {
        a.q_norm = qn.tensor;
        a.k_norm = kn.tensor;
      }
      a.norm_eps = eps;
      a.inv_freq = fd.tensor;
      a.q_out = q_out.tensor;
      a.k_cache = kc.tensor;
      a.v_cache = vc.tensor;
      a.num_q_heads = h.hq;
      a.num_kv_heads = h.hkv;
      a.head_dim = h.d;
      ASSERT_OK(ops().PrepareQkv(a, md.meta));

      std::vector<double> q_ref(t * h.hq * h.d);
      std::vector<double> k_ref(slots * kv_row, kSentinel), v_ref(slots * kv_row, kSentinel);
      for (int64_t r = 0; r < t; ++r) {
        const float* src = qkv.data() + r * row;
        const int32_t pos = b.positions[r];
        for (int head = 0; head < h.hq; ++head) {
          const std::vector<double> y =
              NormRotate(src + head * h.d, qk_norm ? &q_norm : nullptr, eps, inv_freq, pos, h.d);
          std::copy(y.begin(), y.end(), q_ref.begin() + (r * h.hq + head) * h.d);
        }
        for (int g = 0; g < h.hkv; ++g) {
          const std::vector<double> y = NormRotate(
              src + (h.hq + g) * h.d, qk_norm ? &k_norm : nullptr, eps, inv_freq, pos, h.d);
          const int64_t at = (int64_t(b.slots[r]) * h.hkv + g) * h.d;
          std::copy(y.begin(), y.end(), k_ref.begin() + at);
          std::copy(src + (h.hq + h.hkv + g) * h.d, src + (h.hq + h.hkv + g + 1) * h.d,
                    v_ref.begin() + at);
        }
      }
      testing::ExpectNear(Download(backend(), q_out.tensor), q_ref, tol(), "q");
      // Written slots against the reference; every other slot still holds the sentinel.
      const std::vector<float> k_got = Download(backend(), kc.tensor);
      const std::vector<float> v_got = Download(backend(), vc.tensor);
      std::vector<float> k_written;
      std::vector<double> k_written_ref;
      for (size_t i = 0; i < k_got.size(); ++i) {
        if (k_ref[i] == kSentinel) {
          ASSERT_EQ(k_got[i], kSentinel) << "k cache element " << i << " outside the batch";
        } else {
          k_written.push_back(k_got[i]);
          k_written_ref.push_back(k_ref[i]);
        }
        ASSERT_EQ(v_got[i], static_cast<float>(v_ref[i])) << "v cache element " << i;
      }
      ASSERT_EQ(static_cast<int64_t>(k_written.size()), t * kv_row);
      testing::ExpectNear(k_written, k_written_ref, tol(), "k cache");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, PrepareQkvTest,
                         ::testing::Combine(::testing::ValuesIn(testing::BackendNames()),
                                            ::testing::Values(HeadConfig{2, 2, 16},
                                                              HeadConfig{4, 1, 24},
                                                              HeadConfig{8, 1, 64}),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           const HeadConfig h = std::get<1>(info.param);
                           return std::get<0>(info.param) + "_q" + std::to_string(h.hq) + "_kv" +
                                  std::to_string(h.hkv) + "_d" + std::to_string(h.d) +
                                  (std::get<2>(info.param) ? "_qknorm" : "_plain");
                         });

// PrepareQkv then Attention over the same cache, the way a layer runs them: a sequence
// prefilled in one step gives the same attention output as the same sequence prefilled in
// uneven chunks (each chunk attending over what the earlier ones cached).
class PrepareThenAttendTest : public ::testing::TestWithParam<std::string>,
                              public testing::BackendFixture {
 protected:
  void SetUp() override {
    InitBackend(GetParam());
    ASSERT_TRUE(ok());
  }

  // Runs the chunks in order over one cache; returns attention outputs of every row.
  std::vector<float> RunChunks(const std::vector<float>& qkv, const std::vector<int32_t>& chunks,
                               int32_t bs, HeadConfig h = {4, 2, 16}) {
    const int64_t row = int64_t(h.hq + 2 * h.hkv) * h.d;
    int32_t total = 0;
    for (int32_t c : chunks) total += c;
    const int32_t blocks = (total + bs - 1) / bs;
    DeviceTensor kc = testing::Filled(backend(), act(), {blocks, bs, h.hkv, h.d}, 0.0f);
    DeviceTensor vc = testing::Filled(backend(), act(), {blocks, bs, h.hkv, h.d}, 0.0f);
    std::vector<float> inv_freq(h.d / 2);
    for (int i = 0; i < h.d / 2; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / h.d);
    DeviceTensor fd = Upload(backend(), inv_freq, DType::kF32, {h.d / 2});
    std::vector<float> result;
    int32_t done = 0;
    for (int32_t c : chunks) {
      // One sequence whose blocks are 0..blocks-1 in order (MakeBatch shuffles; use it with a
      // fixed seed so every chunk sees the same table).
      Batch b = MakeBatch({{done, c}}, bs, 7);
      b.block_tables.assign(b.max_blocks_per_seq, -1);
      for (int32_t i = 0; i < (done + c + bs - 1) / bs; ++i) b.block_tables[i] = i;
      for (int32_t i = 0; i < c; ++i) b.slots[i] = b.Slot(0, done + i);
      DeviceMetadata md = UploadMetadata(backend(), b);
      const std::vector<float> part(qkv.begin() + done * row, qkv.begin() + (done + c) * row);
      DeviceTensor qkvd = Upload(backend(), part, act(), {c, row});
      DeviceTensor q = testing::Filled(backend(), act(), {c, int64_t(h.hq) * h.d}, 0.0f);
      DeviceTensor out = testing::Filled(backend(), act(), {c, int64_t(h.hq) * h.d}, 0.0f);
      QkvArgs qa;
      qa.qkv = qkvd.tensor;
      qa.inv_freq = fd.tensor;
      qa.q_out = q.tensor;
      qa.k_cache = kc.tensor;
      qa.v_cache = vc.tensor;
      qa.num_q_heads = h.hq;
      qa.num_kv_heads = h.hkv;
      qa.head_dim = h.d;
      EXPECT_OK(ops().PrepareQkv(qa, md.meta));
      AttentionArgs aa;
      aa.q = q.tensor;
      aa.k_cache = kc.tensor;
      aa.v_cache = vc.tensor;
      aa.out = out.tensor;
      aa.num_q_heads = h.hq;
      aa.num_kv_heads = h.hkv;
      aa.head_dim = h.d;
      aa.scale = 1.0f / std::sqrt(float(h.d));
      EXPECT_OK(ops().Attention(aa, md.meta));
      const std::vector<float> got = Download(backend(), out.tensor);
      result.insert(result.end(), got.begin(), got.end());
      done += c;
    }
    return result;
  }
};

TEST_P(PrepareThenAttendTest, ChunkedPrefillEqualsOneShotPrefill) {
  const int64_t row = (4 + 2 * 2) * 16;
  const std::vector<float> qkv = RoundTo(act(), RandomFloats(97 * row, 500, 0));
  for (int32_t bs : {1, 16}) {
    const std::vector<float> one = RunChunks(qkv, {97}, bs);
    const std::vector<float> chunked = RunChunks(qkv, {5, 17, 1, 74}, bs);
    const std::vector<float> by_token = RunChunks(qkv, std::vector<int32_t>(97, 1), bs);
    std::vector<double> ref(one.begin(), one.end());
    testing::ExpectNear(chunked, ref, tol(), "chunks 5, 17, 1, 74 vs one shot");
    testing::ExpectNear(by_token, ref, tol(), "token by token vs one shot");
  }
}

// Chunks of under 16 tokens after a 200-token prompt, head_dim 128: on CUDA they take the split
// decode kernel, launched to overlap the PrepareQkv kernel that writes their keys (programmatic
// launch), so a cache read that does not wait for PrepareQkv where it must shows here.
TEST_P(PrepareThenAttendTest, ShortChunksAfterALongPromptEqualOneShotPrefill) {
  const HeadConfig h{8, 2, 128};
  const int64_t row = (h.hq + 2 * h.hkv) * h.d;
  const std::vector<int32_t> chunks = {200, 1, 7, 1, 15, 2};
  const int32_t total = std::accumulate(chunks.begin(), chunks.end(), 0);
  const std::vector<float> qkv = RoundTo(act(), RandomFloats(total * row, 501, 0));
  for (int32_t bs : {1, 16}) {
    const std::vector<float> one = RunChunks(qkv, {total}, bs, h);
    const std::vector<float> chunked = RunChunks(qkv, chunks, bs, h);
    std::vector<double> ref(one.begin(), one.end());
    testing::ExpectNear(chunked, ref, tol(), "chunks 200, 1, 7, 1, 15, 2 vs one shot");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, PrepareThenAttendTest,
                         ::testing::ValuesIn(testing::BackendNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tokenfab
