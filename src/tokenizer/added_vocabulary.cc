#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace tokenfab {
namespace {

bool StartsWithWord(std::string_view s) {
  if (s.empty()) return false;
  const std::u32string cps = unicode::DecodeUtf8(s.substr(0, std::min<size_t>(4, s.size())));
  return !cps.empty() && unicode::IsWordChar(cps[0]);
}

bool EndsWithWord(std::string_view s) {
  if (s.empty()) return false;
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80 && s.size() - i < 4) --i;
  const std::u32string cps = unicode::DecodeUtf8(s.substr(i));
  return !cps.empty() && unicode::IsWordChar(cps.back());
}

// Byte length of the whitespace run at the start / the start of the run at the end.
size_t LeadingSpaceBytes(std::string_view s) {
  std::vector<uint32_t> offsets;
  const std::u32string cps = unicode::DecodeUtf8(s, &offsets);
  size_t i = 0;
  while (i < cps.size() && unicode::IsWhiteSpace(cps[i])) ++i;
  return offsets[i];
}
size_t TrailingSpaceStart(std::string_view s) {
  std::vector<uint32_t> offsets;
  const std::u32string cps = unicode::DecodeUtf8(s, &offsets);
  size_t i = cps.size();
  while (i > 0 && unicode::IsWhiteSpace(cps[i - 1])) --i;
  return offsets[i];
}

}  // namespace

void AddedVocabulary::Trie::Insert(std::string_view s, int32_t token) {
  if (s.empty()) return;
  first_byte[static_cast<uint8_t>(s[0])] = true;
  int32_t node = 0;
  for (char ch : s) {
    const uint8_t c = static_cast<uint8_t>(ch);
    auto& kids = nodes[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(c, int32_t{-1}));
    if (it != kids.end() && it->first == c) {
      node = it->second;
    } else {
      const int32_t next = static_cast<int32_t>(nodes.size());
      kids.insert(it, {c, next});
      nodes.emplace_back();
      node = next;
    }
  }
  nodes[node].token = token;
}

int32_t AddedVocabulary::Trie::LongestAt(std::string_view text, size_t pos, size_t* len) const {
  int32_t best = -1;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const uint8_t c = static_cast<uint8_t>(text[i]);
    const auto& kids = nodes[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(c, int32_t{-1}));
    if (it == kids.end() || it->first != c) break;
    node = it->second;
    if (nodes[node].token >= 0) {
      best = nodes[node].token;
      *len = i + 1 - pos;
    }
  }
  return best;
}

Status AddedVocabulary::Build(std::vector<AddedToken> tokens, const Normalizer* normalizer) {
  tokens_ = std::move(tokens);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    by_id_[t.id] = i;
    by_content_[t.content] = i;
    if (t.normalized) {
      std::string form = t.content;
      if (normalizer) {
        bool ignored = false;
        TF_RETURN_IF_ERROR(normalizer->Normalize(&form, &ignored));
        if (form != t.content) normalized_form_[t.id] = form;
      }
      normalized_trie_.Insert(form, static_cast<int32_t>(i));
      has_normalized_ = true;
    } else {
      raw_trie_.Insert(t.content, static_cast<int32_t>(i));
      has_raw_ = true;
    }
  }
  return Status::Ok();
}

void AddedVocabulary::FindMatches(
    std::string_view text, const Trie& trie, bool split_special_tokens,
    std::vector<std::pair<std::pair<size_t, size_t>, int32_t>>* out) const {
  out->clear();
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    // Leftmost-longest: the first position with any match, the longest match there.
    size_t start = pos, len = 0;
    int32_t token = -1;
    for (; start < text.size(); ++start) {
      if (!trie.first_byte[static_cast<uint8_t>(text[start])]) continue;
      token = trie.LongestAt(text, start, &len);
      if (token >= 0) break;
    }
    if (token < 0) break;
    size_t stop = start + len;
    pos = stop;
    const AddedToken& t = tokens_[token];
    if (split_special_tokens && t.special) continue;
    if (t.single_word) {
      const bool start_space = start == 0 || !EndsWithWord(text.substr(0, start));
      const bool stop_space = stop == text.size() || !StartsWithWord(text.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) start = std::max(TrailingSpaceStart(text.substr(0, start)), start_offset);
    if (t.rstrip) stop += LeadingSpaceBytes(text.substr(stop));
    out->push_back({{start, stop}, token});
    start_offset = stop;
    pos = stop;
  }
}

Status AddedVocabulary::ExtractAndNormalize(std::string_view text, const Normalizer* normalizer,
                                            bool split_special_tokens,
                                            std::vector<Piece>* pieces) const {
  pieces->clear();
  std::vector<std::pair<std::pair<size_t, size_t>, int32_t>> matches;
  auto split = [&](std::string_view s, bool at_input_start, const Trie& trie, bool enabled,
                   std::vector<Piece>* out) {
    if (!enabled) {
      out->push_back({std::string(s), -1, at_input_start});
      return;
    }
    FindMatches(s, trie, split_special_tokens, &matches);
    size_t prev = 0;
    for (const auto& [range, token] : matches) {
      if (range.first > prev) {
        out->push_back({std::string(s.substr(prev, range.first - prev)), -1, at_input_start && prev == 0});
      }
      out->push_back({std::string(s.substr(range.first, range.second - range.first)),
                      tokens_[token].id, at_input_start && range.first == 0});
      prev = range.second;
    }
    if (prev < s.size() || s.empty()) {
      out->push_back({std::string(s.substr(prev)), -1, at_input_start && prev == 0});
    }
  };
  std::vector<Piece> raw;
  split(text, true, raw_trie_, has_raw_, &raw);
  for (Piece& p : raw) {
    if (p.token_id >= 0) {
      pieces->push_back(std::move(p));
      continue;
    }
    if (normalizer) {
      bool lead_removed = false;
      TF_RETURN_IF_ERROR(normalizer->Normalize(&p.text, &lead_removed));
      if (lead_removed) p.at_input_start = false;
    }
    split(p.text, p.at_input_start, normalized_trie_, has_normalized_, pieces);
  }
  // Empty pieces are dropped, as PreTokenizedString::split does.
  pieces->erase(std::remove_if(pieces->begin(), pieces->end(),
                               [](const Piece& p) { return p.text.empty(); }),
                pieces->end());
  return Status::Ok();
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::FindByContent(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

const std::string* AddedVocabulary::DecodedForm(int32_t id) const {
  auto n = normalized_form_.find(id);
  if (n != normalized_form_.end()) return &n->second;
  const AddedToken* t = FindById(id);
  return t ? &t->content : nullptr;
}

bool AddedVocabulary::IsSpecial(std::string_view content) const {
  const AddedToken* t = FindByContent(content);
  return t && t->special;
}

}  // namespace tokenfab
