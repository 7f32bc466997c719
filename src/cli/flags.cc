#include "cli/flags.h"

#include "base/strings.h"

namespace tokenfab {

Result<Flags> Flags::Parse(const std::vector<std::string>& args,
                           const std::vector<FlagSpec>& specs) {
  Flags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      return InvalidArgumentError("unexpected argument '" + arg + "'");
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_inline_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline_value = true;
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) return InvalidArgumentError("unknown flag '--" + name + "'");
    if (spec->takes_value && !has_inline_value) {
      if (i + 1 >= args.size()) return InvalidArgumentError("flag '--" + name + "' needs a value");
      value = args[++i];
    } else if (!spec->takes_value && has_inline_value) {
      return InvalidArgumentError("flag '--" + name + "' takes no value");
    }
    flags.values_[name] = value;
  }
  return flags;
}

std::string Flags::GetString(const std::string& name, const std::string& fallback) const {
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

Result<std::string> Flags::Required(const std::string& name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return InvalidArgumentError("missing required flag '--" + name + "'");
  return it->second;
}

Result<int64_t> Flags::GetInt(const std::string& name, int64_t fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  return ParseInt64(it->second, "--" + name);
}

Result<double> Flags::GetDouble(const std::string& name, double fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  return ParseDouble(it->second, "--" + name);
}

Result<std::vector<int64_t>> Flags::GetIntList(const std::string& name,
                                               std::vector<int64_t> fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  return ParseIntList(it->second, "--" + name);
}

std::string FlagsHelp(const std::vector<FlagSpec>& specs) {
  std::string out;
  for (const FlagSpec& s : specs) {
    std::string left = "  --" + s.name + (s.takes_value ? " VALUE" : "");
    if (left.size() < 26) left.resize(26, ' ');
    out += left + " " + s.help + "\n";
  }
  return out;
}

}  // namespace tokenfab
