// A fixed pool of worker threads for data-parallel loops on the CPU backend.
//
//   pool.ParallelFor(n, [&](int64_t begin, int64_t end) { ... });
//
// ParallelFor splits [0, n) into contiguous chunks, runs them on the workers and the calling
// thread, and returns when all are done. Calls from different threads are serialised (one loop
// runs at a time); a ParallelFor issued from inside a worker runs inline, so nesting cannot
// deadlock. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tokenfab {

class ThreadPool {
 public:
  using RangeFn = std::function<void(int64_t begin, int64_t end)>;

  // num_threads counts the caller: 1 means no worker threads. 0 means one per hardware thread.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn over [0, n) in chunks of at least `min_chunk` items.
  void ParallelFor(int64_t n, const RangeFn& fn, int64_t min_chunk = 1);

  // Process-wide pool sized by TOKENFAB_THREADS or the hardware.
  static ThreadPool& Default();

 private:
  // One ParallelFor call; lives on the caller's stack until every worker that joined has left.
  struct Job {
    const RangeFn* fn;
    int64_t n;
    int64_t chunk;
    std::atomic<int64_t> next{0};
    int workers = 0;  // guarded by mu_
  };

  void WorkerLoop();
  static void RunChunks(Job& job);

  std::vector<std::thread> workers_;
  std::mutex submit_mu_;  // serialises ParallelFor callers

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  Job* job_ = nullptr;       // guarded by mu_; the loop workers may join
  uint64_t generation_ = 0;  // guarded by mu_; bumped per loop
  bool stop_ = false;        // guarded by mu_
};

}  // namespace tokenfab
