// A read-only memory map of a whole file (RAII): checkpoints are mapped, never read into copies.
//
// Thread-safety: immutable after Open; concurrent reads are safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace tokenfab {

class MappedFile {
 public:
  // NotFound if the file is missing; InvalidArgument if it is a directory or cannot be mapped.
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

// Reads a whole (small) file into a string.
Result<std::string> ReadFileToString(const std::string& path);

bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace tokenfab
