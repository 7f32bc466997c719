// StopStringMatcher: text that could still start a stop string is held back; the stop string
// completed first cuts the text before it, across any split of the text into pieces. And the
// Prometheus text output.
#include "server/choice_text.h"

#include <gtest/gtest.h>

#include "server/prometheus.h"

namespace tokenfab {
namespace {

// Feeds `text` in pieces of `piece` bytes; returns (released text, stopped).
std::pair<std::string, bool> Feed(const std::vector<std::string>& stops, const std::string& text,
                                 size_t piece) {
  StopStringMatcher m(stops);
  std::string out;
  for (size_t i = 0; i < text.size() && !m.stopped(); i += piece) out += m.Add(text.substr(i, piece));
  out += m.Flush();
  return {out, m.stopped()};
}

TEST(StopStringMatcherTest, CutsBeforeTheEarliestStopInAnySplit) {
  for (size_t piece : {1, 2, 3, 5, 100}) {
    EXPECT_EQ(Feed({"STOP"}, "hello STOP world", piece), std::make_pair(std::string("hello "), true)) << piece;
    EXPECT_EQ(Feed({"b", "abc"}, "xxabcd", piece), std::make_pair(std::string("xxa"), true)) << piece;  // "b" completes first
    EXPECT_EQ(Feed({"cd", "abc"}, "xxabcd", piece), std::make_pair(std::string("xx"), true)) << piece;
    EXPECT_EQ(Feed({"STOP"}, "no stop here, ST", piece), std::make_pair(std::string("no stop here, ST"), false));
    EXPECT_EQ(Feed({}, "anything", piece), std::make_pair(std::string("anything"), false));
    EXPECT_EQ(Feed({"\n\n"}, "a\nb\n\nc", piece), std::make_pair(std::string("a\nb"), true));
  }
}

TEST(StopStringMatcherTest, HoldsBackOnlyWhatCouldStillMatch) {
  StopStringMatcher m({"END"});
  EXPECT_EQ(m.Add("abc E"), "abc ");  // "E" may start "END"
  EXPECT_EQ(m.Add("N"), "");          // "EN" too
  EXPECT_EQ(m.Add("x"), "ENx");       // not any more
  EXPECT_EQ(m.Add("EN"), "");
  EXPECT_EQ(m.Add("D tail"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.Add("more"), "");
  EXPECT_EQ(m.Flush(), "");
}

TEST(PrometheusTest, HistogramsAreCumulativeWithSumAndCount) {
  Histogram h({0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  PrometheusWriter w;
  h.Render(&w, "x_seconds", "help text");
  EXPECT_EQ(w.text(),
            "# HELP x_seconds help text\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"0.1\"} 1\nx_seconds_bucket{le=\"1\"} 2\n"
            "x_seconds_bucket{le=\"+Inf\"} 3\nx_seconds_sum 5.55\nx_seconds_count 3\n");
  EXPECT_EQ(PrometheusLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace tokenfab
