// Leveled logging to stderr: `LOG(INFO) << "loaded " << n << " tensors";`
//
// One line per message, written with a single fwrite so lines from different threads never
// interleave. The threshold is process-wide (SetLogLevel) and defaults to kInfo.
#pragma once

#include <sstream>

#include "base/check.h"  // Voidify


namespace tokenfab {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool LogEnabled(LogLevel level);

namespace internal {

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

}  // namespace internal
}  // namespace tokenfab

#define TF_LOG_LEVEL_DEBUG ::tokenfab::LogLevel::kDebug
#define TF_LOG_LEVEL_INFO ::tokenfab::LogLevel::kInfo
#define TF_LOG_LEVEL_WARNING ::tokenfab::LogLevel::kWarning
#define TF_LOG_LEVEL_ERROR ::tokenfab::LogLevel::kError

#define LOG(severity)                                      \
  !::tokenfab::LogEnabled(TF_LOG_LEVEL_##severity) ? (void)0 \
      : ::tokenfab::internal::Voidify() &                  \
            ::tokenfab::internal::LogMessage(TF_LOG_LEVEL_##severity, __FILE__, __LINE__).stream()
