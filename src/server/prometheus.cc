#include "server/prometheus.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tokenfab {
namespace {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char text[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(text, sizeof(text), "%.0f", v);
  } else {
    std::snprintf(text, sizeof(text), "%.9g", v);
  }
  return text;
}

const std::string kHelp = "# HELP ", kType = "\n# TYPE ", kSpace = " ";

}  // namespace

void PrometheusWriter::Family(const std::string& name, const std::string& type,
                              const std::string& help) {
  for (const std::string* part : {&kHelp, &name, &kSpace, &help, &kType, &name, &kSpace, &type}) {
    text_.append(*part);
  }
  text_.push_back('\n');
}

void PrometheusWriter::Sample(const std::string& name, const std::string& labels, double value) {
  text_.append(name);
  if (!labels.empty()) {
    text_.push_back('{');
    text_.append(labels);
    text_.push_back('}');
  }
  text_.push_back(' ');
  text_.append(FormatValue(value));
  text_.push_back('\n');
}

std::string PrometheusLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  const size_t bucket =
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  MutexLock lock(&mu_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

uint64_t Histogram::count() const {
  MutexLock lock(&mu_);
  return count_;
}

void Histogram::Render(PrometheusWriter* out, const std::string& name,
                       const std::string& help) const {
  MutexLock lock(&mu_);
  out->Family(name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    char le[64];
    std::snprintf(le, sizeof(le), "%g", bounds_[i]);
    out->Sample(name + "_bucket", std::string("le=\"") + le + "\"", static_cast<double>(cumulative));
  }
  out->Sample(name + "_bucket", "le=\"+Inf\"", static_cast<double>(count_));
  out->Sample(name + "_sum", "", sum_);
  out->Sample(name + "_count", "", static_cast<double>(count_));
}

}  // namespace tokenfab
