#include "test_util.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace tokenfab::testing {

std::string TestDataPath(const std::string& relative) {
  return std::string(TOKENFAB_TEST_DATA_DIR) + "/" + relative;
}

std::string MakeTempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string root = base ? base : "/tmp";
  std::string templ = root + "/tokenfab_" + name + "_XXXXXX";
  char* made = mkdtemp(templ.data());
  EXPECT_NE(made, nullptr) << "mkdtemp " << templ;
  return templ;
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream f(path, std::ios::binary);
  f << contents;
  ASSERT_TRUE(f.good()) << "cannot write " << path;
}

static std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

CommandResult RunTokenfab(const std::string& args) {
  const std::string dir = MakeTempDir("cli");
  const std::string out = dir + "/out", err = dir + "/err";
  const std::string cmd = std::string(TOKENFAB_BINARY_PATH) + " " + args + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out);
  r.err = Slurp(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  rmdir(dir.c_str());
  return r;
}

}  // namespace tokenfab::testing
