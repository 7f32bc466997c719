// A CUDA injection library that records when every kernel ran, for a timeline without Nsight
// Systems (the device machine has none that can write a report). Kernels launched inside CUDA
// graphs are recorded too, node by node, and programmatic dependent launches show as overlap.
//
//   g++ -O2 -shared -fPIC -I$CUDA/include tools/device/kernel_timeline.cc -L$CUDA/lib64 -lcupti
//     -o /tmp/libkernel_timeline.so
//   CUDA_INJECTION64_PATH=/tmp/libkernel_timeline.so KERNEL_TIMELINE_CSV=/tmp/t.csv PROGRAM ...
//
// The CSV has a row per kernel: start_ns,end_ns,graph_id,grid,block,name (demangled, commas
// replaced), in completion-buffer order; tools/device/timeline_report.py summarises it. Unlike
// ncu, nothing is replayed or serialised: the times are the program's own, at its own clocks.
#include <cupti.h>
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace {

constexpr size_t kBufferBytes = 8 << 20;

std::mutex g_mutex;
FILE* g_out = nullptr;

void Check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* msg = nullptr;
  cuptiGetResultString(r, &msg);
  std::fprintf(stderr, "kernel_timeline: %s failed: %s\n", what, msg ? msg : "?");
}

std::string Demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : name;
  std::free(d);
  for (char& c : s) {
    if (c == ',' || c == '\n') c = ';';
  }
  return s;
}

void CUPTIAPI BufferRequested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = kBufferBytes;
  *max_records = 0;
}

void CUPTIAPI BufferCompleted(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* record = nullptr;
  std::lock_guard<std::mutex> lock(g_mutex);
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
    if (g_out) {
      std::fprintf(g_out, "%llu,%llu,%u,%d,%d,%s\n", static_cast<unsigned long long>(k->start),
                   static_cast<unsigned long long>(k->end), k->graphId,
                   k->gridX * k->gridY * k->gridZ, k->blockX * k->blockY * k->blockZ,
                   Demangle(k->name).c_str());
    }
  }
  std::free(buffer);
}

void Finish() {
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_out) std::fclose(g_out);
  g_out = nullptr;
}

}  // namespace

extern "C" int InitializeInjection(void) {
  const char* path = std::getenv("KERNEL_TIMELINE_CSV");
  g_out = std::fopen(path ? path : "kernel_timeline.csv", "w");
  if (!g_out) {
    std::fprintf(stderr, "kernel_timeline: cannot write %s\n", path ? path : "kernel_timeline.csv");
    return 0;
  }
  std::fprintf(g_out, "start_ns,end_ns,graph_id,grid,block,name\n");
  Check(cuptiActivityRegisterCallbacks(BufferRequested, BufferCompleted), "register callbacks");
  Check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable kernel records");
  std::atexit(Finish);
  return 1;
}
