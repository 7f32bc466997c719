#include "engine/async_engine.h"

#include <utility>

#include "base/logging.h"

namespace tokenfab {
namespace {

// Wakes the owner thread at least this often even when idle, so that no wait is unbounded.
constexpr auto kIdlePoll = std::chrono::milliseconds(200);

}  // namespace

AsyncEngine::AsyncEngine(std::unique_ptr<Engine> engine, AdmissionConfig admission,
                         std::unique_ptr<StepLog> step_log)
    : engine_(std::move(engine)),
      step_log_(std::move(step_log)),
      model_config_(engine_->model_config()),
      admission_(admission),
      block_size_(engine_->config().block_size) {
  max_sequence_tokens_ = engine_->max_sequence_tokens();
  RefreshSnapshot(0, 0);
  thread_ = std::thread([this] { Loop(); });
}

AsyncEngine::~AsyncEngine() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Result<int64_t> AsyncEngine::Submit(EngineRequest request, OutputCallback on_output,
                                    double* retry_after_s) {
  if (draining_) return UnavailableError("the server is shutting down");
  const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
  int64_t id;
  {
    MutexLock lock(&mu_);
    LoadEstimate load;
    load.num_waiting = snapshot_.num_waiting + static_cast<int32_t>(inbox_.size());
    load.waiting_prefill_tokens = snapshot_.waiting_prefill_tokens + inbox_tokens_;
    load.prefill_tokens_per_s = snapshot_.tokens_per_s;
    load.step_seconds = snapshot_.step_seconds;
    const AdmissionDecision decision = DecideAdmission(admission_, load, prompt_tokens);
    if (!decision.admit) {
      if (retry_after_s != nullptr) *retry_after_s = decision.retry_after_s;
      return ResourceExhaustedError(decision.reason);
    }
    id = next_id_++;
    inbox_tokens_ += prompt_tokens;
    ++in_flight_;
    // Count the request out when its last output has been delivered.
    OutputCallback wrapped = [this, cb = std::move(on_output)](RequestOutput&& out) {
      const bool finished = out.finished;
      cb(std::move(out));
      if (finished) {
        MutexLock lock(&mu_);
        if (--in_flight_ == 0) idle_.notify_all();
      }
    };
    inbox_.push_back({id, std::move(request), std::move(wrapped)});
  }
  wake_.notify_one();
  return id;
}

void AsyncEngine::Cancel(int64_t id) {
  {
    MutexLock lock(&mu_);
    cancels_.push_back(id);
  }
  wake_.notify_one();
}

bool AsyncEngine::Drain(std::chrono::steady_clock::time_point deadline) {
  draining_ = true;
  MutexLock lock(&mu_);
  while (in_flight_ > 0) {
    if (idle_.wait_until(mu_, deadline) == std::cv_status::timeout) break;
  }
  if (in_flight_ == 0) return true;
  LOG(WARNING) << "drain deadline passed with " << in_flight_ << " requests in flight; cancelling";
  abort_all_ = true;
  wake_.notify_all();
  const auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (in_flight_ > 0) {
    if (idle_.wait_until(mu_, grace) == std::cv_status::timeout) break;
  }
  return false;
}

EngineSnapshot AsyncEngine::Snapshot() const {
  MutexLock lock(&mu_);
  EngineSnapshot s = snapshot_;
  s.num_waiting += static_cast<int32_t>(inbox_.size());
  s.waiting_prefill_tokens += inbox_tokens_;
  return s;
}

void AsyncEngine::RefreshSnapshot(double step_seconds, int64_t step_tokens) {
  const BlockPool& pool = engine_->block_pool();
  MutexLock lock(&mu_);
  EngineSnapshot& s = snapshot_;
  s.num_running = engine_->num_running();
  s.num_waiting = engine_->num_waiting();
  s.waiting_prefill_tokens = engine_->waiting_prefill_tokens();
  s.kv_blocks_total = pool.num_blocks();
  s.kv_blocks_used = pool.num_used();
  s.kv_blocks_cached = engine_->prefix_cache().num_cached();
  s.kv_blocks_pinned = engine_->prefix_cache().num_pinned();
  s.stats = engine_->stats();
  if (step_seconds > 0) {
    // Exponential moving averages over roughly the last 20 steps.
    constexpr double kAlpha = 0.05;
    const double rate = static_cast<double>(step_tokens) / step_seconds;
    s.tokens_per_s = s.tokens_per_s == 0 ? rate : (1 - kAlpha) * s.tokens_per_s + kAlpha * rate;
    s.step_seconds =
        s.step_seconds == 0 ? step_seconds : (1 - kAlpha) * s.step_seconds + kAlpha * step_seconds;
  }
}

void AsyncEngine::Loop() {
  while (true) {
    std::vector<Submission> inbox;
    std::vector<int64_t> cancels;
    bool abort_all = false;
    {
      MutexLock lock(&mu_);
      if (!stop_ && !abort_all_ && inbox_.empty() && cancels_.empty() && !engine_->HasWork()) {
        wake_.wait_for(mu_, kIdlePoll);
      }
      if (stop_) break;
      inbox.swap(inbox_);
      cancels.swap(cancels_);
      inbox_tokens_ = 0;
      abort_all = std::exchange(abort_all_, false);
    }
    for (Submission& s : inbox) {
      OutputCallback callback = s.on_output;
      const Status added = engine_->AddRequest(s.id, std::move(s.request), std::move(s.on_output));
      if (!added.ok()) {
        RequestOutput out;
        out.id = s.id;
        out.finished = true;
        out.finish_reason = FinishReason::kCancelled;
        out.status = added;
        callback(std::move(out));
      }
    }
    for (int64_t id : cancels) engine_->AbortRequest(id);
    if (abort_all) engine_->AbortAll(UnavailableError("the server is shutting down"));
    if (!engine_->HasWork()) {
      RefreshSnapshot(0, 0);
      continue;
    }
    const Status status = engine_->Step();
    const StepRecord& step = engine_->last_step();  // seconds 0: nothing was scheduled
    if (!status.ok()) {
      LOG(ERROR) << "engine step failed: " << status.ToString() << "; failing every request";
      engine_->AbortAll(status);
    }
    max_sequence_tokens_ = engine_->max_sequence_tokens();  // pins change it
    if (step_log_ != nullptr && step.seconds > 0) {
      step_log_->Write(step, engine_->num_running(), engine_->num_waiting(),
                       engine_->block_pool().num_used());
    }
    RefreshSnapshot(step.seconds, step.decodes + step.prompt_tokens);
  }
  engine_->AbortAll(UnavailableError("the engine is shutting down"));
}

}  // namespace tokenfab
