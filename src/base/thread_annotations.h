// Clang thread-safety annotations (-Wthread-safety) and a Mutex they understand.
//
//   Mutex mu_;
//   int count_ GUARDED_BY(mu_);
//   void Add() EXCLUDES(mu_) { MutexLock lock(&mu_); ++count_; }
//
// std::mutex carries no annotations in libstdc++, so shared state is guarded by this Mutex.
// It is BasicLockable, so std::condition_variable_any waits on it directly. Other compilers
// see empty macros. Thread-safety: Mutex is a mutex.
#pragma once

#include <mutex>

#if defined(__clang__)
#define TF_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define TF_THREAD_ANNOTATION_(x)
#endif

#define CAPABILITY(x) TF_THREAD_ANNOTATION_(capability(x))
#define SCOPED_CAPABILITY TF_THREAD_ANNOTATION_(scoped_lockable)
#define GUARDED_BY(x) TF_THREAD_ANNOTATION_(guarded_by(x))
#define PT_GUARDED_BY(x) TF_THREAD_ANNOTATION_(pt_guarded_by(x))
#define REQUIRES(...) TF_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) TF_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define RELEASE(...) TF_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define EXCLUDES(...) TF_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS TF_THREAD_ANNOTATION_(no_thread_safety_analysis)

namespace tokenfab {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds a Mutex for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->lock(); }
  ~MutexLock() RELEASE() { mu_->unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

}  // namespace tokenfab
