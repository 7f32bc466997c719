// Workloads for the load generator: sessions of one or more turns with their prompt texts and
// output lengths, generated from a seed (the same seed gives the same workload, so two servers
// see identical requests).
//   fixed         one turn each, input and output lengths fixed
//   chat          one turn each, lengths drawn from a chat-like (log-normal) distribution
//   multi-turn    conversations sharing one system prompt; each turn adds a user message and
//                 carries the earlier replies (prefix caching's main case); turn and reply
//                 lengths log-normal around their medians
//   long-context  sessions that revisit the same long document with new questions
// Lengths are in words of a common-English vocabulary, about one token each in Llama 3 and
// Qwen tokenizers; the reported token counts come from the server's usage.
// Thread-safety: pure functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace tokenfab {

enum class WorkloadKind { kFixed, kChat, kMultiTurn, kLongContext };

Result<WorkloadKind> ParseWorkloadKind(const std::string& name);
std::string WorkloadKindName(WorkloadKind kind);

struct WorkloadConfig {
  WorkloadKind kind = WorkloadKind::kFixed;
  int32_t num_sessions = 100;
  int32_t input_len = 512;        // fixed: prompt words; chat: median
  int32_t output_len = 128;       // fixed: output tokens; chat, multi-turn: median
  int32_t system_prompt_len = 1000;  // multi-turn: the shared system prompt
  int32_t turns = 4;              // multi-turn and long-context: turns per session
  int32_t turn_input_len = 100;   // multi-turn: median words per user message
  int32_t num_documents = 4;      // long-context: distinct documents
  int32_t document_len = 8000;    // long-context: words per document
  uint64_t seed = 0;
  // The index of the first session: sessions [first_session, first_session + num_sessions) of
  // the seed's endless sequence, so that successive runs against one server can each take
  // sessions it has not seen (and has not cached).
  int64_t first_session = 0;
  Status Validate() const;
};

struct Turn {
  std::string user;        // the user message (or the whole prompt for completions)
  int32_t max_tokens = 0;  // output tokens asked for
};

struct Session {
  std::string system;  // "" for none
  std::vector<Turn> turns;
};

std::vector<Session> MakeWorkload(const WorkloadConfig& config);

// `n` words of random English-like text from a fixed vocabulary (deterministic in the seeds).
std::string RandomWords(int32_t n, uint64_t seed, uint64_t stream);

}  // namespace tokenfab
