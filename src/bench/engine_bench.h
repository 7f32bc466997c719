// bench-engine: the forward pass's speed, without HTTP or scheduling in the way.
//
// Measures prefill (one prompt of N tokens, optionally after P tokens already in the KV cache as
// after a prefix-cache hit; logits of the last row), decode (B sequences with C tokens of
// context, each step one token per sequence), mixed steps (those B decodes and a prompt in one
// forward, as a serving step that admits a prompt while others decode, timed beside its two
// halves alone) and scoring (all-row logits), each after a warm-up, as the median of several
// runs. First it measures the device's own ceilings (read bandwidth, copy bandwidth, GEMM rate)
// and then reports each case's tokens per second and its fraction of the roofline: for decode,
// (weights actually read + KV read) over the read bandwidth; for prefill and mixed steps, the
// slower of their flops over the GEMM rate and their weight (and KV) bytes over the read
// bandwidth. Results are JSON for bench/results/.
#pragma once

#include <cstdint>
#include <vector>

#include "base/json.h"
#include "engine/engine.h"
#include "engine/sampling_params.h"

namespace tokenfab {

struct EngineBenchOptions {
  std::vector<int32_t> prompt_lens = {128, 512};
  std::vector<int32_t> prefix_lens = {0};  // tokens in the KV cache before each prompt
  std::vector<int32_t> batch_sizes = {1, 8};
  std::vector<int32_t> context_lens = {128};
  // Mixed steps: for each of these prompt lengths and each (batch, context) of the decode grid,
  // one forward that decodes the batch and prefills the prompt, against the two alone.
  std::vector<int32_t> mixed_prefill_lens;
  int32_t decode_steps = 8;
  int32_t repeats = 3;
  int32_t score_len = 512;  // 0 skips the scoring run
  uint64_t seed = 1;        // for the random prompt tokens
  bool measure_ceilings = true;  // probe the device first and report roofline fractions
  // Run the server's warm-up first (engine/warm_up.h): every GEMM row bucket is then timed at
  // its largest count, as in a served run, not at whichever case meets it first (a mixed step
  // of 320 rows took 12.4 or 17.3 ms on the H100 depending on that).
  bool warm_up = true;
  // How decode steps sample, on the device (the seed is set per row); greedy by default.
  // Unless greedy, the host Sampler's cost per row under the same rule is reported too: what a
  // step would add if its logits came to the host instead.
  SamplingParams decode_sampling = [] {
    SamplingParams greedy;
    greedy.temperature = 0.0;
    return greedy;
  }();
};

Result<Json> RunEngineBench(Engine& engine, const EngineBenchOptions& options);

// A short human-readable table of a RunEngineBench result.
std::string FormatEngineBench(const Json& result);

}  // namespace tokenfab
