// `tokenfab detokenize`: token ids to text, as Hugging Face tokenizers' decode gives it.
#include "base/json.h"
#include "cli/command.h"

namespace tokenfab {

Command DetokenizeCommand() {
  Command c;
  c.name = "detokenize";
  c.summary = "token ids to text as JSON: {\"text\": \"...\"}";
  c.flags = {
      {"model", true, "model directory (tokenizer.json)"},
      {"tokens", true, "comma-separated token ids"},
      {"skip-special-tokens", false, "leave special tokens out of the text"},
      {"log-level", true, "debug, info (default), warning, error"},
  };
  c.run = [](const Flags& flags) -> Status {
    TF_ASSIGN_OR_RETURN(const std::string dir, flags.Required("model"));
    TF_ASSIGN_OR_RETURN(const std::string list, flags.Required("tokens"));
    (void)list;
    TF_ASSIGN_OR_RETURN(const std::vector<int64_t> raw, flags.GetIntList("tokens"));
    TF_ASSIGN_OR_RETURN(const auto tokenizer, Tokenizer::FromFile(dir + "/tokenizer.json"));
    std::vector<int32_t> ids;
    for (int64_t id : raw) {
      if (id < 0 || id >= tokenizer->vocab_size()) {
        return InvalidArgumentError("--tokens: " + std::to_string(id) + " is not in the vocabulary (size " +
                                    std::to_string(tokenizer->vocab_size()) + ")");
      }
      ids.push_back(static_cast<int32_t>(id));
    }
    TF_ASSIGN_OR_RETURN(const std::string text, tokenizer->Decode(ids, flags.Has("skip-special-tokens")));
    Json out;
    out["text"] = text;
    PrintJson(out);
    return Status::Ok();
  };
  return c;
}

}  // namespace tokenfab
