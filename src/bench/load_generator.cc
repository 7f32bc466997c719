#include "bench/load_generator.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/json.h"
#include "base/random.h"
#include "bench/http_client.h"
#include "server/gpu_power.h"

namespace tokenfab {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<std::pair<std::string, std::string>> Headers(const LoadConfig& c) {
  std::vector<std::pair<std::string, std::string>> h = {{"Content-Type", "application/json"}};
  if (!c.api_key.empty()) h.push_back({"Authorization", "Bearer " + c.api_key});
  return h;
}

// Parses server-sent events as they arrive: content chunks, usage, errors.
class SseReader {
 public:
  explicit SseReader(RequestRecord* record, Clock::time_point start) : r_(record), start_(start) {}
  bool Feed(std::string_view data) {
    if (raw_.size() < 2000) raw_.append(data.substr(0, 2000 - raw_.size()));
    buffer_.append(data.data(), data.size());
    size_t end;
    while ((end = buffer_.find("\n\n")) != std::string::npos) {
      const std::string event = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      for (size_t pos = 0; pos < event.size();) {
        size_t nl = event.find('\n', pos);
        if (nl == std::string::npos) nl = event.size();
        const std::string line = event.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.compare(0, 5, "data:") != 0) continue;
        std::string payload = line.substr(5);
        if (!payload.empty() && payload[0] == ' ') payload.erase(0, 1);
        if (payload == "[DONE]") {
          done_ = true;
          continue;
        }
        OnJson(payload);
      }
    }
    return true;
  }
  bool done() const { return done_; }
  int64_t chunks() const { return chunks_; }
  const std::string& content() const { return content_; }
  const std::string& raw() const { return raw_; }  // the body's start (an error's JSON)

 private:
  void OnJson(const std::string& payload) {
    const Json j = Json::parse(payload, nullptr, false);
    if (!j.is_object()) return;
    if (j.contains("error")) {
      r_->error = j["error"].is_object() && j["error"].contains("message") && j["error"]["message"].is_string()
                      ? j["error"]["message"].get<std::string>()
                      : j["error"].dump();
      return;
    }
    if (j.contains("choices") && j["choices"].is_array()) {
      for (const Json& c : j["choices"]) {
        std::string text;
        if (c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content") &&
            c["delta"]["content"].is_string()) {
          text = c["delta"]["content"].get<std::string>();
        } else if (c.contains("text") && c["text"].is_string()) {
          text = c["text"].get<std::string>();
        }
        if (!text.empty()) {
          const double t = Since(start_);
          if (r_->ttft_s < 0) r_->ttft_s = t;
          r_->chunk_times_s.push_back(t);
          ++chunks_;
          content_ += text;
        }
      }
    }
    if (j.contains("usage") && j["usage"].is_object()) {
      const Json& u = j["usage"];
      if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number()) r_->prompt_tokens = u["prompt_tokens"].get<int64_t>();
      if (u.contains("completion_tokens") && u["completion_tokens"].is_number()) {
        r_->output_tokens = u["completion_tokens"].get<int64_t>();
      }
      if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object() &&
          u["prompt_tokens_details"].contains("cached_tokens") &&
          u["prompt_tokens_details"]["cached_tokens"].is_number()) {
        r_->cached_tokens = u["prompt_tokens_details"]["cached_tokens"].get<int64_t>();
      }
    }
    // llama-server reports counts in "timings" too.
    if (r_->output_tokens == 0 && j.contains("timings") && j["timings"].is_object() &&
        j["timings"].contains("predicted_n") && j["timings"]["predicted_n"].is_number()) {
      r_->output_tokens = j["timings"]["predicted_n"].get<int64_t>();
      if (j["timings"].contains("prompt_n") && j["timings"]["prompt_n"].is_number() && r_->prompt_tokens == 0) {
        r_->prompt_tokens = j["timings"]["prompt_n"].get<int64_t>();
      }
    }
  }

 private:
  RequestRecord* r_;
  Clock::time_point start_;
  std::string buffer_;
  bool done_ = false;
  int64_t chunks_ = 0;
  std::string content_;
  std::string raw_;
};

// One worker's connection, reopened when the server closes it.
class Client {
 public:
  explicit Client(const LoadConfig& c) : c_(c) {}

  // Runs one turn; returns the reply text (for the conversation's next turn).
  std::string Run(const Json& body, Clock::time_point run_start, RequestRecord* r) {
    const auto start = Clock::now();
    r->start_s = std::chrono::duration<double>(start - run_start).count();
    const std::string target = c_.path_prefix + (c_.chat ? "/v1/chat/completions" : "/v1/completions");
    const std::string payload = DumpBody(body);
    SseReader sse(r, start);
    Result<HttpClientResponse> response = UnavailableError("not sent");
    // A kept-alive connection the server closed while idle fails before any response byte:
    // the request never reached the server, so it goes once more on a new connection.
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!conn_ || !conn_->open()) {
        auto c = HttpConnection::Connect(c_.host, c_.port, std::chrono::seconds(30));
        if (!c.ok()) {
          r->error = c.status().message();
          r->e2e_s = Since(start);
          return "";
        }
        conn_ = std::move(c).value();
      }
      response = conn_->Request("POST", target, payload, Headers(c_), c_.request_timeout,
                                [&](std::string_view data) { return sse.Feed(data); });
      if (response.ok() || !conn_->StaleFailure()) break;
      conn_.reset();
    }
    r->e2e_s = Since(start);
    if (!response.ok()) {
      r->error = response.status().message();
      return "";
    }
    r->http_status = response->status;
    if (response->status != 200) {
      if (r->error.empty()) r->error = "HTTP " + std::to_string(response->status) + ": " + sse.raw();
      return "";
    }
    if (r->output_tokens == 0) r->output_tokens = sse.chunks();
    r->ok = r->error.empty() && sse.done() && r->output_tokens > 0;
    if (!r->ok && r->error.empty()) r->error = sse.done() ? "no tokens" : "stream ended without [DONE]";
    return sse.content();
  }

 private:
  static std::string DumpBody(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }
  const LoadConfig& c_;
  std::unique_ptr<HttpConnection> conn_;
};

Json RequestBody(const LoadConfig& c, const Session& s, const std::vector<std::string>& replies,
                 size_t turn) {
  Json body;
  body["model"] = c.model;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  body["max_tokens"] = s.turns[turn].max_tokens;
  body["temperature"] = c.temperature;
  if (c.top_p < 1) body["top_p"] = c.top_p;
  if (c.ignore_eos) body["ignore_eos"] = true;
  if (c.chat) {
    Json messages = Json::array();
    if (!s.system.empty()) messages.push_back({{"role", "system"}, {"content", s.system}});
    for (size_t t = 0; t <= turn; ++t) {
      messages.push_back({{"role", "user"}, {"content", s.turns[t].user}});
      if (t < turn) messages.push_back({{"role", "assistant"}, {"content", replies[t]}});
    }
    body["messages"] = std::move(messages);
  } else {
    std::string prompt = s.system.empty() ? "" : s.system + "\n\n";
    for (size_t t = 0; t <= turn; ++t) {
      prompt += "User: " + s.turns[t].user + "\nAssistant:";
      if (t < turn) prompt += " " + replies[t] + "\n";
    }
    body["prompt"] = std::move(prompt);
  }
  return body;
}

}  // namespace

Status LoadConfig::Validate() const {
  if (port < 1 || port > 65535) return InvalidArgumentError("bad port");
  if (request_rate < 0 || !std::isfinite(request_rate)) {
    return InvalidArgumentError("the request rate must be >= 0");
  }
  if (request_rate == 0 && concurrency < 1) {
    return InvalidArgumentError("give a concurrency >= 1 (closed loop) or a request rate > 0");
  }
  if (max_concurrency < 1) return InvalidArgumentError("max concurrency must be >= 1");
  if (!(temperature >= 0) || !std::isfinite(temperature)) {
    return InvalidArgumentError("the temperature must be >= 0");
  }
  if (!(top_p > 0 && top_p <= 1)) return InvalidArgumentError("top-p must be in (0, 1]");
  return Status::Ok();
}

Result<std::string> DiscoverModel(const LoadConfig& c) {
  TF_ASSIGN_OR_RETURN(auto conn, HttpConnection::Connect(c.host, c.port, std::chrono::seconds(10)));
  TF_ASSIGN_OR_RETURN(const HttpClientResponse r,
                      conn->Request("GET", c.path_prefix + "/v1/models", "", Headers(c),
                                    std::chrono::seconds(30)));
  if (r.status != 200) return UnavailableError("/v1/models answered HTTP " + std::to_string(r.status));
  const Json j = Json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
      !j["data"][0].contains("id") || !j["data"][0]["id"].is_string()) {
    return UnavailableError("/v1/models lists no model");
  }
  return j["data"][0]["id"].get<std::string>();
}

Result<LoadResult> RunLoad(const LoadConfig& config, const std::vector<Session>& sessions,
                           const std::function<void(const RequestRecord&)>& on_done) {
  TF_RETURN_IF_ERROR(config.Validate());
  LoadResult result;
  std::mutex mu;
  auto record_done = [&](RequestRecord&& r) {
    if (on_done) on_done(r);
    std::lock_guard<std::mutex> lock(mu);
    result.records.push_back(std::move(r));
  };
  const auto run_start = Clock::now();
  result.started_unix_s =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto run_session = [&](Client& client, int32_t index) {
    const Session& s = sessions[index];
    std::vector<std::string> replies;
    for (size_t t = 0; t < s.turns.size(); ++t) {
      RequestRecord r;
      r.session = index;
      r.turn = static_cast<int32_t>(t);
      replies.push_back(client.Run(RequestBody(config, s, replies, t), run_start, &r));
      const bool ok = r.ok;
      record_done(std::move(r));
      if (!ok) break;  // the conversation cannot go on without its reply
    }
  };

  std::unique_ptr<GpuPowerMonitor> gpu = GpuPowerMonitor::Open();
  double energy_before = 0;
  if (gpu) {
    for (const GpuPowerReading& r : gpu->Read()) energy_before += r.energy_joules;
  }
  if (config.request_rate == 0) {
    // Closed loop: each worker takes the next session as soon as its last one ends.
    std::atomic<int32_t> next{0};
    std::vector<std::thread> workers;
    const int32_t n = std::min<int32_t>(config.concurrency, static_cast<int32_t>(sessions.size()));
    for (int32_t w = 0; w < n; ++w) {
      workers.emplace_back([&] {
        Client client(config);
        for (int32_t i; (i = next.fetch_add(1)) < static_cast<int32_t>(sessions.size());) {
          run_session(client, i);
        }
      });
    }
    for (std::thread& t : workers) t.join();
  } else {
    // Open loop: Poisson arrivals; a session waits for a free slot when max_concurrency are busy.
    std::mutex slots_mu;
    std::condition_variable slots_cv;
    int32_t in_flight = 0;
    std::vector<std::thread> threads;
    double t = 0;
    for (int32_t i = 0; i < static_cast<int32_t>(sessions.size()); ++i) {
      const double u = std::max(UniformDouble(config.seed, 77, i), 1e-12);
      t += -std::log(u) / config.request_rate;
      std::this_thread::sleep_until(run_start + std::chrono::duration_cast<Clock::duration>(
                                                    std::chrono::duration<double>(t)));
      {
        std::unique_lock<std::mutex> lock(slots_mu);
        while (in_flight >= config.max_concurrency) {
          slots_cv.wait_for(lock, std::chrono::milliseconds(100));
        }
        ++in_flight;
      }
      threads.emplace_back([&, i] {
        Client client(config);
        run_session(client, i);
        std::lock_guard<std::mutex> lock(slots_mu);
        --in_flight;
        slots_cv.notify_one();
      });
    }
    for (std::thread& th : threads) th.join();
  }
  result.duration_s = Since(run_start);
  if (gpu) {
    double energy_after = 0;
    for (const GpuPowerReading& r : gpu->Read()) energy_after += r.energy_joules;
    result.energy_joules = energy_after - energy_before;
  }
  std::sort(result.records.begin(), result.records.end(), [](const RequestRecord& a, const RequestRecord& b) {
    return a.start_s < b.start_s;
  });
  return result;
}

}  // namespace tokenfab
