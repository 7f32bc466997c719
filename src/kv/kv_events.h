// KV cache events for KV-aware routers, in the shape vLLM publishes them: BlockStored (a run of
// newly cached blocks with their parent-hash chain and tokens), BlockRemoved, AllBlocksCleared.
// Every event gets a sequence number (event_id, from 1, no gaps) so that a consumer that misses
// some detects the gap and re-syncs (DESIGN.md: silent failure is the worst failure).
//
// KvEventLog keeps the most recent events in a bounded ring. Thread-safety: Append is called
// by the engine's thread, Read from any thread; both lock an internal mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/thread_annotations.h"
#include "kv/block_hash.h"

namespace tokenfab {

struct KvEvent {
  enum class Type { kBlockStored, kBlockRemoved, kAllBlocksCleared };
  Type type = Type::kBlockStored;
  uint64_t event_id = 0;                   // assigned by KvEventLog::Append
  double timestamp = 0.0;                  // seconds since the Unix epoch
  std::vector<BlockHash> block_hashes;     // stored / removed blocks, in chain order
  std::optional<BlockHash> parent_block_hash;  // BlockStored: the first block's parent
  std::vector<int32_t> token_ids;          // BlockStored: the blocks' tokens
  int32_t block_size = 0;
  std::string cache_salt;
  std::string medium = "GPU";              // the tier (G1)

  // {"type": "BlockStored", "event_id": 7, "block_hashes": ["<hex>", ...], ...}
  Json ToJson() const;
};

class KvEventLog {
 public:
  explicit KvEventLog(size_t capacity = 65536) : capacity_(capacity) {}

  // Stamps the event with the next id and the current time.
  void Append(KvEvent event) EXCLUDES(mu_);

  struct Page {
    std::vector<KvEvent> events;  // ids > after, oldest first
    uint64_t first_retained_id = 0;  // older events were dropped: a reader behind it lost some
    uint64_t last_id = 0;            // the newest id so far (0: none yet)
  };
  Page Read(uint64_t after, size_t max_events) const EXCLUDES(mu_);

 private:
  const size_t capacity_;
  mutable Mutex mu_;
  std::deque<KvEvent> events_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
};

}  // namespace tokenfab
