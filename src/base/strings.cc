#include "base/strings.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

namespace tokenfab {

std::vector<std::string_view> SplitString(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t pos = text.find(separator, start);
    if (pos == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string_view TrimWhitespace(std::string_view text) {
  const char* ws = " \t\r\n";
  const size_t begin = text.find_first_not_of(ws);
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(ws);
  return text.substr(begin, end - begin + 1);
}

Result<int64_t> ParseInt64(std::string_view text, std::string_view what) {
  text = TrimWhitespace(text);
  int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return InvalidArgumentError(std::string(what) + ": not an integer: '" + std::string(text) +
                                "'");
  }
  return value;
}

Result<double> ParseDouble(std::string_view text, std::string_view what) {
  const std::string s(TrimWhitespace(text));
  char* end = nullptr;
  const double value = s.empty() ? 0.0 : std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(value)) {
    return InvalidArgumentError(std::string(what) + ": not a finite number: '" + s + "'");
  }
  return value;
}

Result<std::vector<int64_t>> ParseIntList(std::string_view text, std::string_view what) {
  std::vector<int64_t> values;
  if (TrimWhitespace(text).empty()) return values;
  for (std::string_view part : SplitString(text, ',')) {
    TF_ASSIGN_OR_RETURN(const int64_t v, ParseInt64(part, what));
    values.push_back(v);
  }
  return values;
}

}  // namespace tokenfab
