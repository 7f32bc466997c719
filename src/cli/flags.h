// Command-line flags of the tokenfab subcommands: `--name value`, `--name=value`, and boolean
// `--name`. Every subcommand declares its flags; an unknown flag or a missing value is an
// InvalidArgument naming it, so scripts fail loudly instead of silently ignoring a typo.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace tokenfab {

struct FlagSpec {
  std::string name;   // without the dashes
  bool takes_value;   // false: a boolean switch
  std::string help;
};

class Flags {
 public:
  static Result<Flags> Parse(const std::vector<std::string>& args,
                             const std::vector<FlagSpec>& specs);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string GetString(const std::string& name, const std::string& fallback = "") const;
  Result<std::string> Required(const std::string& name) const;
  Result<int64_t> GetInt(const std::string& name, int64_t fallback) const;
  Result<double> GetDouble(const std::string& name, double fallback) const;
  // "1,2,3"; absent gives `fallback`.
  Result<std::vector<int64_t>> GetIntList(const std::string& name,
                                          std::vector<int64_t> fallback = {}) const;

 private:
  std::map<std::string, std::string> values_;
};

// "  --name VALUE   help" lines for usage messages.
std::string FlagsHelp(const std::vector<FlagSpec>& specs);

}  // namespace tokenfab
