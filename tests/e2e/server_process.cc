#include "server_process.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "base/json.h"
#include "test_util.h"

namespace tokenfab::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

std::string MakeServedModelDir() {
  const std::string tokenizer = std::string(TOKENFAB_SOURCE_DIR) + "/assets/tokenizers/qwen3";
  struct stat st;
  if (stat((tokenizer + "/tokenizer.json").c_str(), &st) != 0) {
    ADD_FAILURE() << "missing " << tokenizer << "/tokenizer.json: run scripts/setup.sh";
    return "";
  }
  const std::string dir = MakeTempDir("served_model");
  auto config = ParseJson(Slurp(TestDataPath("models/qwen3_qknorm_headdim24_classic/config.json")),
                          "config.json");
  EXPECT_TRUE(config.ok());
  if (!config.ok()) return "";
  Json c = *config;
  c["vocab_size"] = 151669;  // the tokenizer's: 151643 + 26 added tokens
  c["eos_token_id"] = 151645;  // <|im_end|>
  c["bos_token_id"] = 151643;
  c["max_position_embeddings"] = 2048;
  c["tie_word_embeddings"] = true;
  WriteFile(dir + "/config.json", c.dump());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_EQ(symlink((tokenizer + "/" + f).c_str(), (dir + "/" + f).c_str()), 0);
  }
  return dir;
}

ServerProcess::ServerProcess(const std::string& model_dir, const std::vector<std::string>& flags,
                             std::chrono::seconds startup) {
  dir_ = MakeTempDir("server");
  const std::string port_file = dir_ + "/port";
  std::vector<std::string> args = {TOKENFAB_BINARY, "serve", "--model", model_dir,
                                   "--dummy-weights", "--port", "0", "--port-file", port_file,
                                   "--threads", "2"};
  args.insert(args.end(), flags.begin(), flags.end());
  const std::string err = dir_ + "/stderr";
  pid_ = fork();
  if (pid_ == 0) {
    // In the child: nothing to report to if the redirection fails but the exit code.
    if (freopen(err.c_str(), "w", stderr) == nullptr) _exit(126);
    if (freopen("/dev/null", "w", stdout) == nullptr) _exit(126);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + startup;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = Slurp(port_file);
    if (!text.empty()) {
      port_ = std::atoi(text.c_str());
      break;
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ADD_FAILURE() << "tokenfab serve exited at startup:\n" << log();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (port_ <= 0) ADD_FAILURE() << "tokenfab serve did not start listening:\n" << log();
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Terminate(std::chrono::seconds(30));
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string ServerProcess::log() const { return Slurp(dir_ + "/stderr"); }

int ServerProcess::Terminate(std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      if (WIFSIGNALED(status)) {
        ADD_FAILURE() << "tokenfab serve died of signal " << WTERMSIG(status) << ":\n" << log();
      }
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::unique_ptr<HttpConnection> ServerProcess::Connect() const {
  auto c = HttpConnection::Connect("127.0.0.1", port_, std::chrono::seconds(10));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

Result<HttpClientResponse> ServerProcess::Request(const std::string& method,
                                                  const std::string& target,
                                                  const std::string& body,
                                                  const std::string& api_key) const {
  TF_ASSIGN_OR_RETURN(auto c, HttpConnection::Connect("127.0.0.1", port_, std::chrono::seconds(10)));
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/json"}};
  if (!api_key.empty()) headers.push_back({"Authorization", "Bearer " + api_key});
  return c->Request(method, target, body, headers, std::chrono::seconds(30));
}

}  // namespace tokenfab::testing
