// The load generator's parts: deterministic workloads of each kind, summary statistics and
// goodput, JSON round trips, the HTML report, and a run against a tiny in-process server.
#include "bench/load_generator.h"

#include <cmath>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "bench/bench_report.h"
#include "bench/html_report.h"
#include "bench/workload.h"
#include "server/http_server.h"
#include "test_util.h"

namespace tokenfab {
namespace {

int Words(const std::string& s) {
  int n = s.empty() ? 0 : 1;
  for (char c : s) n += c == ' ';
  return n;
}

TEST(WorkloadTest, KindsShapesAndDeterminism) {
  WorkloadConfig c;
  c.num_sessions = 20;
  c.input_len = 50;
  c.output_len = 7;
  c.seed = 3;
  auto fixed = MakeWorkload(c);
  ASSERT_EQ(fixed.size(), 20u);
  for (const Session& s : fixed) {
    ASSERT_EQ(s.turns.size(), 1u);
    EXPECT_EQ(Words(s.turns[0].user), 50);
    EXPECT_EQ(s.turns[0].max_tokens, 7);
  }
  EXPECT_NE(fixed[0].turns[0].user, fixed[1].turns[0].user);
  EXPECT_EQ(MakeWorkload(c)[5].turns[0].user, fixed[5].turns[0].user) << "same seed, same workload";
  c.kind = WorkloadKind::kChat;
  auto chat = MakeWorkload(c);
  std::set<int> lengths;
  for (const Session& s : chat) lengths.insert(Words(s.turns[0].user));
  EXPECT_GT(lengths.size(), 5u) << "chat lengths vary";
  c.kind = WorkloadKind::kMultiTurn;
  c.turns = 3;
  c.system_prompt_len = 40;
  auto multi = MakeWorkload(c);
  EXPECT_EQ(multi[0].turns.size(), 3u);
  EXPECT_EQ(multi[0].system, multi[7].system) << "one shared system prompt";
  EXPECT_EQ(Words(multi[0].system), 40);
  c.kind = WorkloadKind::kLongContext;
  c.num_documents = 2;
  c.document_len = 30;
  auto docs = MakeWorkload(c);
  EXPECT_EQ(docs[0].system, docs[2].system);
  EXPECT_NE(docs[0].system, docs[1].system);
  EXPECT_FALSE(ParseWorkloadKind("nope").ok());
}

TEST(BenchReportTest, PercentilesThroughputAndGoodput) {
  LoadResult result;
  result.duration_s = 10;
  for (int i = 0; i < 100; ++i) {
    RequestRecord r;
    r.ok = true;
    r.ttft_s = i < 90 ? 0.5 : 3.0;  // 10 miss the TTFT limit
    r.output_tokens = 11;
    r.prompt_tokens = 20;
    r.e2e_s = r.ttft_s + (i < 95 ? 0.5 : 2.0);  // TPOT 0.05, or 0.2 for the last 5
    r.chunk_times_s = {r.ttft_s, r.ttft_s + 0.05};
    result.records.push_back(r);
  }
  RequestRecord failed;
  failed.error = "boom";
  result.records.push_back(failed);
  const RunSummary s = Summarize(result, SloConfig{});
  EXPECT_EQ(s.completed, 100);
  EXPECT_EQ(s.failed, 1);
  EXPECT_DOUBLE_EQ(s.output_throughput, 110.0);
  EXPECT_DOUBLE_EQ(s.ttft.p50, 0.5);
  EXPECT_DOUBLE_EQ(s.ttft.p99, 3.0);
  EXPECT_NEAR(s.tpot.p50, 0.05, 1e-12);
  EXPECT_NEAR(s.itl.p99, 0.05, 1e-12);
  EXPECT_DOUBLE_EQ(s.goodput, 9.0) << "90 requests within both limits over 10 s";
  EXPECT_FALSE(s.slo_met);
  EXPECT_EQ(s.errors, std::vector<std::string>{"boom"});
  auto back = SummaryFromJson(SummaryToJson(s, true));
  ASSERT_OK(back);
  EXPECT_DOUBLE_EQ(back->ttft.p99, s.ttft.p99);
  EXPECT_EQ(back->completed, 100);
  const std::string html = HtmlReport("t", {s, *back});
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos) << "self-contained, no script";
}

// A stand-in server streaming three chunks and usage, to check what the generator measures.
TEST(LoadGeneratorTest, MeasuresAStreamingServer) {
  HttpServerConfig config;
  config.port = 0;
  auto server = HttpServer::Start(config, [](const HttpRequest& r, std::shared_ptr<HttpExchange> e) {
    if (r.path == "/v1/models") {
      e->Respond(200, "application/json", R"({"data": [{"id": "fake"}]})");
      return;
    }
    e->StartStream(200, "text/event-stream");
    for (const char* piece : {"a", "b", "c"}) {
      e->Send(std::string("data: {\"choices\": [{\"delta\": {\"content\": \"") + piece + "\"}}]}\n\n");
    }
    e->Send("data: {\"choices\": [], \"usage\": {\"prompt_tokens\": 9, \"completion_tokens\": 3}}\n\n");
    e->Send("data: [DONE]\n\n");
    e->End();
  });
  ASSERT_OK(server);
  LoadConfig c;
  c.port = (*server)->port();
  c.concurrency = 3;
  ASSERT_OK_AND_ASSIGN(c.model, DiscoverModel(c));
  EXPECT_EQ(c.model, "fake");
  WorkloadConfig w;
  w.kind = WorkloadKind::kMultiTurn;
  w.num_sessions = 4;
  w.turns = 2;
  w.system_prompt_len = 5;
  int done = 0;
  ASSERT_OK_AND_ASSIGN(const LoadResult result, RunLoad(c, MakeWorkload(w), [&](const RequestRecord&) { ++done; }));
  ASSERT_EQ(result.records.size(), 8u);
  EXPECT_EQ(done, 8);
  for (const RequestRecord& r : result.records) {
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.output_tokens, 3);
    EXPECT_EQ(r.prompt_tokens, 9);
    EXPECT_EQ(r.chunk_times_s.size(), 3u);
    EXPECT_GE(r.ttft_s, 0);
    EXPECT_LE(r.ttft_s, r.e2e_s);
  }
  // Open loop too.
  c.request_rate = 200;
  ASSERT_OK_AND_ASSIGN(const LoadResult open, RunLoad(c, MakeWorkload(w)));
  EXPECT_EQ(open.records.size(), 8u);
}

}  // namespace
}  // namespace tokenfab
