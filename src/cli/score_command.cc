#include <iostream>

#include "base/json.h"
#include "cli/command.h"

namespace tokenfab {

Command ScoreCommand() {
  Command c;
  c.name = "score";
  c.summary = "log-probabilities of a token sequence: {\"next_logprob\": [...], \"argmax\": [...]}";
  c.flags = EngineFlagSpecs();
  c.flags.push_back({"tokens", true, "comma-separated token ids"});
  c.run = [](const Flags& flags) -> Status {
    TF_ASSIGN_OR_RETURN(const std::vector<int32_t> tokens, TokensFromFlags(flags));
    TF_ASSIGN_OR_RETURN(EngineConfig config, EngineConfigFromFlags(flags));
    TF_ASSIGN_OR_RETURN(auto engine, Engine::Create(config));
    TF_ASSIGN_OR_RETURN(const ScoreResult result, engine->Score(tokens));
    Json out;
    out["next_logprob"] = result.next_logprob;
    out["argmax"] = result.argmax;
    std::cout << out.dump() << std::endl;
    return Status::Ok();
  };
  return c;
}

}  // namespace tokenfab
