// Backend: one compute device (the CPU, one GPU) — its memory, its stream and its Ops.
//
// The model is written once against this interface; backends register a named factory
// (backend_registry.h) and callers ask capabilities at run time instead of #ifdef-ing.
// Thread-safety: one thread drives a backend at a time (the engine's owner thread).
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "backend/device_buffer.h"
#include "backend/device_probe.h"
#include "backend/dtype.h"
#include "backend/ops.h"
#include "base/status.h"

namespace tokenfab {

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;

  // Activations and the KV cache are kept in this dtype.
  virtual DType activation_dtype() const = 0;
  // Matrices stored as `stored` in a checkpoint are kept on the device as the returned dtype.
  virtual DType WeightDType(DType stored) const = 0;

  // Device memory; ResourceExhausted when it does not fit. Contents are unspecified.
  virtual Result<DeviceBuffer> Allocate(size_t bytes) = 0;
  // Bytes that can still be allocated, for up-front checks ("the model needs 16 GB, 9 GB free").
  virtual uint64_t FreeMemoryBytes() const = 0;

  // Copies between host and device memory; complete once Synchronize returns.
  virtual Status CopyToDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual Status CopyToHost(void* dst, const void* src, size_t bytes) = 0;
  virtual Status Synchronize() = 0;

  virtual Ops& ops() = 0;

  // Ceiling measurements for benchmarks; null where the backend has none.
  virtual DeviceProbe* probe() { return nullptr; }

  // Graphs: the ops issued between BeginGraphCapture and EndGraphCapture are recorded (not
  // run) and can be replayed with LaunchGraph, with the same arguments and memory, at a
  // fraction of the launch cost. Only where SupportsGraphs(); callers ask first.
  virtual bool SupportsGraphs() const { return false; }
  virtual Status BeginGraphCapture() { return UnavailableError("no graph support"); }
  virtual Result<int> EndGraphCapture() { return UnavailableError("no graph support"); }
  virtual Status LaunchGraph(int /*graph*/) { return UnavailableError("no graph support"); }

  // Row counts, up to `max_rows`, that each meet a first-use cost the next call of the same
  // shape does not pay (CUDA: cuBLASLt's algorithms timed per bucket of rows): one count per
  // bucket. A server runs a forward pass at each before it serves (engine/warm_up.h), so that no
  // request pays it. Empty: nothing to warm.
  virtual std::vector<int64_t> WarmUpRowCounts(int64_t /*max_rows*/) const { return {}; }

 protected:
  friend class DeviceBuffer;
  virtual void Free(void* data, size_t bytes) = 0;
};

}  // namespace tokenfab
