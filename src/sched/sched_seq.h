// The scheduler's view of a request: counts and order keys, no tokens, no blocks. And
// KvBudget, the one thing the scheduler may ask of the KV cache — reuse a cached prefix, grow,
// release — without knowing what a block is or where it lives (DESIGN.md's layering).
// Thread-safety: plain data, used by the engine's thread.
#pragma once

#include <cstdint>
#include <tuple>

namespace tokenfab {

struct SchedSeq {
  int64_t id = 0;
  int32_t priority = 0;      // lower runs first (vLLM's convention); 0 by default
  uint64_t arrival = 0;      // submission order; breaks ties within a priority
  int32_t num_tokens = 0;    // prompt plus tokens generated so far
  int32_t num_computed = 0;  // tokens whose KV is in the cache
  bool prefix_acquired = false;  // KvBudget::AcquirePrefix ran since the last admission try

  int32_t num_uncomputed() const { return num_tokens - num_computed; }
  // Order of service: better (smaller) keys are scheduled first and preempted last.
  std::tuple<int32_t, uint64_t> key() const { return {priority, arrival}; }
};

class KvBudget {
 public:
  virtual ~KvBudget() = default;
  // On admission: takes the KV of the longest cached prefix of the sequence and returns how
  // many of its tokens that covers (less than num_tokens: the last token is always computed,
  // for its logits).
  virtual int32_t AcquirePrefix(const SchedSeq& seq) = 0;
  // Grows the sequence's KV to hold `num_tokens` tokens: all or nothing.
  virtual bool Reserve(const SchedSeq& seq, int32_t num_tokens) = 0;
  // Drops all of the sequence's KV (preemption, or a failed admission).
  virtual void Release(const SchedSeq& seq) = 0;
};

}  // namespace tokenfab
