#include "tokenizer/piece_cache.h"

namespace tokenfab {

std::string PieceCache::Key(std::string_view text, bool at_input_start) {
  std::string key;
  key.reserve(text.size() + 1);
  key.push_back(at_input_start ? '\1' : '\0');
  key.append(text);
  return key;
}

bool PieceCache::Lookup(std::string_view text, bool at_input_start, std::vector<int32_t>* ids) {
  const std::string key = Key(text, at_input_start);
  MutexLock lock(&mu_);
  const auto it = index_.find(std::string_view(key));
  if (it == index_.end()) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  ids->insert(ids->end(), it->second->ids.begin(), it->second->ids.end());
  return true;
}

void PieceCache::Insert(std::string_view text, bool at_input_start,
                        std::span<const int32_t> ids) {
  Entry entry{Key(text, at_input_start), std::vector<int32_t>(ids.begin(), ids.end())};
  const size_t size = EntryBytes(entry);
  if (size > max_bytes_) return;
  MutexLock lock(&mu_);
  if (index_.count(std::string_view(entry.key))) return;  // another thread was first
  lru_.push_front(std::move(entry));
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  bytes_ += size;
  while (bytes_ > max_bytes_) {
    const Entry& last = lru_.back();
    bytes_ -= EntryBytes(last);
    index_.erase(std::string_view(last.key));
    lru_.pop_back();
  }
}

size_t PieceCache::bytes() const {
  MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace tokenfab
