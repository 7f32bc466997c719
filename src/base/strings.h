// Small string helpers for command lines and config values. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace tokenfab {

std::vector<std::string_view> SplitString(std::string_view text, char separator);
std::string_view TrimWhitespace(std::string_view text);

// Whole-string parses; InvalidArgument naming `what` on junk, overflow or empty input.
Result<int64_t> ParseInt64(std::string_view text, std::string_view what);
Result<double> ParseDouble(std::string_view text, std::string_view what);

// "1,2, 3" -> {1, 2, 3}. Empty input gives an empty list.
Result<std::vector<int64_t>> ParseIntList(std::string_view text, std::string_view what);

}  // namespace tokenfab
