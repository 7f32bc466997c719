#include "model/checkpoint.h"

#include <set>

#include "base/json.h"

namespace tokenfab {

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string HostTensor::ShapeString() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Status Checkpoint::AddShard(const std::string& path) {
  auto file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  auto header = ParseSafetensorsHeader((*file)->data(), (*file)->size(), path);
  if (!header.ok()) return header.status();
  shards_.push_back(Shard{std::move(file).value(), std::move(header).value()});
  return Status::Ok();
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& model_dir) {
  if (!IsDirectory(model_dir)) {
    return NotFoundError("model directory '" + model_dir + "' does not exist");
  }
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint);
  const std::string index_path = JoinPath(model_dir, "model.safetensors.index.json");
  const std::string single_path = JoinPath(model_dir, "model.safetensors");
  if (PathExists(index_path)) {
    TF_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(index_path));
    auto parsed = ParseJson(text, index_path);
    // A corrupt index is a corrupt checkpoint file, like a corrupt shard: DataLoss.
    if (!parsed.ok()) return DataLossError(parsed.status().message());
    const Json index = std::move(parsed).value();
    const auto map = index.is_object() ? index.find("weight_map") : index.end();
    if (map == index.end() || !map->is_object()) {
      return DataLossError(index_path + ": missing object 'weight_map'");
    }
    std::set<std::string> files;
    for (const auto& [name, file] : map->items()) {
      if (!file.is_string()) return DataLossError(index_path + ": weight_map['" + name + "']");
      const std::string f = file.get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f == "..") {
        return DataLossError(index_path + ": weight_map names a file outside the directory: '" +
                             f + "'");
      }
      files.insert(f);
    }
    for (const std::string& f : files) TF_RETURN_IF_ERROR(ckpt->AddShard(JoinPath(model_dir, f)));
    // Every tensor the index promises must be in the shard it names.
    for (const auto& [name, file] : map->items()) {
      const std::string path = JoinPath(model_dir, file.get<std::string>());
      bool found = false;
      for (const Shard& shard : ckpt->shards_) {
        if (shard.file->path() == path && shard.header.tensors.count(name)) found = true;
      }
      if (!found) {
        return DataLossError(path + ": tensor '" + name + "' listed in the index is missing");
      }
    }
    ckpt->description_ = std::to_string(files.size()) + " shards of " + index_path;
  } else if (PathExists(single_path)) {
    TF_RETURN_IF_ERROR(ckpt->AddShard(single_path));
    ckpt->description_ = single_path;
  } else {
    return NotFoundError(model_dir +
                         ": no model.safetensors or model.safetensors.index.json (use "
                         "--dummy-weights to run the config with random weights)");
  }
  return ckpt;
}

bool Checkpoint::Has(std::string_view name) const {
  for (const Shard& shard : shards_) {
    if (shard.header.tensors.find(name) != shard.header.tensors.end()) return true;
  }
  return false;
}

Result<HostTensor> Checkpoint::Find(std::string_view name) const {
  for (const Shard& shard : shards_) {
    const auto it = shard.header.tensors.find(name);
    if (it == shard.header.tensors.end()) continue;
    const SafetensorsEntry& e = it->second;
    HostTensor t;
    t.name = std::string(name);
    t.file = shard.file->path();
    t.dtype = e.dtype;
    t.dtype_name = e.dtype_name;
    t.shape = e.shape;
    t.data = shard.file->data() + e.offset;
    t.bytes = e.size;
    return t;
  }
  return NotFoundError(description_ + ": tensor '" + std::string(name) + "' not found");
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  for (const Shard& shard : shards_) {
    for (const auto& [name, entry] : shard.header.tensors) names.push_back(name);
  }
  return names;
}

}  // namespace tokenfab
