// ScheduleStep from tables: a step's state (sequences, KV blocks, budget) in, the plan out.
// A fake KvBudget counts blocks of a fixed size; "prefix_hit" is how many tokens of a
// sequence the fake prefix cache holds.
#include "sched/scheduler.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "sched/admission.h"

namespace tokenfab {
namespace {

class FakeKv : public KvBudget {
 public:
  FakeKv(int32_t block_size, int32_t num_blocks) : bs_(block_size), free_(num_blocks) {}
  void Hold(int64_t id, int32_t tokens) {
    held_[id] = Blocks(tokens);
    free_ -= held_[id];
  }
  void SetPrefixHit(int64_t id, int32_t tokens) { hits_[id] = tokens; }
  int32_t AcquirePrefix(const SchedSeq& s) override {
    const int32_t hit = std::min(hits_[s.id], s.num_tokens - 1) / bs_ * bs_;
    held_[s.id] += hit / bs_;
    free_ -= hit / bs_;
    return hit;
  }
  bool Reserve(const SchedSeq& s, int32_t tokens) override {
    const int32_t need = Blocks(tokens) - held_[s.id];
    if (need > free_) return false;
    if (need > 0) {
      held_[s.id] += need;
      free_ -= need;
    }
    return true;
  }
  void Release(const SchedSeq& s) override {
    free_ += held_[s.id];
    held_[s.id] = 0;
  }
  int32_t free() const { return free_; }

 private:
  int32_t Blocks(int32_t tokens) const { return (tokens + bs_ - 1) / bs_; }
  int32_t bs_;
  int32_t free_;
  std::map<int64_t, int32_t> held_;
  std::map<int64_t, int32_t> hits_;
};

struct SeqSpec {
  int64_t id;
  int32_t priority;
  int32_t tokens;
  int32_t computed;  // running sequences hold blocks for these
  bool running;
  int32_t prefix_hit = 0;
};

struct Case {
  std::string name;
  int32_t budget;
  int32_t max_seqs;
  int32_t block_size;
  int32_t num_blocks;
  std::vector<SeqSpec> seqs;  // arrival order is list order
  std::vector<std::pair<int64_t, int32_t>> chunks;  // (id, tokens) in plan order
  std::vector<int64_t> preempted;
  std::vector<int64_t> admitted;
  int32_t prefill_with_decodes = 0;  // SchedulerConfig::max_prefill_tokens_with_decodes
};

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      {"DecodesFirstThenAChunkOfTheNewPrompt", 8, 16, 4, 100,
       {{1, 0, 10, 9, true}, {2, 0, 5, 4, true}, {3, 0, 40, 0, false}},
       {{1, 1}, {2, 1}, {3, 6}}, {}, {3}},
      {"AnUnfinishedPrefillContinuesWithItsNextChunk", 8, 16, 4, 100,
       {{1, 0, 40, 6, true}, {2, 0, 5, 4, true}},
       {{1, 8}}, {}, {}},
      {"DecodesAreNeverStalledByALongPrefillAhead", 8, 16, 4, 100,
       {{1, 0, 40, 6, true}, {2, 0, 5, 4, true}, {3, 0, 9, 8, true}},
       {{1, 8}}, {}, {}},  // budget-bound: the older prefill takes it; see the next case
      {"WholeBudgetToDecodesWhenTheyFillIt", 2, 16, 4, 100,
       {{1, 0, 9, 8, true}, {2, 0, 5, 4, true}, {3, 0, 30, 0, false}},
       {{1, 1}, {2, 1}}, {}, {}},
      {"MaxSeqsCapsAdmission", 64, 2, 4, 100,
       {{1, 0, 9, 8, true}, {2, 0, 5, 0, false}, {3, 0, 5, 0, false}},
       {{1, 1}, {2, 5}}, {}, {2}},
      {"KvPressurePreemptsTheNewestRunning", 16, 16, 4, 5,
       // 1 holds 2 blocks and needs a third; 2 holds 2 and 3 holds 1: nothing free.
       {{1, 0, 9, 8, true}, {2, 0, 8, 7, true}, {3, 0, 4, 3, true}},
       {{1, 1}, {2, 1}}, {3}, {}},
      {"TheOnlyRunningSequencePreemptsItselfWhenItCannotGrow", 16, 16, 4, 2,
       {{1, 0, 9, 8, true}},
       {}, {1}, {}},
      {"PrefixHitsSkipCachedTokens", 16, 16, 4, 100,
       {{1, 0, 13, 0, false, 12}},  // 12 cached tokens: only the last one is computed
       {{1, 1}}, {}, {1}},
      {"APromptEntirelyCachedStillComputesItsLastToken", 16, 16, 4, 100,
       {{1, 0, 8, 0, false, 8}},
       {{1, 4}}, {}, {1}},
      {"HeadOfLineBlocksAdmission", 64, 16, 4, 4,
       {{1, 0, 30, 0, false}, {2, 0, 3, 0, false}},
       {}, {}, {}},
      {"BetterPriorityIsAdmittedFirst", 64, 1, 4, 100,
       {{1, 5, 6, 0, false}, {2, -1, 6, 0, false}},
       {{2, 6}}, {}, {2}},
      {"BetterPriorityPreemptsAWorseRunningOne", 64, 16, 4, 4,
       {{1, 5, 9, 8, true}, {2, 0, 8, 0, false}},
       // 1 is scheduled first (it holds 2 blocks and takes a third), then 2 needs 2 blocks:
       // 1 is worse, so it is preempted and its chunk dropped.
       {{2, 8}}, {1}, {2}},
      {"EqualPriorityDoesNotPreempt", 64, 16, 4, 4,
       {{1, 0, 9, 8, true}, {2, 0, 8, 0, false}},
       {{1, 1}}, {}, {}},
      {"RunningOrderFollowsPriorityNotListOrder", 1, 16, 4, 100,
       {{1, 3, 9, 8, true}, {2, 1, 9, 8, true}},
       {{2, 1}}, {}, {}},
      {"PromptTokensBesideDecodesAreCapped", 64, 16, 4, 100,
       {{1, 0, 9, 8, true}, {2, 0, 5, 4, true}, {3, 0, 40, 0, false}},
       {{1, 1}, {2, 1}, {3, 10}}, {}, {3}, 10},
      {"WithoutDecodesAPromptTakesTheWholeBudget", 64, 16, 4, 100,
       {{3, 0, 40, 0, false}},
       {{3, 40}}, {}, {3}, 10},
      {"TheCapCoversRunningPrefillsAndAdmissionsTogether", 64, 16, 4, 100,
       {{1, 0, 9, 8, true}, {2, 0, 40, 6, true}, {3, 0, 20, 0, false}},
       {{1, 1}, {2, 10}}, {}, {}, 10},
      {"OneTokenOfRoomAdmitsOnePromptNotAll", 64, 16, 4, 100,
       {{1, 0, 9, 8, true}, {2, 0, 5, 0, false}, {3, 0, 5, 0, false}},
       {{1, 1}, {2, 1}}, {}, {2}, 1},
      {"ACappedPrefillAheadLeavesTheDecodesTheirTokens", 64, 16, 4, 100,
       {{1, 0, 40, 6, true}, {2, 0, 5, 4, true}, {3, 0, 9, 8, true}},
       {{1, 10}, {2, 1}, {3, 1}}, {}, {}, 10},
  };
  return cases;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ScheduleStepTest : public ::testing::TestWithParam<Case> {};

TEST_P(ScheduleStepTest, Plan) {
  const Case& c = GetParam();
  FakeKv kv(c.block_size, c.num_blocks);
  std::vector<std::unique_ptr<SchedSeq>> storage;
  std::vector<SchedSeq*> running, waiting;
  uint64_t arrival = 0;
  for (const SeqSpec& spec : c.seqs) {
    auto s = std::make_unique<SchedSeq>();
    s->id = spec.id;
    s->priority = spec.priority;
    s->arrival = arrival++;
    s->num_tokens = spec.tokens;
    s->num_computed = spec.computed;
    s->prefix_acquired = spec.running;
    kv.SetPrefixHit(spec.id, spec.prefix_hit);
    if (spec.running) {
      kv.Hold(spec.id, spec.computed);
      running.push_back(s.get());
    } else {
      waiting.push_back(s.get());
    }
    storage.push_back(std::move(s));
  }
  SchedulerConfig config;
  config.max_batch_tokens = c.budget;
  config.max_seqs = c.max_seqs;
  config.max_prefill_tokens_with_decodes = c.prefill_with_decodes;
  const StepPlan plan = ScheduleStep(config, &running, &waiting, &kv);
  std::vector<std::pair<int64_t, int32_t>> chunks;
  for (const ScheduledChunk& ch : plan.chunks) chunks.emplace_back(ch.seq->id, ch.num_tokens);
  EXPECT_EQ(chunks, c.chunks);
  std::vector<int64_t> preempted, admitted;
  for (const SchedSeq* s : plan.preempted) preempted.push_back(s->id);
  for (const SchedSeq* s : plan.admitted) admitted.push_back(s->id);
  EXPECT_EQ(preempted, c.preempted);
  EXPECT_EQ(admitted, c.admitted);
  EXPECT_LE(plan.num_tokens(), c.budget);
  // Invariants: a sequence is in exactly one list; preempted ones hold nothing and restart.
  EXPECT_EQ(running.size() + waiting.size(), c.seqs.size());
  for (const SchedSeq* s : plan.preempted) {
    EXPECT_EQ(s->num_computed, 0);
    EXPECT_NE(std::find(waiting.begin(), waiting.end(), s), waiting.end());
  }
  for (const ScheduledChunk& ch : plan.chunks) {
    EXPECT_NE(std::find(running.begin(), running.end(), ch.seq), running.end());
    EXPECT_GT(ch.num_tokens, 0);
    EXPECT_LE(ch.num_tokens, ch.seq->num_uncomputed());
  }
  EXPECT_GE(kv.free(), 0);
}

INSTANTIATE_TEST_SUITE_P(Table, ScheduleStepTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

// Many steps of a simulated engine: every request finishes, prefills are chunked, the
// budget is never exceeded and decodes run every step once admitted.
void SimulateRunUnderPressure(int32_t prefill_with_decodes) {
  FakeKv kv(4, 12);
  SchedulerConfig config;
  config.max_batch_tokens = 10;
  config.max_seqs = 4;
  config.max_prefill_tokens_with_decodes = prefill_with_decodes;
  std::vector<std::unique_ptr<SchedSeq>> storage;
  std::vector<SchedSeq*> running, waiting;
  std::map<int64_t, int32_t> remaining;  // tokens still to generate
  for (int i = 0; i < 12; ++i) {
    auto s = std::make_unique<SchedSeq>();
    s->id = i;
    s->arrival = i;
    s->priority = i % 3 == 0 ? -1 : 0;
    s->num_tokens = 3 + 5 * (i % 4);
    remaining[i] = 4 + i % 5;
    waiting.push_back(s.get());
    storage.push_back(std::move(s));
  }
  int steps = 0, preemptions = 0;
  while (!running.empty() || !waiting.empty()) {
    ASSERT_LT(++steps, 1000) << "no progress";
    const StepPlan plan = ScheduleStep(config, &running, &waiting, &kv);
    ASSERT_FALSE(plan.empty()) << "a step with work left scheduled nothing";
    ASSERT_LE(plan.num_tokens(), config.max_batch_tokens);
    preemptions += static_cast<int>(plan.preempted.size());
    for (const ScheduledChunk& ch : plan.chunks) {
      SchedSeq* s = ch.seq;
      s->num_computed += ch.num_tokens;
      if (s->num_computed < s->num_tokens) continue;  // prefill continues next step
      if (--remaining[s->id] == 0) {
        kv.Release(*s);
        running.erase(std::find(running.begin(), running.end(), s));
      } else {
        ++s->num_tokens;  // the sampled token
      }
    }
  }
  EXPECT_EQ(kv.free(), 12);
  EXPECT_GT(preemptions, 0) << "the cache was meant to be too small for all of them";
}

TEST(ScheduleStepTest, ASimulatedRunFinishesEverythingUnderPressure) {
  SimulateRunUnderPressure(0);
}

TEST(ScheduleStepTest, ASimulatedRunWithCappedPromptChunksFinishesToo) {
  SimulateRunUnderPressure(3);
}

TEST(AdmissionTest, RejectsWhenTheQueueIsFullOrTheTtftEstimateIsOverTheLimit) {
  AdmissionConfig config;
  config.max_waiting = 3;
  config.max_queue_ttft_s = 2.0;
  LoadEstimate load;
  load.prefill_tokens_per_s = 1000;
  load.step_seconds = 0.1;
  // Unmeasured rate: never rejected on TTFT.
  EXPECT_TRUE(DecideAdmission(config, LoadEstimate{}, 1 << 20).admit);
  load.waiting_prefill_tokens = 1000;
  load.num_waiting = 1;
  AdmissionDecision d = DecideAdmission(config, load, 500);
  EXPECT_TRUE(d.admit);
  EXPECT_NEAR(d.estimated_ttft_s, 1.6, 1e-9);
  d = DecideAdmission(config, load, 1500);
  EXPECT_FALSE(d.admit);
  EXPECT_NEAR(d.estimated_ttft_s, 2.6, 1e-9);
  EXPECT_EQ(d.retry_after_s, 1.0);
  EXPECT_NE(d.reason.find("time to first token"), std::string::npos);
  load.num_waiting = 3;
  d = DecideAdmission(config, load, 1);
  EXPECT_FALSE(d.admit);
  EXPECT_NE(d.reason.find("queue is full"), std::string::npos);
  EXPECT_GE(d.retry_after_s, 1.0);
  config.max_queue_ttft_s = 0;  // no TTFT limit
  load.num_waiting = 0;
  EXPECT_TRUE(DecideAdmission(config, load, 1 << 20).admit);
}

}  // namespace
}  // namespace tokenfab
