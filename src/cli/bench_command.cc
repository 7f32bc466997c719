// `tokenfab bench`: the load generator (src/bench/load_generator.h) against any
// OpenAI-compatible endpoint, over a sweep of concurrencies or request rates, writing JSON
// and a self-contained HTML report. `--merge a.json,b.json` combines earlier runs (e.g.
// tokenfab and llama-server) into one report without sending any request.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>
#include <sstream>

#include "base/logging.h"
#include "base/progress.h"
#include "base/strings.h"
#include "bench/bench_report.h"
#include "bench/html_report.h"
#include "bench/http_client.h"
#include "bench/load_generator.h"
#include "bench/rate_search.h"
#include "bench/workload.h"
#include "cli/command.h"

namespace tokenfab {
namespace {

Result<std::vector<double>> ParseDoubleList(const std::string& text, const std::string& what) {
  std::vector<double> out;
  for (std::string_view part : SplitString(text, ',')) {
    part = TrimWhitespace(part);
    if (part.empty()) continue;
    TF_ASSIGN_OR_RETURN(const double v, ParseDouble(part, what));
    out.push_back(v);
  }
  if (out.empty()) return InvalidArgumentError(what + " needs at least one value");
  return out;
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) return InternalError("cannot write " + path);
  return Status::Ok();
}

Status WriteOutputs(const Flags& flags, const std::string& title, const Json& config,
                    const std::vector<RunSummary>& runs) {
  if (flags.Has("output-json")) {
    Json j;
    j["title"] = title;
    j["config"] = config;
    j["runs"] = Json::array();
    for (const RunSummary& r : runs) j["runs"].push_back(SummaryToJson(r, /*with_samples=*/true));
    TF_RETURN_IF_ERROR(WriteText(flags.GetString("output-json"),
                                 j.dump(1, ' ', false, Json::error_handler_t::replace) + "\n"));
  }
  if (flags.Has("output-html")) {
    TF_RETURN_IF_ERROR(WriteText(flags.GetString("output-html"), HtmlReport(title, runs)));
  }
  return Status::Ok();
}

Status Merge(const Flags& flags) {
  std::vector<RunSummary> runs;
  Json configs = Json::array();
  std::string title = flags.GetString("title", "tokenfab bench");
  const std::string files = flags.GetString("merge");
  for (std::string_view path : SplitString(files, ',')) {
    path = TrimWhitespace(path);
    if (path.empty()) continue;
    std::ifstream f{std::string(path)};
    if (!f) return NotFoundError("cannot open " + std::string(path));
    std::stringstream text;
    text << f.rdbuf();
    TF_ASSIGN_OR_RETURN(const Json j, ParseJson(text.str(), path));
    if (!j.is_object() || !j.contains("runs") || !j["runs"].is_array()) {
      return InvalidArgumentError(std::string(path) + ": not a tokenfab bench JSON file");
    }
    if (j.contains("config")) configs.push_back(j["config"]);
    for (const Json& r : j["runs"]) {
      TF_ASSIGN_OR_RETURN(RunSummary s, SummaryFromJson(r));
      runs.push_back(std::move(s));
    }
  }
  return WriteOutputs(flags, title, Json{{"merged", configs}}, runs);
}

Status RunBench(const Flags& flags) {
  if (flags.Has("merge")) return Merge(flags);
  LoadConfig load;
  TF_ASSIGN_OR_RETURN(const HttpUrl url, ParseHttpUrl(flags.GetString("url", "http://127.0.0.1:8000")));
  load.host = url.host;
  load.port = url.port;
  load.path_prefix = url.path.size() >= 3 && url.path.substr(url.path.size() - 3) == "/v1"
                         ? url.path.substr(0, url.path.size() - 3)
                         : url.path;
  load.api_key = flags.GetString("api-key");
  const std::string endpoint = flags.GetString("endpoint", "chat");
  if (endpoint != "chat" && endpoint != "completions") {
    return InvalidArgumentError("--endpoint must be chat or completions");
  }
  load.chat = endpoint == "chat";
  load.ignore_eos = !flags.Has("no-ignore-eos");
  TF_ASSIGN_OR_RETURN(load.temperature, flags.GetDouble("temperature", 0));
  TF_ASSIGN_OR_RETURN(load.top_p, flags.GetDouble("top-p", 1));
  TF_ASSIGN_OR_RETURN(const int64_t max_concurrency, flags.GetInt("max-concurrency", 1024));
  load.max_concurrency = static_cast<int32_t>(std::clamp<int64_t>(max_concurrency, 1, 1 << 20));
  TF_ASSIGN_OR_RETURN(const double timeout, flags.GetDouble("timeout", 600));
  load.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000));
  TF_ASSIGN_OR_RETURN(const int64_t seed, flags.GetInt("seed", 0));
  load.seed = static_cast<uint64_t>(seed);
  if (flags.Has("model")) {
    load.model = flags.GetString("model");
  } else {
    TF_ASSIGN_OR_RETURN(load.model, DiscoverModel(load));
  }

  WorkloadConfig w;
  TF_ASSIGN_OR_RETURN(w.kind, ParseWorkloadKind(flags.GetString("workload", "fixed")));
  auto get_int = [&](const char* name, int64_t fallback, int32_t* out) -> Status {
    TF_ASSIGN_OR_RETURN(const int64_t v, flags.GetInt(name, fallback));
    if (v < 0 || v > (1 << 30)) return InvalidArgumentError(std::string("--") + name + " is out of range");
    *out = static_cast<int32_t>(v);
    return Status::Ok();
  };
  TF_RETURN_IF_ERROR(get_int("num-requests", 200, &w.num_sessions));
  TF_RETURN_IF_ERROR(get_int("input-len", 512, &w.input_len));
  TF_RETURN_IF_ERROR(get_int("output-len", 128, &w.output_len));
  TF_RETURN_IF_ERROR(get_int("system-prompt-len", 1000, &w.system_prompt_len));
  TF_RETURN_IF_ERROR(get_int("turns", 4, &w.turns));
  TF_RETURN_IF_ERROR(get_int("turn-input-len", 100, &w.turn_input_len));
  TF_RETURN_IF_ERROR(get_int("documents", 4, &w.num_documents));
  TF_RETURN_IF_ERROR(get_int("document-len", 8000, &w.document_len));
  w.seed = load.seed;
  TF_RETURN_IF_ERROR(w.Validate());
  int32_t warmup = 0;
  TF_RETURN_IF_ERROR(get_int("warmup", 0, &warmup));

  SloConfig slo;
  TF_ASSIGN_OR_RETURN(slo.ttft_s, flags.GetDouble("slo-ttft", 2.0));
  TF_ASSIGN_OR_RETURN(slo.tpot_s, flags.GetDouble("slo-tpot", 0.1));

  const bool find_max_rate = flags.Has("find-max-rate");
  RateSearchConfig search;
  double trial_seconds = 0;
  if (find_max_rate) {
    if (flags.Has("request-rate") || flags.Has("concurrency")) {
      return InvalidArgumentError("--find-max-rate picks its own rates: drop --request-rate and "
                                  "--concurrency");
    }
    TF_ASSIGN_OR_RETURN(search.start_rate, flags.GetDouble("find-max-rate", 4));
    TF_ASSIGN_OR_RETURN(search.max_rate, flags.GetDouble("max-rate", 1024));
    TF_ASSIGN_OR_RETURN(search.precision, flags.GetDouble("rate-precision", 0.1));
    search.min_rate = std::min(search.start_rate, search.start_rate / 64);
    TF_RETURN_IF_ERROR(search.Validate());
    TF_ASSIGN_OR_RETURN(trial_seconds, flags.GetDouble("trial-seconds", 30));
    if (!(trial_seconds > 0)) return InvalidArgumentError("--trial-seconds must be > 0");
  }
  std::vector<double> rates, concurrencies;
  if (find_max_rate) {
    // Rates come from the search below.
  } else if (flags.Has("request-rate")) {
    TF_ASSIGN_OR_RETURN(rates, ParseDoubleList(flags.GetString("request-rate"), "--request-rate"));
    for (double r : rates) {
      if (!(r > 0)) return InvalidArgumentError("--request-rate values must be > 0");
    }
  } else {
    TF_ASSIGN_OR_RETURN(concurrencies, ParseDoubleList(flags.GetString("concurrency", "1"), "--concurrency"));
    for (double c : concurrencies) {
      if (!(c >= 1 && c <= 100000)) return InvalidArgumentError("--concurrency values must be in [1, 100000]");
    }
  }
  const std::string name = flags.GetString("label", load.host + ":" + std::to_string(load.port));
  // Every run point (a rate-search trial, each concurrency, each rate) takes sessions the
  // server has not seen: repeated prompts would be served from its prefix cache, and a
  // trial or sweep point after the first would measure cache hits instead of prefills.
  int64_t next_session = 0;
  size_t total_turns = 0;
  auto fresh_sessions = [&](int32_t n) {
    WorkloadConfig wc = w;
    wc.first_session = next_session;
    wc.num_sessions = n;
    next_session += n;
    std::vector<Session> sessions = MakeWorkload(wc);
    for (const Session& s : sessions) total_turns += s.turns.size();
    return sessions;
  };

  if (warmup > 0) {
    WorkloadConfig wc = w;
    wc.num_sessions = warmup;
    wc.seed = w.seed + 1000003;
    LoadConfig lc = load;
    lc.concurrency = std::min<int32_t>(warmup, 16);
    lc.request_rate = 0;
    TF_ASSIGN_OR_RETURN(const LoadResult warm, RunLoad(lc, MakeWorkload(wc)));
    LOG(INFO) << "warmup: " << warm.records.size() << " requests in " << warm.duration_s << " s";
  }

  std::vector<RunSummary> runs;
  // One run of `subset` at a concurrency (rate 0) or a Poisson rate, summarised into `runs`.
  auto run_point = [&](int32_t concurrency, double rate,
                       const std::vector<Session>& subset) -> Result<const RunSummary*> {
    LoadConfig lc = load;
    std::string point;
    if (rate == 0) {
      lc.concurrency = concurrency;
      point = "c=" + std::to_string(lc.concurrency);
    } else {
      lc.request_rate = rate;
      char text[32];
      std::snprintf(text, sizeof(text), "rate=%.3g", rate);
      point = text;
    }
    size_t turns = 0;
    for (const Session& s : subset) turns += s.turns.size();
    std::mutex progress_mu;
    ProgressBar progress(name + " @ " + point, static_cast<int64_t>(turns));
    int64_t done = 0, failed = 0;
    TF_ASSIGN_OR_RETURN(const LoadResult result, RunLoad(lc, subset, [&](const RequestRecord& r) {
      std::lock_guard<std::mutex> lock(progress_mu);
      ++done;
      failed += !r.ok;
      progress.Update(done, failed > 0 ? std::to_string(failed) + " failed" : "");
    }));
    progress.Done();
    RunSummary s = Summarize(result, slo);
    s.label = name + " @ " + point;
    s.concurrency = lc.concurrency;
    s.request_rate = lc.request_rate;
    PrintJson(SummaryToJson(s, /*with_samples=*/false));
    runs.push_back(std::move(s));
    return &runs.back();
  };
  RateSearchResult found;
  if (find_max_rate) {
    // Each trial offers about trial_seconds of arrivals (50 sessions at least, --num-requests at
    // most) and passes when every request completed with p99 TTFT and TPOT within the limits.
    TF_ASSIGN_OR_RETURN(found, FindMaxRate(search, [&](double rate) -> Result<bool> {
      const size_t max_n = static_cast<size_t>(w.num_sessions);
      const size_t n = std::clamp<size_t>(static_cast<size_t>(std::ceil(rate * trial_seconds)),
                                          std::min<size_t>(50, max_n), max_n);
      TF_ASSIGN_OR_RETURN(const RunSummary* s,
                          run_point(0, rate, fresh_sessions(static_cast<int32_t>(n))));
      return s->slo_met && s->failed == 0;
    }));
    Json line = {{"max_rate_meeting_slo", found.max_rate}, {"capped", found.capped}};
    PrintJson(line);
  }
  for (double c : concurrencies) {
    TF_RETURN_IF_ERROR(
        run_point(static_cast<int32_t>(c), 0, fresh_sessions(w.num_sessions)).status());
  }
  for (double r : rates) {
    TF_RETURN_IF_ERROR(run_point(0, r, fresh_sessions(w.num_sessions)).status());
  }
  Json config = {{"url", flags.GetString("url", "http://127.0.0.1:8000")},
                 {"model", load.model},
                 {"endpoint", endpoint},
                 {"workload", WorkloadKindName(w.kind)},
                 {"num_sessions", w.num_sessions},
                 {"requests", total_turns},  // over every run point
                 {"input_len", w.input_len},
                 {"output_len", w.output_len},
                 {"system_prompt_len", w.system_prompt_len},
                 {"turns", w.turns},
                 {"turn_input_len", w.turn_input_len},
                 {"documents", w.num_documents},
                 {"document_len", w.document_len},
                 {"seed", w.seed},
                 {"ignore_eos", load.ignore_eos}};
  std::string title = flags.GetString(
      "title", "tokenfab bench: " + WorkloadKindName(w.kind) + " workload, " + load.model);
  if (find_max_rate) {
    Json trials = Json::array();
    for (const RateTrial& t : found.trials) {
      trials.push_back({{"rate", t.rate}, {"passed", t.passed}});
    }
    config["rate_search"] = {{"max_rate_meeting_slo", found.max_rate},
                             {"capped", found.capped},
                             {"precision", search.precision},
                             {"trial_seconds", trial_seconds},
                             {"slo_ttft_s", slo.ttft_s},
                             {"slo_tpot_s", slo.tpot_s},
                             {"trials", trials}};
    char text[96];
    std::snprintf(text, sizeof(text), " (highest rate meeting the SLO: %s%.3g req/s)",
                  found.capped ? ">= " : "", found.max_rate);
    title += text;
  }
  return WriteOutputs(flags, title, config, runs);
}

}  // namespace

Command BenchCommand() {
  Command c;
  c.name = "bench";
  c.summary = "load generator for OpenAI-compatible servers: latency, throughput, goodput, HTML report";
  c.flags = {
      {"url", true, "server base URL (default http://127.0.0.1:8000; a trailing /v1 is fine)"},
      {"model", true, "model name to send (default: the first of /v1/models)"},
      {"api-key", true, "bearer API key"},
      {"endpoint", true, "chat (default: /v1/chat/completions) or completions"},
      {"workload", true, "fixed (default), chat, multi-turn or long-context"},
      {"num-requests", true, "sessions per run point, each point new ones (default 200; multi-turn sessions have --turns requests)"},
      {"input-len", true, "fixed: prompt words (~tokens); chat: median (default 512)"},
      {"output-len", true, "fixed: output tokens; chat, multi-turn: median (default 128)"},
      {"system-prompt-len", true, "multi-turn: words of the shared system prompt (default 1000)"},
      {"turns", true, "multi-turn / long-context: turns per session (default 4)"},
      {"turn-input-len", true, "multi-turn: median words per user turn; long-context: words (default 100)"},
      {"documents", true, "long-context: distinct documents (default 4)"},
      {"document-len", true, "long-context: words per document (default 8000)"},
      {"concurrency", true, "closed loop: sessions in flight; a list sweeps (default 1)"},
      {"request-rate", true, "open loop: Poisson arrivals per second; a list sweeps"},
      {"find-max-rate", true, "search the highest Poisson rate meeting the SLO, from this start"},
      {"max-rate", true, "--find-max-rate: the highest rate tried (default 1024)"},
      {"rate-precision", true, "--find-max-rate: relative precision of the answer (default 0.1)"},
      {"trial-seconds", true, "--find-max-rate: seconds of arrivals per trial (default 30)"},
      {"max-concurrency", true, "open loop: sessions in flight at most (default 1024)"},
      {"temperature", true, "sampling temperature sent (default 0)"},
      {"top-p", true, "nucleus sampling top_p sent (default 1: not sent)"},
      {"no-ignore-eos", false, "let the model stop early (default: ignore_eos, exact lengths)"},
      {"seed", true, "workload and arrival seed (default 0)"},
      {"warmup", true, "sessions to run first, unmeasured (default 0)"},
      {"slo-ttft", true, "goodput TTFT limit in seconds (default 2, MLPerf Llama-3.1-8B server)"},
      {"slo-tpot", true, "goodput TPOT limit in seconds (default 0.1)"},
      {"timeout", true, "seconds per request at most (default 600)"},
      {"label", true, "name of this server in the report (default host:port)"},
      {"title", true, "report title"},
      {"output-json", true, "write the runs (with samples) as JSON"},
      {"output-html", true, "write the self-contained HTML report"},
      {"merge", true, "comma-separated bench JSON files to combine into one report (no load)"},
      {"log-level", true, "debug, info (default), warning, error"},
  };
  c.run = RunBench;
  return c;
}

}  // namespace tokenfab
