#include "tokenizer/post_processor.h"

namespace tokenfab {
namespace {

class NoOpProcessor : public PostProcessor {
 public:
  void Process(std::vector<int32_t>*) const override {}
};

// A template such as [<bos>, $A]: fixed ids before and after the sequence.
class WrapProcessor : public PostProcessor {
 public:
  WrapProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void Process(std::vector<int32_t>* ids) const override {
    ids->insert(ids->begin(), before_.begin(), before_.end());
    ids->insert(ids->end(), after_.begin(), after_.end());
  }

 private:
  std::vector<int32_t> before_, after_;
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts)
      : parts_(std::move(parts)) {}
  void Process(std::vector<int32_t>* ids) const override {
    for (const auto& p : parts_) p->Process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

Result<std::unique_ptr<PostProcessor>> CreateTemplate(const Json& json, const std::string& where) {
  if (!json.contains("single") || !json["single"].is_array()) {
    return InvalidArgumentError(where + ": field 'single' must be an array");
  }
  const Json* specials = json.contains("special_tokens") ? &json["special_tokens"] : nullptr;
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (size_t i = 0; i < json["single"].size(); ++i) {
    const Json& piece = json["single"][i];
    const std::string at = where + ".single[" + std::to_string(i) + "]";
    if (piece.is_object() && piece.contains("Sequence")) {
      if (seen_sequence) return InvalidArgumentError(at + ": more than one sequence");
      seen_sequence = true;
      continue;
    }
    if (!piece.is_object() || !piece.contains("SpecialToken") ||
        !piece["SpecialToken"].contains("id") || !piece["SpecialToken"]["id"].is_string()) {
      return InvalidArgumentError(at + ": expected {\"SpecialToken\": {\"id\": ...}} or {\"Sequence\": ...}");
    }
    const std::string name = piece["SpecialToken"]["id"].get<std::string>();
    if (!specials || !specials->contains(name) || !(*specials)[name].contains("ids") ||
        !(*specials)[name]["ids"].is_array()) {
      return InvalidArgumentError(at + ": special token '" + name + "' is missing from special_tokens");
    }
    for (const Json& id : (*specials)[name]["ids"]) {
      if (!id.is_number_integer()) return InvalidArgumentError(at + ": ids of '" + name + "' must be integers");
      (seen_sequence ? after : before).push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
  }
  return std::unique_ptr<PostProcessor>(new WrapProcessor(std::move(before), std::move(after)));
}

// RobertaProcessing / BertProcessing: "cls": [token, id], "sep": [token, id].
Result<std::unique_ptr<PostProcessor>> CreateClsSep(const Json& json, const std::string& where) {
  auto id_of = [&](const char* key) -> Result<int32_t> {
    if (!json.contains(key) || !json[key].is_array() || json[key].size() != 2 ||
        !json[key][1].is_number_integer()) {
      return InvalidArgumentError(where + ": field '" + key + "' must be [token, id]");
    }
    return static_cast<int32_t>(json[key][1].get<int64_t>());
  };
  TF_ASSIGN_OR_RETURN(const int32_t cls, id_of("cls"));
  TF_ASSIGN_OR_RETURN(const int32_t sep, id_of("sep"));
  return std::unique_ptr<PostProcessor>(new WrapProcessor({cls}, {sep}));
}

}  // namespace

Result<std::unique_ptr<PostProcessor>> CreatePostProcessor(const Json& json,
                                                           const std::string& context) {
  TF_ASSIGN_OR_RETURN(const JsonObject obj, JsonObject::From(json, context));
  TF_ASSIGN_OR_RETURN(const std::string type, obj.String("type"));
  const std::string where = context + " (" + type + ")";
  if (type == "ByteLevel") return std::unique_ptr<PostProcessor>(new NoOpProcessor());
  if (type == "TemplateProcessing") return CreateTemplate(json, where);
  if (type == "RobertaProcessing" || type == "BertProcessing") return CreateClsSep(json, where);
  if (type == "Sequence") {
    if (!json.contains("processors") || !json["processors"].is_array()) {
      return InvalidArgumentError(where + ": field 'processors' must be an array");
    }
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (size_t i = 0; i < json["processors"].size(); ++i) {
      TF_ASSIGN_OR_RETURN(auto part, CreatePostProcessor(json["processors"][i],
                                                         where + ".processors[" + std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return std::unique_ptr<PostProcessor>(new SequenceProcessor(std::move(parts)));
  }
  return InvalidArgumentError(context + ": unsupported post_processor type '" + type + "'");
}

}  // namespace tokenfab
