// A progress line on stderr for long work (model loading, benchmarks).
//
// Silent for work that ends within a second. On a terminal it redraws one line ("loading weights  [#####     ]  52%  3.1 GB"); elsewhere
// (CI logs, pipes) it prints a line at most every 10% so logs stay short. Silenced when the log
// level is above kInfo. Thread-safety: one thread updates a given bar.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tokenfab {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  ~ProgressBar();  // finishes the line if Done() was not called

  // `done` of `total` units finished; `detail` is appended ("3.1 GB").
  void Update(int64_t done, const std::string& detail = "");
  void Done(const std::string& detail = "");

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  bool drawn_ = false;  // anything printed yet
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace tokenfab
