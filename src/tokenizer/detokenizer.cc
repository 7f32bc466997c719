#include "tokenizer/detokenizer.h"

namespace tokenfab {
namespace {

bool EndsWithReplacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

}  // namespace

Result<std::optional<std::string>> StreamingDetokenizer::Step(int32_t id) {
  if (prefix_.empty() && !ids_.empty()) {
    TF_ASSIGN_OR_RETURN(std::string new_prefix, tokenizer_.Decode(ids_, skip_special_tokens_));
    if (!EndsWithReplacement(new_prefix)) {
      prefix_ = std::move(new_prefix);
      prefix_index_ = ids_.size();
    }
  }
  ids_.push_back(id);
  TF_ASSIGN_OR_RETURN(const std::string text, tokenizer_.Decode(ids_, skip_special_tokens_));
  if (text.size() <= prefix_.size() || EndsWithReplacement(text)) return std::optional<std::string>();
  if (text.compare(0, prefix_.size(), prefix_) != 0) {
    return InternalError("streaming decode: the text of the earlier tokens changed at token " +
                         std::to_string(id));
  }
  std::string new_text = text.substr(prefix_.size());
  const size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  TF_ASSIGN_OR_RETURN(prefix_, tokenizer_.Decode(ids_, skip_special_tokens_));
  prefix_index_ = new_prefix_index;
  return std::optional<std::string>(std::move(new_text));
}

Result<std::string> StreamingDetokenizer::Finish() {
  if (ids_.empty()) return std::string();
  TF_ASSIGN_OR_RETURN(const std::string text, tokenizer_.Decode(ids_, skip_special_tokens_));
  std::string rest;
  if (text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0) {
    rest = text.substr(prefix_.size());
  }
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return rest;
}

}  // namespace tokenfab
