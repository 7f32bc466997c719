// The load generator's parts: deterministic workloads of each kind, summary statistics and
// goodput, JSON round trips, the HTML report, and a run against a tiny in-process server.
#include "bench/load_generator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <thread>

#include "base/json.h"
#include "base/thread_annotations.h"
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
  WorkloadConfig later = c;  // sessions 15..24 of the same sequence
  later.first_session = 15;
  later.num_sessions = 10;
  const auto more = MakeWorkload(later);
  EXPECT_EQ(more[0].turns[0].user, fixed[15].turns[0].user) << "an offset continues the sequence";
  EXPECT_EQ(more[4].turns[0].user, fixed[19].turns[0].user);
  for (const Session& s : fixed) EXPECT_NE(s.turns[0].user, more[9].turns[0].user) << "session 24 is new";
  c.kind = WorkloadKind::kChat;
  auto chat = MakeWorkload(c);
  std::set<int> lengths;
  for (const Session& s : chat) lengths.insert(Words(s.turns[0].user));
  EXPECT_GT(lengths.size(), 5u) << "chat lengths vary";
  c.kind = WorkloadKind::kMultiTurn;
  c.turns = 3;
  c.system_prompt_len = 40;
  c.turn_input_len = 40;
  auto multi = MakeWorkload(c);
  EXPECT_EQ(multi[0].turns.size(), 3u);
  EXPECT_EQ(multi[0].system, multi[7].system) << "one shared system prompt";
  EXPECT_EQ(Words(multi[0].system), 40);
  std::set<int> turn_lengths, reply_lengths;
  for (const Session& s : multi) {
    for (const Turn& t : s.turns) {
      turn_lengths.insert(Words(t.user));
      reply_lengths.insert(t.max_tokens);
      EXPECT_GE(Words(t.user), 40 / 4);
      EXPECT_LE(Words(t.user), 4 * 40);
    }
  }
  EXPECT_GT(turn_lengths.size(), 5u) << "turn lengths vary, so conversations do not run in lockstep";
  EXPECT_GT(reply_lengths.size(), 3u);
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
  result.started_unix_s = 1.8e9;
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
  EXPECT_DOUBLE_EQ(back->started_unix_s, 1.8e9);
  const std::string html = HtmlReport("t", {s, *back});
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos) << "self-contained, no script";
}

// A stand-in server streaming three chunks and usage, to check what the generator measures.
TEST(LoadGeneratorTest, MeasuresAStreamingServer) {
  HttpServerConfig config;
  config.port = 0;
  Mutex mu;
  std::string last_body;
  auto server = HttpServer::Start(config, [&](const HttpRequest& r, std::shared_ptr<HttpExchange> e) {
    if (r.path == "/v1/models") {
      e->Respond(200, "application/json", R"({"data": [{"id": "fake"}]})");
      return;
    }
    {
      MutexLock lock(&mu);
      last_body = r.body;
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
  c.temperature = 0.7;
  c.top_p = 0.9;
  ASSERT_OK_AND_ASSIGN(c.model, DiscoverModel(c));
  EXPECT_EQ(c.model, "fake");
  WorkloadConfig w;
  w.kind = WorkloadKind::kMultiTurn;
  w.num_sessions = 4;
  w.turns = 2;
  w.system_prompt_len = 5;
  std::atomic<int> done{0};  // on_done runs on the worker threads, several at once
  const auto unix_now = [] {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const double before = unix_now();
  ASSERT_OK_AND_ASSIGN(const LoadResult result, RunLoad(c, MakeWorkload(w), [&](const RequestRecord&) { ++done; }));
  EXPECT_GE(result.started_unix_s, before);
  EXPECT_LE(result.started_unix_s + result.duration_s, unix_now());
  ASSERT_EQ(result.records.size(), 8u);
  EXPECT_EQ(done.load(), 8);
  for (const RequestRecord& r : result.records) {
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.output_tokens, 3);
    EXPECT_EQ(r.prompt_tokens, 9);
    EXPECT_EQ(r.chunk_times_s.size(), 3u);
    EXPECT_GE(r.ttft_s, 0);
    EXPECT_LE(r.ttft_s, r.e2e_s);
  }
  {
    MutexLock lock(&mu);
    const Json body = Json::parse(last_body);
    EXPECT_EQ(body["model"], "fake");
    EXPECT_DOUBLE_EQ(body["temperature"].get<double>(), 0.7);
    EXPECT_DOUBLE_EQ(body["top_p"].get<double>(), 0.9);
    EXPECT_TRUE(body["ignore_eos"].get<bool>());
  }
  c.top_p = 0;
  EXPECT_EQ(RunLoad(c, MakeWorkload(w)).status().code(), StatusCode::kInvalidArgument);
  c.top_p = 1;
  // Open loop too.
  c.request_rate = 200;
  ASSERT_OK_AND_ASSIGN(const LoadResult open, RunLoad(c, MakeWorkload(w)));
  EXPECT_EQ(open.records.size(), 8u);
}

// A server that closes every connection right after its streamed response, without saying
// "Connection: close" (as llama-server does): each worker's kept-alive connection is stale when
// its next request goes out, and that request must go again on a new connection, not fail.
class ClosingServer {
 public:
  ClosingServer() : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~ClosingServer() {
    stop_ = true;
    boost::system::error_code ignored;
    boost::asio::ip::tcp::socket poke(ioc_);
    poke.connect(acceptor_.local_endpoint(), ignored);  // wakes the blocking accept
    thread_.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  int requests() const { return requests_; }

 private:
  void Serve() {
    namespace net = boost::asio;
    while (!stop_) {
      net::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) continue;
      std::string request;
      char buf[4096];
      size_t header_end = std::string::npos;
      while (header_end == std::string::npos) {  // the header, then Content-Length bytes
        const size_t n = socket.read_some(net::buffer(buf), ec);
        if (ec) break;
        request.append(buf, n);
        header_end = request.find("\r\n\r\n");
      }
      if (header_end == std::string::npos) continue;
      const size_t cl = request.find("Content-Length: ");
      const size_t length = cl == std::string::npos ? 0 : std::stoul(request.substr(cl + 16));
      while (request.size() < header_end + 4 + length && !ec) {
        request.append(buf, socket.read_some(net::buffer(buf), ec));
      }
      ++requests_;
      const std::string events =
          "data: {\"choices\": [{\"text\": \"x\"}]}\n\n"
          "data: {\"choices\": [], \"usage\": {\"prompt_tokens\": 4, \"completion_tokens\": 1}}\n\n"
          "data: [DONE]\n\n";
      char size[16];
      std::snprintf(size, sizeof(size), "%zx", events.size());
      const std::string response =
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
          std::string(size) + "\r\n" + events + "\r\n0\r\n\r\n";
      net::write(socket, net::buffer(response), ec);
      socket.close(ec);  // no "Connection: close" was sent
    }
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST(LoadGeneratorTest, RetriesRequestsOnConnectionsTheServerClosedWhileIdle) {
  ClosingServer server;
  LoadConfig c;
  c.port = server.port();
  c.model = "fake";
  c.chat = false;
  c.concurrency = 2;
  WorkloadConfig w;
  w.kind = WorkloadKind::kMultiTurn;  // turns of a session share a connection, so do sessions
  w.num_sessions = 4;
  w.turns = 3;
  w.system_prompt_len = 5;
  ASSERT_OK_AND_ASSIGN(const LoadResult result, RunLoad(c, MakeWorkload(w)));
  ASSERT_EQ(result.records.size(), 12u);
  for (const RequestRecord& r : result.records) EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(server.requests(), 12) << "each request reached the server exactly once";
}

}  // namespace
}  // namespace tokenfab
