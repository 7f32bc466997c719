#!/usr/bin/env bash
# llama.cpp for the side-by-side and serving benchmarks, from the peers folder (../shared/peers
# copied to the git-ignored .peers, see its README). Building it on the GPU machine takes ~7 of
# a session's 30 device minutes, so it can be built here instead and carried there:
#
#   tools/device/llama_cpp.sh pack       # here: build llama.cpp (CUDA, sm_90a, shared libs) and
#                                        # pack build/bin into .llama-bin/llama-bin.tar.xz
#   tools/device/llama_cpp.sh install    # there (carry .peers and .llama-bin): unpack the peers
#                                        # into $DEV and the binaries into $DEV/llama.cpp/build/bin,
#                                        # or build there with .peers/device.sh if none was carried
#                                        # (that build lacks the output-parser edit below)
#
# Then LLAMA_BIN=$DEV/llama.cpp/build/bin, and LD_LIBRARY_PATH must include it (this script
# prints the export line last).
set -euo pipefail
cd "$(dirname "$0")/../.."
PEERS=${PEERS:-.peers}
DEV=${DEV:-/root/peers-dev}
WORK=${WORK:-/tmp/llama-pack}

case "${1:-}" in
  pack)
    mkdir -p "$WORK" .llama-bin
    [ -d "$WORK/llama.cpp" ] || tar -xJf "$PEERS/llama.cpp.tar.xz" -C "$WORK"
    # Benchmarks run random-weight models, whose text is often not valid UTF-8: llama-server's
    # output parser then fails the request (after generating it), so its throughput could not
    # be measured. Make the parser hand such text back as plain content instead of throwing.
    sed -i 's|^\( *\)throw std::runtime_error(std::string("The model produced output that does not match the expected ") + common_chat_format_name(params.format) + " format");|\1{ common_chat_msg raw; raw.role = "assistant"; raw.content = input; return raw; }|' \
      "$WORK/llama.cpp/common/chat.cpp"
    grep -q 'raw.content = input' "$WORK/llama.cpp/common/chat.cpp" ||
      { echo "llama_cpp.sh: the output-parser edit no longer applies" >&2; exit 1; }
    # The flags of .peers/device.sh build-llama, but portable CPU code (the GPU machine's CPU
    # differs from this one) and shared libraries (the three tools share one libggml-cuda).
    # This machine has no GPU driver, so executables link against the toolkit's link-only libcuda.
    mkdir -p "$WORK/cudastub"
    ln -sf /usr/local/cuda/lib64/stubs/libcuda.so "$WORK/cudastub/libcuda.so.1"
    cmake -S "$WORK/llama.cpp" -B "$WORK/llama.cpp/build" -DCMAKE_BUILD_TYPE=Release \
      -DBUILD_SHARED_LIBS=ON -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
      -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DGGML_NATIVE=OFF -DGGML_CUDA_FA=ON \
      -DGGML_CUDA_FA_ALL_QUANTS=OFF -DGGML_CUDA_NCCL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
      -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_NUMBER=10108 \
      -DLLAMA_BUILD_COMMIT=0a50d99 -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$WORK/cudastub" \
      >"$WORK/cmake.log"
    cmake --build "$WORK/llama.cpp/build" -j"${JOBS:-$(nproc)}" \
      --target llama-bench llama-server llama-batched-bench
    tar -cf - -C "$WORK/llama.cpp/build" bin | xz -T0 -6 >.llama-bin/llama-bin.tar.xz
    ls -la .llama-bin
    ;;
  install)
    bash "$PEERS/device.sh" setup >/dev/null
    if [ -f .llama-bin/llama-bin.tar.xz ]; then
      mkdir -p "$DEV/llama.cpp/build"
      if command -v xz >/dev/null; then tar -xJf .llama-bin/llama-bin.tar.xz -C "$DEV/llama.cpp/build"
      else python3 -m tarfile -e .llama-bin/llama-bin.tar.xz "$DEV/llama.cpp/build"; fi
    else
      bash "$PEERS/device.sh" build-llama >&2
    fi
    LD_LIBRARY_PATH="$DEV/llama.cpp/build/bin:${LD_LIBRARY_PATH:-}" \
      "$DEV/llama.cpp/build/bin/llama-bench" --version >&2 || true
    echo "export LD_LIBRARY_PATH=$DEV/llama.cpp/build/bin:\${LD_LIBRARY_PATH:-}"
    ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
