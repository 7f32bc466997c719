// Helpers shared by tests: status assertions, test data paths, running the CLI binary.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "base/status.h"

#define EXPECT_OK(expr) EXPECT_TRUE(::tokenfab::internal::AsStatus(expr).ok()) \
    << ::tokenfab::internal::AsStatus(expr).ToString()
#define ASSERT_OK(expr) ASSERT_TRUE(::tokenfab::internal::AsStatus(expr).ok()) \
    << ::tokenfab::internal::AsStatus(expr).ToString()

// Evaluates a Result<T> once, asserts it is OK and moves its value into `lhs`.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(TF_CONCAT_(test_result_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString(); \
  lhs = std::move(tmp).value()

namespace tokenfab::testing {

// tests/data/<relative>.
std::string TestDataPath(const std::string& relative);

// A fresh empty directory under the test temp dir, removed by the caller's process end.
std::string MakeTempDir(const std::string& name);

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs the tokenfab binary with `args` (shell-quoted by the caller) and captures its output.
CommandResult RunTokenfab(const std::string& args);

// Writes `contents` to `path`.
void WriteFile(const std::string& path, const std::string& contents);

}  // namespace tokenfab::testing
