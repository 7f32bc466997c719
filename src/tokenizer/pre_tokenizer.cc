#include "tokenizer/pre_tokenizer.h"

#include <functional>

#include "tokenizer/byte_level.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace tokenfab {
namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Span {
  uint32_t begin, end;
  bool is_match;
};

Result<Behavior> ParseBehavior(const JsonObject& obj, const std::string& where) {
  TF_ASSIGN_OR_RETURN(const std::string b, obj.String("behavior"));
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  return InvalidArgumentError(where + ": unknown behavior '" + b + "'");
}

// Matches and the gaps between them, covering `text` (the Pattern::find_matches contract).
std::vector<Span> WithGaps(const std::vector<std::pair<uint32_t, uint32_t>>& matches,
                           uint32_t length) {
  std::vector<Span> spans;
  if (length == 0) return {{0, 0, false}};
  uint32_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (prev != b) spans.push_back({prev, b, false});
    spans.push_back({b, e, true});
    prev = e;
  }
  if (prev != length) spans.push_back({prev, length, false});
  return spans;
}

// Each character satisfying `pred` is one match.
std::vector<Span> CharMatches(std::string_view text, const std::function<bool(char32_t)>& pred) {
  std::vector<uint32_t> offsets;
  const std::u32string cps = unicode::DecodeUtf8(text, &offsets);
  std::vector<std::pair<uint32_t, uint32_t>> matches;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (pred(cps[i])) matches.push_back({offsets[i], offsets[i + 1]});
  }
  return WithGaps(matches, static_cast<uint32_t>(text.size()));
}

Result<std::vector<Span>> RegexMatches(std::string_view text, const Regex& re) {
  std::vector<uint32_t> offsets;
  const std::u32string cps = unicode::DecodeUtf8(text, &offsets);
  std::vector<std::pair<uint32_t, uint32_t>> matches;
  TF_RETURN_IF_ERROR(re.FindAll(cps, &matches));
  for (auto& m : matches) m = {offsets[m.first], offsets[m.second]};
  return WithGaps(matches, static_cast<uint32_t>(text.size()));
}

// NormalizedString::split: which spans survive under `behavior`.
std::vector<std::pair<uint32_t, uint32_t>> ApplyBehavior(const std::vector<Span>& spans,
                                                         Behavior behavior) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::kIsolated:
      for (const Span& s : spans) out.push_back({s.begin, s.end});
      break;
    case Behavior::kRemoved:
      for (const Span& s : spans) if (!s.is_match) out.push_back({s.begin, s.end});
      break;
    case Behavior::kContiguous:
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !out.empty()) out.back().second = s.end;
        else out.push_back({s.begin, s.end});
        previous_match = s.is_match;
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !out.empty()) out.back().second = s.end;
        else out.push_back({s.begin, s.end});
        previous_match = s.is_match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) out.back().first = it->begin;
        else out.push_back({it->begin, it->end});
        previous_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  return out;
}

// Applies `split` to every non-token piece and replaces it with the non-empty results.
Status SplitPieces(std::vector<Piece>* pieces,
                   const std::function<Result<std::vector<Piece>>(const Piece&)>& split) {
  std::vector<Piece> out;
  out.reserve(pieces->size());
  for (Piece& p : *pieces) {
    if (p.token_id >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    TF_ASSIGN_OR_RETURN(std::vector<Piece> parts, split(p));
    for (Piece& part : parts) {
      if (!part.text.empty()) out.push_back(std::move(part));
    }
  }
  *pieces = std::move(out);
  return Status::Ok();
}

std::vector<Piece> Cut(const Piece& p, const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
  std::vector<Piece> parts;
  parts.reserve(ranges.size());
  for (const auto& [b, e] : ranges) {
    Piece part;
    part.text = p.text.substr(b, e - b);
    part.at_input_start = p.at_input_start && b == 0;
    parts.push_back(std::move(part));
  }
  return parts;
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Regex re, Behavior behavior, bool invert)
      : re_(std::move(re)), behavior_(behavior), invert_(invert) {}
  Status PreTokenize(std::vector<Piece>* pieces) const override {
    return SplitPieces(pieces, [&](const Piece& p) -> Result<std::vector<Piece>> {
      TF_ASSIGN_OR_RETURN(std::vector<Span> spans, RegexMatches(p.text, re_));
      if (invert_) for (Span& s : spans) s.is_match = !s.is_match;
      return Cut(p, ApplyBehavior(spans, behavior_));
    });
  }

 private:
  Regex re_;
  Behavior behavior_;
  bool invert_;
};

constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex),
        re_(Regex::Compile(kGpt2Pattern).value()) {}
  Status PreTokenize(std::vector<Piece>* pieces) const override {
    TF_RETURN_IF_ERROR(SplitPieces(pieces, [&](const Piece& p) -> Result<std::vector<Piece>> {
      Piece q = p;
      if (add_prefix_space_ && !q.text.empty() && q.text[0] != ' ') q.text = " " + q.text;
      if (!use_regex_) return std::vector<Piece>{std::move(q)};
      TF_ASSIGN_OR_RETURN(std::vector<Span> spans, RegexMatches(q.text, re_));
      return Cut(q, ApplyBehavior(spans, Behavior::kIsolated));
    }));
    for (Piece& p : *pieces) {
      if (p.token_id < 0) p.text = byte_level::Encode(p.text);
    }
    return Status::Ok();
  }

 private:
  bool add_prefix_space_;
  bool use_regex_;
  Regex re_;
};

enum class PrependScheme { kFirst, kNever, kAlways };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement), scheme_(scheme), split_(split) {
    unicode::AppendUtf8(replacement, &rep_);
  }
  Status PreTokenize(std::vector<Piece>* pieces) const override {
    return SplitPieces(pieces, [&](const Piece& p) -> Result<std::vector<Piece>> {
      Piece q = p;
      std::string replaced;
      replaced.reserve(q.text.size());
      for (char c : q.text) {
        if (c == ' ') replaced += rep_;
        else replaced.push_back(c);
      }
      q.text = std::move(replaced);
      const bool starts = q.text.compare(0, rep_.size(), rep_) == 0;
      if (!q.text.empty() && !starts &&
          (scheme_ == PrependScheme::kAlways ||
           (scheme_ == PrependScheme::kFirst && q.at_input_start))) {
        q.text = rep_ + q.text;
      }
      if (!split_) return std::vector<Piece>{std::move(q)};
      const std::vector<Span> spans =
          CharMatches(q.text, [&](char32_t c) { return c == replacement_; });
      return Cut(q, ApplyBehavior(spans, Behavior::kMergedWithNext));
    });
  }

 private:
  char32_t replacement_;
  std::string rep_;
  PrependScheme scheme_;
  bool split_;
};

class CharSplitPreTokenizer : public PreTokenizer {
 public:
  CharSplitPreTokenizer(std::function<bool(char32_t)> pred, Behavior behavior)
      : pred_(std::move(pred)), behavior_(behavior) {}
  Status PreTokenize(std::vector<Piece>* pieces) const override {
    return SplitPieces(pieces, [&](const Piece& p) -> Result<std::vector<Piece>> {
      return Cut(p, ApplyBehavior(CharMatches(p.text, pred_), behavior_));
    });
  }

 private:
  std::function<bool(char32_t)> pred_;
  Behavior behavior_;
};

class WhitespacePreTokenizer : public PreTokenizer {
 public:
  WhitespacePreTokenizer() : re_(Regex::Compile(R"(\w+|[^\w\s]+)").value()) {}
  Status PreTokenize(std::vector<Piece>* pieces) const override {
    return SplitPieces(pieces, [&](const Piece& p) -> Result<std::vector<Piece>> {
      TF_ASSIGN_OR_RETURN(std::vector<Span> spans, RegexMatches(p.text, re_));
      for (Span& s : spans) s.is_match = !s.is_match;
      return Cut(p, ApplyBehavior(spans, Behavior::kRemoved));
    });
  }

 private:
  Regex re_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  Status PreTokenize(std::vector<Piece>* pieces) const override {
    for (const auto& p : parts_) TF_RETURN_IF_ERROR(p->PreTokenize(pieces));
    return Status::Ok();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

bool IsRustPunctuation(char32_t c) {
  return (c < 128 && std::ispunct(static_cast<int>(c))) || unicode::IsPunctuation(c);
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> CreatePreTokenizer(const Json& json,
                                                         const std::string& context) {
  TF_ASSIGN_OR_RETURN(const JsonObject obj, JsonObject::From(json, context));
  TF_ASSIGN_OR_RETURN(const std::string type, obj.String("type"));
  const std::string where = context + " (" + type + ")";
  if (type == "Split") {
    if (!obj.Has("pattern")) return InvalidArgumentError(where + ": missing field 'pattern'");
    TF_ASSIGN_OR_RETURN(Regex re, ParsePattern(json["pattern"], where + ": pattern"));
    TF_ASSIGN_OR_RETURN(const Behavior behavior, ParseBehavior(obj, where));
    TF_ASSIGN_OR_RETURN(const bool invert, obj.BoolOr("invert", false));
    return std::unique_ptr<PreTokenizer>(new SplitPreTokenizer(std::move(re), behavior, invert));
  }
  if (type == "ByteLevel") {
    TF_ASSIGN_OR_RETURN(const bool prefix, obj.BoolOr("add_prefix_space", true));
    TF_ASSIGN_OR_RETURN(const bool use_regex, obj.BoolOr("use_regex", true));
    return std::unique_ptr<PreTokenizer>(new ByteLevelPreTokenizer(prefix, use_regex));
  }
  if (type == "Metaspace") {
    TF_ASSIGN_OR_RETURN(const std::string rep, obj.String("replacement"));
    const std::u32string rep32 = unicode::DecodeUtf8(rep);
    if (rep32.size() != 1) return InvalidArgumentError(where + ": 'replacement' must be one character");
    TF_ASSIGN_OR_RETURN(const std::string scheme_name, obj.StringOr("prepend_scheme", "always"));
    PrependScheme scheme;
    if (scheme_name == "always") scheme = PrependScheme::kAlways;
    else if (scheme_name == "first") scheme = PrependScheme::kFirst;
    else if (scheme_name == "never") scheme = PrependScheme::kNever;
    else return InvalidArgumentError(where + ": unknown prepend_scheme '" + scheme_name + "'");
    if (obj.Has("add_prefix_space")) {
      TF_ASSIGN_OR_RETURN(const bool add, obj.BoolOr("add_prefix_space", true));
      if (!add) {
        if (scheme != PrependScheme::kNever && obj.Has("prepend_scheme")) {
          return InvalidArgumentError(where + ": add_prefix_space does not match prepend_scheme");
        }
        scheme = PrependScheme::kNever;
      }
    }
    TF_ASSIGN_OR_RETURN(const bool split, obj.BoolOr("split", true));
    return std::unique_ptr<PreTokenizer>(new MetaspacePreTokenizer(rep32[0], scheme, split));
  }
  if (type == "Digits") {
    TF_ASSIGN_OR_RETURN(const bool individual, obj.BoolOr("individual_digits", false));
    return std::unique_ptr<PreTokenizer>(new CharSplitPreTokenizer(
        [](char32_t c) { return unicode::IsNumber(c); },
        individual ? Behavior::kIsolated : Behavior::kContiguous));
  }
  if (type == "WhitespaceSplit") {
    return std::unique_ptr<PreTokenizer>(new CharSplitPreTokenizer(
        [](char32_t c) { return unicode::IsWhiteSpace(c); }, Behavior::kRemoved));
  }
  if (type == "Whitespace") return std::unique_ptr<PreTokenizer>(new WhitespacePreTokenizer());
  if (type == "Punctuation") {
    Behavior behavior = Behavior::kIsolated;
    if (obj.Has("behavior")) {
      TF_ASSIGN_OR_RETURN(behavior, ParseBehavior(obj, where));
    }
    return std::unique_ptr<PreTokenizer>(new CharSplitPreTokenizer(IsRustPunctuation, behavior));
  }
  if (type == "Sequence") {
    if (!json.contains("pretokenizers") || !json["pretokenizers"].is_array()) {
      return InvalidArgumentError(where + ": field 'pretokenizers' must be an array");
    }
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < json["pretokenizers"].size(); ++i) {
      TF_ASSIGN_OR_RETURN(auto part,
                          CreatePreTokenizer(json["pretokenizers"][i],
                                             where + ".pretokenizers[" + std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return std::unique_ptr<PreTokenizer>(new SequencePreTokenizer(std::move(parts)));
  }
  return InvalidArgumentError(context + ": unsupported pre_tokenizer type '" + type + "'");
}

}  // namespace tokenfab
