// Argument checking: op_checks rejects every malformed shape and dtype with InvalidArgument
// naming the op; every backend's ops go through those checks (and so refuse bad arguments
// without touching memory); the CPU backend also validates the data that indexes memory (ids,
// slots, block tables), which callers of a GPU backend check on the host.
#include "backend/op_checks.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "backend/backend_registry.h"
#include "op_test_util.h"
#include "test_util.h"

namespace tokenfab {
namespace {

using testing::DeviceTensor;
using testing::UploadI32;

// Shapes only: no check may read tensor memory, so every view points at one dummy word.
alignas(64) char g_dummy[64];
constexpr DType kAct = DType::kF32;

Tensor T(DType dtype, std::initializer_list<int64_t> dims) { return Tensor(g_dummy, dtype, dims); }

struct BadCase {
  std::string what;
  std::function<Status()> check;
};

void ExpectAllRejected(const std::string& op, const std::vector<BadCase>& cases) {
  for (const BadCase& c : cases) {
    const Status s = c.check();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument)
        << op << ", " << c.what << ": " << s.ToString();
    EXPECT_EQ(s.message().rfind(op + ":", 0), 0u)
        << "message should start with the op name: " << s.message();
  }
}

TEST(OpChecksTest, Embedding) {
  const Tensor ids = T(DType::kI32, {5}), table = T(DType::kBF16, {100, 8});
  EXPECT_OK(CheckEmbedding(ids, table, T(kAct, {5, 8}), kAct));
  ExpectAllRejected("Embedding",
                    {{"f32 ids",
                      [&] {
                        return CheckEmbedding(T(kAct, {5}), table, T(kAct, {5, 8}), kAct);
                      }},
                     {"2-d ids",
                      [&] {
                        return CheckEmbedding(T(DType::kI32, {5, 1}), table, T(kAct, {5, 8}), kAct);
                      }},
                     {"i32 table",
                      [&] {
                        return CheckEmbedding(ids, T(DType::kI32, {100, 8}), T(kAct, {5, 8}), kAct);
                      }},
                     {"1-d table",
                      [&] {
                        return CheckEmbedding(ids, T(DType::kBF16, {800}), T(kAct, {5, 8}), kAct);
                      }},
                     {"out dtype",
                      [&] {
                        return CheckEmbedding(ids, table, T(DType::kBF16, {5, 8}), kAct);
                      }},
                     {"out rows",
                      [&] {
                        return CheckEmbedding(ids, table, T(kAct, {4, 8}), kAct);
                      }},
                     {"out width",
                      [&] {
                        return CheckEmbedding(ids, table, T(kAct, {5, 9}), kAct);
                      }},
                     {"1-d out", [&] { return CheckEmbedding(ids, table, T(kAct, {40}), kAct); }}});
}

TEST(OpChecksTest, RmsNorm) {
  const Tensor x = T(kAct, {3, 8}), w = T(DType::kF32, {8});
  EXPECT_OK(CheckRmsNorm(x, w, T(kAct, {3, 8}), kAct));
  ExpectAllRejected("RmsNorm",
                    {{"x dtype",
                      [&] {
                        return CheckRmsNorm(T(DType::kBF16, {3, 8}), w, T(kAct, {3, 8}), kAct);
                      }},
                     {"1-d x",
                      [&] {
                        return CheckRmsNorm(T(kAct, {24}), w, T(kAct, {3, 8}), kAct);
                      }},
                     {"bf16 weight",
                      [&] {
                        return CheckRmsNorm(x, T(DType::kBF16, {8}), T(kAct, {3, 8}), kAct);
                      }},
                     {"short weight",
                      [&] {
                        return CheckRmsNorm(x, T(DType::kF32, {7}), T(kAct, {3, 8}), kAct);
                      }},
                     {"2-d weight",
                      [&] {
                        return CheckRmsNorm(x, T(DType::kF32, {1, 8}), T(kAct, {3, 8}), kAct);
                      }},
                     {"out rows",
                      [&] {
                        return CheckRmsNorm(x, w, T(kAct, {2, 8}), kAct);
                      }},
                     {"out width",
                      [&] {
                        return CheckRmsNorm(x, w, T(kAct, {3, 9}), kAct);
                      }},
                     {"out dtype", [&] {
                        return CheckRmsNorm(x, w, T(DType::kI32, {3, 8}), kAct);
                      }}});
}

TEST(OpChecksTest, MatMul) {
  const Tensor x = T(kAct, {3, 8}), w = T(DType::kBF16, {5, 8}), b = T(DType::kF32, {5});
  EXPECT_OK(CheckMatMul(x, w, b, T(kAct, {3, 5}), kAct));
  EXPECT_OK(CheckMatMul(x, w, Tensor(), T(kAct, {3, 5}), kAct));
  EXPECT_OK(CheckMatMul(T(DType::kBF16, {3, 8}), w, b, T(DType::kF32, {3, 5}), DType::kBF16))
      << "f32 output (logits) is allowed whatever the activation dtype";
  ExpectAllRejected("MatMul",
                    {{"x dtype",
                      [&] {
                        return CheckMatMul(T(DType::kF16, {3, 8}), w, b, T(kAct, {3, 5}), kAct);
                      }},
                     {"1-d x",
                      [&] {
                        return CheckMatMul(T(kAct, {8}), w, b, T(kAct, {3, 5}), kAct);
                      }},
                     {"K mismatch",
                      [&] {
                        return CheckMatMul(x, T(DType::kBF16, {5, 7}), b, T(kAct, {3, 5}), kAct);
                      }},
                     {"i32 weight",
                      [&] {
                        return CheckMatMul(x, T(DType::kI32, {5, 8}), b, T(kAct, {3, 5}), kAct);
                      }},
                     {"3-d weight",
                      [&] {
                        return CheckMatMul(x, T(DType::kBF16, {1, 5, 8}), b, T(kAct, {3, 5}), kAct);
                      }},
                     {"bias length",
                      [&] {
                        return CheckMatMul(x, w, T(DType::kF32, {4}), T(kAct, {3, 5}), kAct);
                      }},
                     {"bias dtype",
                      [&] {
                        return CheckMatMul(x, w, T(DType::kBF16, {5}), T(kAct, {3, 5}), kAct);
                      }},
                     {"out rows",
                      [&] {
                        return CheckMatMul(x, w, b, T(kAct, {4, 5}), kAct);
                      }},
                     {"out cols",
                      [&] {
                        return CheckMatMul(x, w, b, T(kAct, {3, 8}), kAct);
                      }},
                     {"out dtype", [&] {
                        return CheckMatMul(x, w, b, T(DType::kBF16, {3, 5}), kAct);
                      }}});
}

// A valid PrepareQkv / Attention setup to break one field at a time: 4 q heads, 2 kv heads,
// head_dim 8, 3 tokens, blocks of 4.
struct AttnSetup {
  AttentionMetadata meta;
  QkvArgs qkv;
  AttentionArgs attn;
  AttnSetup() {
    meta.num_tokens = 3;
    meta.num_seqs = 1;
    meta.block_size = 4;
    qkv.qkv = T(kAct, {3, (4 + 2 * 2) * 8});
    qkv.inv_freq = T(DType::kF32, {4});
    qkv.q_out = T(kAct, {3, 32});
    qkv.k_cache = qkv.v_cache = T(kAct, {6, 4, 2, 8});
    qkv.num_q_heads = 4;
    qkv.num_kv_heads = 2;
    qkv.head_dim = 8;
    attn.q = attn.out = T(kAct, {3, 32});
    attn.k_cache = attn.v_cache = qkv.k_cache;
    attn.num_q_heads = 4;
    attn.num_kv_heads = 2;
    attn.head_dim = 8;
  }
};

TEST(OpChecksTest, PrepareQkv) {
  const AttnSetup ok;
  EXPECT_OK(CheckPrepareQkv(ok.qkv, ok.meta, kAct));
  QkvArgs normed = ok.qkv;
  normed.q_norm = normed.k_norm = T(DType::kF32, {8});
  EXPECT_OK(CheckPrepareQkv(normed, ok.meta, kAct));
  auto with = [&](std::function<void(QkvArgs&, AttentionMetadata&)> edit) {
    return [&ok, edit] {
      AttnSetup s = ok;
      edit(s.qkv, s.meta);
      return CheckPrepareQkv(s.qkv, s.meta, kAct);
    };
  };
  ExpectAllRejected(
      "PrepareQkv",
      {{"heads not a multiple", with([](QkvArgs& a, AttentionMetadata&) { a.num_kv_heads = 3; })},
       {"zero kv heads", with([](QkvArgs& a, AttentionMetadata&) { a.num_kv_heads = 0; })},
       {"odd head_dim", with([](QkvArgs& a, AttentionMetadata&) { a.head_dim = 7; })},
       {"qkv width", with([](QkvArgs& a, AttentionMetadata&) {
          a.qkv = T(kAct, {3, 63});
        })},
       {"qkv rows", with([](QkvArgs&, AttentionMetadata& m) { m.num_tokens = 2; })},
       {"qkv dtype", with([](QkvArgs& a, AttentionMetadata&) {
          a.qkv = T(DType::kBF16, {3, 64});
        })},
       {"q_out width", with([](QkvArgs& a, AttentionMetadata&) {
          a.q_out = T(kAct, {3, 16});
        })},
       {"q_norm length",
        with([](QkvArgs& a, AttentionMetadata&) { a.q_norm = T(DType::kF32, {4}); })},
       {"k_norm dtype",
        with([](QkvArgs& a, AttentionMetadata&) { a.k_norm = T(DType::kBF16, {8}); })},
       {"inv_freq length",
        with([](QkvArgs& a, AttentionMetadata&) { a.inv_freq = T(DType::kF32, {8}); })},
       {"cache block size", with([](QkvArgs&, AttentionMetadata& m) { m.block_size = 16; })},
       {"cache heads", with([](QkvArgs& a, AttentionMetadata&) {
          a.v_cache = T(kAct, {6, 4, 1, 8});
        })},
       {"cache rank", with([](QkvArgs& a, AttentionMetadata&) {
          a.k_cache = T(kAct, {24, 2, 8});
        })},
       {"cache dtype", with([](QkvArgs& a, AttentionMetadata&) {
          a.k_cache = T(DType::kBF16, {6, 4, 2, 8});
        })}});
}

TEST(OpChecksTest, Attention) {
  const AttnSetup ok;
  EXPECT_OK(CheckAttention(ok.attn, ok.meta, kAct));
  auto with = [&](std::function<void(AttentionArgs&, AttentionMetadata&)> edit) {
    return [&ok, edit] {
      AttnSetup s = ok;
      edit(s.attn, s.meta);
      return CheckAttention(s.attn, s.meta, kAct);
    };
  };
  ExpectAllRejected(
      "Attention",
      {{"heads not a multiple",
        with([](AttentionArgs& a, AttentionMetadata&) { a.num_q_heads = 5; })},
       {"zero head_dim", with([](AttentionArgs& a, AttentionMetadata&) { a.head_dim = 0; })},
       {"q width", with([](AttentionArgs& a, AttentionMetadata&) {
          a.q = T(kAct, {3, 31});
        })},
       {"out rows", with([](AttentionArgs& a, AttentionMetadata&) {
          a.out = T(kAct, {4, 32});
        })},
       {"token count", with([](AttentionArgs&, AttentionMetadata& m) { m.num_tokens = 4; })},
       {"cache block size", with([](AttentionArgs&, AttentionMetadata& m) { m.block_size = 8; })},
       {"cache head_dim", with([](AttentionArgs& a, AttentionMetadata&) {
          a.k_cache = T(kAct, {6, 4, 2, 4});
        })},
       {"negative window",
        with([](AttentionArgs& a, AttentionMetadata&) { a.sliding_window = -1; })}});
}

TEST(OpChecksTest, NormMatMul) {
  const Tensor x = T(DType::kF32, {3, 8}), g = T(DType::kF32, {8}), w = T(DType::kBF16, {6, 8});
  EXPECT_OK(CheckNormMatMul(x, g, w, Tensor(), false, T(kAct, {3, 6}), kAct));
  EXPECT_OK(CheckNormMatMul(x, g, w, T(DType::kF32, {6}), false, T(DType::kF32, {3, 6}), kAct));
  EXPECT_OK(CheckNormMatMul(x, g, w, T(DType::kF32, {6}), true, T(kAct, {3, 3}), kAct));
  ExpectAllRejected(
      "NormMatMul",
      {{"x not f32", [&] { return CheckNormMatMul(T(DType::kBF16, {3, 8}), g, w, Tensor(), false,
                                                  T(kAct, {3, 6}), DType::kBF16); }},
       {"norm width", [&] { return CheckNormMatMul(x, T(DType::kF32, {7}), w, Tensor(), false,
                                                   T(kAct, {3, 6}), kAct); }},
       {"w width", [&] { return CheckNormMatMul(x, g, T(DType::kBF16, {6, 7}), Tensor(), false,
                                                T(kAct, {3, 6}), kAct); }},
       {"out shape", [&] { return CheckNormMatMul(x, g, w, Tensor(), false, T(kAct, {3, 4}),
                                                  kAct); }},
       {"bias width", [&] { return CheckNormMatMul(x, g, w, T(DType::kF32, {4}), false,
                                                   T(kAct, {3, 6}), kAct); }},
       {"gated odd rows", [&] { return CheckNormMatMul(x, g, T(DType::kBF16, {5, 8}), Tensor(),
                                                       true, T(kAct, {3, 2}), kAct); }},
       {"gated full width", [&] { return CheckNormMatMul(x, g, w, Tensor(), true,
                                                         T(kAct, {3, 6}), kAct); }},
       {"gated f32 out", [&] { return CheckNormMatMul(x, g, w, Tensor(), true,
                                                      T(DType::kF32, {3, 3}), DType::kBF16); }},
       {"gated bias width", [&] { return CheckNormMatMul(x, g, w, T(DType::kF32, {3}), true,
                                                         T(kAct, {3, 3}), kAct); }}});
}

TEST(OpChecksTest, MatMulAdd) {
  const Tensor w = T(DType::kBF16, {5, 8}), r = T(DType::kF32, {3, 5});
  EXPECT_OK(CheckMatMulAdd(T(kAct, {3, 8}), w, Tensor(), r, kAct));
  EXPECT_OK(CheckMatMulAdd(T(kAct, {3, 8}), w, T(DType::kF32, {5}), r, kAct));
  ExpectAllRejected(
      "MatMulAdd",
      {{"x width", [&] { return CheckMatMulAdd(T(kAct, {3, 16}), w, Tensor(), r, kAct); }},
       {"residual not f32", [&] { return CheckMatMulAdd(T(kAct, {3, 8}), w, Tensor(),
                                                        T(DType::kI32, {3, 5}), kAct); }},
       {"residual rows", [&] { return CheckMatMulAdd(T(kAct, {3, 8}), w, Tensor(),
                                                     T(DType::kF32, {2, 5}), kAct); }},
       {"x dtype", [&] { return CheckMatMulAdd(T(DType::kI32, {3, 8}), w, Tensor(), r,
                                               kAct); }}});
}

TEST(OpChecksTest, MoeRoute) {
  const Tensor logits = T(DType::kF32, {3, 8});
  EXPECT_OK(CheckMoeRoute(logits, T(DType::kI32, {3, 2}), T(DType::kF32, {3, 2})));
  EXPECT_OK(CheckMoeRoute(logits, T(DType::kI32, {3, 8}), T(DType::kF32, {3, 8})));
  ExpectAllRejected(
      "MoeRoute",
      {{"1-d logits",
        [&] {
          return CheckMoeRoute(T(DType::kF32, {8}), T(DType::kI32, {3, 2}), T(DType::kF32, {3, 2}));
        }},
       {"k > experts",
        [&] {
          return CheckMoeRoute(logits, T(DType::kI32, {3, 9}), T(DType::kF32, {3, 9}));
        }},
       {"k = 0",
        [&] {
          return CheckMoeRoute(logits, T(DType::kI32, {3, 0}), T(DType::kF32, {3, 0}));
        }},
       {"f32 ids",
        [&] {
          return CheckMoeRoute(logits, T(DType::kF32, {3, 2}), T(DType::kF32, {3, 2}));
        }},
       {"ids rows",
        [&] {
          return CheckMoeRoute(logits, T(DType::kI32, {2, 2}), T(DType::kF32, {2, 2}));
        }},
       {"weights k",
        [&] {
          return CheckMoeRoute(logits, T(DType::kI32, {3, 2}), T(DType::kF32, {3, 3}));
        }},
       {"weights dtype", [&] {
          return CheckMoeRoute(logits, T(DType::kI32, {3, 2}), T(DType::kBF16, {3, 2}));
        }}});
}

TEST(OpChecksTest, MoeExperts) {
  // 3 tokens, hidden 8, 4 experts of width 6, top 2.
  const MoeArgs ok{T(kAct, {3, 8}),
                   T(DType::kI32, {3, 2}),
                   T(DType::kF32, {3, 2}),
                   T(DType::kBF16, {4, 12, 8}),
                   T(DType::kBF16, {4, 8, 6}),
                   T(DType::kF32, {3, 8})};
  EXPECT_OK(CheckMoeExperts(ok, kAct));
  auto with = [&](std::function<void(MoeArgs&)> edit) {
    return [&ok, edit] {
      MoeArgs a = ok;
      edit(a);
      return CheckMoeExperts(a, kAct);
    };
  };
  ExpectAllRejected("MoeExperts", {{"x dtype", with([](MoeArgs& a) {
                                      a.x = T(DType::kBF16, {3, 8});
                                    })},
                                   {"gate_up rank", with([](MoeArgs& a) {
                                      a.gate_up = T(DType::kBF16, {48, 8});
                                    })},
                                   {"gate_up hidden", with([](MoeArgs& a) {
                                      a.gate_up = T(DType::kBF16, {4, 12, 7});
                                    })},
                                   {"gate_up odd", with([](MoeArgs& a) {
                                      a.gate_up = T(DType::kBF16, {4, 11, 8});
                                    })},
                                   {"gate_up i32", with([](MoeArgs& a) {
                                      a.gate_up = T(DType::kI32, {4, 12, 8});
                                    })},
                                   {"down experts", with([](MoeArgs& a) {
                                      a.down = T(DType::kBF16, {3, 8, 6});
                                    })},
                                   {"down width", with([](MoeArgs& a) {
                                      a.down = T(DType::kBF16, {4, 8, 12});
                                    })},
                                   {"down dtype", with([](MoeArgs& a) {
                                      a.down = T(DType::kF16, {4, 8, 6});
                                    })},
                                   {"ids rows", with([](MoeArgs& a) {
                                      a.expert_ids = T(DType::kI32, {2, 2});
                                    })},
                                   {"ids dtype", with([](MoeArgs& a) {
                                      a.expert_ids = T(DType::kF32, {3, 2});
                                    })},
                                   {"weights k", with([](MoeArgs& a) {
                                      a.expert_weights = T(DType::kF32, {3, 1});
                                    })},
                                   {"residual width", with([](MoeArgs& a) {
                                      a.residual = T(DType::kF32, {3, 6});
                                    })},
                                   {"residual dtype", with([](MoeArgs& a) {
                                      a.residual = T(DType::kI32, {3, 8});
                                    })}});
}

TEST(OpChecksTest, GatherRows) {
  EXPECT_OK(CheckGatherRows(T(kAct, {5, 4}), T(DType::kI32, {2}), T(kAct, {2, 4})));
  ExpectAllRejected(
      "GatherRows",
      {{"1-d in",
        [] {
          return CheckGatherRows(T(kAct, {20}), T(DType::kI32, {2}), T(kAct, {2, 4}));
        }},
       {"f32 indices",
        [] {
          return CheckGatherRows(T(kAct, {5, 4}), T(DType::kF32, {2}), T(kAct, {2, 4}));
        }},
       {"out rows",
        [] {
          return CheckGatherRows(T(kAct, {5, 4}), T(DType::kI32, {2}), T(kAct, {3, 4}));
        }},
       {"out width",
        [] {
          return CheckGatherRows(T(kAct, {5, 4}), T(DType::kI32, {2}), T(kAct, {2, 5}));
        }},
       {"out dtype", [] {
          return CheckGatherRows(T(kAct, {5, 4}), T(DType::kI32, {2}), T(DType::kBF16, {2, 4}));
        }}});
}

// ---------------------------------------------------------------------------------------------
// Every backend's ops refuse malformed arguments with InvalidArgument (before touching memory).

class OpsRejectBadArgumentsTest : public ::testing::TestWithParam<std::string>,
                                  public testing::BackendFixture {
 protected:
  void SetUp() override {
    InitBackend(GetParam());
    ASSERT_TRUE(ok());
  }
  void ExpectInvalid(const Status& s, const char* what) {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << what << ": " << s.ToString();
  }
};

TEST_P(OpsRejectBadArgumentsTest, EveryOp) {
  // Real memory, big enough for any view below, so that a backend that skipped its checks
  // would compute garbage rather than crash the test binary.
  DeviceTensor mem = testing::Filled(backend(), DType::kF32, {4096}, 0.0f);
  auto V = [&](DType dtype, std::initializer_list<int64_t> dims) {
    return Tensor(mem.tensor.data, dtype, dims);
  };
  const DType a = act();
  ExpectInvalid(ops().Embedding(V(DType::kF32, {2}), V(DType::kF32, {4, 4}), V(a, {2, 4})),
                "Embedding with f32 ids");
  ExpectInvalid(ops().RmsNorm(V(a, {2, 4}), V(DType::kF32, {5}), 1e-6f, V(a, {2, 4})),
                "RmsNorm with a short weight");
  ExpectInvalid(ops().NormMatMul(V(DType::kF32, {2, 4}), V(DType::kF32, {3}), 1e-6f,
                                 V(backend().WeightDType(DType::kBF16), {3, 4}), Tensor(), false,
                                 V(a, {2, 3})),
                "NormMatMul with a short norm weight");
  ExpectInvalid(ops().NormMatMul(V(DType::kF32, {2, 4}), V(DType::kF32, {4}), 1e-6f,
                                 V(backend().WeightDType(DType::kBF16), {3, 4}), Tensor(), true,
                                 V(a, {2, 1})),
                "gated NormMatMul of an odd width");
  ExpectInvalid(ops().MatMul(V(a, {2, 4}), V(backend().WeightDType(DType::kBF16), {3, 5}), Tensor(),
                             V(a, {2, 3})),
                "MatMul with mismatched K");
  AttnSetup s;
  s.qkv.num_kv_heads = 3;
  ExpectInvalid(ops().PrepareQkv(s.qkv, s.meta), "PrepareQkv with 4/3 heads");
  s.attn.sliding_window = -5;
  ExpectInvalid(ops().Attention(s.attn, s.meta), "Attention with a negative window");
  ExpectInvalid(ops().MatMulAdd(V(a, {2, 5}), V(backend().WeightDType(DType::kBF16), {3, 2}),
                                Tensor(), V(DType::kF32, {2, 3})),
                "MatMulAdd with mismatched K");
  ExpectInvalid(
      ops().MoeRoute(V(DType::kF32, {2, 4}), true, V(DType::kI32, {2, 5}), V(DType::kF32, {2, 5})),
      "MoeRoute with k > experts");
  const DType w = backend().WeightDType(DType::kBF16);
  ExpectInvalid(ops().MoeExperts({V(a, {2, 4}), V(DType::kI32, {2, 1}), V(DType::kF32, {2, 1}),
                                  V(w, {2, 6, 4}), V(w, {2, 4, 2}), V(a, {2, 4})}),
                "MoeExperts with down of the wrong width");
  ExpectInvalid(ops().GatherRows(V(a, {4, 4}), V(DType::kI32, {2}), V(a, {3, 4})),
                "GatherRows with the wrong output rows");
}

INSTANTIATE_TEST_SUITE_P(Backends, OpsRejectBadArgumentsTest,
                         ::testing::ValuesIn(testing::BackendNames()),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------------------------------------
// The CPU backend validates the data that indexes memory; a GPU backend's callers do that on the
// host (ops.h), so these are CPU-only.

class CpuDataChecksTest : public ::testing::Test, public testing::BackendFixture {
 protected:
  void SetUp() override {
    InitBackend("cpu");
    ASSERT_TRUE(ok());
  }
};

TEST_F(CpuDataChecksTest, EmbeddingIdsOutsideTheVocabulary) {
  DeviceTensor table = testing::Filled(backend(), DType::kF32, {10, 4}, 1.0f);
  DeviceTensor out = testing::Filled(backend(), act(), {2, 4}, 0.0f);
  for (int32_t bad : {-1, 10, 1 << 30}) {
    DeviceTensor ids = UploadI32(backend(), {3, bad}, {2});
    const Status s = ops().Embedding(ids.tensor, table.tensor, out.tensor);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(std::to_string(bad)), std::string::npos) << s.message();
  }
}

TEST_F(CpuDataChecksTest, GatherRowsIndicesOutsideTheInput) {
  DeviceTensor in = testing::Filled(backend(), act(), {4, 3}, 1.0f);
  DeviceTensor out = testing::Filled(backend(), act(), {2, 3}, 0.0f);
  for (int32_t bad : {-1, 4}) {
    DeviceTensor idx = UploadI32(backend(), {0, bad}, {2});
    EXPECT_EQ(ops().GatherRows(in.tensor, idx.tensor, out.tensor).code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST_F(CpuDataChecksTest, MoeExpertIdsOutOfRange) {
  DeviceTensor x = testing::Filled(backend(), act(), {2, 4}, 1.0f);
  DeviceTensor gu = testing::Filled(backend(), DType::kF32, {3, 6, 4}, 0.1f);
  DeviceTensor dn = testing::Filled(backend(), DType::kF32, {3, 4, 3}, 0.1f);
  DeviceTensor w = testing::Filled(backend(), DType::kF32, {2, 1}, 1.0f);
  DeviceTensor out = testing::Filled(backend(), act(), {2, 4}, 0.0f);
  for (int32_t bad : {-1, 3}) {
    DeviceTensor ids = UploadI32(backend(), {0, bad}, {2, 1});
    EXPECT_EQ(
        ops().MoeExperts({x.tensor, ids.tensor, w.tensor, gu.tensor, dn.tensor, out.tensor}).code(),
        StatusCode::kInvalidArgument)
        << bad;
  }
}

// One sequence of 3 new tokens after 2 cached ones, blocks of 4: positions 2..4 in blocks {1, 0}.
struct CpuAttnData {
  DeviceTensor positions, slots, query_start, seq_lens, tables, qkv, q, k, v, inv_freq, out;
  AttentionMetadata meta;
  QkvArgs qa;
  AttentionArgs aa;

  void Build(Backend& b, std::vector<int32_t> pos, std::vector<int32_t> slot,
             std::vector<int32_t> qs, std::vector<int32_t> lens, std::vector<int32_t> table) {
    positions = UploadI32(b, pos, {3});
    slots = UploadI32(b, slot, {3});
    query_start = UploadI32(b, qs, {2});
    seq_lens = UploadI32(b, lens, {1});
    tables = UploadI32(b, table, {1, 2});
    qkv = testing::Filled(b, DType::kF32, {3, 3 * 8}, 0.5f);
    q = testing::Filled(b, DType::kF32, {3, 8}, 0.5f);
    k = testing::Filled(b, DType::kF32, {2, 4, 1, 8}, 0.5f);
    v = testing::Filled(b, DType::kF32, {2, 4, 1, 8}, 0.5f);
    inv_freq = testing::Filled(b, DType::kF32, {4}, 0.1f);
    out = testing::Filled(b, DType::kF32, {3, 8}, 0.0f);
    meta.num_seqs = 1;
    meta.num_tokens = 3;
    meta.block_size = 4;
    meta.max_blocks_per_seq = 2;
    meta.positions = positions.tensor;
    meta.slot_mapping = slots.tensor;
    meta.query_start = query_start.tensor;
    meta.seq_lens = seq_lens.tensor;
    meta.block_tables = tables.tensor;
    qa.qkv = qkv.tensor;
    qa.inv_freq = inv_freq.tensor;
    qa.q_out = q.tensor;
    qa.k_cache = k.tensor;
    qa.v_cache = v.tensor;
    qa.num_q_heads = qa.num_kv_heads = 1;
    qa.head_dim = 8;
    aa.q = q.tensor;
    aa.k_cache = k.tensor;
    aa.v_cache = v.tensor;
    aa.out = out.tensor;
    aa.num_q_heads = aa.num_kv_heads = 1;
    aa.head_dim = 8;
  }
};

TEST_F(CpuDataChecksTest, ValidAttentionDataIsAccepted) {
  CpuAttnData d;
  d.Build(backend(), {2, 3, 4}, {6, 7, 0}, {0, 3}, {5}, {1, 0});
  EXPECT_OK(ops().PrepareQkv(d.qa, d.meta));
  EXPECT_OK(ops().Attention(d.aa, d.meta));
}

TEST_F(CpuDataChecksTest, PrepareQkvSlotsOutsideTheCache) {
  for (int32_t bad : {-1, 8, 1000}) {
    CpuAttnData d;
    d.Build(backend(), {2, 3, 4}, {6, bad, 0}, {0, 3}, {5}, {1, 0});
    EXPECT_EQ(ops().PrepareQkv(d.qa, d.meta).code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(CpuDataChecksTest, AttentionMetadataThatWouldReadOutsideTheCache) {
  struct Case {
    const char* what;
    std::vector<int32_t> pos, qs, lens, table;
  };
  const Case cases[] = {
      {"position past the sequence", {2, 3, 5}, {0, 3}, {5}, {1, 0}},
      {"negative position", {-1, 3, 4}, {0, 3}, {5}, {1, 0}},
      {"block table too short", {2, 3, 4}, {0, 3}, {9}, {1, 0}},
      {"block id past the cache", {2, 3, 4}, {0, 3}, {5}, {1, 2}},
      {"unassigned block", {2, 3, 4}, {0, 3}, {5}, {1, -1}},
      {"query_start not covering the batch", {2, 3, 4}, {0, 2}, {5}, {1, 0}},
      {"query_start not starting at 0", {2, 3, 4}, {1, 3}, {5}, {1, 0}},
  };
  for (const Case& c : cases) {
    CpuAttnData d;
    d.Build(backend(), c.pos, {6, 7, 0}, c.qs, c.lens, c.table);
    EXPECT_EQ(ops().Attention(d.aa, d.meta).code(), StatusCode::kInvalidArgument) << c.what;
  }
}

}  // namespace
}  // namespace tokenfab
