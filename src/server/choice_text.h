// ChoiceText: one choice's generated tokens turned into the text a client sees, incrementally:
// the streaming detokenizer (never half a UTF-8 character), then stop strings — text that
// could still be the start of a stop string is held back until it cannot, and a match cuts
// the text before the stop string (OpenAI semantics: the stop string is not returned). Of
// several stop strings, the one completed first in the text wins.
// Thread-safety: one per choice, used from one strand.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tokenfab {

// The pure part: stop strings over a growing text.
class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Adds text; returns what can be released now. After a match, stopped() and nothing more.
  std::string Add(const std::string& text);
  // Releases whatever is held back (call at the end when no match happened).
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

class ChoiceText {
 public:
  ChoiceText(const Tokenizer& tokenizer, bool skip_special_tokens, std::vector<std::string> stops)
      : detokenizer_(tokenizer, skip_special_tokens), matcher_(std::move(stops)) {}
  // The text released by one more token.
  Result<std::string> Add(int32_t token);
  // At the end of generation: the rest.
  Result<std::string> Finish();
  bool stopped() const { return matcher_.stopped(); }

 private:
  StreamingDetokenizer detokenizer_;
  StopStringMatcher matcher_;
};

}  // namespace tokenfab
