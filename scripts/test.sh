#!/usr/bin/env bash
# The test command (README and CI run exactly this). Four stages, each on its own build tree:
#   1. Release build, all unit / golden / CLI tests            (build/)
#   2. ASan + UBSan build of the same tests (clang)            (build-asan/)
#   3. libFuzzer targets, each run briefly from its corpus     (build-fuzz/)
#   4. CUDA build (compile and link only: no GPU here), so a   (build-cuda/)
#      CUDA build break fails here too; skipped without nvcc
# Stages can be picked: scripts/test.sh release asan fuzz cuda  (default: all four).
# Needs what scripts/setup.sh installs. Exit code is non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(release asan fuzz cuda)
jobs=$(nproc)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

run_stage() {
  case "$1" in
    release)
      cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
      cmake --build build
      ctest --test-dir build -j"$jobs" --output-on-failure --timeout 300
      ;;
    asan)
      CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DTOKENFAB_SANITIZE=address,undefined >/dev/null
      cmake --build build-asan
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --test-dir build-asan -j"$jobs" --output-on-failure --timeout 600
      ;;
    fuzz)
      CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DTOKENFAB_FUZZ=ON -DTOKENFAB_TESTS=OFF >/dev/null
      cmake --build build-fuzz --target fuzzers
      for fuzzer in build-fuzz/fuzz/*_fuzzer; do
        name=$(basename "$fuzzer")
        corpus=fuzz/corpus/${name%_fuzzer}
        [ -d "$corpus" ] || { echo "fuzz: no seed corpus $corpus for $name" >&2; exit 1; }
        work=$(mktemp -d)
        echo "fuzz: $name for ${FUZZ_SECONDS}s"
        "$fuzzer" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -print_final_stats=1 \
          "$work" "$corpus" 2>&1 | tail -n 3
        rm -rf "$work"
      done
      ;;
    cuda)
      export PATH=$PATH:/usr/local/cuda/bin
      if ! command -v nvcc >/dev/null; then
        echo "cuda: no nvcc on this machine, CUDA build skipped"
        return 0
      fi
      cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOKENFAB_CUDA=ON >/dev/null
      cmake --build build-cuda --target tokenfab backend_ops_test
      ;;
    *) echo "unknown stage $1 (release, asan, fuzz, cuda)" >&2; exit 2 ;;
  esac
}

for stage in "${stages[@]}"; do
  echo "=== test stage: $stage"
  run_stage "$stage"
done
echo "=== all test stages passed: ${stages[*]}"
