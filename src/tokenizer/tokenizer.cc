#include "tokenizer/tokenizer.h"

#include "base/json.h"
#include "base/logging.h"
#include "base/mapped_file.h"
#include "tokenizer/unicode.h"

namespace tokenfab {

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  const std::string file = IsDirectory(path) ? path + "/tokenizer.json" : path;
  TF_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(file));
  return FromJson(text, file);
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json_text,
                                                       const std::string& source) {
  TF_ASSIGN_OR_RETURN(const Json json, ParseJson(json_text, source));
  TF_ASSIGN_OR_RETURN(const JsonObject root, JsonObject::From(json, source));
  auto t = std::unique_ptr<Tokenizer>(new Tokenizer());
  if (root.Has("version")) {
    TF_ASSIGN_OR_RETURN(const std::string version, root.String("version"));
    if (version != "1.0") {
      return InvalidArgumentError(source + ": field 'version': unknown tokenizer version '" + version + "'");
    }
  }
  if (root.Has("normalizer")) {
    TF_ASSIGN_OR_RETURN(t->normalizer_, CreateNormalizer(json["normalizer"], source + ": normalizer"));
  }
  if (root.Has("pre_tokenizer")) {
    TF_ASSIGN_OR_RETURN(t->pre_tokenizer_,
                        CreatePreTokenizer(json["pre_tokenizer"], source + ": pre_tokenizer"));
  }
  if (!root.Has("model")) return InvalidArgumentError(source + ": missing field 'model'");
  TF_ASSIGN_OR_RETURN(const JsonObject model, root.Object("model"));
  TF_ASSIGN_OR_RETURN(const std::string model_type, model.StringOr("type", "BPE"));
  if (model_type != "BPE") {
    return InvalidArgumentError(source + ": model: unsupported model type '" + model_type +
                                "' (only BPE is implemented)");
  }
  TF_ASSIGN_OR_RETURN(t->model_, BpeModel::Create(json["model"], source + ": model"));
  if (root.Has("post_processor")) {
    TF_ASSIGN_OR_RETURN(t->post_processor_,
                        CreatePostProcessor(json["post_processor"], source + ": post_processor"));
  }
  if (root.Has("decoder")) {
    TF_ASSIGN_OR_RETURN(t->decoder_, CreateDecoder(json["decoder"], source + ": decoder"));
  }
  if (root.Has("truncation") || root.Has("padding")) {
    LOG(WARNING) << source << ": truncation/padding settings are ignored (tokenfab encodes whole "
                 << "single sequences)";
  }

  // Added tokens get ids the way AddedVocabulary::add_tokens assigns them: an existing
  // token's id, else the next free id after the model's vocabulary.
  std::vector<AddedToken> added;
  if (root.Has("added_tokens")) {
    const Json& list = json["added_tokens"];
    if (!list.is_array()) return InvalidArgumentError(source + ": field 'added_tokens' must be an array");
    int64_t next_id = static_cast<int64_t>(t->model_->vocab_size());
    std::unordered_map<std::string, int32_t> assigned;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string where = source + ": added_tokens[" + std::to_string(i) + "]";
      TF_ASSIGN_OR_RETURN(const JsonObject o, JsonObject::From(list[i], where));
      AddedToken a;
      TF_ASSIGN_OR_RETURN(a.content, o.String("content"));
      TF_ASSIGN_OR_RETURN(const int64_t listed_id, o.IntOr("id", -1));
      TF_ASSIGN_OR_RETURN(a.single_word, o.BoolOr("single_word", false));
      TF_ASSIGN_OR_RETURN(a.lstrip, o.BoolOr("lstrip", false));
      TF_ASSIGN_OR_RETURN(a.rstrip, o.BoolOr("rstrip", false));
      TF_ASSIGN_OR_RETURN(a.special, o.BoolOr("special", false));
      TF_ASSIGN_OR_RETURN(a.normalized, o.BoolOr("normalized", !a.special));
      if (a.content.empty()) continue;
      if (!unicode::IsValidUtf8(a.content)) return InvalidArgumentError(where + ": content is not UTF-8");
      auto prev = assigned.find(a.content);
      if (prev != assigned.end()) {
        a.id = prev->second;
      } else if (int32_t id = t->model_->TokenToId(a.content); id >= 0) {
        a.id = id;
      } else {
        if (next_id > INT32_MAX) return InvalidArgumentError(where + ": too many tokens");
        a.id = static_cast<int32_t>(next_id++);
      }
      if (listed_id >= 0 && listed_id != a.id) {
        LOG(WARNING) << where << ": token '" << a.content << "' is listed with id " << listed_id
                     << " but gets id " << a.id;
      }
      assigned[a.content] = a.id;
      // A re-added token replaces the earlier definition.
      bool replaced = false;
      for (AddedToken& e : added) {
        if (e.content == a.content) {
          e = a;
          replaced = true;
        }
      }
      if (!replaced) added.push_back(std::move(a));
    }
  }
  t->vocab_size_ = t->model_->id_limit();
  for (const AddedToken& a : added) t->vocab_size_ = std::max(t->vocab_size_, a.id + 1);
  TF_RETURN_IF_ERROR(t->added_.Build(std::move(added), t->normalizer_.get()));
  return t;
}

Result<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                               const EncodeOptions& options) const {
  const std::string clean = unicode::SanitizeUtf8(text);
  std::vector<Piece> pieces;
  TF_RETURN_IF_ERROR(added_.ExtractAndNormalize(clean, normalizer_.get(),
                                                options.split_special_tokens, &pieces));
  std::vector<int32_t> ids;
  ids.reserve(clean.size() / 3 + 4);
  // Runs of short spans are pre-tokenized together; each long span is looked up in the piece
  // cache and, when absent, encoded on its own and added to it.
  std::vector<Piece> batch;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    TF_RETURN_IF_ERROR(EncodeSpans(&batch, &ids));
    batch.clear();
    return Status::Ok();
  };
  for (Piece& p : pieces) {
    if (p.token_id >= 0 || p.text.size() < PieceCache::kMinBytes) {
      batch.push_back(std::move(p));
      continue;
    }
    TF_RETURN_IF_ERROR(flush());
    if (piece_cache_.Lookup(p.text, p.at_input_start, &ids)) continue;
    const size_t first = ids.size();
    batch.push_back(p);  // a copy: pre-tokenizing rewrites it, the cache keeps p.text
    TF_RETURN_IF_ERROR(flush());
    piece_cache_.Insert(p.text, p.at_input_start, std::span<const int32_t>(ids).subspan(first));
  }
  TF_RETURN_IF_ERROR(flush());
  if (options.add_special_tokens && post_processor_) post_processor_->Process(&ids);
  return ids;
}

Status Tokenizer::EncodeSpans(std::vector<Piece>* spans, std::vector<int32_t>* ids) const {
  if (pre_tokenizer_) TF_RETURN_IF_ERROR(pre_tokenizer_->PreTokenize(spans));
  for (const Piece& p : *spans) {
    if (p.token_id >= 0) {
      ids->push_back(p.token_id);
    } else {
      model_->Tokenize(p.text, ids);
    }
  }
  return Status::Ok();
}

Result<std::string> Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* token = added_.DecodedForm(id);
    if (!token) token = model_->IdToToken(id);
    if (!token) continue;
    if (skip_special_tokens && added_.IsSpecial(*token)) continue;
    tokens.push_back(*token);
  }
  if (!decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  TF_RETURN_IF_ERROR(decoder_->DecodeChain(&tokens));
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

int32_t Tokenizer::TokenToId(std::string_view token) const {
  if (const AddedToken* a = added_.FindByContent(token)) return a->id;
  return model_->TokenToId(token);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (const std::string* s = added_.DecodedForm(id)) return *s;
  if (const std::string* s = model_->IdToToken(id)) return *s;
  return std::nullopt;
}

bool Tokenizer::IsSpecialId(int32_t id) const {
  const AddedToken* a = added_.FindById(id);
  return a && added_.IsSpecial(a->content);
}

}  // namespace tokenfab
