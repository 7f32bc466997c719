// ScheduleStep: which sequences run in the next forward pass, with how many tokens each.
//
// A step has a token budget. Running sequences come first, best key (priority, then arrival)
// first: each decode takes its one token, an unfinished prefill its next chunk, so a long
// prompt never stalls the running streams. Waiting sequences are then admitted in key order,
// their prompts chunked into what is left of the budget, after reusing any cached prefix.
// When a running sequence cannot grow its KV, the worst-keyed running sequence not yet
// scheduled is preempted (recompute: its KV is dropped and it waits again at the front); a
// waiting sequence with a strictly better priority than a running one may preempt it too.
// Admission is in order: the head of the queue that does not fit blocks the ones behind it.
//
// A plain function over plain data (tests/sched/scheduler_test.cc drives it from tables).
// Thread-safety: none; the engine's thread.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "sched/sched_seq.h"

namespace tokenfab {

struct SchedulerConfig {
  int32_t max_batch_tokens = 2048;  // tokens per step
  int32_t max_seqs = 256;           // sequences running at once
  // Prompt tokens a step takes while it also runs decodes (0: as many as the budget leaves).
  // Decodes ride along in a step whose GEMMs the prompt tokens already make compute-bound, so
  // smaller prompt chunks beside decodes let more decode tokens ride and leave fewer steps of
  // decodes alone (which only read the weights); with no decodes running, a prompt still gets
  // the whole budget, for its time to first token.
  int32_t max_prefill_tokens_with_decodes = 0;
  Status Validate() const;
};

struct ScheduledChunk {
  SchedSeq* seq = nullptr;
  int32_t num_tokens = 0;  // the sequence's next uncomputed tokens
};

struct StepPlan {
  std::vector<ScheduledChunk> chunks;  // running sequences first, then the newly admitted
  std::vector<SchedSeq*> admitted;     // moved from waiting to running
  std::vector<SchedSeq*> preempted;    // moved from running to waiting; their KV released
  int32_t num_tokens() const;
  bool empty() const { return chunks.empty(); }
};

// `running` and `waiting` are updated in place (admitted move to running, preempted to
// waiting) and left sorted by key.
StepPlan ScheduleStep(const SchedulerConfig& config, std::vector<SchedSeq*>* running,
                      std::vector<SchedSeq*>* waiting, KvBudget* kv);

}  // namespace tokenfab
