#include "tokenizer/bpe_model.h"

#include <cstdio>
#include <mutex>
#include <queue>

#include "base/logging.h"

namespace tokenfab {
namespace {

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

size_t Utf8CharLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::Create(const Json& json, const std::string& context) {
  TF_ASSIGN_OR_RETURN(const JsonObject obj, JsonObject::From(json, context));
  auto m = std::unique_ptr<BpeModel>(new BpeModel());
  auto optional_string = [&](const char* key, std::string* out, bool* present) -> Status {
    if (!obj.Has(key)) return Status::Ok();
    if (!json[key].is_string()) {
      return InvalidArgumentError(context + ": field '" + key + "' must be a string or null");
    }
    *out = json[key].get<std::string>();
    if (present) *present = true;
    return Status::Ok();
  };
  TF_RETURN_IF_ERROR(optional_string("unk_token", &m->unk_token_, &m->has_unk_));
  TF_RETURN_IF_ERROR(optional_string("continuing_subword_prefix", &m->continuing_subword_prefix_, nullptr));
  TF_RETURN_IF_ERROR(optional_string("end_of_word_suffix", &m->end_of_word_suffix_, nullptr));
  TF_ASSIGN_OR_RETURN(m->fuse_unk_, obj.BoolOr("fuse_unk", false));
  TF_ASSIGN_OR_RETURN(m->byte_fallback_, obj.BoolOr("byte_fallback", false));
  TF_ASSIGN_OR_RETURN(m->ignore_merges_, obj.BoolOr("ignore_merges", false));
  if (obj.Has("dropout")) {
    TF_ASSIGN_OR_RETURN(const double dropout, obj.Number("dropout"));
    if (dropout != 0.0) {
      return InvalidArgumentError(context + ": field 'dropout' must be null or 0 for inference");
    }
  }

  if (!json.contains("vocab") || !json["vocab"].is_object()) {
    return InvalidArgumentError(context + ": field 'vocab' must be an object of token -> id");
  }
  const Json& vocab = json["vocab"];
  m->vocab_.reserve(vocab.size());
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX) {
      return InvalidArgumentError(context + ": vocab['" + it.key() + "'] must be a non-negative id");
    }
    const int32_t id = static_cast<int32_t>(it.value().get<int64_t>());
    m->vocab_[it.key()] = id;
    max_id = std::max<int64_t>(max_id, id);
  }
  if (max_id >= static_cast<int64_t>(m->vocab_.size()) * 4 + 1024) {
    return InvalidArgumentError(context + ": vocab ids are too sparse (max id " +
                                std::to_string(max_id) + ")");
  }
  m->id_to_token_.assign(static_cast<size_t>(max_id + 1), nullptr);
  for (const auto& [token, id] : m->vocab_) m->id_to_token_[id] = &token;

  if (!json.contains("merges") || !json["merges"].is_array()) {
    return InvalidArgumentError(context + ": field 'merges' must be an array");
  }
  const Json& merges = json["merges"];
  m->merges_.reserve(merges.size());
  const size_t prefix_len = m->continuing_subword_prefix_.size();
  uint32_t rank = 0;
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& entry = merges[i];
    std::string a, b;
    if (entry.is_string()) {
      const std::string line = entry.get<std::string>();
      if (line.rfind("#version", 0) == 0) continue;
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        return InvalidArgumentError(context + ": merges[" + std::to_string(i) +
                                    "] must be two tokens separated by one space");
      }
      a = line.substr(0, space);
      b = line.substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
      a = entry[0].get<std::string>();
      b = entry[1].get<std::string>();
    } else {
      return InvalidArgumentError(context + ": merges[" + std::to_string(i) +
                                  "] must be \"a b\" or [\"a\", \"b\"]");
    }
    const int32_t a_id = m->TokenToId(a), b_id = m->TokenToId(b);
    const std::string merged = a + (b.size() >= prefix_len ? b.substr(prefix_len) : b);
    const int32_t new_id = m->TokenToId(merged);
    if (a_id < 0 || b_id < 0 || new_id < 0) {
      return InvalidArgumentError(context + ": merges[" + std::to_string(i) + "] uses a token that " +
                                  "is not in the vocab: '" + (a_id < 0 ? a : b_id < 0 ? b : merged) + "'");
    }
    m->merges_[PairKey(a_id, b_id)] = Merge{rank++, new_id};  // a later duplicate wins, as in HF
  }

  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    m->byte_ids_[b] = m->byte_fallback_ ? m->TokenToId(name) : -1;
  }
  if (m->has_unk_ && m->TokenToId(m->unk_token_) < 0) {
    LOG(WARNING) << context << ": unk_token '" << m->unk_token_ << "' is not in the vocab";
  }
  return m;
}

int32_t BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return nullptr;
  return id_to_token_[id];
}

const BpeModel::Merge* BpeModel::FindMerge(int32_t a, int32_t b) const {
  auto it = merges_.find(PairKey(a, b));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::Tokenize(std::string_view piece, std::vector<int32_t>* ids) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    const int32_t id = TokenToId(piece);
    if (id >= 0) {
      ids->push_back(id);
      return;
    }
  }
  const bool cacheable = piece.size() < kCacheMaxPieceBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = ids->size();
  MergeWord(piece, ids);
  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) {
      cache_.emplace(std::string(piece), std::vector<int32_t>(ids->begin() + first, ids->end()));
    }
  }
}

void BpeModel::MergeWord(std::string_view w, std::vector<int32_t>* ids) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(w.size());
  auto add = [&](int32_t id) {
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, true});
    if (index > 0) symbols[index - 1].next = index;
  };
  int32_t pending_unk = -1;  // id of a pending (possibly fused) unk
  const int32_t unk_id = has_unk_ ? TokenToId(unk_token_) : -1;
  std::string s;
  for (size_t i = 0; i < w.size();) {
    const size_t len = std::min(Utf8CharLength(static_cast<unsigned char>(w[i])), w.size() - i);
    const bool is_first = i == 0, is_last = i + len == w.size();
    s.clear();
    if (!is_first) s += continuing_subword_prefix_;
    s.append(w.substr(i, len));
    if (is_last) s += end_of_word_suffix_;
    i += len;
    const int32_t id = TokenToId(s);
    if (id >= 0) {
      if (pending_unk >= 0) {
        add(pending_unk);
        pending_unk = -1;
      }
      add(id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : s) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (char c : s) add(byte_ids_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (has_unk_ && unk_id >= 0) {
      if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
      pending_unk = unk_id;
    }
    // Without an unk token the character is dropped, as in HF.
  }
  if (pending_unk >= 0) add(pending_unk);

  struct Candidate {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator<(const Candidate& o) const {  // priority_queue pops the largest: invert
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* m = FindMerge(symbols[i].id, symbols[i + 1].id)) {
      queue.push({m->rank, static_cast<int32_t>(i), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& cur = symbols[top.pos];
    if (!cur.alive || cur.next < 0) continue;
    const Symbol right = symbols[cur.next];
    const Merge* m = FindMerge(cur.id, right.id);
    if (!m || m->new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    symbols[cur.next].alive = false;
    cur.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const Merge* pm = FindMerge(symbols[cur.prev].id, cur.id)) {
        queue.push({pm->rank, cur.prev, pm->new_id});
      }
    }
    if (cur.next >= 0) {
      if (const Merge* nm = FindMerge(cur.id, symbols[cur.next].id)) {
        queue.push({nm->rank, top.pos, nm->new_id});
      }
    }
  }
  for (const Symbol& sym : symbols) {
    if (sym.alive) ids->push_back(sym.id);
  }
}

}  // namespace tokenfab
