#include "server/choice_text.h"

#include <algorithm>

namespace tokenfab {

std::string StopStringMatcher::Add(const std::string& text) {
  if (stopped_) return "";
  held_ += text;
  if (stops_.empty()) return std::exchange(held_, "");
  // Generation stops at the stop string completed first (the earliest end), as if the text
  // had arrived a byte at a time; the text is cut where that stop string starts.
  size_t first = std::string::npos, first_end = std::string::npos;
  for (const std::string& stop : stops_) {
    const size_t at = held_.find(stop);
    if (at != std::string::npos && at + stop.size() < first_end) {
      first = at;
      first_end = at + stop.size();
    }
  }
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& stop : stops_) {
    for (size_t n = std::min(stop.size() - 1, held_.size()); n > keep; --n) {
      if (held_.compare(held_.size() - n, n, stop, 0, n) == 0) {
        keep = n;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopStringMatcher::Flush() {
  if (stopped_) return "";
  return std::exchange(held_, "");
}

Result<std::string> ChoiceText::Add(int32_t token) {
  if (matcher_.stopped()) return std::string();
  TF_ASSIGN_OR_RETURN(const auto piece, detokenizer_.Step(token));
  if (!piece) return std::string();
  return matcher_.Add(*piece);
}

Result<std::string> ChoiceText::Finish() {
  if (matcher_.stopped()) return std::string();
  TF_ASSIGN_OR_RETURN(const std::string rest, detokenizer_.Finish());
  std::string out = matcher_.Add(rest);
  return out + matcher_.Flush();
}

}  // namespace tokenfab
