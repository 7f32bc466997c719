// tokenfab: one binary, subcommands. Errors are one line on stderr:
//   tokenfab: error: <what went wrong, naming the file / tensor / field>
// with exit code 1 (2 for a malformed command line).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend/backend_registry.h"
#include "base/logging.h"
#include "cli/command.h"

namespace tokenfab {
namespace {

constexpr const char* kVersion = "0.1.0";

std::vector<Command> AllCommands() {
  return {ServeCommand(),    BenchCommand(),      ScoreCommand(), GenerateCommand(),
          BenchEngineCommand(), TokenizeCommand(), DetokenizeCommand(), ChatCommand()};
}

void PrintUsage(const std::vector<Command>& commands) {
  std::string text = "usage: tokenfab <command> [flags]\n\ncommands:\n";
  for (const Command& c : commands) {
    std::string name = "  " + c.name;
    name.resize(16, ' ');
    text += name + c.summary + "\n";
  }
  text += "\n`tokenfab <command> --help` lists a command's flags.\n";
  std::fputs(text.c_str(), stdout);
}

Status ApplyLogLevel(const Flags& flags) {
  if (!flags.Has("log-level")) return Status::Ok();
  const std::string level = flags.GetString("log-level");
  if (level == "debug") SetLogLevel(LogLevel::kDebug);
  else if (level == "info") SetLogLevel(LogLevel::kInfo);
  else if (level == "warning") SetLogLevel(LogLevel::kWarning);
  else if (level == "error") SetLogLevel(LogLevel::kError);
  else return InvalidArgumentError("--log-level must be debug, info, warning or error");
  return Status::Ok();
}

int Main(int argc, char** argv) {
  RegisterBuiltinBackends();
  const std::vector<Command> commands = AllCommands();
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    PrintUsage(commands);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "version")) {
    std::printf("tokenfab %s\n", kVersion);
    return 0;
  }
  const std::string name = argv[1];
  for (const Command& command : commands) {
    if (command.name != name) continue;
    std::vector<std::string> args(argv + 2, argv + argc);
    if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
      std::printf("usage: tokenfab %s [flags]\n%s\n\nflags:\n%s", name.c_str(),
                  command.summary.c_str(), FlagsHelp(command.flags).c_str());
      return 0;
    }
    auto flags = Flags::Parse(args, command.flags);
    if (!flags.ok()) {
      std::fprintf(stderr, "tokenfab %s: error: %s (see --help)\n", name.c_str(),
                   flags.status().message().c_str());
      return 2;
    }
    if (Status s = ApplyLogLevel(*flags); !s.ok()) {
      std::fprintf(stderr, "tokenfab %s: error: %s\n", name.c_str(), s.message().c_str());
      return 2;
    }
    const Status status = command.run(*flags);
    if (!status.ok()) {
      std::fprintf(stderr, "tokenfab %s: error: %s\n", name.c_str(), status.message().c_str());
      return 1;
    }
    return 0;
  }
  std::fprintf(stderr, "tokenfab: error: unknown command '%s' (try --help)\n", name.c_str());
  return 2;
}

}  // namespace
}  // namespace tokenfab

int main(int argc, char** argv) { return tokenfab::Main(argc, argv); }
