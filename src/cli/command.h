// The tokenfab subcommands. Each declares its flags and runs against parsed Flags; errors come
// back as a Status that main prints as one line on stderr (exit code 1; usage errors 2).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "engine/engine.h"

namespace tokenfab {

struct Command {
  std::string name;
  std::string summary;
  std::vector<FlagSpec> flags;
  std::function<Status(const Flags&)> run;
};

Command ScoreCommand();
Command GenerateCommand();
Command BenchEngineCommand();

// Flags shared by every command that loads a model, and their translation.
std::vector<FlagSpec> EngineFlagSpecs();
Result<EngineConfig> EngineConfigFromFlags(const Flags& flags);

// --tokens as int32 ids (range against the vocabulary is the engine's check).
Result<std::vector<int32_t>> TokensFromFlags(const Flags& flags);

}  // namespace tokenfab
