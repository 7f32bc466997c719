// FindMaxRate against servers whose capacity is known: table-driven, every trial recorded.
#include "bench/rate_search.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "test_util.h"

namespace tokenfab {
namespace {

TEST(RateSearchTest, FindsTheCapacityWithinThePrecision) {
  struct Case {
    double capacity;  // trials at or below it pass
    double start;
    double want_max;  // exact for found edges; else the result is within precision below capacity
    bool capped;
  };
  const Case cases[] = {
      {13.7, 4, -1, false},   // grows 4, 8, 16 then bisects
      {5.0, 4, -1, false},    // passes at once, fails at 8
      {3.1, 4, -1, false},    // fails at once: halves to 2, then bisects up
      {2000, 4, 1024, true},  // never fails: stops at the cap
      {0.01, 4, 0, false},    // never passes: stops at the floor
      {4.0, 4, -1, false},    // the capacity is the start rate
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "capacity " << c.capacity << ", start " << c.start);
    RateSearchConfig config;
    config.start_rate = c.start;
    config.precision = 0.05;
    config.max_trials = 30;
    int calls = 0;
    ASSERT_OK_AND_ASSIGN(const RateSearchResult r,
                         FindMaxRate(config, [&](double rate) -> Result<bool> {
                           ++calls;
                           EXPECT_LE(rate, config.max_rate);
                           EXPECT_GE(rate, config.min_rate);
                           return rate <= c.capacity;
                         }));
    EXPECT_EQ(static_cast<int>(r.trials.size()), calls);
    EXPECT_EQ(r.capped, c.capped);
    if (c.want_max >= 0) {
      EXPECT_DOUBLE_EQ(r.max_rate, c.want_max);
    } else {
      EXPECT_LE(r.max_rate, c.capacity);
      EXPECT_GE(r.max_rate, c.capacity / (1 + config.precision));
    }
    for (const RateTrial& t : r.trials) EXPECT_EQ(t.passed, t.rate <= c.capacity) << t.rate;
  }
}

TEST(RateSearchTest, StopsAtTheTrialBudget) {
  RateSearchConfig config;
  config.max_trials = 3;
  config.precision = 1e-6;
  ASSERT_OK_AND_ASSIGN(const RateSearchResult r,
                       FindMaxRate(config, [](double rate) -> Result<bool> { return rate < 10; }));
  ASSERT_EQ(r.trials.size(), 3u);  // 4 and 8 pass, 16 fails: no budget left to bisect
  EXPECT_DOUBLE_EQ(r.max_rate, 8);
}

TEST(RateSearchTest, TrialErrorsEndTheSearch) {
  RateSearchConfig config;
  int calls = 0;
  const Result<RateSearchResult> r = FindMaxRate(config, [&](double) -> Result<bool> {
    if (++calls == 2) return UnavailableError("server went away");
    return true;
  });
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(calls, 2);
}

TEST(RateSearchTest, RejectsBadConfigs) {
  auto never = [](double) -> Result<bool> { return true; };
  for (auto mutate : std::initializer_list<void (*)(RateSearchConfig&)>{
           [](RateSearchConfig& c) { c.start_rate = 0; },
           [](RateSearchConfig& c) { c.max_rate = 1; },
           [](RateSearchConfig& c) { c.precision = 0; },
           [](RateSearchConfig& c) { c.max_trials = 0; },
           [](RateSearchConfig& c) { c.min_rate = std::numeric_limits<double>::quiet_NaN(); }}) {
    RateSearchConfig config;
    mutate(config);
    EXPECT_FALSE(FindMaxRate(config, never).ok());
  }
}

}  // namespace
}  // namespace tokenfab
