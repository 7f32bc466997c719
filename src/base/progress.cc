#include "base/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "base/logging.h"

namespace tokenfab {

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)),
      total_(std::max<int64_t>(total, 1)),
      enabled_(LogEnabled(LogLevel::kInfo)),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (!finished_) Done();
}

void ProgressBar::Update(int64_t done, const std::string& detail) {
  if (!enabled_ || finished_) return;
  done = std::clamp<int64_t>(done, 0, total_);
  const int percent = static_cast<int>(100 * done / total_);
  const auto now = std::chrono::steady_clock::now();
  // Quick work stays silent; only work that makes someone wait shows progress.
  if (now - start_ < std::chrono::seconds(1)) return;
  drawn_ = true;
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done < total_) return;
    last_draw_ = now;
    constexpr int kWidth = 30;
    const int filled = kWidth * percent / 100;
    std::fprintf(stderr, "\r%s [%s%s] %3d%% %s\033[K", label_.c_str(),
                 std::string(filled, '#').c_str(), std::string(kWidth - filled, ' ').c_str(),
                 percent, detail.c_str());
    std::fflush(stderr);
    return;
  }
  const int decile = percent / 10;
  if (decile == last_decile_) return;
  last_decile_ = decile;
  std::fprintf(stderr, "%s: %d%% %s\n", label_.c_str(), percent, detail.c_str());
}

void ProgressBar::Done(const std::string& detail) {
  if (!enabled_ || finished_) return;
  finished_ = true;
  if (!drawn_) return;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "%s%s: done in %.1f s %s\n", tty_ ? "\r\033[K" : "", label_.c_str(),
               seconds, detail.c_str());
}

}  // namespace tokenfab
