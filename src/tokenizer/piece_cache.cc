#include "tokenizer/piece_cache.h"

namespace tokenfab {

bool PieceCache::Lookup(std::string_view text, bool at_input_start, std::vector<int32_t>* ids) {
  MutexLock lock(&mu_);
  auto& index = index_[at_input_start];
  const auto it = index.find(text);
  if (it == index.end()) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  ids->insert(ids->end(), it->second->ids.begin(), it->second->ids.end());
  return true;
}

void PieceCache::Insert(std::string_view text, bool at_input_start,
                        std::span<const int32_t> ids) {
  Entry entry{std::string(text), at_input_start, std::vector<int32_t>(ids.begin(), ids.end())};
  const size_t size = EntryBytes(entry);
  if (size > max_bytes_) return;
  MutexLock lock(&mu_);
  auto& index = index_[at_input_start];
  if (index.count(text)) return;  // another thread was first
  lru_.push_front(std::move(entry));
  index.emplace(std::string_view(lru_.front().text), lru_.begin());
  bytes_ += size;
  while (bytes_ > max_bytes_) {
    const Entry& last = lru_.back();
    bytes_ -= EntryBytes(last);
    index_[last.at_input_start].erase(std::string_view(last.text));
    lru_.pop_back();
  }
}

size_t PieceCache::bytes() const {
  MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace tokenfab
