// CHECK: loud aborts for programmer errors (broken invariants), never for bad input.
//
//   CHECK(ptr != nullptr) << "while loading " << name;
//   CHECK_EQ(a, b);  CHECK_LT(i, n);
//
// Thread-safe: the message is assembled locally and written with one call before abort().
#pragma once

#include <sstream>

namespace tokenfab::internal {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `CHECK(x) << ...` compile as a void expression.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace tokenfab::internal

#define CHECK(condition)                                     \
  (condition) ? (void)0                                      \
              : ::tokenfab::internal::Voidify() &            \
                    ::tokenfab::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#define TF_CHECK_OP_(a, b, op) CHECK((a)op(b)) << "(" << (a) << " vs " << (b) << ") "
#define CHECK_EQ(a, b) TF_CHECK_OP_(a, b, ==)
#define CHECK_NE(a, b) TF_CHECK_OP_(a, b, !=)
#define CHECK_LT(a, b) TF_CHECK_OP_(a, b, <)
#define CHECK_LE(a, b) TF_CHECK_OP_(a, b, <=)
#define CHECK_GT(a, b) TF_CHECK_OP_(a, b, >)
#define CHECK_GE(a, b) TF_CHECK_OP_(a, b, >=)

// Aborts if a Status / Result is not OK: for call sites where failure is a programmer error.
#define CHECK_OK(expr)                                                    \
  do {                                                                    \
    const auto& tf_check_ok_ = (expr);                                    \
    CHECK(tf_check_ok_.ok()) << ::tokenfab::internal::AsStatus(tf_check_ok_).ToString(); \
  } while (0)
