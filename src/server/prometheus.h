// Prometheus text exposition format (version 0.0.4): the writer of metric families, and a
// histogram with fixed buckets. Output passes `promtool check metrics` (tests/server).
// Thread-safety: Histogram::Observe and Render may be called from any thread; the writer is a
// local value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/thread_annotations.h"

namespace tokenfab {

class PrometheusWriter {
 public:
  // Starts a family: "# HELP name help" and "# TYPE name type" (counter, gauge, histogram).
  void Family(const std::string& name, const std::string& type, const std::string& help);
  // One sample; `labels` is the inside of the braces ("code=\"200\""), or "".
  void Sample(const std::string& name, const std::string& labels, double value);
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Escapes a label value (backslash, quote, newline).
std::string PrometheusLabel(const std::string& value);

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value) EXCLUDES(mu_);
  void Render(PrometheusWriter* out, const std::string& name, const std::string& help) const
      EXCLUDES(mu_);
  uint64_t count() const EXCLUDES(mu_);

 private:
  const std::vector<double> bounds_;
  mutable Mutex mu_;
  std::vector<uint64_t> counts_ GUARDED_BY(mu_);  // per bucket, not cumulative; last = +Inf
  double sum_ GUARDED_BY(mu_) = 0;
  uint64_t count_ GUARDED_BY(mu_) = 0;
};

}  // namespace tokenfab
