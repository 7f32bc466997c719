#include "bench/workload.h"

#include <algorithm>
#include <cmath>

#include "base/random.h"

namespace tokenfab {
namespace {

// Common English words, each a single token (with its leading space) in the Llama 3 and Qwen
// vocabularies.
constexpr const char* kWords[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "she", "other", "its",
    "may", "these", "what", "them", "than", "some", "him", "time", "into", "only", "do", "new",
    "about", "two", "first", "then", "also", "after", "any", "like", "should", "over", "now",
    "could", "made", "people", "many", "where", "most", "work", "well", "way", "world", "life",
    "even", "back", "still", "water", "long", "day", "great", "year", "old", "good", "part",
    "used", "place", "small", "number", "house", "light", "city", "under", "hand", "high",
    "line", "might", "state", "name", "river", "power", "sound", "system", "order", "table",
    "money", "music", "market", "story", "study", "paper", "field", "value", "model", "data",
    "point", "group", "game", "food", "book", "road", "school", "family", "history", "change",
    "energy", "plant", "animal", "answer", "question", "reason", "result", "paper", "color"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

int32_t LogNormal(double median, double sigma, int32_t lo, int32_t hi, uint64_t seed,
                  uint64_t stream, uint64_t counter) {
  // Box-Muller from two counter-based uniforms.
  const double u1 = std::max(UniformDouble(seed, stream, 2 * counter), 1e-12);
  const double u2 = UniformDouble(seed, stream, 2 * counter + 1);
  const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * M_PI * u2);
  const double x = median * std::exp(sigma * z);
  return static_cast<int32_t>(std::clamp<double>(std::round(x), lo, hi));
}

}  // namespace

Result<WorkloadKind> ParseWorkloadKind(const std::string& name) {
  if (name == "fixed") return WorkloadKind::kFixed;
  if (name == "chat") return WorkloadKind::kChat;
  if (name == "multi-turn") return WorkloadKind::kMultiTurn;
  if (name == "long-context") return WorkloadKind::kLongContext;
  return InvalidArgumentError("--workload must be fixed, chat, multi-turn or long-context");
}

std::string WorkloadKindName(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kFixed: return "fixed";
    case WorkloadKind::kChat: return "chat";
    case WorkloadKind::kMultiTurn: return "multi-turn";
    case WorkloadKind::kLongContext: return "long-context";
  }
  return "fixed";
}

Status WorkloadConfig::Validate() const {
  if (num_sessions < 1) return InvalidArgumentError("the workload needs at least one session");
  if (first_session < 0) return InvalidArgumentError("the first session index must be >= 0");
  if (input_len < 1 || output_len < 1 || system_prompt_len < 0 || turns < 1 ||
      turn_input_len < 1 || num_documents < 1 || document_len < 1) {
    return InvalidArgumentError("workload lengths and counts must be positive");
  }
  return Status::Ok();
}

std::string RandomWords(int32_t n, uint64_t seed, uint64_t stream) {
  std::string text;
  text.reserve(static_cast<size_t>(n) * 6);
  for (int32_t i = 0; i < n; ++i) {
    if (i > 0) text.push_back(' ');
    text += kWords[HashCounter(seed, stream, i) % kNumWords];
  }
  return text;
}

std::vector<Session> MakeWorkload(const WorkloadConfig& c) {
  std::vector<Session> sessions(c.num_sessions);
  // Streams: 1000 + i for session i's texts, 1 for lengths, 2 for documents, 3 the system prompt.
  const std::string shared_system = RandomWords(c.system_prompt_len, c.seed, 3);
  std::vector<std::string> documents;
  if (c.kind == WorkloadKind::kLongContext) {
    for (int32_t d = 0; d < c.num_documents; ++d) {
      documents.push_back("Read this document and answer questions about it.\n\n" +
                          RandomWords(c.document_len, c.seed, 2000000 + d));
    }
  }
  for (int32_t local = 0; local < c.num_sessions; ++local) {
    Session& s = sessions[local];
    const int64_t i = c.first_session + local;  // the session's index in the seed's sequence
    const uint64_t stream = 1000 + static_cast<uint64_t>(i) * 64;
    switch (c.kind) {
      case WorkloadKind::kFixed:
        s.turns.push_back({RandomWords(c.input_len, c.seed, stream), c.output_len});
        break;
      case WorkloadKind::kChat: {
        const int32_t in = LogNormal(c.input_len, 0.8, 8, 8 * c.input_len, c.seed, 1, 2 * i);
        const int32_t out = LogNormal(c.output_len, 0.7, 8, 8 * c.output_len, c.seed, 1, 2 * i + 1);
        s.turns.push_back({RandomWords(in, c.seed, stream), out});
        break;
      }
      case WorkloadKind::kMultiTurn:
        // Turn lengths vary (log-normal around the configured medians, stream 4), as in real
        // conversations: with equal lengths every conversation finishes its turns at the same
        // step, so all of them send the next turn at once and queue behind each other's prefill.
        s.system = shared_system;
        for (int32_t t = 0; t < c.turns; ++t) {
          const uint64_t turn = static_cast<uint64_t>(i) * c.turns + t;
          const int32_t in = LogNormal(c.turn_input_len, 0.5, std::max(1, c.turn_input_len / 4),
                                       4 * c.turn_input_len, c.seed, 4, 2 * turn);
          const int32_t out = LogNormal(c.output_len, 0.5, std::max(1, c.output_len / 4),
                                        4 * c.output_len, c.seed, 4, 2 * turn + 1);
          s.turns.push_back({RandomWords(in, c.seed, stream + 1 + t), out});
        }
        break;
      case WorkloadKind::kLongContext:
        s.system = documents[static_cast<size_t>(i % c.num_documents)];
        for (int32_t t = 0; t < c.turns; ++t) {
          s.turns.push_back({"Question: " + RandomWords(c.turn_input_len, c.seed, stream + 1 + t) + "?",
                             c.output_len});
        }
        break;
    }
  }
  return sessions;
}

}  // namespace tokenfab
