// Checkpoint: the tensors of a Hugging Face model directory, memory-mapped.
//
// Reads model.safetensors, or the shards listed by model.safetensors.index.json
// (model-0000x-of-0000y.safetensors). Tensors are looked up by name and returned as views into
// the mapped files; nothing is copied. Thread-safety: immutable after Open.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "model/safetensors.h"

namespace tokenfab {

struct HostTensor {
  std::string name;
  std::string file;  // the file it came from, for error messages
  SafeDType dtype = SafeDType::kOther;
  std::string dtype_name;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;

  int64_t numel() const;
  std::string ShapeString() const;
};

class Checkpoint {
 public:
  // NotFound if the directory or its safetensors are missing; DataLoss for corrupt files.
  static Result<std::unique_ptr<Checkpoint>> Open(const std::string& model_dir);

  bool Has(std::string_view name) const;
  // NotFound naming the tensor and the file(s) searched.
  Result<HostTensor> Find(std::string_view name) const;
  std::vector<std::string> TensorNames() const;
  // "model.safetensors" or "3 shards of model.safetensors.index.json", for messages.
  const std::string& description() const { return description_; }

 private:
  struct Shard {
    std::unique_ptr<MappedFile> file;
    SafetensorsHeader header;
  };
  Checkpoint() = default;
  Status AddShard(const std::string& path);

  std::vector<Shard> shards_;
  std::string description_;
};

}  // namespace tokenfab
