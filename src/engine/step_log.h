// StepLog: one JSON line per engine step (`tokenfab serve --step-log FILE`), so that a serving
// run can be read as the batches it became: when a closed loop settles into waves (all
// prompts, then all decodes) or into mixed steps, and what each kind of step cost.
//
// Each line: {"t": the step's end in Unix seconds (to match a benchmark's wall-clock window);
// "seconds": the step's time, "forward_seconds": the model's forward pass in it; "decodes",
// "prompt_chunks", "prompt_tokens", "context_tokens", "admitted", "preempted": its StepRecord;
// "running", "waiting", "kv_blocks_used": after the step}.
// `tools/serving/step_log_summary.py` groups a log's steps by kind.
//
// Thread-safety: none; the engine's owner thread writes it.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "base/status.h"
#include "engine/engine.h"

namespace tokenfab {

class StepLog {
 public:
  // Creates or truncates `path`; an error names it.
  static Result<std::unique_ptr<StepLog>> Open(const std::string& path);
  ~StepLog();  // flushes and closes
  StepLog(const StepLog&) = delete;
  StepLog& operator=(const StepLog&) = delete;

  // Appends the line of one step, written at once (a reader sees it while the server runs). A
  // write error is logged once and the log stops; serving goes on.
  void Write(const StepRecord& step, int32_t running, int32_t waiting, int32_t kv_blocks_used);

 private:
  StepLog(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}

  std::FILE* file_;
  const std::string path_;
};

}  // namespace tokenfab
