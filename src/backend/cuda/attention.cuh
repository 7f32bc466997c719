// Launcher of paged attention for a ragged batch on the GPU.
//
// One block per (query token, KV head, split): the block loads the G = Hq / Hkv query heads
// that share the KV head, walks its share of the token's causal (optionally sliding) window
// in tiles of 128 keys with an online softmax, and reads each key and value once for all G
// heads (GQA). With few query tokens (decode) the window is split across blocks (flash-
// decoding) and a second kernel merges the partial softmaxes.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tokenfab::cuda {

struct AttentionParams {
  const __nv_bfloat16* q;        // [T, Hq, D]
  const __nv_bfloat16* k_cache;  // [num_blocks * block_size, Hkv, D]
  const __nv_bfloat16* v_cache;  // [num_blocks * block_size, Hkv, D]
  const int32_t* positions;      // [T]
  const int32_t* query_start;    // [S + 1]
  const int32_t* block_tables;   // [S, max_blocks_per_seq]
  __nv_bfloat16* out;            // [T, Hq, D]
  float* partial_acc;            // [T, Hq, splits, D], used when splits > 1
  float* partial_ml;             // [T, Hq, splits, 2]: running max and sum
  int* split_counters;           // [T, Hkv], zero: splits finished (decode kernel only)
  int num_tokens;
  int num_seqs;
  int num_q_heads;
  int num_kv_heads;
  int head_dim;
  int block_size;
  int max_blocks_per_seq;
  int num_blocks;
  int sliding_window;  // 0: full causal
  int splits;
  float scale;
  // Where this launch's share of the batch starts (a mixed step sends its leading decode
  // tokens to one kernel and the rest to another): the prefill kernel's first sequence, the
  // merge kernel's first token row. The decode kernels take rows [0, num_tokens).
  int first_seq = 0;
  int first_token = 0;
};

// Largest supported head_dim and GQA group.
constexpr int kAttentionMaxHeadDim = 256;
constexpr int kAttentionMaxGroup = 16;

// How many splits to use for `num_tokens` tokens whose windows reach `max_seq_len` keys.
int AttentionSplits(int num_tokens, int num_kv_heads, int max_seq_len, int num_sms);

cudaError_t LaunchAttention(const AttentionParams& p, cudaStream_t stream);

// Merges the p.splits partial softmaxes of every (token, head) of rows [p.first_token,
// p.num_tokens) into p.out.
cudaError_t LaunchMergeSplits(const AttentionParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
