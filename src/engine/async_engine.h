// AsyncEngine: an Engine run by one owner thread, for servers. Other threads submit and cancel
// requests through a queue (llama.cpp's server loop, vLLM's engine core); the owner thread
// drains the queue between steps, steps while there is work, and hands each request's outputs
// to its callback (on the owner thread: callbacks must only enqueue). Admission control
// (sched/admission.h) rejects at Submit, before anything is queued.
//
// Thread-safety: Submit, Cancel, Snapshot, Drain and the accessors may be called from any
// thread. The Engine inside is touched only by the owner thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/thread_annotations.h"
#include "engine/engine.h"
#include "engine/step_log.h"
#include "sched/admission.h"

namespace tokenfab {

// Gauges and counters for /metrics, refreshed by the owner thread after every step.
struct EngineSnapshot {
  int32_t num_running = 0;
  int32_t num_waiting = 0;          // in the engine's queue plus submitted, not yet taken
  int64_t waiting_prefill_tokens = 0;
  int32_t kv_blocks_total = 0;
  int32_t kv_blocks_used = 0;       // referenced by requests or pins
  int32_t kv_blocks_cached = 0;     // held in the prefix cache (some may be evictable)
  int32_t kv_blocks_pinned = 0;
  double tokens_per_s = 0;          // recent forward throughput (all tokens, prefill + decode)
  double step_seconds = 0;          // recent mean step time
  EngineStats stats;
};

class AsyncEngine {
 public:
  // Starts the owner thread. With a `step_log`, every step appends its line to it.
  AsyncEngine(std::unique_ptr<Engine> engine, AdmissionConfig admission,
              std::unique_ptr<StepLog> step_log = nullptr);
  ~AsyncEngine();  // cancels what is left and joins the owner thread
  AsyncEngine(const AsyncEngine&) = delete;
  AsyncEngine& operator=(const AsyncEngine&) = delete;

  // Queues a request and returns its id. ResourceExhausted when admission control rejects it
  // (*retry_after_s gets a hint in seconds), Unavailable while draining, InvalidArgument for a
  // bad request. Outputs go to `on_output` on the owner thread.
  Result<int64_t> Submit(EngineRequest request, OutputCallback on_output,
                         double* retry_after_s = nullptr) EXCLUDES(mu_);
  // Cancels a request (its KV is freed on the next loop turn); unknown ids are ignored.
  void Cancel(int64_t id) EXCLUDES(mu_);

  // Stops admitting (Submit answers Unavailable), waits until the requests in flight finish
  // or `deadline` passes, then cancels the rest. Returns true if all finished in time.
  bool Drain(std::chrono::steady_clock::time_point deadline) EXCLUDES(mu_);
  bool draining() const { return draining_.load(); }

  EngineSnapshot Snapshot() const EXCLUDES(mu_);
  const ModelConfig& model_config() const { return model_config_; }
  int64_t max_sequence_tokens() const { return max_sequence_tokens_.load(); }
  int32_t block_size() const { return block_size_; }
  KvEventLog& kv_events() { return engine_->kv_events(); }

 private:
  struct Submission {
    int64_t id;
    EngineRequest request;
    OutputCallback on_output;
  };
  void Loop();
  void RefreshSnapshot(double step_seconds, int64_t step_tokens) EXCLUDES(mu_);

  std::unique_ptr<Engine> engine_;  // the owner thread's alone after construction
  std::unique_ptr<StepLog> step_log_;  // the owner thread's; may be null
  const ModelConfig model_config_;
  const AdmissionConfig admission_;
  const int32_t block_size_;
  std::atomic<int64_t> max_sequence_tokens_{0};
  std::atomic<bool> draining_{false};

  mutable Mutex mu_;
  std::condition_variable_any wake_;  // work arrived, or stop
  std::condition_variable_any idle_;  // the engine ran out of work
  std::vector<Submission> inbox_ GUARDED_BY(mu_);
  std::vector<int64_t> cancels_ GUARDED_BY(mu_);
  int64_t inbox_tokens_ GUARDED_BY(mu_) = 0;
  int64_t next_id_ GUARDED_BY(mu_) = 1;
  int64_t in_flight_ GUARDED_BY(mu_) = 0;  // submitted and not yet finished
  bool stop_ GUARDED_BY(mu_) = false;
  bool abort_all_ GUARDED_BY(mu_) = false;  // Drain's deadline passed: end every request
  EngineSnapshot snapshot_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace tokenfab
