#include "checkpoint_files.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "model/safetensors.h"
#include "test_util.h"

namespace tokenfab::testing {

std::string RawSafetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string EncodeSafetensors(const std::vector<TensorBlob>& tensors, const Json& metadata) {
  Json header = Json::object();
  std::string data;
  for (const TensorBlob& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {data.size(), data.size() + t.data.size()}}};
    data += t.data;
  }
  if (metadata.is_object()) header["__metadata__"] = metadata;
  return RawSafetensors(header.dump(), data);
}

std::vector<TensorBlob> DecodeSafetensors(const std::string& bytes) {
  std::vector<TensorBlob> out;
  auto header = ParseSafetensorsHeader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                       "decode");
  EXPECT_TRUE(header.ok()) << header.status().ToString();
  if (!header.ok()) return out;
  for (const auto& [name, e] : header->tensors) {
    out.push_back({name, e.dtype_name, e.shape, bytes.substr(e.offset, e.size)});
  }
  std::sort(out.begin(), out.end(), [&](const TensorBlob& a, const TensorBlob& b) {
    return header->tensors.at(a.name).offset < header->tensors.at(b.name).offset;
  });
  return out;
}

std::string F32Bytes(const std::vector<float>& values) {
  std::string out(values.size() * sizeof(float), '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "cannot read " << path;
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_TRUE(f.good()) << "cannot write " << path;
}

std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string path = dir + "/" + e->d_name;
      struct stat st {};
      if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) files.push_back(e->d_name);
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

ScopedTempDir::ScopedTempDir(const std::string& name) : path_(MakeTempDir(name)) {}

ScopedTempDir::~ScopedTempDir() {
  for (const std::string& f : ListFiles(path_)) std::remove((path_ + "/" + f).c_str());
  rmdir(path_.c_str());
}

void CopyGoldenModel(const std::string& name, const ScopedTempDir& dir) {
  const std::string src = TestDataPath("models/" + name);
  const std::vector<std::string> files = ListFiles(src);
  EXPECT_FALSE(files.empty()) << "no golden model " << name;
  for (const std::string& f : files) WriteFileBytes(dir.file(f), ReadFileBytes(src + "/" + f));
}

void EditConfig(const std::string& dir, const std::function<void(Json&)>& edit) {
  const std::string path = dir + "/config.json";
  auto json = ParseJson(ReadFileBytes(path), path);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  edit(*json);
  WriteFileBytes(path, json->dump(2));
}

}  // namespace tokenfab::testing
