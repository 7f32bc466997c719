#include "tokenizer/normalizer.h"

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace tokenfab {
namespace {

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(unicode::NormalizationForm form) : form_(form) {}
  Status Normalize(std::string* text, bool*) const override {
    *text = unicode::Normalize(*text, form_);
    return Status::Ok();
  }

 private:
  unicode::NormalizationForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  Status Normalize(std::string* text, bool*) const override {
    std::string out;
    out.reserve(text->size());
    for (char32_t c : unicode::DecodeUtf8(*text)) {
      if (c == 0x130) {  // İ lowercases to i + combining dot above (unconditional SpecialCasing)
        out += "i\xCC\x87";
        continue;
      }
      unicode::AppendUtf8(unicode::SimpleLowercase(c), &out);
    }
    *text = std::move(out);
    return Status::Ok();
  }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  Status Normalize(std::string* text, bool* lead_removed) const override {
    std::vector<uint32_t> offsets;
    const std::u32string cps = unicode::DecodeUtf8(*text, &offsets);
    size_t b = 0, e = cps.size();
    if (left_) while (b < e && unicode::IsWhiteSpace(cps[b])) ++b;
    if (right_) while (e > b && unicode::IsWhiteSpace(cps[e - 1])) --e;
    if (b > 0 && b < e) *lead_removed = true;
    *text = text->substr(offsets[b], offsets[e] - offsets[b]);
    return Status::Ok();
  }

 private:
  bool left_, right_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  Status Normalize(std::string* text, bool* lead_removed) const override {
    std::vector<uint32_t> offsets;
    const std::u32string cps = unicode::DecodeUtf8(*text, &offsets);
    std::vector<std::pair<uint32_t, uint32_t>> matches;
    TF_RETURN_IF_ERROR(pattern_.FindAll(cps, &matches));
    if (matches.empty()) return Status::Ok();
    std::string out;
    uint32_t last = 0;
    for (const auto& [b, e] : matches) {
      out.append(*text, offsets[last], offsets[b] - offsets[last]);
      out += content_;
      last = e;
    }
    out.append(*text, offsets[last], std::string::npos);
    if (content_.empty() && matches.front().first == 0 && matches.front().second > 0) {
      *lead_removed = true;
    }
    *text = std::move(out);
    return Status::Ok();
  }

 private:
  Regex pattern_;
  std::string content_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  Status Normalize(std::string* text, bool*) const override {
    if (!text->empty()) *text = prefix_ + *text;
    return Status::Ok();
  }

 private:
  std::string prefix_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  Status Normalize(std::string* text, bool* lead_removed) const override {
    for (const auto& p : parts_) TF_RETURN_IF_ERROR(p->Normalize(text, lead_removed));
    return Status::Ok();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

// Parses {"String": s} or {"Regex": r} (Split and Replace patterns).
Result<Regex> ParsePattern(const Json& json, const std::string& context) {
  if (!json.is_object() || json.size() != 1) {
    return InvalidArgumentError(context + ": expected {\"String\": ...} or {\"Regex\": ...}");
  }
  if (json.contains("String") && json["String"].is_string()) {
    return Regex::Literal(json["String"].get<std::string>());
  }
  if (json.contains("Regex") && json["Regex"].is_string()) {
    auto re = Regex::Compile(json["Regex"].get<std::string>());
    if (!re.ok()) return re.status().WithContext(context);
    return re;
  }
  return InvalidArgumentError(context + ": expected {\"String\": ...} or {\"Regex\": ...}");
}

Result<std::unique_ptr<Normalizer>> CreateNormalizer(const Json& json, const std::string& context) {
  TF_ASSIGN_OR_RETURN(const JsonObject obj, JsonObject::From(json, context));
  TF_ASSIGN_OR_RETURN(const std::string type, obj.String("type"));
  const std::string where = context + " (" + type + ")";
  if (type == "NFC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(unicode::NormalizationForm::kNfc));
  if (type == "NFD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(unicode::NormalizationForm::kNfd));
  if (type == "NFKC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(unicode::NormalizationForm::kNfkc));
  if (type == "NFKD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(unicode::NormalizationForm::kNfkd));
  if (type == "Lowercase") return std::unique_ptr<Normalizer>(new LowercaseNormalizer());
  if (type == "Strip") {
    TF_ASSIGN_OR_RETURN(const bool left, obj.BoolOr("strip_left", true));
    TF_ASSIGN_OR_RETURN(const bool right, obj.BoolOr("strip_right", true));
    return std::unique_ptr<Normalizer>(new StripNormalizer(left, right));
  }
  if (type == "Replace") {
    if (!obj.Has("pattern")) return InvalidArgumentError(where + ": missing field 'pattern'");
    TF_ASSIGN_OR_RETURN(Regex pattern, ParsePattern(json["pattern"], where + ": pattern"));
    TF_ASSIGN_OR_RETURN(std::string content, obj.String("content"));
    return std::unique_ptr<Normalizer>(new ReplaceNormalizer(std::move(pattern), std::move(content)));
  }
  if (type == "Prepend") {
    TF_ASSIGN_OR_RETURN(std::string prefix, obj.String("prepend"));
    return std::unique_ptr<Normalizer>(new PrependNormalizer(std::move(prefix)));
  }
  if (type == "Sequence") {
    if (!json.contains("normalizers") || !json["normalizers"].is_array()) {
      return InvalidArgumentError(where + ": field 'normalizers' must be an array");
    }
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < json["normalizers"].size(); ++i) {
      TF_ASSIGN_OR_RETURN(auto part, CreateNormalizer(json["normalizers"][i],
                                                      where + ".normalizers[" + std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(parts)));
  }
  return InvalidArgumentError(context + ": unsupported normalizer type '" + type + "'");
}

}  // namespace tokenfab
