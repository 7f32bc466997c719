// ServerProcess: `tokenfab serve` started as a child process on an ephemeral port for the
// end-to-end tests, on a test model directory made from a golden checkpoint's config (vocab
// widened to the real Qwen3 tokenizer, dummy weights) plus that tokenizer's files. Every wait
// is bounded; the destructor stops the server (SIGTERM, then SIGKILL after a deadline).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "bench/http_client.h"

namespace tokenfab::testing {

// A temp directory with config.json, tokenizer.json and tokenizer_config.json. Empty string
// (and a test failure) if the tokenizer files are missing (scripts/setup.sh fetches them).
std::string MakeServedModelDir();

class ServerProcess {
 public:
  // Starts `tokenfab serve --model dir --dummy-weights --port 0 ... extra_flags` and waits
  // (up to `startup`) until it listens.
  ServerProcess(const std::string& model_dir, const std::vector<std::string>& extra_flags,
                std::chrono::seconds startup = std::chrono::seconds(120));
  ~ServerProcess();

  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  std::string log() const;  // the server's stderr so far
  // Sends SIGTERM and waits for the exit; returns the exit code (-1 on timeout or signal).
  int Terminate(std::chrono::seconds timeout = std::chrono::seconds(60));

  std::unique_ptr<HttpConnection> Connect() const;
  // One request on a fresh connection (30 s deadline).
  Result<HttpClientResponse> Request(const std::string& method, const std::string& target,
                                     const std::string& body = "",
                                     const std::string& api_key = "") const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
};

}  // namespace tokenfab::testing
