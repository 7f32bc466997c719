#include "base/status.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace tokenfab {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  TF_ASSIGN_OR_RETURN(const int half, Half(x));
  TF_ASSIGN_OR_RETURN(const int quarter, Half(half));
  return quarter;
}

Status CheckEven(int x) {
  TF_RETURN_IF_ERROR(Half(x));
  return Status::Ok();
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  const Status s = NotFoundError("no such tensor");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NotFound: no such tensor");
  EXPECT_EQ(s.WithContext("model.safetensors").message(), "model.safetensors: no such tensor");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(StatusTest, MacrosPropagate) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "3 is odd");
  EXPECT_OK(CheckEven(4));
  EXPECT_EQ(CheckEven(3).code(), StatusCode::kInvalidArgument);
}

TEST(StatusTest, StatusOfTemporaryResultDoesNotDangle) {
  const Status& s = Half(3).status();  // binds to a copy, not into the dead Result
  EXPECT_EQ(s.message(), "3 is odd");
}

TEST(StatusDeathTest, ValueOfErrorAborts) {
  EXPECT_DEATH((void)Half(1).value(), "1 is odd");
}

}  // namespace
}  // namespace tokenfab
