// `tokenfab serve`: the OpenAI-compatible HTTP server over one engine (server/, engine/).
// Ctrl-C or SIGTERM drains: the listener closes, new requests get 503, requests in flight
// finish (or are cancelled at --drain-timeout), then the process exits 0.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "base/logging.h"
#include "base/strings.h"
#include "cli/command.h"
#include "engine/async_engine.h"
#include "engine/warm_up.h"
#include "server/http_server.h"
#include "server/openai_service.h"
#include "server/server_metrics.h"

namespace tokenfab {
namespace {

std::string BaseName(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Status RunServe(const Flags& flags) {
  // Signals are taken by this thread alone (sigtimedwait below): block them before any thread
  // starts (the backend's pool, the engine, HTTP) so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  TF_ASSIGN_OR_RETURN(EngineConfig engine_config, EngineConfigFromFlags(flags));
  TF_ASSIGN_OR_RETURN(const int64_t max_seqs, flags.GetInt("max-seqs", 256));
  if (max_seqs < 1 || max_seqs > 65536) return InvalidArgumentError("--max-seqs must be in [1, 65536]");
  engine_config.max_seqs = static_cast<int32_t>(max_seqs);
  engine_config.enable_prefix_caching = !flags.Has("no-prefix-caching");
  const std::string model_name = flags.GetString("served-model-name", BaseName(engine_config.model_dir));
  engine_config.model_id = model_name;
  if (flags.Has("kv-hash-key")) {
    TF_ASSIGN_OR_RETURN(engine_config.block_hash_key, BlockHasher::ParseKey(flags.GetString("kv-hash-key")));
  }

  AdmissionConfig admission;
  TF_ASSIGN_OR_RETURN(const int64_t max_waiting, flags.GetInt("max-waiting", 4096));
  if (max_waiting < 1) return InvalidArgumentError("--max-waiting must be >= 1");
  admission.max_waiting = static_cast<int32_t>(std::min<int64_t>(max_waiting, 1 << 30));
  TF_ASSIGN_OR_RETURN(admission.max_queue_ttft_s, flags.GetDouble("max-queue-ttft", 0));
  if (admission.max_queue_ttft_s < 0) return InvalidArgumentError("--max-queue-ttft must be >= 0");

  HttpServerConfig http;
  http.host = flags.GetString("host", "127.0.0.1");
  TF_ASSIGN_OR_RETURN(const int64_t port, flags.GetInt("port", 8000));
  TF_ASSIGN_OR_RETURN(const int64_t threads, flags.GetInt("http-threads", 4));
  TF_ASSIGN_OR_RETURN(const double body_mb, flags.GetDouble("max-body-mb", 8));
  TF_ASSIGN_OR_RETURN(const double request_timeout, flags.GetDouble("request-timeout", 30));
  TF_ASSIGN_OR_RETURN(const double drain_timeout, flags.GetDouble("drain-timeout", 30));
  TF_ASSIGN_OR_RETURN(const int64_t max_connections, flags.GetInt("max-connections", 4096));
  if (port < 0 || port > 65535) return InvalidArgumentError("--port must be in [0, 65535]");
  if (!(body_mb > 0 && body_mb < 4096)) return InvalidArgumentError("--max-body-mb must be in (0, 4096)");
  if (!(request_timeout > 0) || !(drain_timeout >= 0)) {
    return InvalidArgumentError("--request-timeout must be > 0 and --drain-timeout >= 0");
  }
  http.port = static_cast<int>(port);
  http.num_threads = static_cast<int>(std::clamp<int64_t>(threads, 1, 256));
  http.max_body_bytes = static_cast<size_t>(body_mb * (1 << 20));
  http.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(request_timeout * 1000));
  http.max_connections = static_cast<int>(std::clamp<int64_t>(max_connections, 1, 1 << 20));
  TF_RETURN_IF_ERROR(http.Validate());

  OpenAiServiceConfig service_config;
  service_config.model_name = model_name;
  std::string keys = flags.GetString("api-key");
  if (keys.empty() && std::getenv("TOKENFAB_API_KEY") != nullptr) keys = std::getenv("TOKENFAB_API_KEY");
  for (std::string_view k : SplitString(keys, ',')) {
    k = TrimWhitespace(k);
    if (!k.empty()) service_config.api_keys.emplace_back(k);
  }
  TF_ASSIGN_OR_RETURN(service_config.default_chat_template_kwargs, ChatTemplateKwargs(flags));

  // The text side: tokenizer and chat template from --tokenizer or the model directory.
  const std::string tokenizer_dir = flags.GetString("tokenizer", engine_config.model_dir);
  auto text_model = LoadTextModel(tokenizer_dir);
  if (!text_model.ok()) {
    return text_model.status().WithContext(
        "serve needs tokenizer.json (and tokenizer_config.json for chat) in the model directory "
        "or in --tokenizer DIR");
  }
  ServedText text;
  text.stop_token_ids = text_model->StopTokenIds();
  text.tokenizer = std::move(text_model->tokenizer);
  text.config = std::move(text_model->config);

  TF_ASSIGN_OR_RETURN(auto engine, Engine::Create(engine_config));
  LOG(INFO) << "model " << model_name << ": " << engine->block_pool().num_blocks() << " KV blocks of "
            << engine_config.block_size << " tokens, up to " << engine->max_sequence_tokens()
            << " tokens per sequence, prefix caching "
            << (engine_config.enable_prefix_caching ? "on" : "off");
  if (!flags.Has("no-warmup")) {
    TF_ASSIGN_OR_RETURN(const WarmUpReport warm, WarmUp(*engine));
    if (warm.passes + warm.skipped > 0) {
      LOG(INFO) << "warmed up " << warm.passes
                << " batch shapes (GEMM row buckets, decode graphs) in " << warm.seconds << " s"
                << (warm.skipped > 0
                        ? "; " + std::to_string(warm.skipped) + " did not fit the KV cache"
                        : std::string());
    }
  }
  std::unique_ptr<StepLog> step_log;
  if (flags.Has("step-log")) {
    TF_ASSIGN_OR_RETURN(step_log, StepLog::Open(flags.GetString("step-log")));
  }
  AsyncEngine async_engine(std::move(engine), admission, std::move(step_log));
  ServerMetrics metrics(GpuPowerMonitor::Open());
  OpenAiService service(service_config, &async_engine, std::move(text), &metrics);

  if (flags.Has("pin-system-prompt")) {
    TF_ASSIGN_OR_RETURN(std::vector<int32_t> tokens,
                        service.SystemPromptTokens(flags.GetString("pin-system-prompt")));
    EngineRequest pin;
    pin.prompt = std::move(tokens);
    pin.sampling.temperature = 0;
    pin.stop.max_tokens = 1;
    pin.stop.ignore_eos = true;
    pin.pin_prefix = true;
    TF_RETURN_IF_ERROR(async_engine.Submit(std::move(pin), [](RequestOutput&&) {}).status());
  }

  TF_ASSIGN_OR_RETURN(auto server,
                      HttpServer::Start(http, [&service](const HttpRequest& r, std::shared_ptr<HttpExchange> e) {
                        service.Handle(r, std::move(e));
                      }));
  metrics.SetConnectionCounter([s = server.get()] { return s->num_connections(); });
  LOG(INFO) << "listening on http://" << http.host << ":" << server->port() << " (model "
            << model_name << (service_config.api_keys.empty() ? "" : ", API keys required") << ")";
  if (flags.Has("port-file")) {
    const std::string path = flags.GetString("port-file");
    {
      std::ofstream f(path + ".tmp");
      f << server->port() << "\n";
      if (!f) return InternalError("cannot write " + path);
    }
    std::rename((path + ".tmp").c_str(), path.c_str());  // readers never see half a file
  }

  // Wait for a signal, a second at a time.
  int signal_number = 0;
  while (signal_number <= 0) {
    const timespec second{1, 0};
    signal_number = sigtimedwait(&signals, nullptr, &second);
  }
  LOG(INFO) << "received " << (signal_number == SIGINT ? "SIGINT" : "SIGTERM")
            << ": draining (up to " << drain_timeout << " s)";
  server->StopAccepting();
  const bool drained = async_engine.Drain(
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(drain_timeout * 1000)));
  // Let the last responses leave before closing the connections.
  const auto flush_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (server->num_connections() > 0 && std::chrono::steady_clock::now() < flush_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server->Stop();
  LOG(INFO) << (drained ? "drained; exiting" : "drain timed out; cancelled the rest; exiting");
  return Status::Ok();
}

}  // namespace

Command ServeCommand() {
  Command c;
  c.name = "serve";
  c.summary = "OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, /metrics)";
  c.flags = EngineFlagSpecs();
  const std::vector<FlagSpec> own = {
      {"host", true, "address to listen on (default 127.0.0.1; 0.0.0.0 for all)"},
      {"port", true, "TCP port (default 8000; 0 picks a free one, see --port-file)"},
      {"port-file", true, "write the bound port to this file once listening"},
      {"served-model-name", true, "the model's name in the API (default: the model directory's name)"},
      {"tokenizer", true, "directory with tokenizer.json / tokenizer_config.json (default: --model)"},
      {"api-key", true, "require 'Authorization: Bearer KEY'; comma-separated keys are separate "
                        "tenants (also TOKENFAB_API_KEY)"},
      {"max-seqs", true, "sequences running at once (default 256)"},
      {"max-waiting", true, "queued requests before 429 (default 4096)"},
      {"max-queue-ttft", true, "reject (429) when the estimated time to first token exceeds this "
                               "many seconds (default 0 = off)"},
      {"no-prefix-caching", false, "do not reuse the KV of shared prompt prefixes"},
      {"kv-hash-key", true, "32 hex digits: the secret key of KV block hashes (default: random)"},
      {"no-warmup", false, "serve at once: skip the forward passes that meet first-use costs "
                           "(GEMM tuning, graph capture) before the first request"},
      {"step-log", true, "write one JSON line per engine step to this file (its batch, its time)"},
      {"pin-system-prompt", true, "compute this system prompt's KV at start and never evict it"},
      {"chat-template-kwargs", true, "default extra chat template variables (JSON object)"},
      {"http-threads", true, "HTTP I/O threads (default 4)"},
      {"max-body-mb", true, "largest request body in MiB (default 8; larger gets 413)"},
      {"request-timeout", true, "seconds a client has to send a whole request (default 30)"},
      {"max-connections", true, "open connections at most (default 4096)"},
      {"drain-timeout", true, "seconds to let requests finish on SIGINT/SIGTERM (default 30)"},
  };
  c.flags.insert(c.flags.end(), own.begin(), own.end());
  c.run = RunServe;
  return c;
}

}  // namespace tokenfab
