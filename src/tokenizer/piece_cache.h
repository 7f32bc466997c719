// PieceCache: the token ids of long spans of text already encoded, keyed by the span. The spans
// are what the added-token split leaves between special tokens, which a chat template repeats
// in every request of a conversation (the system prompt, the earlier turns, a document asked
// about again): a server re-tokenizing the whole conversation each turn then pre-tokenizes and
// BPE-encodes only what is new. Pre-tokenizers treat each such span on its own (only whether it
// starts the input matters), so cached ids equal a fresh encoding. Bounded by the bytes of text
// held; the least recently used span goes first.
// Thread-safety: every method may be called from any thread (one lock, held for a lookup or an
// insertion, never while encoding).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/thread_annotations.h"

namespace tokenfab {

class PieceCache {
 public:
  // Spans shorter than this are encoded faster than they are looked up and copied.
  static constexpr size_t kMinBytes = 256;

  explicit PieceCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Appends the ids of `text` (starting the input or not) to `ids` if cached.
  bool Lookup(std::string_view text, bool at_input_start, std::vector<int32_t>* ids)
      EXCLUDES(mu_);
  void Insert(std::string_view text, bool at_input_start, std::span<const int32_t> ids)
      EXCLUDES(mu_);

  size_t bytes() const EXCLUDES(mu_);

 private:
  struct Entry {
    std::string text;
    bool at_input_start;
    std::vector<int32_t> ids;
  };
  static size_t EntryBytes(const Entry& e) { return e.text.size() + e.ids.size() * sizeof(int32_t); }

  const size_t max_bytes_;
  mutable Mutex mu_;
  std::list<Entry> lru_ GUARDED_BY(mu_);  // most recently used first
  // By at_input_start, then views of the entries' texts.
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_[2] GUARDED_BY(mu_);
  size_t bytes_ GUARDED_BY(mu_) = 0;
};

}  // namespace tokenfab
