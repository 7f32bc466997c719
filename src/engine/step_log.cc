#include "engine/step_log.h"

#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/logging.h"

namespace tokenfab {

Result<std::unique_ptr<StepLog>> StepLog::Open(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    return InvalidArgumentError("cannot write the step log " + path + ": " + std::strerror(errno));
  }
  // Line-buffered: one write per step (microseconds against a step's milliseconds), so that a
  // reader sees every finished step while the server runs.
  std::setvbuf(file, nullptr, _IOLBF, 1 << 12);
  return std::unique_ptr<StepLog>(new StepLog(file, path));
}

StepLog::~StepLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void StepLog::Write(const StepRecord& step, int32_t running, int32_t waiting,
                    int32_t kv_blocks_used) {
  if (file_ == nullptr) return;
  const double t =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const int n =
      std::fprintf(file_,
                   "{\"t\":%.6f,\"seconds\":%.6f,\"forward_seconds\":%.6f,\"decodes\":%d,"
                   "\"prompt_chunks\":%d,\"prompt_tokens\":%d,\"context_tokens\":%lld,\"admitted\":"
                   "%d,\"preempted\":%d,\"running\":%d,\"waiting\":%d,"
                   "\"kv_blocks_used\":%d}\n",
                   t, step.seconds, step.forward_seconds, step.decodes, step.prompt_chunks,
                   step.prompt_tokens, static_cast<long long>(step.context_tokens), step.admitted,
                   step.preempted, running, waiting, kv_blocks_used);
  if (n < 0) {
    LOG(WARNING) << "writing the step log " << path_ << " failed (" << std::strerror(errno)
                 << "); it stops here";
    std::fclose(file_);
    file_ = nullptr;
  }
}

}  // namespace tokenfab
