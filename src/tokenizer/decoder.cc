#include "tokenizer/decoder.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace tokenfab {
namespace {

class ByteLevelDecoder : public Decoder {
 public:
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::string bytes;
    for (const std::string& t : *tokens) {
      const std::u32string cps = unicode::DecodeUtf8(t);
      std::string mapped;
      bool all = true;
      for (char32_t c : cps) {
        const int b = byte_level::CharToByte(c);
        if (b < 0) {
          all = false;
          break;
        }
        mapped.push_back(static_cast<char>(b));
      }
      bytes += all ? mapped : t;  // a token outside the alphabet is kept as its UTF-8
    }
    *tokens = {unicode::SanitizeUtf8(bytes)};
    return Status::Ok();
  }
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool prepend) : replacement_(replacement), prepend_(prepend) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string out;
      for (char32_t c : unicode::DecodeUtf8((*tokens)[i])) {
        if (c == replacement_) {
          if (i == 0 && prepend_) continue;
          out.push_back(' ');
        } else {
          unicode::AppendUtf8(c, &out);
        }
      }
      (*tokens)[i] = std::move(out);
    }
    return Status::Ok();
  }

 private:
  char32_t replacement_;
  bool prepend_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) {
      std::vector<uint32_t> offsets;
      const std::u32string cps = unicode::DecodeUtf8(t, &offsets);
      std::vector<std::pair<uint32_t, uint32_t>> matches;
      TF_RETURN_IF_ERROR(pattern_.FindAll(cps, &matches));
      if (matches.empty()) continue;
      std::string out;
      uint32_t last = 0;
      for (const auto& [b, e] : matches) {
        out.append(t, offsets[last], offsets[b] - offsets[last]);
        out += content_;
        last = e;
      }
      out.append(t, offsets[last], std::string::npos);
      t = std::move(out);
    }
    return Status::Ok();
  }

 private:
  Regex pattern_;
  std::string content_;
};

class ByteFallbackDecoder : public Decoder {
 public:
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (unicode::IsValidUtf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : *tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        auto hex = [](char c) {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          return -1;
        };
        const int hi = hex(t[3]), lo = hex(t[4]);
        if (hi >= 0 && lo >= 0) byte = hi * 16 + lo;
      }
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    *tokens = std::move(out);
    return Status::Ok();
  }
};

class FuseDecoder : public Decoder {
 public:
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::string all;
    for (const std::string& t : *tokens) all += t;
    *tokens = {std::move(all)};
    return Status::Ok();
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) {
      const std::u32string cps = unicode::DecodeUtf8(t);
      size_t start_cut = 0;
      for (size_t i = 0; i < std::min(start_, cps.size()); ++i) {
        if (cps[i] != content_) break;
        start_cut = i + 1;
      }
      size_t stop_cut = cps.size();
      for (size_t i = 0; i < std::min(stop_, cps.size()); ++i) {
        const size_t index = cps.size() - i - 1;
        if (cps[index] != content_) break;
        stop_cut = index;
      }
      t = start_cut < stop_cut ? unicode::EncodeUtf8(std::u32string_view(cps).substr(start_cut, stop_cut - start_cut))
                               : std::string();
    }
    return Status::Ok();
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class BpeDecoder : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    if (suffix_.empty()) return Status::Ok();
    for (size_t i = 0; i < tokens->size(); ++i) {
      const std::string replacement = i + 1 == tokens->size() ? "" : " ";
      std::string& t = (*tokens)[i];
      std::string out;
      size_t pos = 0;
      for (size_t at = t.find(suffix_); at != std::string::npos; at = t.find(suffix_, pos)) {
        out.append(t, pos, at - pos);
        out += replacement;
        pos = at + suffix_.size();
      }
      out.append(t, pos, std::string::npos);
      t = std::move(out);
    }
    return Status::Ok();
  }

 private:
  std::string suffix_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (const auto& p : parts_) TF_RETURN_IF_ERROR(p->DecodeChain(tokens));
    return Status::Ok();
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

Result<char32_t> OneChar(const JsonObject& obj, const char* key, const std::string& where) {
  TF_ASSIGN_OR_RETURN(const std::string s, obj.String(key));
  const std::u32string cps = unicode::DecodeUtf8(s);
  if (cps.size() != 1) return InvalidArgumentError(where + ": '" + key + "' must be one character");
  return cps[0];
}

}  // namespace

Result<std::unique_ptr<Decoder>> CreateDecoder(const Json& json, const std::string& context) {
  TF_ASSIGN_OR_RETURN(const JsonObject obj, JsonObject::From(json, context));
  TF_ASSIGN_OR_RETURN(const std::string type, obj.String("type"));
  const std::string where = context + " (" + type + ")";
  if (type == "ByteLevel") return std::unique_ptr<Decoder>(new ByteLevelDecoder());
  if (type == "Metaspace") {
    TF_ASSIGN_OR_RETURN(const char32_t rep, OneChar(obj, "replacement", where));
    TF_ASSIGN_OR_RETURN(const std::string scheme, obj.StringOr("prepend_scheme", "always"));
    bool prepend = scheme != "never";
    if (obj.Has("add_prefix_space")) {
      TF_ASSIGN_OR_RETURN(const bool add, obj.BoolOr("add_prefix_space", true));
      if (!add) prepend = false;
    }
    return std::unique_ptr<Decoder>(new MetaspaceDecoder(rep, prepend));
  }
  if (type == "Replace") {
    if (!obj.Has("pattern")) return InvalidArgumentError(where + ": missing field 'pattern'");
    TF_ASSIGN_OR_RETURN(Regex pattern, ParsePattern(json["pattern"], where + ": pattern"));
    TF_ASSIGN_OR_RETURN(std::string content, obj.String("content"));
    return std::unique_ptr<Decoder>(new ReplaceDecoder(std::move(pattern), std::move(content)));
  }
  if (type == "ByteFallback") return std::unique_ptr<Decoder>(new ByteFallbackDecoder());
  if (type == "Fuse") return std::unique_ptr<Decoder>(new FuseDecoder());
  if (type == "Strip") {
    TF_ASSIGN_OR_RETURN(const char32_t content, OneChar(obj, "content", where));
    TF_ASSIGN_OR_RETURN(const int64_t start, obj.IntOr("start", 0));
    TF_ASSIGN_OR_RETURN(const int64_t stop, obj.IntOr("stop", 0));
    if (start < 0 || stop < 0) return InvalidArgumentError(where + ": start/stop must be >= 0");
    return std::unique_ptr<Decoder>(
        new StripDecoder(content, static_cast<size_t>(start), static_cast<size_t>(stop)));
  }
  if (type == "BPEDecoder") {
    TF_ASSIGN_OR_RETURN(std::string suffix, obj.StringOr("suffix", "</w>"));
    return std::unique_ptr<Decoder>(new BpeDecoder(std::move(suffix)));
  }
  if (type == "Sequence") {
    if (!json.contains("decoders") || !json["decoders"].is_array()) {
      return InvalidArgumentError(where + ": field 'decoders' must be an array");
    }
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < json["decoders"].size(); ++i) {
      TF_ASSIGN_OR_RETURN(auto part, CreateDecoder(json["decoders"][i],
                                                   where + ".decoders[" + std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return std::unique_ptr<Decoder>(new SequenceDecoder(std::move(parts)));
  }
  return InvalidArgumentError(context + ": unsupported decoder type '" + type + "'");
}

}  // namespace tokenfab
