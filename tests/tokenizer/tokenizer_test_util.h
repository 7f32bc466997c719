// Shared helpers of the tokenizer tests: the real tokenizers that scripts/setup.sh fetches into
// assets/tokenizers/<name>/, and the golden files in tests/data/tokenizer/.
#pragma once

#include <memory>
#include <string>

#include "base/json.h"
#include "tokenizer/tokenizer.h"

namespace tokenfab::testing {

// assets/tokenizers/<name> (tokenizer.json, tokenizer_config.json).
std::string AssetTokenizerDir(const std::string& name);
// Loads the asset tokenizer; fails the test with a hint to run scripts/setup.sh if missing.
std::unique_ptr<Tokenizer> LoadAssetTokenizer(const std::string& name);
// Parses tests/data/tokenizer/<file>.
Json LoadGolden(const std::string& file);
std::string ReadTextFile(const std::string& path);

}  // namespace tokenfab::testing
