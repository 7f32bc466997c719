// `tokenfab serve` end to end, as a separate process on an ephemeral port: the official
// `openai` npm client (openai_client_test.mjs), then bad input of every kind — malformed JSON
// and HTTP, wrong types, huge bodies, slow clients, 500 connections at once — each answered
// with the right error or served, the server never crashing and serving others meanwhile; a
// full queue answered early with 429 and Retry-After;
// Prometheus metrics that promtool accepts; KV events and pinning; a clean drain on SIGTERM.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "base/json.h"
#include "server_process.h"
#include "tokenizer/tokenizer.h"
#include "test_util.h"

namespace tokenfab::testing {
namespace {

constexpr const char* kKey = "e2e-secret";
using Headers = std::vector<std::pair<std::string, std::string>>;
const Headers kAuth = {{"Authorization", std::string("Bearer ") + kKey},
                       {"Content-Type", "application/json"}};

class ServerE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new std::string(MakeServedModelDir());
    server_ = new ServerProcess(*model_dir_, {"--api-key", kKey, "--max-seqs", "64",
                                              "--request-timeout", "2", "--max-body-mb", "1"});
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->Terminate(), 0) << "the server must drain and exit cleanly:\n" << server_->log();
    delete server_;
    delete model_dir_;
  }
  void SetUp() override { ASSERT_TRUE(server_->ok()); }

  // A request with the API key; the parsed JSON body.
  static Json Call(const std::string& method, const std::string& target, const std::string& body,
                   int want_status) {
    auto r = server_->Request(method, target, body, kKey);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return Json();
    EXPECT_EQ(r->status, want_status) << target << " " << body.substr(0, 200) << " -> " << r->body;
    Json j = Json::parse(r->body, nullptr, false);
    return j;
  }
  // Checks an OpenAI error body.
  static void ExpectError(const Json& j, const std::string& param = "") {
    ASSERT_TRUE(j.is_object() && j.contains("error")) << j.dump();
    const Json& e = j["error"];
    EXPECT_TRUE(e["message"].is_string());
    EXPECT_TRUE(e["type"].is_string());
    EXPECT_TRUE(e.contains("param") && e.contains("code"));
    if (!param.empty()) {
      EXPECT_EQ(e["param"], param) << j.dump();
    }
  }

  static std::string* model_dir_;
  static ServerProcess* server_;
};
std::string* ServerE2eTest::model_dir_ = nullptr;
ServerProcess* ServerE2eTest::server_ = nullptr;

TEST_F(ServerE2eTest, TheOfficialOpenAiClientWorks) {
  const std::string module = std::string(TOKENFAB_SOURCE_DIR) + "/assets/npm/node_modules/openai";
  std::ifstream probe(module + "/package.json");
  ASSERT_TRUE(probe.good()) << "missing " << module << ": run scripts/setup.sh";
  const std::string out = MakeTempDir("node") + "/out";
  const std::string cmd = "TOKENFAB_URL=http://127.0.0.1:" + std::to_string(server_->port()) +
                          "/v1 TOKENFAB_API_KEY=" + kKey + " TOKENFAB_MODEL=" +
                          model_dir_->substr(model_dir_->rfind('/') + 1) + " OPENAI_MODULE=" +
                          module + " timeout 240 node " + TOKENFAB_SOURCE_DIR +
                          "/tests/e2e/openai_client_test.mjs >" + out + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream f(out);
  const std::string output((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_NE(output.find(" passed, 0 failed"), std::string::npos) << output;
  std::printf("%s", output.c_str());
}

TEST_F(ServerE2eTest, BadJsonAndBadFieldsAre400sNamingTheField) {
  ExpectError(Call("POST", "/v1/chat/completions", "{not json", 400));
  ExpectError(Call("POST", "/v1/chat/completions", "[1, 2]", 400));
  ExpectError(Call("POST", "/v1/chat/completions", "", 400));
  ExpectError(Call("POST", "/v1/chat/completions", R"({"messages": "hi"})", 400), "messages");
  ExpectError(Call("POST", "/v1/chat/completions", R"({"messages": []})", 400), "messages");
  ExpectError(Call("POST", "/v1/chat/completions", R"({"messages": [{"content": "x"}]})", 400),
              "messages[0].role");
  ExpectError(Call("POST", "/v1/chat/completions",
                   R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": "5"})", 400),
              "max_tokens");
  ExpectError(Call("POST", "/v1/chat/completions",
                   R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": -3})", 400),
              "max_tokens");
  ExpectError(Call("POST", "/v1/chat/completions",
                   R"({"messages": [{"role": "user", "content": "x"}], "n": 1000})", 400), "n");
  ExpectError(Call("POST", "/v1/chat/completions",
                   R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})", 400),
              "stream");
  ExpectError(Call("POST", "/v1/chat/completions",
                   R"({"messages": [{"role": "user", "content": "x"}], "extra_thing": 1})", 400),
              "extra_thing");
  ExpectError(Call("POST", "/v1/completions", R"({"prompt": [1, 2, 99999999]})", 400), "prompt");
  ExpectError(Call("POST", "/v1/completions", R"({"prompt": ""})", 400), "prompt");
  ExpectError(Call("POST", "/v1/completions", R"({"prompt": "hi", "top_p": 0})", 400), "top_p");
  ExpectError(Call("POST", "/v1/completions", R"({"prompt": "hi", "logit_bias": {"99999999": 5}})", 400),
              "logit_bias");
  ExpectError(Call("POST", "/v1/completions", R"({"prompt": "hi", "logit_bias": {"5": 101}})", 400),
              "logit_bias");
  // A valid bias is served: +100 on one token makes decoding repeat it.
  Json biased = Call("POST", "/v1/completions",
                     R"({"prompt": [1, 2], "max_tokens": 3, "temperature": 0.7, "logit_bias": {"72": 100}})", 200);
  auto tokenizer = Tokenizer::FromFile(*model_dir_ + "/tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const std::vector<int32_t> forced = {72, 72, 72};
  EXPECT_EQ(biased["choices"][0]["text"], *(*tokenizer)->Decode(forced, true));
  ExpectError(Call("POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 5000})", 400),
              "prompt");
  ExpectError(Call("POST", "/v1/completions", R"({"prompt": "x", "model": "other"})", 404), "model");
  ExpectError(Call("GET", "/v1/completions", "", 405));
  ExpectError(Call("GET", "/v1/nothing-here", "", 404));
  // Without the key, or with another one.
  auto r = server_->Request("POST", "/v1/completions", R"({"prompt": "x"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->headers["www-authenticate"], "Bearer");
  r = server_->Request("GET", "/v1/models", "", "not-the-key");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  // Health and metrics need no key.
  r = server_->Request("GET", "/health");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  // And after all that the server still serves.
  Json ok = Call("POST", "/v1/completions", R"({"prompt": [1, 2, 3], "max_tokens": 3})", 200);
  EXPECT_EQ(ok["usage"]["completion_tokens"], 3);
}

TEST_F(ServerE2eTest, TokenizeAndDetokenizeAsVllmServesThem) {
  // A text round trip, without and with the tokenizer's special tokens.
  Json plain = Call("POST", "/tokenize", R"({"prompt": "Hello tokens", "add_special_tokens": false})", 200);
  ASSERT_GT(plain["count"].get<int>(), 0);
  EXPECT_EQ(plain["count"], plain["tokens"].size());
  EXPECT_GT(plain["max_model_len"].get<int>(), 0);
  EXPECT_TRUE(plain["token_strs"].is_null());
  Json back = Call("POST", "/detokenize", Json{{"tokens", plain["tokens"]}}.dump(), 200);
  EXPECT_EQ(back["prompt"], "Hello tokens");
  Json special = Call("POST", "/tokenize", R"({"prompt": "Hello tokens", "return_token_strs": true})", 200);
  EXPECT_EQ(special["tokens"], plain["tokens"]) << "Qwen3's tokenizer adds no BOS, as in HF";
  ASSERT_EQ(special["token_strs"].size(), special["tokens"].size());
  EXPECT_EQ(special["token_strs"][0], "Hello");
  // A chat counts exactly the prompt tokens a chat completion of it reports.
  const std::string messages = R"("messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Count me."}])";
  Json counted = Call("POST", "/tokenize", "{" + messages + "}", 200);
  Json completion = Call("POST", "/v1/chat/completions", "{" + messages + R"(, "max_tokens": 1})", 200);
  EXPECT_EQ(counted["count"], completion["usage"]["prompt_tokens"]);
  // Errors name the field; the key is needed as on /v1.
  ExpectError(Call("POST", "/detokenize", R"({"tokens": [99999999]})", 400), "tokens");
  ExpectError(Call("POST", "/tokenize", R"({"prompt": "x", "model": "other"})", 404), "model");
  ExpectError(Call("GET", "/tokenize", "", 405));
  auto r = server_->Request("POST", "/tokenize", R"({"prompt": "x"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
}

TEST_F(ServerE2eTest, MalformedHttpAndHugeBodiesAreRefusedEarly) {
  auto c = server_->Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendRaw("THIS IS NOT HTTP\r\n\r\n", std::chrono::seconds(5)));
  auto r = c->Receive(std::chrono::seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 400);
  // A declared 100 MB body gets 413 right after the headers, without sending the body.
  c = server_->Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendRaw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                           std::string(kKey) + "\r\nContent-Length: 100000000\r\n\r\n{\"prompt\":",
                       std::chrono::seconds(5)));
  r = c->Receive(std::chrono::seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("\"error\""), std::string::npos);
  // A body just over the 1 MiB limit, actually sent.
  c = server_->Connect();
  ASSERT_NE(c, nullptr);
  const std::string big = R"({"prompt": ")" + std::string(1100000, 'a') + R"("})";
  r = c->Request("POST", "/v1/completions", big, kAuth, std::chrono::seconds(20));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  // A client that keeps sending its body after the server has answered 413 (as ordinary
  // clients do: they write the whole request before reading) can still send, and then reads
  // the 413: the server drains instead of resetting the connection under it.
  c = server_->Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendRaw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                           std::string(kKey) + "\r\nContent-Length: 3000000\r\n\r\n",
                       std::chrono::seconds(5)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the 413 has been sent
  ASSERT_OK(c->SendRaw(std::string(2000000, 'a'), std::chrono::seconds(10)));
  r = c->Receive(std::chrono::seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
}

TEST_F(ServerE2eTest, SlowClientsAreCutOffWithoutStallingOthers) {
  // A client that sends half a request and stalls (slowloris).
  auto slow = server_->Connect();
  ASSERT_NE(slow, nullptr);
  ASSERT_OK(slow->SendRaw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le",
                          std::chrono::seconds(5)));
  // Others are served meanwhile.
  const auto start = std::chrono::steady_clock::now();
  Json ok = Call("POST", "/v1/completions", R"({"prompt": [5, 6], "max_tokens": 2})", 200);
  EXPECT_EQ(ok["usage"]["completion_tokens"], 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // The slow one is disconnected at --request-timeout (2 s).
  auto r = slow->Receive(std::chrono::seconds(15));
  EXPECT_FALSE(r.ok() && r->status == 200);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  // A client that asks for a long stream and stops reading, then vanishes: the server cancels
  // the request (no request stays running).
  {
    auto c = server_->Connect();
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->Send("POST", "/v1/completions",
                      R"({"prompt": [1, 2], "max_tokens": 1500, "ignore_eos": true, "stream": true})",
                      kAuth, std::chrono::seconds(5)));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }  // closed
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string metrics;
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = server_->Request("GET", "/metrics");
    ASSERT_TRUE(m.ok());
    metrics = m->body;
    if (metrics.find("\ntokenfab_num_requests_running 0\n") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(metrics.find("\ntokenfab_num_requests_running 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("code=\"499\""), std::string::npos) << "the disconnect is counted";
}

TEST_F(ServerE2eTest, FiveHundredConcurrentConnectionsAreAllServed) {
  constexpr int kConnections = 500;
  std::vector<std::unique_ptr<HttpConnection>> connections;
  for (int i = 0; i < kConnections; ++i) {
    auto c = HttpConnection::Connect("127.0.0.1", server_->port(), std::chrono::seconds(10));
    ASSERT_TRUE(c.ok()) << i << ": " << c.status().ToString();
    connections.push_back(std::move(c).value());
  }
  for (int i = 0; i < kConnections; ++i) {
    const std::string body = i % 5 == 0 ? "{\"prompt\": [1, 2, 3], \"max_tokens\": 2, \"stream\": true}"
                                         : "{\"prompt\": [" + std::to_string(1 + i % 50) +
                                               ", 7], \"max_tokens\": 2}";
    ASSERT_OK(connections[i]->Send("POST", "/v1/completions", body, kAuth, std::chrono::seconds(10)));
  }
  int served = 0;
  for (int i = 0; i < kConnections; ++i) {
    auto r = connections[i]->Receive(std::chrono::seconds(120));
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(r->status, 200) << r->body;
    served += r->status == 200;
    if (i % 5 == 0) {
      EXPECT_NE(r->body.find("data: [DONE]"), std::string::npos);
    }
  }
  EXPECT_EQ(served, kConnections);
  // Keep-alive: the same connections serve another request each.
  for (int i = 0; i < 20; ++i) {
    auto r = connections[i]->Request("GET", "/v1/models", "", kAuth, std::chrono::seconds(10));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
  }
}

TEST_F(ServerE2eTest, MetricsPassPromtool) {
  Call("POST", "/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 3})", 200);
  auto r = server_->Request("GET", "/metrics");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  for (const char* name :
       {"tokenfab_requests_total{", "tokenfab_time_to_first_token_seconds_bucket",
        "tokenfab_inter_token_latency_seconds_bucket", "tokenfab_e2e_request_latency_seconds_count",
        "tokenfab_num_requests_waiting", "tokenfab_num_requests_running", "tokenfab_preemptions_total",
        "tokenfab_kv_blocks_used", "tokenfab_kv_blocks_free", "tokenfab_prefix_cache_hit_rate",
        "tokenfab_prompt_tokens_total", "tokenfab_generation_tokens_total",
        "tokenfab_engine_device_sampled_tokens_total"}) {
    EXPECT_NE(r->body.find(name), std::string::npos) << name;
  }
  const std::string file = MakeTempDir("metrics") + "/metrics.txt";
  WriteFile(file, r->body);
  const int status = std::system(("promtool check metrics < " + file + " > " + file + ".out 2>&1").c_str());
  std::ifstream f(file + ".out");
  const std::string out((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "promtool: " << out;
}

TEST_F(ServerE2eTest, PinnedSystemPromptsAndKvEvents) {
  Json pinned = Call("POST", "/v1/cache/pin", R"({"system": "You are a helpful assistant for the pinning test."})", 200);
  EXPECT_GT(pinned["pinned_tokens"].get<int>(), 0) << pinned.dump();
  Json events = Call("GET", "/v1/kv_events?after=0&limit=100000", "", 200);
  ASSERT_TRUE(events["events"].is_array());
  ASSERT_FALSE(events["events"].empty());
  EXPECT_EQ(events["events"][0]["type"], "BlockStored");
  EXPECT_EQ(events["events"][0]["event_id"], events["first_retained_id"]);
  EXPECT_EQ(events["events"].back()["event_id"], events["last_id"]);
  // A chat with that system prompt reuses the pinned prefix.
  Json chat = Call("POST", "/v1/chat/completions",
                   R"({"messages": [{"role": "system", "content": "You are a helpful assistant for the pinning test."},
                                    {"role": "user", "content": "hi"}], "max_tokens": 2})",
                   200);
  EXPECT_EQ(chat["usage"]["prompt_tokens_details"]["cached_tokens"], pinned["pinned_tokens"]);
  // Another tenant's salt shares nothing.
  Json salted = Call("POST", "/v1/chat/completions",
                     R"({"messages": [{"role": "system", "content": "You are a helpful assistant for the pinning test."},
                                      {"role": "user", "content": "hi"}], "max_tokens": 2, "cache_salt": "other"})",
                     200);
  EXPECT_EQ(salted["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
}

// `tokenfab bench` against this server: each point of a sweep sends prompts the server has not
// seen, so no point after the first is served from the prefix cache of an earlier one.
TEST_F(ServerE2eTest, BenchSweepPointsSendNewPrompts) {
  const std::string out = MakeTempDir("bench_sweep") + "/sweep.json";
  const CommandResult r = RunTokenfab(
      "bench --url http://127.0.0.1:" + std::to_string(server_->port()) + " --api-key " + kKey +
      " --workload fixed --endpoint completions --input-len 40 --output-len 2 --num-requests 3"
      " --concurrency 1,2 --log-level warning --output-json " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(out);
  const Json report = Json::parse(in, nullptr, false);
  ASSERT_TRUE(report.contains("runs") && report["runs"].size() == 2) << report.dump().substr(0, 500);
  for (const Json& run : report["runs"]) {
    EXPECT_EQ(run["completed"], 3) << run.dump().substr(0, 300);
    EXPECT_GT(run["prompt_tokens"].get<int64_t>(), 3 * 32);  // two 16-token blocks a prompt
    EXPECT_EQ(run["cached_tokens"], 0) << run["label"];
  }
}

TEST(ServerOverloadTest, AFullQueueIsRejectedEarlyWith429AndRetryAfter) {
  const std::string dir = MakeServedModelDir();
  ServerProcess server(dir, {"--max-seqs", "1", "--max-waiting", "2"});
  ASSERT_TRUE(server.ok());
  std::vector<std::unique_ptr<HttpConnection>> connections;
  for (int i = 0; i < 12; ++i) {
    connections.push_back(server.Connect());
    ASSERT_NE(connections.back(), nullptr);
    ASSERT_OK(connections.back()->Send(
        "POST", "/v1/completions", R"({"prompt": [1, 2, 3], "max_tokens": 60, "ignore_eos": true})",
        {{"Content-Type", "application/json"}}, std::chrono::seconds(5)));
  }
  int ok = 0, rejected = 0;
  for (auto& c : connections) {
    auto r = c->Receive(std::chrono::seconds(120));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (r->status == 200) {
      ++ok;
      continue;
    }
    EXPECT_EQ(r->status, 429) << r->body;
    ++rejected;
    EXPECT_GE(std::atoi(r->headers["retry-after"].c_str()), 1);
    const Json j = Json::parse(r->body, nullptr, false);
    EXPECT_EQ(j["error"]["code"], "rate_limit_exceeded") << r->body;
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(rejected, 1) << "one running and two queued at most: the rest are turned away";
  EXPECT_EQ(server.Terminate(), 0);
}

TEST(ServerDrainTest, SigtermFinishesTheStreamInFlightAndExitsCleanly) {
  const std::string dir = MakeServedModelDir();
  ServerProcess server(dir, {"--drain-timeout", "60"});
  ASSERT_TRUE(server.ok());
  auto c = server.Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->Send("POST", "/v1/completions",
                    R"({"prompt": [1, 2, 3], "max_tokens": 300, "ignore_eos": true, "stream": true})",
                    {{"Content-Type", "application/json"}}, std::chrono::seconds(5)));
  std::string body;
  std::atomic<bool> signalled{false};
  std::thread terminator;
  auto r = c->Receive(std::chrono::seconds(120), [&](std::string_view piece) {
    body += piece;
    if (!signalled.exchange(true)) {
      terminator = std::thread([&] { EXPECT_EQ(server.Terminate(std::chrono::seconds(90)), 0) << server.log(); });
    }
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  if (terminator.joinable()) terminator.join();
  EXPECT_NE(body.find("\"finish_reason\":\"length\""), std::string::npos) << body.substr(0, 500);
  EXPECT_NE(body.find("data: [DONE]"), std::string::npos);
  // Gone: nothing listens any more.
  EXPECT_FALSE(HttpConnection::Connect("127.0.0.1", server.port(), std::chrono::seconds(2)).ok());
}

}  // namespace
}  // namespace tokenfab::testing
