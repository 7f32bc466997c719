#include "base/thread_pool.h"

#include <algorithm>
#include <cstdlib>

namespace tokenfab {
namespace {
thread_local bool t_in_worker = false;
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) {
    num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  workers_.reserve(num_threads - 1);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

ThreadPool& ThreadPool::Default() {
  static ThreadPool* pool = [] {
    int n = 0;
    if (const char* env = std::getenv("TOKENFAB_THREADS")) n = std::atoi(env);
    return new ThreadPool(n);
  }();
  return *pool;
}

void ThreadPool::RunChunks(Job& job) {
  for (;;) {
    const int64_t begin = job.next.fetch_add(job.chunk);
    if (begin >= job.n) break;
    (*job.fn)(begin, std::min(job.n, begin + job.chunk));
  }
}

void ThreadPool::WorkerLoop() {
  t_in_worker = true;
  uint64_t seen = 0;
  for (;;) {
    Job* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || (job_ != nullptr && generation_ != seen); });
      if (stop_) return;
      seen = generation_;
      job = job_;
      ++job->workers;
    }
    RunChunks(*job);
    {
      std::lock_guard<std::mutex> lock(mu_);
      --job->workers;
    }
    done_cv_.notify_all();
  }
}

void ThreadPool::ParallelFor(int64_t n, const RangeFn& fn, int64_t min_chunk) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  if (workers_.empty() || t_in_worker || n <= min_chunk) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> submit(submit_mu_);
  // About four chunks per thread balances uneven chunks without much claiming overhead.
  Job job;
  job.fn = &fn;
  job.n = n;
  job.chunk = std::max(min_chunk, n / (4 * num_threads()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &job;
    ++generation_;
  }
  work_cv_.notify_all();
  RunChunks(job);
  std::unique_lock<std::mutex> lock(mu_);
  // Every chunk is claimed; wait for the workers still running theirs, then retire the job so
  // that a worker waking late does not join it.
  done_cv_.wait(lock, [&] { return job.workers == 0; });
  job_ = nullptr;
}

}  // namespace tokenfab
