// Test helpers that build and take apart model directories: safetensors files written from
// scratch (so that every header field can be set, or broken, on purpose), temp copies of the
// golden checkpoints, and edits of their config.json. Used by the model, engine and CLI tests.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/json.h"

namespace tokenfab::testing {

struct TensorBlob {
  std::string name;
  std::string dtype;  // as safetensors spells it: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;
  std::string data;  // raw little-endian bytes
};

// A safetensors file: 8-byte length, JSON header, then the tensors' bytes back to back in the
// given order. `metadata`, if an object, becomes "__metadata__".
std::string EncodeSafetensors(const std::vector<TensorBlob>& tensors,
                              const Json& metadata = Json());

// The 8-byte little-endian length prefix followed by `header`, then `data`.
std::string RawSafetensors(const std::string& header, const std::string& data);

// Every tensor of a (valid) safetensors file, in header order of their offsets. Fails the
// current test on a parse error.
std::vector<TensorBlob> DecodeSafetensors(const std::string& bytes);

// f32 values as raw bytes.
std::string F32Bytes(const std::vector<float>& values);

// Whole-file read / write; fail the current test on error.
std::string ReadFileBytes(const std::string& path);
void WriteFileBytes(const std::string& path, const std::string& bytes);

// A temp directory (flat: files only) removed with its files when this goes out of scope.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& name);
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Fills `dir` with a copy of every file of tests/data/models/<name>.
void CopyGoldenModel(const std::string& name, const ScopedTempDir& dir);

// Parses DIR/config.json, applies `edit`, writes it back.
void EditConfig(const std::string& dir, const std::function<void(Json&)>& edit);

// The files (not directories) directly inside `dir`, sorted.
std::vector<std::string> ListFiles(const std::string& dir);

}  // namespace tokenfab::testing
