#include "kv/kv_events.h"

#include <chrono>

namespace tokenfab {

Json KvEvent::ToJson() const {
  Json j;
  j["event_id"] = event_id;
  j["timestamp"] = timestamp;
  switch (type) {
    case Type::kBlockStored: {
      j["type"] = "BlockStored";
      Json hashes = Json::array();
      for (const BlockHash& h : block_hashes) hashes.push_back(BlockHashHex(h));
      j["block_hashes"] = std::move(hashes);
      j["parent_block_hash"] = parent_block_hash ? Json(BlockHashHex(*parent_block_hash)) : Json();
      j["token_ids"] = token_ids;
      j["block_size"] = block_size;
      j["cache_salt"] = cache_salt.empty() ? Json() : Json(cache_salt);
      j["medium"] = medium;
      break;
    }
    case Type::kBlockRemoved: {
      j["type"] = "BlockRemoved";
      Json hashes = Json::array();
      for (const BlockHash& h : block_hashes) hashes.push_back(BlockHashHex(h));
      j["block_hashes"] = std::move(hashes);
      j["medium"] = medium;
      break;
    }
    case Type::kAllBlocksCleared:
      j["type"] = "AllBlocksCleared";
      j["medium"] = medium;
      break;
  }
  return j;
}

void KvEventLog::Append(KvEvent event) {
  event.timestamp = std::chrono::duration<double>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  MutexLock lock(&mu_);
  event.event_id = next_id_++;
  events_.push_back(std::move(event));
  while (events_.size() > capacity_) events_.pop_front();
}

KvEventLog::Page KvEventLog::Read(uint64_t after, size_t max_events) const {
  MutexLock lock(&mu_);
  Page page;
  page.last_id = next_id_ - 1;
  page.first_retained_id = events_.empty() ? next_id_ : events_.front().event_id;
  if (events_.empty()) return page;
  // Ids are consecutive: index of the first event with id > after.
  const uint64_t first = events_.front().event_id;
  size_t start = after >= first ? static_cast<size_t>(after - first + 1) : 0;
  for (size_t i = start; i < events_.size() && page.events.size() < max_events; ++i) {
    page.events.push_back(events_[i]);
  }
  return page;
}

}  // namespace tokenfab
