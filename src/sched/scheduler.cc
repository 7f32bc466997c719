#include "sched/scheduler.h"

#include <algorithm>
#include <limits>

namespace tokenfab {
namespace {

bool ByKey(const SchedSeq* a, const SchedSeq* b) { return a->key() < b->key(); }

void SortByKey(std::vector<SchedSeq*>* seqs) {
  if (!std::is_sorted(seqs->begin(), seqs->end(), ByKey)) {
    std::stable_sort(seqs->begin(), seqs->end(), ByKey);
  }
}

}  // namespace

Status SchedulerConfig::Validate() const {
  if (max_batch_tokens < 1) return InvalidArgumentError("max batch tokens must be >= 1");
  if (max_seqs < 1) return InvalidArgumentError("max seqs must be >= 1");
  if (max_prefill_tokens_with_decodes < 0) {
    return InvalidArgumentError("prompt tokens beside decodes must be >= 0 (0: no cap)");
  }
  return Status::Ok();
}

int32_t StepPlan::num_tokens() const {
  int32_t n = 0;
  for (const ScheduledChunk& c : chunks) n += c.num_tokens;
  return n;
}

StepPlan ScheduleStep(const SchedulerConfig& config, std::vector<SchedSeq*>* running,
                      std::vector<SchedSeq*>* waiting, KvBudget* kv) {
  SortByKey(running);
  SortByKey(waiting);
  StepPlan plan;
  int32_t budget = config.max_batch_tokens;
  // Prompt tokens this step may still take: capped when it runs decodes too.
  const bool has_decodes = std::any_of(running->begin(), running->end(),
                                       [](const SchedSeq* s) { return s->num_uncomputed() == 1; });
  int32_t prefill_room = has_decodes && config.max_prefill_tokens_with_decodes > 0
                             ? config.max_prefill_tokens_with_decodes
                             : std::numeric_limits<int32_t>::max();

  // Drops a running sequence's KV and sends it back to wait; returns the budget its chunk had.
  auto preempt = [&](SchedSeq* victim) {
    int32_t freed_budget = 0;
    for (auto it = plan.chunks.begin(); it != plan.chunks.end(); ++it) {
      if (it->seq == victim) {
        freed_budget = it->num_tokens;
        if (victim->num_uncomputed() > 1) prefill_room += freed_budget;  // a prompt chunk
        plan.chunks.erase(it);
        break;
      }
    }
    kv->Release(*victim);
    victim->num_computed = 0;
    victim->prefix_acquired = false;
    running->erase(std::find(running->begin(), running->end(), victim));
    waiting->insert(std::upper_bound(waiting->begin(), waiting->end(), victim, ByKey), victim);
    plan.preempted.push_back(victim);
    return freed_budget;
  };

  // 1. Running sequences, best first; the worst unscheduled one is preempted when one cannot
  // grow (possibly itself).
  for (size_t i = 0; i < running->size() && budget > 0;) {
    SchedSeq* s = (*running)[i];
    const bool prefill = s->num_uncomputed() > 1;
    const int32_t n = std::min({s->num_uncomputed(), budget, prefill ? prefill_room : budget});
    if (n <= 0) {
      ++i;
      continue;
    }
    if (kv->Reserve(*s, s->num_computed + n)) {
      plan.chunks.push_back({s, n});
      budget -= n;
      if (prefill) prefill_room -= n;
      ++i;
      continue;
    }
    SchedSeq* victim = running->back();
    preempt(victim);
    if (victim == s) break;  // nothing after it to take from: it waits instead
  }

  // 2. Admissions in key order.
  while (budget > 0 && prefill_room > 0 && !waiting->empty() &&
         static_cast<int32_t>(running->size()) < config.max_seqs) {
    SchedSeq* s = waiting->front();
    if (!s->prefix_acquired) {
      s->num_computed = kv->AcquirePrefix(*s);
      s->prefix_acquired = true;
    }
    const bool prefill = s->num_uncomputed() > 1;
    const int32_t n = std::min({s->num_uncomputed(), budget, prefill ? prefill_room : budget});
    if (!kv->Reserve(*s, s->num_computed + n)) {
      // A strictly more important request may take the KV of a less important running one.
      SchedSeq* victim = running->empty() ? nullptr : running->back();
      if (victim != nullptr && victim->priority > s->priority) {
        budget += preempt(victim);
        continue;
      }
      kv->Release(*s);  // keep nothing while waiting: no deadlock on held prefixes
      s->num_computed = 0;
      s->prefix_acquired = false;
      break;
    }
    waiting->erase(waiting->begin());
    running->insert(std::upper_bound(running->begin(), running->end(), s, ByKey), s);
    plan.chunks.push_back({s, n});
    plan.admitted.push_back(s);
    budget -= n;
    if (prefill) prefill_room -= n;
  }
  return plan;
}

}  // namespace tokenfab
